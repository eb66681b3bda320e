// Data movement: Concat (negative axis), Gather (negative indices, range-checked), Slice (attributes before
// opset 10, inputs from 10; negative / clamped starts and ends, negative steps).
#include <algorithm>
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::tensor_detail {

// ---- Concat -----------------------------------------------------------------------------------------
std::vector<ValueType> concat_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  if (n.num_inputs() < 1 || n.outputs.size() != 1)
    KILN_THROW(InvalidModel, n.label() << ": expects at least 1 input and 1 output");
  const ValueType& first = ctx.input(0);
  const ValueType* ranked = nullptr;
  for (size_t i = 0; i < ctx.in.size(); ++i) {
    const ValueType& t = ctx.input(i);
    if (t.dtype != first.dtype)
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " has dtype " << dtype_name(t.dtype) << ", expected "
                                         << dtype_name(first.dtype));
    if (t.has_rank) {
      if (ranked && ranked->dims.size() != t.dims.size())
        KILN_THROW(InvalidModel, n.label() << ": inputs have ranks " << ranked->dims.size() << " and " << t.dims.size());
      ranked = ranked ? ranked : &t;
    }
  }
  if (!ranked) return {ValueType::unknown(first.dtype)};
  const int64_t rank = static_cast<int64_t>(ranked->dims.size());
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis"), rank, n));
  std::vector<Dim> out = ranked->dims;
  int64_t total = 0;
  for (size_t i = 0; i < ctx.in.size(); ++i) {
    const ValueType& t = *ctx.in[i];
    if (!t.has_rank) {
      total = -1;
      continue;
    }
    for (size_t d = 0; d < out.size(); ++d)
      if (d != axis) out[d] = merge_dim(out[d], t.dims[d], n, "non-axis dimensions");
    if (t.dims[axis].is_static() && total >= 0) total += t.dims[axis].value;
    else total = -1;
  }
  out[axis] = total >= 0 ? static_dim(total) : unknown_dim();
  return {make_type(first.dtype, out)};
}

void concat_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (n.num_inputs() < 1 || n.outputs.size() != 1 || out.size() != 1)
    KILN_THROW(InvalidModel, n.label() << ": expects at least 1 input and 1 output");
  const Tensor& first = in_tensor(n, in, 0);
  const int64_t rank = first.rank();
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis"), rank, n));
  Shape ys = first.shape();
  ys[axis] = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const Tensor& t = in_tensor(n, in, i);
    if (t.dtype() != first.dtype() || t.rank() != rank)
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " is " << t.type_str() << ", first input is "
                                         << first.type_str());
    for (size_t d = 0; d < ys.size(); ++d)
      if (d != axis && t.shape()[d] != ys[d])
        KILN_THROW(InvalidModel, n.label() << ": input " << i << " " << t.type_str()
                                           << " differs from the first input outside axis " << axis);
    ys[axis] += t.shape()[axis];
  }
  Tensor y(first.dtype(), ys);
  const size_t es = dtype_size(first.dtype());
  int64_t outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= ys[d];
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor* t : in) {
      const size_t block = static_cast<size_t>(outer == 0 ? 0 : t->numel() / outer) * es;
      if (block == 0) continue;
      std::memcpy(dst, static_cast<const uint8_t*>(t->data()) + static_cast<size_t>(o) * block, block);
      dst += block;
    }
  out[0] = y;
}

// ---- Gather -----------------------------------------------------------------------------------------
std::vector<ValueType> gather_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& data = ctx.input(0);
  const ValueType& idx = ctx.input(1);
  check_dtype(IndexTypes{}, idx.dtype, n, "indices");
  if (!data.has_rank || !idx.has_rank) return {ValueType::unknown(data.dtype)};
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", 0), static_cast<int64_t>(data.dims.size()), n));
  std::vector<Dim> out(data.dims.begin(), data.dims.begin() + static_cast<std::ptrdiff_t>(axis));
  out.insert(out.end(), idx.dims.begin(), idx.dims.end());
  out.insert(out.end(), data.dims.begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.dims.end());
  return {make_type(data.dtype, out)};
}

