// Elementwise unary ops: Relu, LeakyRelu, Sqrt, Exp, Log, Neg, Abs, Sigmoid, Tanh, Erf, Clip, Cast, CastLike,
// Ceil, Floor, Cos, Sin, Reciprocal, Sign, Not, Elu, HardSigmoid, HardSwish, Mish, Softplus, Gelu (approximate
// none|tanh), Dropout (inference: identity, optional mask all true) and the float -> bool tests IsNaN, IsInf.
// float16/bfloat16 compute in float and round back; float32 in float; float64 in double.
#include <algorithm>
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::unary_detail {

// Two's-complement negation without signed overflow UB (INT_MIN stays INT_MIN, like the hardware).
template <class C>
C negate(C v) {
  if constexpr (std::is_integral_v<C>)
    return static_cast<C>(uint64_t(0) - static_cast<uint64_t>(v));
  else
    return -v;
}

template <class C>
C absolute(C v) {
  if constexpr (std::is_unsigned_v<C>)
    return v;
  else
    return v < C(0) ? negate(v) : v;
}

template <class C>
C sigmoid(C v) {
  if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
  C e = std::exp(v);
  return e / (C(1) + e);
}

// Applies fn to every element of x (dtype in List), writing a tensor of the same dtype and shape.
template <class List, class Fn>
Tensor map_unary(const Node& n, const Tensor& x, List list, Fn&& fn) {
  Tensor y(x.dtype(), x.shape());
  dispatch(list, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* src = x.as<typename T::S>();
    auto* dst = y.mutable_as<typename T::S>();
    const int64_t total = x.numel();
    for (int64_t i = 0; i < total; ++i) dst[i] = T::store(fn(T::load(src[i])));
  });
  return y;
}

// Shape-preserving inference: same dtype and dims (symbols kept); checks arity and dtype.
template <class List>
ir::InferFn same_type_infer(List list, size_t lo_inputs, size_t hi_inputs) {
  return [list, lo_inputs, hi_inputs](const InferContext& ctx) {
    check_arity(ctx.node, lo_inputs, hi_inputs);
    const ValueType& x = ctx.input(0);
    check_dtype(list, x.dtype, ctx.node, "input");
    for (size_t i = 1; i < ctx.in.size(); ++i)
      if (ctx.has(i) && ctx.in[i]->dtype != x.dtype)
        KILN_THROW(InvalidModel, ctx.node.label() << ": input " << i << " has dtype " << dtype_name(ctx.in[i]->dtype)
                                                  << ", expected " << dtype_name(x.dtype));
    return std::vector<ValueType>{x};
  };
}

template <class List, class Fn>
void add_unary(const char* op, std::vector<int> since, List list, Fn fn) {
  ir::OpDef def;
  def.op_type = op;
  def.since = std::move(since);
  def.infer = same_type_infer(list, 1, 1);
  def.reference = [list, fn](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    check_arity(n, 1, 1);
    out[0] = map_unary(n, in_tensor(n, in, 0), list, fn);
  };
  ir::OpRegistry::instance().add(std::move(def));
}

// ---- Clip -----------------------------------------------------------------------------------------
void clip_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, n.opset >= 11 ? 3 : 1);
  const Tensor& x = in_tensor(n, in, 0);
  for (size_t i = 1; i < 3; ++i)
    if (i < in.size() && in[i]) {
      if (in[i]->dtype() != x.dtype())
        KILN_THROW(InvalidModel, n.label() << ": bound " << i << " has dtype " << dtype_name(in[i]->dtype())
                                           << ", expected " << dtype_name(x.dtype()));
      if (in[i]->numel() != 1)
        KILN_THROW(InvalidModel, n.label() << ": bound " << i << " must be a scalar, got " << in[i]->type_str());
    }
  Tensor y(x.dtype(), x.shape());
  dispatch(NumericTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using C = typename T::C;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    }
    if (n.opset < 11) {
      lo = convert_value<C>(n.attr_float("min", -std::numeric_limits<float>::infinity()));
      hi = convert_value<C>(n.attr_float("max", std::numeric_limits<float>::infinity()));
    } else {
      if (in.size() > 1 && in[1]) lo = T::load(in[1]->as<typename T::S>()[0]);
      if (in.size() > 2 && in[2]) hi = T::load(in[2]->as<typename T::S>()[0]);
    }
    const auto* src = x.as<typename T::S>();
    auto* dst = y.mutable_as<typename T::S>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      C v = T::load(src[i]);
      v = v < lo ? lo : v;  // NaN stays NaN; min > max gives max, as ONNX specifies
      v = v > hi ? hi : v;
      dst[i] = T::store(v);
    }
  });
  out[0] = y;
}

