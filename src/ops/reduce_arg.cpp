// Index reductions and scans: ArgMax / ArgMin (axis, keepdims, select_last_index from opset 12; int64 output,
// the first NaN wins like numpy) and CumSum (axis input, exclusive, reverse; floats accumulate in float64,
// integers wrap).
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::reduce_arg_detail {

// ---- ArgMax / ArgMin ----------------------------------------------------------------------------------
struct ArgParams {
  int64_t axis = 0;
  bool keep = true;
  bool last = false;
};

ArgParams arg_params(const Node& n, int64_t rank) {
  ArgParams p;
  p.axis = normalize_axis(n.attr_int("axis", 0), rank, n);
  p.keep = n.attr_int("keepdims", 1) != 0;
  p.last = n.opset >= 12 && n.attr_int("select_last_index", 0) != 0;
  return p;
}

std::vector<ValueType> arg_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  const ValueType& x = ctx.input(0);
  check_dtype(NumericTypes{}, x.dtype, n, "input");
  if (!x.has_rank) return {ValueType::unknown(DType::Int64)};
  const ArgParams p = arg_params(n, static_cast<int64_t>(x.dims.size()));
  std::vector<Dim> out;
  for (size_t d = 0; d < x.dims.size(); ++d) {
    if (static_cast<int64_t>(d) != p.axis)
      out.push_back(x.dims[d]);
    else if (p.keep)
      out.push_back(static_dim(1));
  }
  return {make_type(DType::Int64, out)};
}

template <class C>
bool arg_better(C v, C best, bool is_max, bool last) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(best)) return false;  // the first NaN wins
    if (std::isnan(v)) return true;
  }
  if (last) return is_max ? v >= best : v <= best;
  return is_max ? v > best : v < best;
}

void arg_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, bool is_max) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  const ArgParams p = arg_params(n, x.rank());
  const Shape& s = x.shape();
  const int64_t len = s[static_cast<size_t>(p.axis)];
  if (len == 0)
    KILN_THROW(InvalidArgument, n.label() << ": cannot take the arg" << (is_max ? "max" : "min")
                                          << " of an empty axis (input " << x.type_str() << ")");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < p.axis; ++d) outer *= s[static_cast<size_t>(d)];
  for (int64_t d = p.axis + 1; d < x.rank(); ++d) inner *= s[static_cast<size_t>(d)];
  Shape ys;
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (d != p.axis)
      ys.push_back(s[static_cast<size_t>(d)]);
    else if (p.keep)
      ys.push_back(1);
  }
  Tensor y(DType::Int64, ys);
  auto* py = y.mutable_as<int64_t>();
  dispatch(NumericTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * len * inner + i;
        auto best = T::load(px[base]);
        int64_t at = 0;
        for (int64_t k = 1; k < len; ++k) {
          auto v = T::load(px[base + k * inner]);
          if (arg_better(v, best, is_max, p.last)) best = v, at = k;
        }
        py[o * inner + i] = at;
      }
  });
  out[0] = y;
}

// ---- CumSum -------------------------------------------------------------------------------------------
using CumSumTypes =
    DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32>;

int64_t cumsum_axis(const Node& n, const Tensor& axis, int64_t rank) {
  if (axis.rank() > 1 || axis.numel() != 1)
    KILN_THROW(InvalidModel, n.label() << ": axis must be a scalar or a 1-element 1-D tensor, got " << axis.type_str());
  return normalize_axis(read_ints(axis, n, "axis")[0], rank, n);
}

std::vector<ValueType> cumsum_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& x = ctx.input(0);
  check_dtype(CumSumTypes{}, x.dtype, n, "input");
  check_dtype(IndexTypes{}, ctx.input(1).dtype, n, "axis");
  const ValueType& a = ctx.input(1);
  if (a.has_rank && a.dims.size() > 1)
    KILN_THROW(InvalidModel, n.label() << ": axis must be a scalar or a 1-element 1-D tensor, got " << a.str());
  if (const Tensor* av = const_input(ctx, 1); av && x.has_rank)
    cumsum_axis(n, *av, static_cast<int64_t>(x.dims.size()));
  return {x};
}

void cumsum_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& x = in_tensor(n, in, 0);
  const int64_t axis = cumsum_axis(n, in_tensor(n, in, 1), x.rank());
  const bool exclusive = n.attr_int("exclusive", 0) != 0;
  const bool reverse = n.attr_int("reverse", 0) != 0;
  const Shape& s = x.shape();
  const int64_t len = s[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= s[static_cast<size_t>(d)];
  Tensor y(x.dtype(), s);
  dispatch(CumSumTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using C = typename T::C;
    using A = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        A acc = 0;
        for (int64_t j = 0; j < len; ++j) {
          const int64_t k = reverse ? len - 1 - j : j;
          const int64_t at = (o * len + k) * inner + i;
          const A v = static_cast<A>(T::load(px[at]));
          if (exclusive) py[at] = T::store(static_cast<C>(acc));
          if constexpr (std::is_integral_v<A>)
            acc = static_cast<A>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(v));
          else
            acc += v;
          if (!exclusive) py[at] = T::store(static_cast<C>(acc));
        }
      }
  });
  out[0] = y;
}

}  // namespace kiln::ops::reduce_arg_detail

namespace kiln::ops {
void register_reduce_arg() {
  using namespace reduce_arg_detail;
  auto& reg = ir::OpRegistry::instance();
  auto argmax = [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    arg_kernel(n, in, out, true);
  };
  auto argmin = [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
    arg_kernel(n, in, out, false);
  };
  reg.add(ir::OpDef{"ArgMax", "", {1, 11, 12, 13}, arg_infer, argmax});
  reg.add(ir::OpDef{"ArgMin", "", {1, 11, 12, 13}, arg_infer, argmin});
  reg.add(ir::OpDef{"CumSum", "", {11, 14}, cumsum_infer, cumsum_kernel});
}
}  // namespace kiln::ops
