// CUDA elementwise unary ops: Abs Ceil Cos Elu Erf Exp Floor Gelu HardSigmoid HardSwish LeakyRelu Log Mish Neg Not
// Reciprocal Relu Sigmoid Sign Sin Softplus Sqrt Tanh, IsNaN / IsInf (bool out), Clip (bounds as attributes before opset 11, as optional
// scalar inputs read on the device from 11), Identity and Dropout (inference: a copy, mask of ones).
// Each formula is the CPU reference's (src/ops/elementwise_unary.cpp), evaluated in float for float16/bfloat16.
#include <cmath>
#include <limits>

#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace kiln::runtime::cuda::ew {
namespace {

// ---- float / double math ------------------------------------------------------------------------------------
__device__ inline float m_exp(float v) { return expf(v); }
__device__ inline double m_exp(double v) { return exp(v); }
__device__ inline float m_log(float v) { return logf(v); }
__device__ inline double m_log(double v) { return log(v); }
__device__ inline float m_log1p(float v) { return log1pf(v); }
__device__ inline double m_log1p(double v) { return log1p(v); }
__device__ inline float m_tanh(float v) { return tanhf(v); }
__device__ inline double m_tanh(double v) { return tanh(v); }
__device__ inline float m_erf(float v) { return erff(v); }
__device__ inline double m_erf(double v) { return erf(v); }
__device__ inline float m_sqrt(float v) { return sqrtf(v); }
__device__ inline double m_sqrt(double v) { return sqrt(v); }
__device__ inline float m_ceil(float v) { return ceilf(v); }
__device__ inline double m_ceil(double v) { return ceil(v); }
__device__ inline float m_floor(float v) { return floorf(v); }
__device__ inline double m_floor(double v) { return floor(v); }
__device__ inline float m_cos(float v) { return cosf(v); }
__device__ inline double m_cos(double v) { return cos(v); }
__device__ inline float m_sin(float v) { return sinf(v); }
__device__ inline double m_sin(double v) { return sin(v); }

template <class C>
__device__ inline C negate(C v) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(uint64_t(0) - static_cast<uint64_t>(v));
  else return -v;
}
// std::max / std::min argument order (NaN handling as in the reference, unlike fmax / fmin).
template <class C>
__device__ inline C smax(C a, C b) {
  return a < b ? b : a;
}
template <class C>
__device__ inline C smin(C a, C b) {
  return b < a ? b : a;
}
template <class C>
__device__ inline C softplus(C v) {
  return v > C(0) ? v + m_log1p(m_exp(-v)) : m_log1p(m_exp(v));
}

// ---- per-value functions on the compute type --------------------------------------------------------------------
struct ReluF {
  template <class C>
  __device__ C operator()(C v) const { return v > C(0) ? v : C(0); }
};
struct NegF {
  template <class C>
  __device__ C operator()(C v) const { return negate(v); }
};
struct AbsF {
  template <class C>
  __device__ C operator()(C v) const {
    if constexpr (std::is_unsigned_v<C>) return v;
    else return v < C(0) ? negate(v) : v;
  }
};
struct SignF {
  template <class C>
  __device__ C operator()(C v) const {
    if (v > C(0)) return C(1);
    if constexpr (!std::is_unsigned_v<C>)
      if (v < C(0)) return C(-1);
    return v;
  }
};
struct NotF {
  __device__ bool operator()(bool v) const { return !v; }
};
#define KILN_EW_MATH(Name, expr)               \
  struct Name {                                \
    template <class C>                         \
    __device__ C operator()(C v) const { return expr; } \
  };