// ---- Cast -----------------------------------------------------------------------------------------
DType cast_target(const Node& n) { return dtype_from_onnx(n.attr_int("to"), n); }

std::vector<ValueType> cast_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  ValueType t = ctx.input(0);
  check_dtype(AllTypes{}, t.dtype, ctx.node, "input");
  t.dtype = cast_target(ctx.node);
  return {t};
}

Tensor cast_tensor(const Node& n, const Tensor& x, DType to) {
  if (to == x.dtype()) return x.clone();  // fresh buffer: only the view ops (Reshape, Identity, ...) alias inputs
  Tensor y(to, x.shape());
  dispatch(AllTypes{}, x.dtype(), n, "input", [&](auto src_tag) {
    using TS = DT<decltype(src_tag)::value>;
    dispatch(AllTypes{}, to, n, "target", [&](auto dst_tag) {
      using TD = DT<decltype(dst_tag)::value>;
      const auto* src = x.as<typename TS::S>();
      auto* dst = y.mutable_as<typename TD::S>();
      for (int64_t i = 0; i < x.numel(); ++i)
        dst[i] = TD::store(convert_value<typename TD::C>(TS::load(src[i])));
    });
  });
  return y;
}

void cast_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  out[0] = cast_tensor(n, in_tensor(n, in, 0), cast_target(n));
}

// CastLike: the dtype comes from input 1 (its values are ignored).
std::vector<ValueType> cast_like_infer(const InferContext& ctx) {
  check_arity(ctx.node, 2, 2);
  ValueType t = ctx.input(0);
  check_dtype(AllTypes{}, t.dtype, ctx.node, "input");
  check_dtype(AllTypes{}, ctx.input(1).dtype, ctx.node, "target_type");
  t.dtype = ctx.input(1).dtype;
  return {t};
}

void cast_like_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  out[0] = cast_tensor(n, in_tensor(n, in, 0), in_tensor(n, in, 1).dtype());
}

// ---- math helpers for the newer unary ops ----------------------------------------------------------------
template <class C>
C sign_of(C v) {
  if (v > C(0)) return C(1);
  if constexpr (!std::is_unsigned_v<C>)
    if (v < C(0)) return C(-1);
  return v;  // 0 (or NaN) stays
}

// log(1 + exp(v)) without overflow for large |v|.
template <class C>
C softplus(C v) {
  return v > C(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
}

// Registers a float unary op whose per-value function depends on the node: make(node) returns it.
template <class Make>
void add_unary_attr(const char* op, std::vector<int> since, Make make) {
  ir::OpDef def;
  def.op_type = op;
  def.since = std::move(since);
  def.infer = [make](const InferContext& ctx) {
    auto out = same_type_infer(FloatTypes{}, 1, 1)(ctx);
    make(ctx.node);  // validates attributes
    return out;
  };
  def.reference = [make](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    check_arity(n, 1, 1);
    out[0] = map_unary(n, in_tensor(n, in, 0), FloatTypes{}, make(n));
  };
  ir::OpRegistry::instance().add(std::move(def));
}

// Gelu: approximate "none" (erf form) or "tanh"; anything else is InvalidModel.
bool gelu_uses_tanh(const Node& n) {
  const std::string a = n.attr_string("approximate", "none");
  if (a != "none" && a != "tanh")
    KILN_THROW(InvalidModel, n.label() << ": approximate must be 'none' or 'tanh', got '" << a << "'");
  return a == "tanh";
}

// ---- Dropout (inference) ---------------------------------------------------------------------------------
// Opset < 12: ratio attribute, one input. Opset >= 12: optional ratio and training_mode inputs. Inference only:
// training_mode=true with a nonzero ratio would be random and is Unsupported.
void dropout_check_inputs(const Node& n, const ValueType* ratio, const ValueType* training) {
  if (ratio) check_dtype(FloatTypes{}, ratio->dtype, n, "ratio");
  if (training && training->dtype != DType::Bool)
    KILN_THROW(InvalidModel, n.label() << ": training_mode must be bool, got " << dtype_name(training->dtype));
}

void dropout_check_mode(const Node& n, const Tensor* ratio, const Tensor* training) {
  if (!training) return;
  if (read_scalar(*training, n, "training_mode") == 0) return;
  const double r = ratio ? read_scalar(*ratio, n, "ratio") : 0.5;
  if (r != 0)
    KILN_THROW(Unsupported, n.label() << ": training_mode=true with ratio " << r
                                      << " is random dropout; kiln runs inference only (expected training_mode=false)");
}

DType dropout_mask_dtype(const Node& n, DType x) { return n.opset >= 10 ? DType::Bool : x; }

std::vector<ValueType> dropout_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, n.opset >= 12 ? 3 : 1, 2);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, n, "input");
  dropout_check_inputs(n, ctx.has(1) ? ctx.in[1] : nullptr, ctx.has(2) ? ctx.in[2] : nullptr);
  if (ctx.has(2) && const_input(ctx, 2) && (!ctx.has(1) || const_input(ctx, 1)))
    dropout_check_mode(n, const_input(ctx, 1), const_input(ctx, 2));
  ValueType mask = x;
  mask.dtype = dropout_mask_dtype(n, x.dtype);
  return {x, mask};
}

