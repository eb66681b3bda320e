// Reductions: ReduceSum (axes attribute before opset 13, input from 13); ReduceMean, ReduceMax, ReduceMin,
// ReduceProd, ReduceL2, ReduceSumSquare (attribute before 18, input from 18); keepdims; noop_with_empty_axes in
// the input form. Floats accumulate in float64, integers in wrapping int64 (integer mean truncates, integer L2
// truncates the square root); Max/Min propagate NaN.
#include <algorithm>
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::reduce_detail {

using ReduceTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                              DType::Int32>;
// ReduceMax / ReduceMin also take 8-bit integers (opset 12) and bool (opset 20).
using MaxMinTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                              DType::Int32, DType::Int8, DType::UInt8, DType::Bool>;

enum class ReduceKind { Sum, Mean, Max, Min, Prod, L2, SumSquare };

void check_reduce_dtype(const Node& n, ReduceKind kind, DType dt) {
  if (kind != ReduceKind::Max && kind != ReduceKind::Min) return check_dtype(ReduceTypes{}, dt, n, "input");
  check_dtype(MaxMinTypes{}, dt, n, "input");
  if (dt == DType::Bool && n.opset < 20)
    KILN_THROW(Unsupported, n.label() << ": bool input needs opset 20, the node has opset " << n.opset);
}

// Which axes to reduce. `known` false: axes come from a non-constant input.
struct ReduceAxes {
  bool known = true;
  bool noop = false;  // empty axes with noop_with_empty_axes=1: output = input
  std::vector<int64_t> axes;  // normalized; empty with !noop means "all"
};

bool axes_from_input(const Node& n, int first_input_opset) { return n.opset >= first_input_opset; }

ReduceAxes reduce_axes(const Node& n, int input_opset, const Tensor* axes_in, bool axes_given, int64_t rank) {
  ReduceAxes r;
  std::vector<int64_t> raw;
  if (axes_from_input(n, input_opset)) {
    if (axes_given && !axes_in) {
      r.known = false;
      return r;
    }
    if (axes_in) {
      if (axes_in->rank() > 1) KILN_THROW(InvalidModel, n.label() << ": axes must be 1-D, got " << axes_in->type_str());
      raw = read_ints(*axes_in, n, "axes");
    }
    r.noop = raw.empty() && n.attr_int("noop_with_empty_axes", 0) != 0;
  } else {
    raw = n.attr_ints("axes", {});
  }
  r.axes = normalize_axes(raw, rank, n);
  return r;
}

bool is_reduced(const ReduceAxes& r, size_t d) {
  return r.axes.empty() || std::find(r.axes.begin(), r.axes.end(), static_cast<int64_t>(d)) != r.axes.end();
}

std::vector<ValueType> reduce_infer(const InferContext& ctx, int input_opset, ReduceKind kind) {
  const Node& n = ctx.node;
  const bool input_form = axes_from_input(n, input_opset);
  check_arity(n, 1, input_form ? 2 : 1);
  const ValueType& x = ctx.input(0);
  check_reduce_dtype(n, kind, x.dtype);
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  const bool keep = n.attr_int("keepdims", 1) != 0;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  ReduceAxes r = reduce_axes(n, input_opset, const_input(ctx, 1), ctx.has(1), rank);
  if (!r.known) {
    if (keep) return {rank_only(x.dtype, rank)};
    const ValueType& at = ctx.input(1);
    if (at.has_rank && at.dims.size() == 1 && at.dims[0].is_static() && at.dims[0].value > 0)
      return {rank_only(x.dtype, rank - at.dims[0].value)};
    return {ValueType::unknown(x.dtype)};
  }
  if (r.noop) return {x};
  std::vector<Dim> out;
  for (size_t d = 0; d < x.dims.size(); ++d) {
    if (!is_reduced(r, d)) out.push_back(x.dims[d]);
    else if (keep) out.push_back(static_dim(1));
  }
  return {make_type(x.dtype, out)};
}

// Sum-like reductions accumulate in A (float64 for floats, wrapping int64 for integers); Max/Min compare in the
// compute type. Empty reductions give the identity: 0 (Sum, SumSquare, L2), 1 (Prod), NaN (Mean, like numpy),
// -inf / lowest (Max) and +inf / max (Min).
template <class T>
void reduce_sum_like(const Tensor& x, Tensor& y, const std::vector<int64_t> (&st)[1], ReduceKind kind,
                     int64_t count) {
  using C = typename T::C;
  using A = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
  std::vector<A> acc(static_cast<size_t>(y.numel()), kind == ReduceKind::Prod ? A(1) : A(0));
  const auto* px = x.as<typename T::S>();
  const bool square = kind == ReduceKind::SumSquare || kind == ReduceKind::L2;
  for_each_broadcast(x.shape(), st, [&](int64_t i, const int64_t* off) {
    A& a = acc[static_cast<size_t>(off[0])];
    const A v = static_cast<A>(T::load(px[i]));
    if constexpr (std::is_integral_v<A>) {
      const uint64_t u = static_cast<uint64_t>(v);
      if (kind == ReduceKind::Prod) a = static_cast<A>(static_cast<uint64_t>(a) * u);
      else a = static_cast<A>(static_cast<uint64_t>(a) + (square ? u * u : u));
    } else {
      if (kind == ReduceKind::Prod) a *= v;
      else a += square ? v * v : v;
    }
  });
  auto* py = y.mutable_as<typename T::S>();
  for (size_t i = 0; i < acc.size(); ++i) {
    A v = acc[i];
    if (kind == ReduceKind::Mean) {
      if constexpr (std::is_integral_v<A>) v = count > 0 ? v / count : 0;
      else v = v / static_cast<double>(count);  // 0 / 0 = NaN for an empty reduction, like numpy
    } else if (kind == ReduceKind::L2) {
      v = static_cast<A>(std::sqrt(static_cast<double>(v)));
    }
    py[i] = T::store(static_cast<C>(v));
  }
}

template <class T>
void reduce_extreme(const Tensor& x, Tensor& y, const std::vector<int64_t> (&st)[1], bool is_max) {
  using C = typename T::C;
  C init;
  if constexpr (std::is_same_v<C, bool>) {
    init = !is_max;
  } else if constexpr (std::is_floating_point_v<C>) {
    init = is_max ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
  } else {
    init = is_max ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
  }
  using Acc = std::conditional_t<std::is_same_v<C, bool>, uint8_t, C>;  // no std::vector<bool>
  std::vector<Acc> acc(static_cast<size_t>(y.numel()), static_cast<Acc>(init));
  const auto* px = x.as<typename T::S>();
  for_each_broadcast(x.shape(), st, [&](int64_t i, const int64_t* off) {
    Acc& a = acc[static_cast<size_t>(off[0])];
    const C v = T::load(px[i]);
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(v)) a = v;  // NaN propagates, like numpy
      if (std::isnan(a)) return;
    }
    if (is_max ? v > a : v < a) a = v;
  });
  auto* py = y.mutable_as<typename T::S>();
  for (size_t i = 0; i < acc.size(); ++i) py[i] = T::store(static_cast<C>(acc[i]));
}

