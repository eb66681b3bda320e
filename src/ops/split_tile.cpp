// Data movement and shape queries: Split (split attribute before opset 13, input from 13, num_outputs from 18
// with a smaller last chunk), Tile, Size and GatherElements (negative indices, range-checked).
#include <algorithm>
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::split_tile_detail {

// ---- Split --------------------------------------------------------------------------------------------
// Sizes along the axis. `known` false when they depend on a dim or an input that is not known yet.
struct SplitSizes {
  bool known = true;
  std::vector<int64_t> sizes;
};

// `dim` is the axis length, or -1 when unknown (inference).
SplitSizes split_sizes(const Node& n, const Tensor* split_in, bool split_given, int64_t dim) {
  const size_t k = n.outputs.size();
  SplitSizes r;
  std::vector<int64_t> explicit_sizes;
  bool has_explicit = false;
  if (n.opset < 13) {
    has_explicit = n.has_attr("split");
    explicit_sizes = n.attr_ints("split", {});
  } else if (split_given) {
    if (!split_in) {
      r.known = false;
      return r;
    }
    if (split_in->dtype() != DType::Int64 || split_in->rank() != 1)
      KILN_THROW(InvalidModel, n.label() << ": split must be a 1-D int64 tensor, got " << split_in->type_str());
    explicit_sizes = read_ints(*split_in, n, "split");
    has_explicit = !explicit_sizes.empty();  // an empty split input counts as absent
  }
  const bool has_num = n.opset >= 18 && n.has_attr("num_outputs");
  if (has_num && (has_explicit || split_given))
    KILN_THROW(InvalidModel, n.label() << ": give either the split input or num_outputs, not both");
  if (has_explicit) {
    if (explicit_sizes.size() != k)
      KILN_THROW(InvalidModel,
                 n.label() << ": split has " << explicit_sizes.size() << " sizes for " << k << " outputs");
    int64_t sum = 0;
    for (int64_t v : explicit_sizes) {
      if (v < 0) KILN_THROW(InvalidModel, n.label() << ": negative split size " << v);
      sum += v;
    }
    if (dim >= 0 && sum != dim)
      KILN_THROW(InvalidModel, n.label() << ": split sizes sum to " << sum << ", the axis has " << dim);
    r.sizes = explicit_sizes;
    return r;
  }
  if (has_num) {
    const int64_t num = n.attr_int("num_outputs");
    if (num < 1 || static_cast<size_t>(num) != k)
      KILN_THROW(InvalidModel, n.label() << ": num_outputs is " << num << " but the node has " << k << " outputs");
  }
  if (dim < 0) {
    r.known = false;
    return r;
  }
  const int64_t kk = static_cast<int64_t>(k);
  if (!has_num && dim % kk != 0)
    KILN_THROW(InvalidModel,
               n.label() << ": axis of length " << dim << " cannot be split evenly into " << k << " outputs");
  const int64_t chunk = (dim + kk - 1) / kk;  // num_outputs: equal chunks, the last one smaller
  const int64_t last = dim - chunk * (kk - 1);
  if (last < 0)
    KILN_THROW(InvalidModel,
               n.label() << ": axis of length " << dim << " cannot be split into " << k << " chunks of " << chunk);
  r.sizes.assign(k, chunk);
  r.sizes.back() = last;
  return r;
}

void check_split_arity(const Node& n) {
  const size_t hi = n.opset >= 13 ? 2 : 1;
  if (n.num_inputs() < 1 || n.inputs.size() > hi || !n.has_input(0))
    KILN_THROW(InvalidModel,
               n.label() << ": expects 1" << (hi > 1 ? " or 2" : "") << " inputs, got " << n.inputs.size());
  if (n.outputs.empty()) KILN_THROW(InvalidModel, n.label() << ": expects at least 1 output");
}

std::vector<ValueType> split_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_split_arity(n);
  const ValueType& x = ctx.input(0);
  if (ctx.has(1)) check_dtype(DTypeList<DType::Int64>{}, ctx.input(1).dtype, n, "split");
  const size_t k = n.outputs.size();
  if (!x.has_rank) return std::vector<ValueType>(k, ValueType::unknown(x.dtype));
  const size_t axis =
      static_cast<size_t>(normalize_axis(n.attr_int("axis", 0), static_cast<int64_t>(x.dims.size()), n));
  const Dim& d = x.dims[axis];
  SplitSizes s = split_sizes(n, const_input(ctx, 1), ctx.has(1), d.is_static() ? d.value : -1);
  std::vector<ValueType> out(k, x);
  for (size_t i = 0; i < k; ++i) out[i].dims[axis] = s.known ? static_dim(s.sizes[i]) : (k == 1 ? d : unknown_dim());
  return out;
}