void dropout_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, n.opset >= 12 ? 3 : 1, 2);
  const Tensor& x = in_tensor(n, in, 0);
  check_dtype(FloatTypes{}, x.dtype(), n, "input");
  const Tensor* ratio = in.size() > 1 ? in[1] : nullptr;
  const Tensor* training = in.size() > 2 ? in[2] : nullptr;
  ValueType rt = ratio ? ValueType::of(ratio->dtype(), ratio->shape()) : ValueType{};
  ValueType tt = training ? ValueType::of(training->dtype(), training->shape()) : ValueType{};
  dropout_check_inputs(n, ratio ? &rt : nullptr, training ? &tt : nullptr);
  dropout_check_mode(n, ratio, training);
  out[0] = x;  // identity view, like Identity
  if (out.size() > 1 && n.outputs.size() > 1 && !n.outputs[1].empty()) {
    Tensor mask(dropout_mask_dtype(n, x.dtype()), x.shape());
    dispatch(DTypeList<DType::Bool, DType::Float32, DType::Float16, DType::BFloat16, DType::Float64>{}, mask.dtype(), n,
             "mask", [&](auto tag) {
               using T = DT<decltype(tag)::value>;
               auto* pm = mask.mutable_as<typename T::S>();
               for (int64_t i = 0; i < mask.numel(); ++i) pm[i] = T::store(typename T::C(1));
             });
    out[1] = mask;
  }
}

// ---- IsNaN / IsInf: float in, bool out ------------------------------------------------------------------
// make(node) validates the attributes and returns the per-value predicate (value in the compute type).
template <class Make>
void add_float_test(const char* op, std::vector<int> since, Make make) {
  ir::OpDef def;
  def.op_type = op;
  def.since = std::move(since);
  def.infer = [make](const InferContext& ctx) {
    check_arity(ctx.node, 1, 1);
    ValueType t = ctx.input(0);
    check_dtype(FloatTypes{}, t.dtype, ctx.node, "input");
    make(ctx.node);
    t.dtype = DType::Bool;
    return std::vector<ValueType>{t};
  };
  def.reference = [make](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    check_arity(n, 1, 1);
    const Tensor& x = in_tensor(n, in, 0);
    const auto pred = make(n);
    Tensor y(DType::Bool, x.shape());
    dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
      using T = DT<decltype(tag)::value>;
      const auto* src = x.as<typename T::S>();
      auto* dst = y.mutable_as<DT<DType::Bool>::S>();
      for (int64_t i = 0; i < x.numel(); ++i) dst[i] = DT<DType::Bool>::store(pred(T::load(src[i])));
    });
    out[0] = y;
  };
  ir::OpRegistry::instance().add(std::move(def));
}

}  // namespace kiln::ops::unary_detail

