// Elementwise binary and ternary ops with numpy multidirectional broadcasting:
// Add, Sub, Mul, Div, Pow, Mod, Equal, Less, Greater, GreaterOrEqual, LessOrEqual, And, Or, Xor, Where, and PRelu
// (slope unidirectionally broadcast to X).
// Integer Add/Sub/Mul wrap around (two's complement); integer Div truncates toward zero and
// rejects division by zero with InvalidArgument (Mod too). Mod: fmod=1 is C fmod / % (sign of the dividend);
// fmod=0 is floor modulo (sign of the divisor), for floats only from opset 28 as ONNX specifies.
#include <cmath>
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::binary_detail {

using ArithTypes = NumericTypes;

template <class C>
C wrap_add(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return a + b;
}
template <class C>
C wrap_sub(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  else return a - b;
}
template <class C>
C wrap_mul(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return a * b;
}

// Output dims of a broadcast of inputs a (index 0) and b (index 1), plus their aligned strides.
struct BinaryPlan {
  Shape out;
  std::vector<int64_t> strides[2];
};

BinaryPlan plan_binary(const Node& n, const Tensor& a, const Tensor& b) {
  BinaryPlan p;
  p.out = broadcast_shape(a.shape(), b.shape(), n);
  p.strides[0] = broadcast_strides(a.shape(), p.out);
  p.strides[1] = broadcast_strides(b.shape(), p.out);
  return p;
}

void check_same_dtype(const Node& n, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    KILN_THROW(InvalidModel, n.label() << ": inputs have different dtypes " << dtype_name(a.dtype()) << " and "
                                       << dtype_name(b.dtype()));
}

// out[i] = fn(a[..], b[..]); output dtype = input dtype, or bool when kBoolOut.
template <bool kBoolOut, class List, class Fn>
Tensor binary_map(const Node& n, const Tensor& a, const Tensor& b, List list, Fn&& fn) {
  check_same_dtype(n, a, b);
  BinaryPlan p = plan_binary(n, a, b);
  Tensor y(kBoolOut ? DType::Bool : a.dtype(), p.out);
  dispatch(list, a.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using TO = std::conditional_t<kBoolOut, DT<DType::Bool>, T>;
    const auto* pa = a.as<typename T::S>();
    const auto* pb = b.as<typename T::S>();
    auto* py = y.mutable_as<typename TO::S>();
    for_each_broadcast(p.out, p.strides, [&](int64_t i, const int64_t* off) {
      py[i] = TO::store(fn(T::load(pa[off[0]]), T::load(pb[off[1]])));
    });
  });
  return y;
}

template <class List>
ir::InferFn binary_infer(List list, bool bool_out) {
  return [list, bool_out](const InferContext& ctx) {
    check_arity(ctx.node, 2, 2);
    const ValueType& a = ctx.input(0);
    const ValueType& b = ctx.input(1);
    if (a.dtype != b.dtype)
      KILN_THROW(InvalidModel, ctx.node.label() << ": inputs have different dtypes " << dtype_name(a.dtype) << " and "
                                                << dtype_name(b.dtype));
    check_dtype(list, a.dtype, ctx.node, "input");
    return std::vector<ValueType>{broadcast_types(ctx, bool_out ? DType::Bool : a.dtype)};
  };
}

template <bool kBoolOut, class List, class Fn>
void add_binary(const char* op, std::vector<int> since, List list, Fn fn) {
  ir::OpDef def;
  def.op_type = op;
  def.since = std::move(since);
  def.infer = binary_infer(list, kBoolOut);
  def.reference = [list, fn](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    check_arity(n, 2, 2);
    out[0] = binary_map<kBoolOut>(n, in_tensor(n, in, 0), in_tensor(n, in, 1), list, fn);
  };
  ir::OpRegistry::instance().add(std::move(def));
}

void div_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  out[0] = binary_map<false>(n, in_tensor(n, in, 0), in_tensor(n, in, 1), ArithTypes{}, [&n](auto a, auto b) {
    using C = decltype(a);
    if constexpr (std::is_integral_v<C>) {
      if (b == C(0)) KILN_THROW(InvalidArgument, n.label() << ": integer division by zero");
      if constexpr (std::is_signed_v<C>)
        if (b == C(-1)) return wrap_sub(C(0), a);  // avoids INT_MIN / -1 overflow
      return static_cast<C>(a / b);
    } else {
      return a / b;
    }
  });
}

// ---- Pow: base and exponent may have different dtypes (opset >= 12) ---------------------------------
using PowBaseTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                               DType::Int32>;

std::vector<ValueType> pow_infer(const InferContext& ctx) {
  check_arity(ctx.node, 2, 2);
  check_dtype(PowBaseTypes{}, ctx.input(0).dtype, ctx.node, "base");
  check_dtype(NumericTypes{}, ctx.input(1).dtype, ctx.node, "exponent");
  return {broadcast_types(ctx, ctx.input(0).dtype)};
}