void split_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_split_arity(n);
  const Tensor& x = in_tensor(n, in, 0);
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", 0), x.rank(), n));
  const Tensor* split_in = in.size() > 1 ? in[1] : nullptr;
  SplitSizes s = split_sizes(n, split_in, split_in != nullptr, x.shape()[axis]);
  const std::vector<int64_t> st = contiguous_strides(x.shape());
  int64_t pos = 0;
  for (size_t i = 0; i < out.size() && i < s.sizes.size(); ++i) {
    Shape ys = x.shape();
    ys[axis] = s.sizes[i];
    out[i] = strided_copy(x, pos * st[axis], st, ys);
    pos += s.sizes[i];
  }
}

// ---- Tile ---------------------------------------------------------------------------------------------
std::vector<int64_t> tile_repeats(const Node& n, const Tensor& r, int64_t rank) {
  if (r.rank() != 1) KILN_THROW(InvalidModel, n.label() << ": repeats must be 1-D, got " << r.type_str());
  if (r.dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": repeats must be int64, got " << r.type_str());
  std::vector<int64_t> v = read_ints(r, n, "repeats");
  if (static_cast<int64_t>(v.size()) != rank)
    KILN_THROW(InvalidModel, n.label() << ": repeats has " << v.size() << " values, input has rank " << rank);
  for (int64_t x : v)
    if (x < 0) KILN_THROW(InvalidModel, n.label() << ": negative repeat " << x);
  return v;
}

std::vector<ValueType> tile_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& x = ctx.input(0);
  check_dtype(DTypeList<DType::Int64>{}, ctx.input(1).dtype, n, "repeats");
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  const Tensor* rv = const_input(ctx, 1);
  if (!rv) return {rank_only(x.dtype, static_cast<int64_t>(x.dims.size()))};
  std::vector<int64_t> reps = tile_repeats(n, *rv, static_cast<int64_t>(x.dims.size()));
  std::vector<Dim> out = x.dims;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].is_static())
      out[i] = static_dim(out[i].value * reps[i]);
    else if (reps[i] == 0)
      out[i] = static_dim(0);
    else if (reps[i] != 1)
      out[i] = unknown_dim();
  }
  return {make_type(x.dtype, out)};
}

void tile_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& x = in_tensor(n, in, 0);
  std::vector<int64_t> reps = tile_repeats(n, in_tensor(n, in, 1), x.rank());
  const Shape& s = x.shape();
  Shape ys(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (reps[i] != 0 && s[i] > std::numeric_limits<int64_t>::max() / reps[i])
      KILN_THROW(InvalidArgument, n.label() << ": output dimension " << s[i] << " x " << reps[i] << " overflows");
    ys[i] = s[i] * reps[i];
  }
  check_output_size(n, x.dtype(), ys);
  Tensor y(x.dtype(), ys);
  const int64_t total = y.numel();
  const size_t es = dtype_size(x.dtype());
  const std::vector<int64_t> cs = contiguous_strides(s);
  const auto* src = static_cast<const uint8_t*>(x.data());
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  std::vector<int64_t> idx(s.size(), 0);  // output index; input index is idx[d] % s[d]
  for (int64_t i = 0; i < total; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < s.size(); ++d) off += (idx[d] % s[d]) * cs[d];
    std::memcpy(dst + static_cast<size_t>(i) * es, src + static_cast<size_t>(off) * es, es);
    for (size_t d = s.size(); d-- > 0;) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
  out[0] = y;
}

