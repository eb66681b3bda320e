// CUDA elementwise binary ops with numpy broadcasting: Add Sub Mul Div Pow Mod, Equal Greater GreaterOrEqual Less
// LessOrEqual, And Or Xor, PRelu. Semantics of src/ops/elementwise_binary.cpp: integer Add/Sub/Mul wrap, integer
// Div truncates, Mod's fmod=0 is floor modulo. Differences: an integer division or modulo by zero gives 0 here
// (the reference throws InvalidArgument; a kernel cannot report it without a host sync).
#include <cmath>

#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace kiln::runtime::cuda::ew {
namespace {

template <class C>
__device__ inline C wrap_add(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return a + b;
}
template <class C>
__device__ inline C wrap_sub(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  else return a - b;
}
template <class C>
__device__ inline C wrap_mul(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return a * b;
}

__device__ inline float m_fmod(float a, float b) { return fmodf(a, b); }
__device__ inline double m_fmod(double a, double b) { return fmod(a, b); }
__device__ inline float m_copysign(float a, float b) { return copysignf(a, b); }
__device__ inline double m_copysign(double a, double b) { return copysign(a, b); }

// One kernel per dtype serves every arithmetic op (and one every comparison): the op is a run-time code, a
// branch that is uniform across the grid, which keeps the number of instantiations (and compile time) low.
enum class Arith : int { Add, Sub, Mul, Div, Fmod, FloorMod, PRelu };
enum class Cmp : int { Equal, Less, Greater, GreaterEqual, LessEqual, And, Or, Xor };

template <class C>
__device__ inline C div_value(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    if (b == C(0)) return C(0);
    if constexpr (std::is_signed_v<C>)
      if (b == C(-1)) return wrap_sub(C(0), a);  // INT_MIN / -1 wraps
    return static_cast<C>(a / b);
  } else {
    return a / b;
  }
}

template <class C>
__device__ inline C mod_value(C a, C b, bool fmod_) {
  if constexpr (std::is_integral_v<C>) {
    if (b == C(0)) return C(0);
    if constexpr (std::is_signed_v<C>) {
      if (b == C(-1)) return C(0);
      C r = static_cast<C>(a % b);
      if (!fmod_ && r != C(0) && ((r < C(0)) != (b < C(0)))) r = static_cast<C>(r + b);
      return r;
    } else {
      return static_cast<C>(a % b);
    }
  } else {
    C r = m_fmod(a, b);
    if (fmod_) return r;
    if (r == C(0)) return m_copysign(C(0), b);
    if ((r < C(0)) != (b < C(0))) r += b;
    return r;
  }
}

template <class T>
struct ArithOp {
  Arith op;
  __device__ T operator()(T x, T y) const {
    using C = CT<T>;
    const C a = Num<T>::ld(x), b = Num<T>::ld(y);
    C r;
    switch (op) {
      case Arith::Add: r = wrap_add(a, b); break;
      case Arith::Sub: r = wrap_sub(a, b); break;
      case Arith::Mul: r = wrap_mul(a, b); break;
      case Arith::Div: r = div_value(a, b); break;
      case Arith::Fmod: r = mod_value(a, b, true); break;
      case Arith::FloorMod: r = mod_value(a, b, false); break;
      default:  // PRelu: b is the slope
        if constexpr (std::is_unsigned_v<C>) r = a;
        else r = a < C(0) ? wrap_mul(b, a) : a;
        break;
    }
    return Num<T>::st(r);
  }
};

template <class T>
struct CmpOp {
  Cmp op;
  __device__ Bool8 operator()(T x, T y) const {
    const CT<T> a = Num<T>::ld(x), b = Num<T>::ld(y);
    bool r;
    switch (op) {
      case Cmp::Equal: r = a == b; break;
      case Cmp::Less: r = a < b; break;
      case Cmp::Greater: r = a > b; break;
      case Cmp::GreaterEqual: r = a >= b; break;
      case Cmp::LessEqual: r = a <= b; break;
      case Cmp::And: r = a && b; break;
      case Cmp::Or: r = a || b; break;
      default: r = a != b; break;  // Xor
    }
    return Num<Bool8>::st(r);
  }
};

bool same_type_in(const std::vector<ir::ValueType>& in) { return in.size() == 2 && in[0].dtype == in[1].dtype; }