void pow_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& a = in_tensor(n, in, 0);
  const Tensor& b = in_tensor(n, in, 1);
  BinaryPlan p = plan_binary(n, a, b);
  Tensor y(a.dtype(), p.out);
  dispatch(PowBaseTypes{}, a.dtype(), n, "base", [&](auto tag_a) {
    using TA = DT<decltype(tag_a)::value>;
    dispatch(NumericTypes{}, b.dtype(), n, "exponent", [&](auto tag_b) {
      using TB = DT<decltype(tag_b)::value>;
      const auto* pa = a.as<typename TA::S>();
      const auto* pb = b.as<typename TB::S>();
      auto* py = y.mutable_as<typename TA::S>();
      for_each_broadcast(p.out, p.strides, [&](int64_t i, const int64_t* off) {
        double r = std::pow(static_cast<double>(TA::load(pa[off[0]])), static_cast<double>(TB::load(pb[off[1]])));
        py[i] = TA::store(convert_value<typename TA::C>(r));
      });
    });
  });
  out[0] = y;
}

// ---- Mod ---------------------------------------------------------------------------------------------
bool mod_fmod(const Node& n, DType dt) {
  const int64_t f = n.attr_int("fmod", 0);
  if (f != 0 && f != 1) KILN_THROW(InvalidModel, n.label() << ": fmod must be 0 or 1, got " << f);
  if (f == 0 && FloatTypes::contains(dt) && n.opset < 28)
    KILN_THROW(InvalidModel, n.label() << ": fmod must be 1 for " << dtype_name(dt) << " inputs (opset " << n.opset
                                       << "); floor modulo of floats needs opset 28");
  return f == 1;
}

std::vector<ValueType> mod_infer(const InferContext& ctx) {
  auto out = binary_infer(ArithTypes{}, false)(ctx);
  mod_fmod(ctx.node, ctx.input(0).dtype);
  return out;
}

template <class C>
C mod_value(const Node& n, C a, C b, bool fmod) {
  if constexpr (std::is_integral_v<C>) {
    if (b == C(0)) KILN_THROW(InvalidArgument, n.label() << ": integer modulo by zero");
    if constexpr (std::is_signed_v<C>) {
      if (b == C(-1)) return C(0);  // avoids INT_MIN % -1 overflow
      C r = static_cast<C>(a % b);
      if (!fmod && r != C(0) && ((r < C(0)) != (b < C(0)))) r = static_cast<C>(r + b);
      return r;
    } else {
      return static_cast<C>(a % b);
    }
  } else {
    C r = std::fmod(a, b);
    if (fmod) return r;
    if (r == C(0)) return std::copysign(C(0), b);
    if ((r < C(0)) != (b < C(0))) r += b;
    return r;
  }
}

void mod_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& a = in_tensor(n, in, 0);
  const bool fmod = mod_fmod(n, a.dtype());
  out[0] = binary_map<false>(n, a, in_tensor(n, in, 1), ArithTypes{},
                             [&n, fmod](auto x, auto y) { return mod_value(n, x, y, fmod); });
}

// ---- PRelu: y = x < 0 ? slope * x : x, slope unidirectionally broadcastable to X ----------------------
using PReluTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                             DType::Int32>;

void prelu_check_dtype(const Node& n, DType dt) {
  if (n.opset < 16) check_dtype(FloatTypes{}, dt, n, "input");
  else check_dtype(PReluTypes{}, dt, n, "input");
}

std::vector<ValueType> prelu_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& x = ctx.input(0);
  const ValueType& slope = ctx.input(1);
  if (x.dtype != slope.dtype)
    KILN_THROW(InvalidModel, n.label() << ": X and slope have different dtypes " << dtype_name(x.dtype) << " and "
                                       << dtype_name(slope.dtype));
  prelu_check_dtype(n, x.dtype);
  if (x.has_rank && slope.has_rank) {
    if (slope.dims.size() > x.dims.size())
      KILN_THROW(InvalidModel, n.label() << ": slope " << slope.str() << " has a higher rank than X " << x.str());
    std::vector<Dim> b = broadcast_dims(x.dims, slope.dims, n);
    for (size_t i = 0; i < b.size(); ++i)
      if (b[i].is_static() && x.dims[i].is_static() && b[i].value != x.dims[i].value)
        KILN_THROW(InvalidModel, n.label() << ": slope " << slope.str() << " does not broadcast to X " << x.str());
  }
  return {x};
}