void gather_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& data = in_tensor(n, in, 0);
  const Tensor& idx = in_tensor(n, in, 1);
  check_dtype(IndexTypes{}, idx.dtype(), n, "indices");
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", 0), data.rank(), n));
  const Shape& ds = data.shape();
  Shape ys(ds.begin(), ds.begin() + static_cast<std::ptrdiff_t>(axis));
  ys.insert(ys.end(), idx.shape().begin(), idx.shape().end());
  ys.insert(ys.end(), ds.begin() + static_cast<std::ptrdiff_t>(axis) + 1, ds.end());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= ds[d];
  for (size_t d = axis + 1; d < ds.size(); ++d) inner *= ds[d];
  const int64_t dim = ds[axis], nidx = idx.numel();
  std::vector<int64_t> k(static_cast<size_t>(nidx));
  for (int64_t j = 0; j < nidx; ++j) {
    int64_t v = idx.at_int64(j);
    if (v < -dim || v >= dim)
      KILN_THROW(InvalidArgument, n.label() << ": index " << v << " is out of range for axis " << axis << " of size "
                                            << dim);
    k[static_cast<size_t>(j)] = v < 0 ? v + dim : v;
  }
  Tensor y(data.dtype(), ys);
  const size_t es = dtype_size(data.dtype()), block = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const uint8_t*>(data.data());
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  if (block > 0)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < nidx; ++j)
        std::memcpy(dst + static_cast<size_t>(o * nidx + j) * block,
                    src + static_cast<size_t>(o * dim + k[static_cast<size_t>(j)]) * block, block);
  out[0] = y;
}

// ---- Slice ------------------------------------------------------------------------------------------
struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

// One axis after clamping: first element, step and element count.
struct SliceAxis {
  int64_t start = 0, step = 1, len = 0;
};

SliceAxis clamp_slice(int64_t dim, int64_t s, int64_t e, int64_t step) {
  SliceAxis r;
  r.step = std::max<int64_t>(step, -std::numeric_limits<int64_t>::max());
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (r.step > 0) {
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    r.len = e > s ? (e - s - 1) / r.step + 1 : 0;
  } else if (dim > 0) {
    s = std::clamp<int64_t>(s, 0, dim - 1);
    e = std::clamp<int64_t>(e, -1, dim - 1);
    r.len = s > e ? (s - e - 1) / -r.step + 1 : 0;
  }
  r.start = r.len > 0 ? s : 0;
  return r;
}

// Validates lengths / steps and normalizes axes (default 0..len-1, steps default 1).
void check_slice_args(const Node& n, SliceArgs& a, int64_t rank) {
  if (a.ends.size() != a.starts.size())
    KILN_THROW(InvalidModel, n.label() << ": starts and ends have " << a.starts.size() << " and " << a.ends.size()
                                       << " values");
  if (a.axes.empty() && !a.starts.empty())
    for (size_t i = 0; i < a.starts.size(); ++i) a.axes.push_back(static_cast<int64_t>(i));
  if (a.steps.empty()) a.steps.assign(a.starts.size(), 1);
  if (a.axes.size() != a.starts.size() || a.steps.size() != a.starts.size())
    KILN_THROW(InvalidModel, n.label() << ": starts, ends, axes and steps must have the same length");
  a.axes = normalize_axes(a.axes, rank, n);
  for (int64_t s : a.steps)
    if (s == 0) KILN_THROW(InvalidModel, n.label() << ": slice step must not be 0");
}

// Reads the slice parameters; a nullptr `vals[i]` for a present input means "not constant" (returns false).
bool slice_args(const Node& n, const std::vector<const Tensor*>& vals, const std::vector<bool>& present, SliceArgs& a) {
  if (n.opset < 10) {
    if (!n.has_attr("starts") || !n.has_attr("ends"))
      KILN_THROW(InvalidModel, n.label() << ": attributes 'starts' and 'ends' are required");
    a.starts = n.attr_ints("starts", {});
    a.ends = n.attr_ints("ends", {});
    a.axes = n.attr_ints("axes", {});
    return true;
  }
  std::vector<int64_t>* dst[5] = {nullptr, &a.starts, &a.ends, &a.axes, &a.steps};
  static const char* names[5] = {"", "starts", "ends", "axes", "steps"};
  bool known = true;
  for (size_t i = 1; i < 5; ++i) {
    if (!present[i]) continue;
    if (!vals[i]) {
      known = false;
      continue;
    }
    if (vals[i]->rank() != 1) KILN_THROW(InvalidModel, n.label() << ": " << names[i] << " must be 1-D");
    *dst[i] = read_ints(*vals[i], n, names[i]);
  }
  return known;
}