KILN_EW_MATH(SqrtF, m_sqrt(v))
KILN_EW_MATH(ExpF, m_exp(v))
KILN_EW_MATH(LogF, m_log(v))
KILN_EW_MATH(TanhF, m_tanh(v))
KILN_EW_MATH(ErfF, m_erf(v))
KILN_EW_MATH(CeilF, m_ceil(v))
KILN_EW_MATH(FloorF, m_floor(v))
KILN_EW_MATH(CosF, m_cos(v))
KILN_EW_MATH(SinF, m_sin(v))
KILN_EW_MATH(ReciprocalF, C(1) / v)
KILN_EW_MATH(SoftplusF, softplus(v))
KILN_EW_MATH(MishF, v * m_tanh(softplus(v)))
KILN_EW_MATH(HardSwishF, v * smax(C(0), smin(C(1), v / C(6) + C(0.5))))
#undef KILN_EW_MATH
struct SigmoidF {
  template <class C>
  __device__ C operator()(C v) const {
    if (v >= C(0)) return C(1) / (C(1) + m_exp(-v));
    const C e = m_exp(v);
    return e / (C(1) + e);
  }
};
struct LeakyReluF {
  float alpha;
  template <class C>
  __device__ C operator()(C v) const { return v < C(0) ? static_cast<C>(alpha) * v : v; }
};
struct EluF {
  float alpha;
  template <class C>
  __device__ C operator()(C v) const { return v < C(0) ? static_cast<C>(alpha) * (m_exp(v) - C(1)) : v; }
};
struct HardSigmoidF {
  float alpha, beta;
  template <class C>
  __device__ C operator()(C v) const {
    const C y = static_cast<C>(alpha) * v + static_cast<C>(beta);
    // The reference's std::min(1, NaN) is 1, so NaN gives 1. Said explicitly: ptxas turns a clamp to [0, 1] into a
    // saturating FFMA (.SAT), which gives 0 for NaN.
    if (y != y) return C(1);
    return smax(C(0), smin(C(1), y));
  }
};
struct GeluF {
  bool tanh_form;
  template <class C>
  __device__ C operator()(C v) const {
    if (tanh_form) {
      const C k = static_cast<C>(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * v * (C(1) + m_tanh(k * (v + C(0.044715) * v * v * v)));
    }
    return C(0.5) * v * (C(1) + m_erf(v * static_cast<C>(0.7071067811865476)));
  }
};

// Storage -> compute -> f -> storage.
template <class T, class F>
struct Map {
  F f;
  __device__ Map bind() const { return *this; }
  __device__ T operator()(T v) const { return Num<T>::st(f(Num<T>::ld(v))); }
};

template <class List, class Make>
void add_unary(const char* op, Make make) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
    return in.size() == 1 && List::contains(in[0].dtype);
  };
  t.run = [make](const KernelContext& ctx, KernelArgs& args) {
    const DTensor& x = *args.in[0];
    const auto f = make(args.node);
    dispatch(List{}, x.dtype, args.node, [&](auto tag) {
      using T = decltype(tag);
      launch_unary<T, T>(ctx, x.data, args.out[0].data, x.numel(), Map<T, std::decay_t<decltype(f)>>{f});
    });
  };
  register_cuda_tactic("", op, std::move(t));
}

template <class List, class F>
void add_plain(const char* op) {
  add_unary<List>(op, [](const ir::Node&) { return F{}; });
}

// ---- Clip ---------------------------------------------------------------------------------------------------------
template <class T>
struct ClipOp {
  const T* lo_p;  // device scalars (opset >= 11 inputs) or null
  const T* hi_p;
  CT<T> lo, hi;
  __device__ ClipOp bind() const {
    ClipOp c = *this;
    if (lo_p) c.lo = Num<T>::ld(*lo_p);
    if (hi_p) c.hi = Num<T>::ld(*hi_p);
    return c;
  }
  __device__ T operator()(T x) const {
    CT<T> v = Num<T>::ld(x);
    v = v < lo ? lo : v;  // NaN stays NaN; min > max gives max, as ONNX specifies
    v = v > hi ? hi : v;
    return Num<T>::st(v);
  }
};

void clip_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = *args.in[0];
  for (size_t i = 1; i < 3 && n.opset >= 11; ++i)
    if (i < args.in.size() && args.in[i] && args.in[i]->numel() != 1)
      KILN_THROW(InvalidModel, n.label() << ": bound " << i << " must be a scalar, got shape "
                                         << shape_str(args.in[i]->shape));
  dispatch(NumT{}, x.dtype, n, [&](auto tag) {
    using T = decltype(tag);
    using C = CT<T>;
    ClipOp<T> op{nullptr, nullptr, C{}, C{}};
    if constexpr (std::is_floating_point_v<C>) {
      op.lo = -std::numeric_limits<C>::infinity();
      op.hi = std::numeric_limits<C>::infinity();
    } else {
      op.lo = Lim<C>::lo;
      op.hi = Lim<C>::hi;
    }
    if (n.opset < 11) {
      op.lo = convert<C>(n.attr_float("min", -std::numeric_limits<float>::infinity()));
      op.hi = convert<C>(n.attr_float("max", std::numeric_limits<float>::infinity()));
    } else {
      if (args.in.size() > 1 && args.in[1]) op.lo_p = args.in[1]->as<T>();
      if (args.in.size() > 2 && args.in[2]) op.hi_p = args.in[2]->as<T>();
    }
    launch_unary<T, T>(ctx, x.data, args.out[0].data, x.numel(), op);
  });
}