void reduce_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, int input_opset,
                   ReduceKind kind) {
  const bool input_form = axes_from_input(n, input_opset);
  check_arity(n, 1, input_form ? 2 : 1);
  const Tensor& x = in_tensor(n, in, 0);
  check_reduce_dtype(n, kind, x.dtype());
  const Tensor* axes_in = in.size() > 1 ? in[1] : nullptr;
  ReduceAxes r = reduce_axes(n, input_opset, axes_in, axes_in != nullptr, x.rank());
  if (r.noop) {
    out[0] = x.clone();
    return;
  }
  const bool keep = n.attr_int("keepdims", 1) != 0;
  Shape kept, ys;  // kept: reduced dims set to 1 (same rank as x)
  int64_t count = 1;
  for (size_t d = 0; d < x.shape().size(); ++d) {
    const bool red = is_reduced(r, d);
    kept.push_back(red ? 1 : x.shape()[d]);
    if (red) count *= x.shape()[d];
    if (!red) ys.push_back(x.shape()[d]);
    else if (keep) ys.push_back(1);
  }
  const std::vector<int64_t> st[1] = {broadcast_strides(kept, x.shape())};
  Tensor y(x.dtype(), ys);
  if (kind == ReduceKind::Max || kind == ReduceKind::Min) {
    dispatch(MaxMinTypes{}, x.dtype(), n, "input", [&](auto tag) {
      reduce_extreme<DT<decltype(tag)::value>>(x, y, st, kind == ReduceKind::Max);
    });
  } else {
    dispatch(ReduceTypes{}, x.dtype(), n, "input", [&](auto tag) {
      reduce_sum_like<DT<decltype(tag)::value>>(x, y, st, kind, count);
    });
  }
  out[0] = y;
}

template <int kInputOpset, ReduceKind kKind>
ir::OpDef reduce_def(const char* op, std::vector<int> since) {
  return ir::OpDef{op, "", std::move(since),
                   [](const InferContext& c) { return reduce_infer(c, kInputOpset, kKind); },
                   [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                     reduce_kernel(n, in, out, kInputOpset, kKind);
                   }};
}

}  // namespace kiln::ops::reduce_detail

namespace kiln::ops {
void register_reduce() {
  using namespace reduce_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(reduce_def<13, ReduceKind::Sum>("ReduceSum", {1, 11, 13}));
  reg.add(reduce_def<18, ReduceKind::Mean>("ReduceMean", {1, 11, 13, 18}));
  reg.add(reduce_def<18, ReduceKind::Max>("ReduceMax", {1, 11, 12, 13, 18, 20}));
  reg.add(reduce_def<18, ReduceKind::Min>("ReduceMin", {1, 11, 12, 13, 18, 20}));
  reg.add(reduce_def<18, ReduceKind::Prod>("ReduceProd", {1, 11, 13, 18}));
  reg.add(reduce_def<18, ReduceKind::L2>("ReduceL2", {1, 11, 13, 18}));
  reg.add(reduce_def<18, ReduceKind::SumSquare>("ReduceSumSquare", {1, 11, 13, 18}));
}
}  // namespace kiln::ops