// ---- Size ---------------------------------------------------------------------------------------------
std::vector<ValueType> size_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  ctx.input(0);
  return {make_type(DType::Int64, {})};
}

void size_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  Tensor y(DType::Int64, {});
  y.mutable_as<int64_t>()[0] = in_tensor(n, in, 0).numel();
  out[0] = y;
}

// ---- GatherElements -----------------------------------------------------------------------------------
std::vector<ValueType> gather_elements_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& data = ctx.input(0);
  const ValueType& idx = ctx.input(1);
  check_dtype(IndexTypes{}, idx.dtype, n, "indices");
  if (data.has_rank && idx.has_rank) {
    if (data.dims.size() != idx.dims.size())
      KILN_THROW(InvalidModel, n.label() << ": indices " << idx.str() << " must have the rank of data " << data.str());
    normalize_axis(n.attr_int("axis", 0), static_cast<int64_t>(data.dims.size()), n);
  }
  ValueType out = idx;
  out.dtype = data.dtype;
  if (!out.has_rank && data.has_rank) out = rank_only(data.dtype, static_cast<int64_t>(data.dims.size()));
  return {out};
}

void gather_elements_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& data = in_tensor(n, in, 0);
  const Tensor& idx = in_tensor(n, in, 1);
  check_dtype(IndexTypes{}, idx.dtype(), n, "indices");
  const Shape& ds = data.shape();
  const Shape& is = idx.shape();
  if (ds.size() != is.size())
    KILN_THROW(InvalidModel,
               n.label() << ": indices " << idx.type_str() << " must have the rank of data " << data.type_str());
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", 0), data.rank(), n));
  for (size_t d = 0; d < ds.size(); ++d)
    if (d != axis && is[d] > ds[d])
      KILN_THROW(InvalidModel, n.label() << ": indices " << idx.type_str() << " exceed data " << data.type_str()
                                         << " outside axis " << axis);
  Tensor y(data.dtype(), is);
  const int64_t total = idx.numel(), dim = ds[axis];
  const size_t es = dtype_size(data.dtype());
  const std::vector<int64_t> cs = contiguous_strides(ds);
  const auto* src = static_cast<const uint8_t*>(data.data());
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  std::vector<int64_t> at(is.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t k = idx.at_int64(i);
    if (k < -dim || k >= dim)
      KILN_THROW(InvalidArgument, n.label()
                                      << ": index " << k << " is out of range for axis " << axis << " of size " << dim);
    if (k < 0) k += dim;
    int64_t off = 0;
    for (size_t d = 0; d < is.size(); ++d) off += (d == axis ? k : at[d]) * cs[d];
    std::memcpy(dst + static_cast<size_t>(i) * es, src + static_cast<size_t>(off) * es, es);
    for (size_t d = is.size(); d-- > 0;) {
      if (++at[d] < is[d]) break;
      at[d] = 0;
    }
  }
  out[0] = y;
}

}  // namespace kiln::ops::split_tile_detail

namespace kiln::ops {
void register_split_tile() {
  using namespace split_tile_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"Split", "", {2, 11, 13, 18}, split_infer, split_kernel});
  reg.add(ir::OpDef{"Tile", "", {6, 13}, tile_infer, tile_kernel});
  reg.add(ir::OpDef{"Size", "", {1, 13, 19, 21, 23, 24, 25}, size_infer, size_kernel});
  reg.add(ir::OpDef{"GatherElements", "", {11, 13}, gather_elements_infer, gather_elements_kernel});
}
}  // namespace kiln::ops
