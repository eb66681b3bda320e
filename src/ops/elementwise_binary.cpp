// Elementwise binary and ternary ops with numpy multidirectional broadcasting:
// Add, Sub, Mul, Div, Pow, Equal, Less, Greater, Where.
// Integer Add/Sub/Mul wrap around (two's complement); integer Div truncates toward zero and
// rejects division by zero with InvalidArgument.
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