void prelu_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& x = in_tensor(n, in, 0);
  const Tensor& slope = in_tensor(n, in, 1);
  prelu_check_dtype(n, x.dtype());
  if (broadcast_shape(x.shape(), slope.shape(), n) != x.shape())
    KILN_THROW(InvalidModel, n.label() << ": slope " << slope.type_str() << " does not broadcast to X "
                                       << x.type_str());
  out[0] = binary_map<false>(n, x, slope, PReluTypes{}, [](auto v, auto s) {
    using C = decltype(v);
    return v < C(0) ? wrap_mul(s, v) : v;
  });
}

// ---- Where ------------------------------------------------------------------------------------------
std::vector<ValueType> where_infer(const InferContext& ctx) {
  check_arity(ctx.node, 3, 3);
  if (ctx.input(0).dtype != DType::Bool)
    KILN_THROW(InvalidModel, ctx.node.label() << ": condition must be bool, got " << dtype_name(ctx.input(0).dtype));
  if (ctx.input(1).dtype != ctx.input(2).dtype)
    KILN_THROW(InvalidModel, ctx.node.label() << ": X and Y have different dtypes " << dtype_name(ctx.input(1).dtype)
                                              << " and " << dtype_name(ctx.input(2).dtype));
  return {broadcast_types(ctx, ctx.input(1).dtype)};
}

void where_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 3, 3);
  const Tensor& c = in_tensor(n, in, 0);
  const Tensor& x = in_tensor(n, in, 1);
  const Tensor& yv = in_tensor(n, in, 2);
  if (c.dtype() != DType::Bool)
    KILN_THROW(InvalidModel, n.label() << ": condition must be bool, got " << dtype_name(c.dtype()));
  check_same_dtype(n, x, yv);
  Shape shape = broadcast_shape(broadcast_shape(c.shape(), x.shape(), n), yv.shape(), n);
  std::vector<int64_t> strides[3] = {broadcast_strides(c.shape(), shape), broadcast_strides(x.shape(), shape),
                                     broadcast_strides(yv.shape(), shape)};
  Tensor y(x.dtype(), shape);
  const auto* pc = c.as<uint8_t>();
  const auto* px = static_cast<const uint8_t*>(x.data());
  const auto* py = static_cast<const uint8_t*>(yv.data());
  auto* po = static_cast<uint8_t*>(y.mutable_data());
  const size_t es = dtype_size(x.dtype());
  for_each_broadcast(shape, strides, [&](int64_t i, const int64_t* off) {
    const uint8_t* src = pc[off[0]] ? px + off[1] * static_cast<int64_t>(es) : py + off[2] * static_cast<int64_t>(es);
    std::memcpy(po + i * static_cast<int64_t>(es), src, es);
  });
  out[0] = y;
}

}  // namespace kiln::ops::binary_detail

namespace kiln::ops {

void register_elementwise_binary() {
  using namespace binary_detail;
  auto& reg = ir::OpRegistry::instance();
  add_binary<false>("Add", {7, 13, 14}, ArithTypes{}, [](auto a, auto b) { return wrap_add(a, b); });
  add_binary<false>("Sub", {7, 13, 14}, ArithTypes{}, [](auto a, auto b) { return wrap_sub(a, b); });
  add_binary<false>("Mul", {7, 13, 14}, ArithTypes{}, [](auto a, auto b) { return wrap_mul(a, b); });
  add_binary<true>("Equal", {7, 11, 13, 19}, AllTypes{}, [](auto a, auto b) { return a == b; });
  add_binary<true>("Less", {7, 9, 13}, NumericTypes{}, [](auto a, auto b) { return a < b; });
  add_binary<true>("Greater", {7, 9, 13}, NumericTypes{}, [](auto a, auto b) { return a > b; });
  add_binary<true>("GreaterOrEqual", {12, 16}, NumericTypes{}, [](auto a, auto b) { return a >= b; });
  add_binary<true>("LessOrEqual", {12, 16}, NumericTypes{}, [](auto a, auto b) { return a <= b; });
  add_binary<true>("And", {7}, DTypeList<DType::Bool>{}, [](bool a, bool b) { return a && b; });
  add_binary<true>("Or", {7}, DTypeList<DType::Bool>{}, [](bool a, bool b) { return a || b; });
  add_binary<true>("Xor", {7}, DTypeList<DType::Bool>{}, [](bool a, bool b) { return a != b; });
  reg.add(ir::OpDef{"Mod", "", {10, 13, 28}, mod_infer, mod_kernel});
  reg.add(ir::OpDef{"PRelu", "", {7, 9, 16}, prelu_infer, prelu_kernel});
  {
    ir::OpDef def;
    def.op_type = "Div";
    def.since = {7, 13, 14};
    def.infer = binary_infer(ArithTypes{}, false);
    def.reference = div_kernel;
    reg.add(std::move(def));
  }
  reg.add(ir::OpDef{"Pow", "", {7, 12, 13, 15}, pow_infer, pow_kernel});
  reg.add(ir::OpDef{"Where", "", {9, 16}, where_infer, where_kernel});
}

}  // namespace kiln::ops