bool clip_supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  if (in.empty() || !NumT::contains(in[0].dtype)) return false;
  for (size_t i = 1; i < in.size(); ++i)
    if (present(n, i) && in[i].dtype != in[0].dtype) return false;
  return true;
}

// ---- Identity, Dropout ------------------------------------------------------------------------------------------
void copy_to(const KernelContext& ctx, const DTensor& x, const DTensor& y) {
  if (x.data == y.data || x.nbytes() == 0) return;
  KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
}

template <class U>
__global__ void __launch_bounds__(kBlock) fill_kernel(U* y, U value, int64_t n) {
  for (int64_t i = gtid(); i < n; i += gstride()) y[i] = value;
}

// Dropout's mask: all true (bool, opset >= 10) or all 1.0 in X's float type (before).
void fill_ones(const KernelContext& ctx, const DTensor& m) {
  const int64_t n = m.numel();
  if (n == 0) return;
  switch (m.dtype) {
    case DType::Bool: KILN_CUDA_CHECK(cudaMemsetAsync(m.data, 1, m.nbytes(), ctx.stream)); return;
    case DType::Float32:
      fill_kernel<uint32_t><<<grid_for(n), kBlock, 0, ctx.stream>>>(m.as<uint32_t>(), 0x3f800000u, n);
      break;
    case DType::Float16:
      fill_kernel<uint16_t><<<grid_for(n), kBlock, 0, ctx.stream>>>(m.as<uint16_t>(), uint16_t(0x3c00), n);
      break;
    case DType::BFloat16:
      fill_kernel<uint16_t><<<grid_for(n), kBlock, 0, ctx.stream>>>(m.as<uint16_t>(), uint16_t(0x3f80), n);
      break;
    case DType::Float64:
      fill_kernel<uint64_t><<<grid_for(n), kBlock, 0, ctx.stream>>>(m.as<uint64_t>(), 0x3ff0000000000000ull, n);
      break;
    default: KILN_THROW(Unsupported, "Dropout mask dtype " << dtype_name(m.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("fill_kernel");
}

double host_scalar(const Tensor& t) { return t.numel() == 1 ? t.at_double(0) : 0.0; }

void dropout_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  // training_mode known on the host (a constant): true with a nonzero ratio is random dropout, which kiln does not
  // run (the reference refuses it too). A training_mode computed on the device is taken as false (inference).
  const Tensor* training = args.host_in.size() > 2 ? args.host_in[2] : nullptr;
  if (training && host_scalar(*training) != 0) {
    const Tensor* ratio = args.host_in.size() > 1 ? args.host_in[1] : nullptr;
    const bool ratio_given = args.in.size() > 1 && args.in[1];
    if (ratio_given && !ratio)
      KILN_THROW(Unsupported, n.label() << ": training_mode=true with a ratio computed at run time");
    const double r = ratio ? host_scalar(*ratio) : 0.5;
    if (r != 0)
      KILN_THROW(Unsupported, n.label() << ": training_mode=true with ratio " << r
                                        << " is random dropout; kiln runs inference only");
  }
  copy_to(ctx, *args.in[0], args.out[0]);
  if (args.out.size() > 1 && args.out[1].data) fill_ones(ctx, args.out[1]);
}

// ---- IsNaN, IsInf: float in, bool out ---------------------------------------------------------------------------
template <class T>
struct FloatTestOp {
  bool nan, pos_inf, neg_inf;  // IsNaN: nan; IsInf: detect_positive / detect_negative
  __device__ FloatTestOp bind() const { return *this; }
  __device__ Bool8 operator()(T x) const {
    const auto v = Num<T>::ld(x);
    const bool r = nan ? v != v : ((pos_inf && isinf(v) && v > 0) || (neg_inf && isinf(v) && v < 0));
    return Num<Bool8>::st(r);
  }
};

void add_float_test(const char* op, bool is_nan) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = [](const ir::Node&, const std::vector<ir::ValueType>& in) {
    return in.size() == 1 && FloatT::contains(in[0].dtype);
  };
  t.run = [is_nan](const KernelContext& ctx, KernelArgs& args) {
    const DTensor& x = *args.in[0];
    const bool pos = !is_nan && args.node.attr_int("detect_positive", 1) != 0;
    const bool neg = !is_nan && args.node.attr_int("detect_negative", 1) != 0;
    dispatch(FloatT{}, x.dtype, args.node, [&](auto tag) {
      using T = decltype(tag);
      launch_unary<T, Bool8>(ctx, x.data, args.out[0].data, x.numel(), FloatTestOp<T>{is_nan, pos, neg});
    });
  };
  register_cuda_tactic("", op, std::move(t));
}

}  // namespace

