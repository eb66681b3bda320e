// Elementwise unary ops: Relu, LeakyRelu, Sqrt, Exp, Log, Neg, Abs, Sigmoid, Tanh, Erf, Clip, Cast.
// float16/bfloat16 compute in float and round back; float32 in float; float64 in double.
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

void cast_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  DType to = cast_target(n);
  if (to == x.dtype()) {
    out[0] = x.clone();  // fresh buffer: only the view ops (Reshape, Identity, ...) alias inputs
    return;
  }
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
  out[0] = y;
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
  {
    ir::OpDef def;
    def.op_type = "Cast";
    def.since = {6, 9, 13, 19};
    def.infer = cast_infer;
    def.reference = cast_kernel;
    reg.add(std::move(def));
  }
}

}  // namespace kiln::ops