namespace kiln::ops {

void register_elementwise_unary() {
  using namespace unary_detail;
  auto& reg = ir::OpRegistry::instance();
  add_unary("Relu", {6, 13, 14}, SignedNumericTypes{}, [](auto v) { return v > decltype(v)(0) ? v : decltype(v)(0); });
  add_unary("Neg", {6, 13}, SignedNumericTypes{}, [](auto v) { return negate(v); });
  add_unary("Abs", {6, 13}, NumericTypes{}, [](auto v) { return absolute(v); });
  add_unary("Sqrt", {6, 13}, FloatTypes{}, [](auto v) { return std::sqrt(v); });
  add_unary("Exp", {6, 13}, FloatTypes{}, [](auto v) { return std::exp(v); });
  add_unary("Log", {6, 13}, FloatTypes{}, [](auto v) { return std::log(v); });
  add_unary("Tanh", {6, 13}, FloatTypes{}, [](auto v) { return std::tanh(v); });
  add_unary("Erf", {9, 13}, FloatTypes{}, [](auto v) { return std::erf(v); });
  add_unary("Sigmoid", {6, 13}, FloatTypes{}, [](auto v) { return sigmoid(v); });

  {
    ir::OpDef def;
    def.op_type = "LeakyRelu";
    def.since = {6, 16};
    def.infer = same_type_infer(FloatTypes{}, 1, 1);
    def.reference = [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
      check_arity(n, 1, 1);
      float alpha = n.attr_float("alpha", 0.01f);
      out[0] = map_unary(n, in_tensor(n, in, 0), FloatTypes{}, [alpha](auto v) {
        using C = decltype(v);
        return v < C(0) ? static_cast<C>(alpha) * v : v;
      });
    };
    reg.add(std::move(def));
  }
  {
    ir::OpDef def;
    def.op_type = "Clip";
    def.since = {6, 11, 12, 13};
    def.infer = [](const InferContext& ctx) {
      return same_type_infer(NumericTypes{}, 1, ctx.node.opset >= 11 ? 3 : 1)(ctx);
    };
    def.reference = clip_kernel;
    reg.add(std::move(def));
  }
  add_unary("Ceil", {6, 13}, FloatTypes{}, [](auto v) { return std::ceil(v); });
  add_unary("Floor", {6, 13}, FloatTypes{}, [](auto v) { return std::floor(v); });
  add_unary("Cos", {7, 22}, FloatTypes{}, [](auto v) { return std::cos(v); });
  add_unary("Sin", {7, 22}, FloatTypes{}, [](auto v) { return std::sin(v); });
  add_unary("Reciprocal", {6, 13}, FloatTypes{}, [](auto v) { return decltype(v)(1) / v; });
  add_unary("Sign", {9, 13}, NumericTypes{}, [](auto v) { return sign_of(v); });
  add_unary("Not", {1}, DTypeList<DType::Bool>{}, [](auto v) { return !v; });
  add_unary("Softplus", {1, 22}, FloatTypes{}, [](auto v) { return softplus(v); });
  add_unary("Mish", {18, 22}, FloatTypes{}, [](auto v) { return v * std::tanh(softplus(v)); });
  add_unary("HardSwish", {14, 22}, FloatTypes{}, [](auto v) {
    using C = decltype(v);
    return v * std::max(C(0), std::min(C(1), v / C(6) + C(0.5)));
  });
  add_unary_attr("Elu", {6, 22}, [](const Node& n) {
    const float alpha = n.attr_float("alpha", 1.0f);
    return [alpha](auto v) {
      using C = decltype(v);
      return v < C(0) ? static_cast<C>(alpha) * (std::exp(v) - C(1)) : v;
    };
  });
  add_unary_attr("HardSigmoid", {6, 22}, [](const Node& n) {
    const float alpha = n.attr_float("alpha", 0.2f), beta = n.attr_float("beta", 0.5f);
    return [alpha, beta](auto v) {
      using C = decltype(v);
      return std::max(C(0), std::min(C(1), static_cast<C>(alpha) * v + static_cast<C>(beta)));
    };
  });
  add_unary_attr("Gelu", {20}, [](const Node& n) {
    const bool tanh_form = gelu_uses_tanh(n);
    return [tanh_form](auto v) {
      using C = decltype(v);
      if (tanh_form) {
        const C k = static_cast<C>(0.7978845608028654);  // sqrt(2 / pi)
        return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
      }
      return C(0.5) * v * (C(1) + std::erf(v * static_cast<C>(0.7071067811865476)));
    };
  });
  add_float_test("IsNaN", {9, 13, 20}, [](const Node&) { return [](auto v) { return std::isnan(v); }; });
  add_float_test("IsInf", {10, 20}, [](const Node& n) {
    const bool neg = n.attr_int("detect_negative", 1) != 0, pos = n.attr_int("detect_positive", 1) != 0;
    return [neg, pos](auto v) { return std::isinf(v) && (v > 0 ? pos : neg); };
  });
  reg.add(ir::OpDef{"Dropout", "", {7, 10, 12, 13, 22}, dropout_infer, dropout_kernel});
  reg.add(ir::OpDef{"CastLike", "", {15, 19, 21, 23, 24, 25}, cast_like_infer, cast_like_kernel});
  {
    ir::OpDef def;
    def.op_type = "Cast";
    def.since = {6, 9, 13, 19, 21, 23, 24, 25, 28};
    def.infer = cast_infer;
    def.reference = cast_kernel;
    reg.add(std::move(def));
  }
}

}  // namespace kiln::ops
