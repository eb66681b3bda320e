// Variadic elementwise ops with numpy multidirectional broadcasting over all inputs: Max, Min (numeric; NaN
// propagates like numpy), Sum and Mean (floating point, accumulated in float64 and rounded once).
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::variadic_detail {

using MaxMinTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                              DType::Int32, DType::Int16, DType::Int8, DType::UInt8>;

enum class VarKind { Max, Min, Sum, Mean };

// Integer Max/Min arrive at opset 12; Sum/Mean stay floating point.
void check_var_dtype(const Node& n, VarKind kind, DType dt) {
  if (kind == VarKind::Sum || kind == VarKind::Mean || n.opset < 12)
    check_dtype(FloatTypes{}, dt, n, "input");
  else
    check_dtype(MaxMinTypes{}, dt, n, "input");
}

std::vector<ValueType> variadic_infer(const InferContext& ctx, VarKind kind) {
  const Node& n = ctx.node;
  if (n.num_inputs() < 1 || n.outputs.size() != 1)
    KILN_THROW(InvalidModel, n.label() << ": expects at least 1 input and 1 output");
  const DType dt = ctx.input(0).dtype;
  for (size_t i = 0; i < ctx.in.size(); ++i) {
    const ValueType& t = ctx.input(i);
    if (t.dtype != dt)
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " has dtype " << dtype_name(t.dtype) << ", expected "
                                         << dtype_name(dt));
  }
  check_var_dtype(n, kind, dt);
  return {broadcast_types(ctx, dt)};
}

template <class C>
C pick(C acc, C v, VarKind kind) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(acc) || std::isnan(v)) return std::numeric_limits<C>::quiet_NaN();
  }
  if (kind == VarKind::Max) return v > acc ? v : acc;
  return v < acc ? v : acc;
}

void variadic_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, VarKind kind) {
  if (n.num_inputs() < 1 || n.outputs.size() != 1 || in.empty())
    KILN_THROW(InvalidModel, n.label() << ": expects at least 1 input and 1 output");
  const Tensor& first = in_tensor(n, in, 0);
  Shape shape = first.shape();
  for (size_t i = 0; i < in.size(); ++i) {
    const Tensor& t = in_tensor(n, in, i);
    if (t.dtype() != first.dtype())
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " has dtype " << dtype_name(t.dtype()) << ", expected "
                                         << dtype_name(first.dtype()));
    shape = broadcast_shape(shape, t.shape(), n);
  }
  check_var_dtype(n, kind, first.dtype());
  Tensor y(first.dtype(), shape);
  dispatch(MaxMinTypes{}, first.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using C = typename T::C;
    using A = std::conditional_t<std::is_floating_point_v<C>, double, C>;
    std::vector<A> acc(static_cast<size_t>(y.numel()));
    for (size_t k = 0; k < in.size(); ++k) {
      const std::vector<int64_t> st[1] = {broadcast_strides(in[k]->shape(), shape)};
      const auto* px = in[k]->template as<typename T::S>();
      for_each_broadcast(shape, st, [&](int64_t i, const int64_t* off) {
        const A v = static_cast<A>(T::load(px[off[0]]));
        A& a = acc[static_cast<size_t>(i)];
        if (k == 0)
          a = v;
        else if (kind == VarKind::Sum || kind == VarKind::Mean)
          a += v;
        else
          a = pick(a, v, kind);
      });
    }
    auto* py = y.mutable_as<typename T::S>();
    for (size_t i = 0; i < acc.size(); ++i) {
      A v = acc[i];
      if (kind == VarKind::Mean) v /= static_cast<A>(in.size());
      py[i] = T::store(static_cast<C>(v));
    }
  });
  out[0] = y;
}

template <VarKind K>
ir::OpDef variadic_def(const char* op, std::vector<int> since) {
  return ir::OpDef{op, "", std::move(since), [](const InferContext& c) { return variadic_infer(c, K); },
                   [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                     variadic_kernel(n, in, out, K);
                   }};
}

}  // namespace kiln::ops::variadic_detail

namespace kiln::ops {
void register_variadic() {
  using namespace variadic_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(variadic_def<VarKind::Max>("Max", {8, 12, 13}));
  reg.add(variadic_def<VarKind::Min>("Min", {8, 12, 13}));
  reg.add(variadic_def<VarKind::Sum>("Sum", {8, 13}));
  reg.add(variadic_def<VarKind::Mean>("Mean", {8, 13}));
}
}  // namespace kiln::ops