void register_unary() {
  add_plain<SignedNumT, ReluF>("Relu");
  add_plain<SignedNumT, NegF>("Neg");
  add_plain<NumT, AbsF>("Abs");
  add_plain<NumT, SignF>("Sign");
  add_plain<BoolT, NotF>("Not");
  add_float_test("IsNaN", true);
  add_float_test("IsInf", false);
  add_plain<FloatT, SqrtF>("Sqrt");
  add_plain<FloatT, ExpF>("Exp");
  add_plain<FloatT, LogF>("Log");
  add_plain<FloatT, TanhF>("Tanh");
  add_plain<FloatT, ErfF>("Erf");
  add_plain<FloatT, SigmoidF>("Sigmoid");
  add_plain<FloatT, CeilF>("Ceil");
  add_plain<FloatT, FloorF>("Floor");
  add_plain<FloatT, CosF>("Cos");
  add_plain<FloatT, SinF>("Sin");
  add_plain<FloatT, ReciprocalF>("Reciprocal");
  add_plain<FloatT, SoftplusF>("Softplus");
  add_plain<FloatT, MishF>("Mish");
  add_plain<FloatT, HardSwishF>("HardSwish");
  add_unary<FloatT>("LeakyRelu", [](const ir::Node& n) { return LeakyReluF{n.attr_float("alpha", 0.01f)}; });
  add_unary<FloatT>("Elu", [](const ir::Node& n) { return EluF{n.attr_float("alpha", 1.0f)}; });
  add_unary<FloatT>("HardSigmoid", [](const ir::Node& n) {
    return HardSigmoidF{n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f)};
  });
  {
    CudaTactic t;
    t.name = "cuda";
    t.supports = [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
      const std::string a = n.attr_string("approximate", "none");
      return in.size() == 1 && FloatT::contains(in[0].dtype) && (a == "none" || a == "tanh");
    };
    t.run = [](const KernelContext& ctx, KernelArgs& args) {
      const DTensor& x = *args.in[0];
      const GeluF f{args.node.attr_string("approximate", "none") == "tanh"};
      dispatch(FloatT{}, x.dtype, args.node, [&](auto tag) {
        using T = decltype(tag);
        launch_unary<T, T>(ctx, x.data, args.out[0].data, x.numel(), Map<T, GeluF>{f});
      });
    };
    register_cuda_tactic("", "Gelu", std::move(t));
  }
  register_cuda_tactic("", "Clip", CudaTactic{"cuda", clip_supports, clip_run, nullptr});
  register_cuda_tactic("", "Identity", CudaTactic{"cuda", nullptr,
                                                  [](const KernelContext& ctx, KernelArgs& args) {
                                                    copy_to(ctx, *args.in[0], args.out[0]);
                                                  },
                                                  nullptr});
  register_cuda_tactic("", "Dropout", CudaTactic{"cuda",
                                                 [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                                                   return !in.empty() && FloatT::contains(in[0].dtype);
                                                 },
                                                 dropout_run, nullptr});
}

}  // namespace kiln::runtime::cuda::ew