// Arithmetic kernels exist for NumT, comparison kernels for AllT; `List` narrows what the op accepts.
template <class List>
void add_arith(const char* name, Arith (*code)(const ir::Node&), bool (*dtype_ok)(const ir::Node&, DType) = nullptr) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = [dtype_ok](const ir::Node& n, const std::vector<ir::ValueType>& in) {
    return same_type_in(in) && List::contains(in[0].dtype) && (!dtype_ok || dtype_ok(n, in[0].dtype)) &&
           ranks_ok(n, in);
  };
  t.run = [code](const KernelContext& ctx, KernelArgs& args) {
    const Arith op = code(args.node);
    dispatch(NumT{}, args.in[0]->dtype, args.node, [&](auto tag) {
      using T = decltype(tag);
      launch_binary<T, T, T>(ctx, args, ArithOp<T>{op});
    });
  };
  register_cuda_tactic("", name, std::move(t));
}

template <class List>
void add_cmp(const char* name, Cmp op) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
    return same_type_in(in) && List::contains(in[0].dtype) && ranks_ok(n, in);
  };
  t.run = [op](const KernelContext& ctx, KernelArgs& args) {
    dispatch(AllT{}, args.in[0]->dtype, args.node, [&](auto tag) {
      using T = decltype(tag);
      launch_binary<T, T, Bool8>(ctx, args, CmpOp<T>{op});
    });
  };
  register_cuda_tactic("", name, std::move(t));
}

// ---- Pow: the exponent may have another numeric dtype; it is read as double ---------------------------------------
// x^e by squaring (exact in double below 2^53, like the reference's correctly rounded std::pow).
__device__ inline double ipow(double x, long long e) {
  double r = 1.0;
  unsigned long long u = e < 0 ? 0ull - static_cast<unsigned long long>(e) : static_cast<unsigned long long>(e);
  while (u) {
    if (u & 1ull) r *= x;
    x *= x;
    u >>= 1;
  }
  return e < 0 ? 1.0 / r : r;
}

template <class T>
struct PowOp {
  __device__ T operator()(T a, double e) const {
    using C = CT<T>;
    if constexpr (std::is_same_v<C, float>) {
      const float x = Num<T>::ld(a);
      const float ef = static_cast<float>(e);
      return Num<T>::st(ef == 2.0f ? x * x : powf(x, ef));
    } else if constexpr (std::is_same_v<C, double>) {
      return e == 2.0 ? a * a : pow(a, e);
    } else {
      const double x = static_cast<double>(a);
      const bool integral = e == floor(e) && fabs(e) < 4294967296.0;
      const double r = integral ? ipow(x, static_cast<long long>(e)) : e == 0.5 ? sqrt(x) : pow(x, e);
      return convert<C>(r);
    }
  }
};

void pow_run(const KernelContext& ctx, KernelArgs& args) {
  dispatch(FloatI3264T{}, args.in[0]->dtype, args.node,
           [&](auto tag) { launch_binary<decltype(tag), AnyNum, decltype(tag)>(ctx, args, PowOp<decltype(tag)>{}); });
}

}  // namespace

void register_binary() {
  add_arith<NumT>("Add", [](const ir::Node&) { return Arith::Add; });
  add_arith<NumT>("Sub", [](const ir::Node&) { return Arith::Sub; });
  add_arith<NumT>("Mul", [](const ir::Node&) { return Arith::Mul; });
  add_arith<NumT>("Div", [](const ir::Node&) { return Arith::Div; });
  add_arith<NumT>("Mod", [](const ir::Node& n) { return n.attr_int("fmod", 0) == 1 ? Arith::Fmod : Arith::FloorMod; });
  // PRelu: float types before opset 16, also int32 / int64 from 16. The slope broadcasts to X (the output shape).
  add_arith<FloatI3264T>("PRelu", [](const ir::Node&) { return Arith::PRelu; },
                         [](const ir::Node& n, DType dt) { return n.opset >= 16 || FloatT::contains(dt); });
  add_cmp<AllT>("Equal", Cmp::Equal);
  add_cmp<NumT>("Less", Cmp::Less);
  add_cmp<NumT>("Greater", Cmp::Greater);
  add_cmp<NumT>("GreaterOrEqual", Cmp::GreaterEqual);
  add_cmp<NumT>("LessOrEqual", Cmp::LessEqual);
  add_cmp<BoolT>("And", Cmp::And);
  add_cmp<BoolT>("Or", Cmp::Or);
  add_cmp<BoolT>("Xor", Cmp::Xor);
  register_cuda_tactic("", "Pow",
                       CudaTactic{"cuda",
                                  [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
                                    return in.size() == 2 && FloatI3264T::contains(in[0].dtype) &&
                                           NumT::contains(in[1].dtype) && ranks_ok(n, in);
                                  },
                                  pow_run, nullptr});
}

}  // namespace kiln::runtime::cuda::ew