std::vector<ValueType> slice_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, n.opset >= 10 ? 3 : 1, n.opset >= 10 ? 5 : 1);
  const ValueType& x = ctx.input(0);
  std::vector<const Tensor*> vals(5, nullptr);
  std::vector<bool> present(5, false);
  for (size_t i = 1; i < 5; ++i) {
    present[i] = ctx.has(i);
    vals[i] = present[i] ? const_input(ctx, i) : nullptr;
    if (present[i]) check_dtype(IndexTypes{}, ctx.in[i]->dtype, n, "slice parameter");
  }
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  SliceArgs a;
  if (!slice_args(n, vals, present, a)) {
    // Only the axes matter for what stays known: with constant (or default) axes, other dims pass through.
    if (present[3] && !vals[3]) return {rank_only(x.dtype, rank)};
    std::vector<Dim> out = x.dims;
    if (present[3]) {
      for (int64_t ax : normalize_axes(read_ints(*vals[3], n, "axes"), rank, n)) out[static_cast<size_t>(ax)] = unknown_dim();
      return {make_type(x.dtype, out)};
    }
    const ValueType& st = ctx.input(1);
    if (!st.has_rank || st.dims.size() != 1 || !st.dims[0].is_static()) return {rank_only(x.dtype, rank)};
    for (int64_t i = 0; i < st.dims[0].value && i < rank; ++i) out[static_cast<size_t>(i)] = unknown_dim();
    return {make_type(x.dtype, out)};
  }
  check_slice_args(n, a, rank);
  std::vector<Dim> out = x.dims;
  for (size_t i = 0; i < a.axes.size(); ++i) {
    const Dim& d = x.dims[static_cast<size_t>(a.axes[i])];
    Dim& o = out[static_cast<size_t>(a.axes[i])];
    if (d.is_static()) o = static_dim(clamp_slice(d.value, a.starts[i], a.ends[i], a.steps[i]).len);
    else if (!(a.steps[i] == 1 && a.starts[i] == 0 && a.ends[i] >= std::numeric_limits<int32_t>::max())) o = unknown_dim();
  }
  return {make_type(x.dtype, out)};
}

void slice_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  int64_t base = 0;
  std::vector<int64_t> st;
  Shape ys;
  slice_view(n, in, base, st, ys);
  out[0] = strided_copy(in_tensor(n, in, 0), base, st, ys);
}

}  // namespace kiln::ops::tensor_detail

namespace kiln::ops {
void slice_view(const Node& n, const std::vector<const Tensor*>& in, int64_t& base, std::vector<int64_t>& strides,
                Shape& ys) {
  using namespace tensor_detail;
  check_arity(n, n.opset >= 10 ? 3 : 1, n.opset >= 10 ? 5 : 1);
  const Tensor& x = in_tensor(n, in, 0);
  std::vector<const Tensor*> vals(5, nullptr);
  std::vector<bool> present(5, false);
  for (size_t i = 1; i < 5 && i < in.size(); ++i) vals[i] = in[i], present[i] = in[i] != nullptr;
  SliceArgs a;
  slice_args(n, vals, present, a);
  check_slice_args(n, a, x.rank());
  ys = x.shape();
  strides = contiguous_strides(x.shape());
  base = 0;
  for (size_t i = 0; i < a.axes.size(); ++i) {
    const size_t ax = static_cast<size_t>(a.axes[i]);
    SliceAxis s = clamp_slice(x.shape()[ax], a.starts[i], a.ends[i], a.steps[i]);
    ys[ax] = s.len;
    base += s.start * strides[ax];
    strides[ax] *= s.step;
  }
}
}  // namespace kiln::ops

namespace kiln::ops {
void register_tensor_ops() {
  using namespace tensor_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"Concat", "", {4, 11, 13}, concat_infer, concat_kernel});
  reg.add(ir::OpDef{"Gather", "", {1, 11, 13}, gather_infer, gather_kernel});
  reg.add(ir::OpDef{"Slice", "", {1, 10, 11, 13}, slice_infer, slice_kernel});
}
}  // namespace kiln::ops
