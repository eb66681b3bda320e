// Shape manipulation: Reshape (allowzero, opset 14), Flatten, Transpose, Squeeze / Unsqueeze (axes attribute
// before opset 13, input from 13), Identity, Shape (start/end, opset 15), Expand.
// Reshape / Flatten / Squeeze / Unsqueeze / Identity return views sharing the input buffer.
#include <algorithm>

#include "ops/common.h"

namespace kiln::ops::shape_detail {

std::vector<Dim> dims_of(const Shape& s) {
  std::vector<Dim> d;
  for (int64_t v : s) d.push_back(static_dim(v));
  return d;
}

Shape shape_of(const std::vector<Dim>& d) {
  Shape s;
  for (const Dim& x : d) s.push_back(x.value);
  return s;
}

// Product of dims, keeping a symbol when exactly one dim is dynamic and the others multiply to 1.
Dim product_dim(const std::vector<Dim>& d, size_t lo, size_t hi) {
  int64_t p = 1;
  const Dim* dyn = nullptr;
  int ndyn = 0;
  for (size_t i = lo; i < hi; ++i) {
    if (d[i].is_static()) p *= d[i].value;
    else dyn = &d[i], ++ndyn;
  }
  if (ndyn == 0) return static_dim(p);
  if (ndyn == 1 && p == 1) return *dyn;
  return unknown_dim();
}

// ---- Reshape ----------------------------------------------------------------------------------------
std::vector<Dim> reshape_dims(const Node& n, const ValueType& in, const std::vector<int64_t>& shape, bool allowzero) {
  std::vector<Dim> out;
  std::vector<bool> copied(in.has_rank ? in.dims.size() : 0, false);
  int64_t neg = -1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t v = shape[i];
    if (v == -1) {
      if (neg >= 0) KILN_THROW(InvalidModel, n.label() << ": shape has more than one -1");
      neg = static_cast<int64_t>(i);
      out.push_back(unknown_dim());
    } else if (v == 0 && !allowzero) {
      if (!in.has_rank) {
        out.push_back(unknown_dim());
        continue;
      }
      if (i >= in.dims.size())
        KILN_THROW(InvalidModel, n.label() << ": shape[" << i << "] = 0 copies a dimension the input (rank "
                                           << in.dims.size() << ") does not have");
      out.push_back(in.dims[i]);
      copied[i] = true;
    } else if (v < 0) {
      KILN_THROW(InvalidModel, n.label() << ": invalid shape value " << v);
    } else {
      has_zero |= v == 0;
      out.push_back(static_dim(v));
    }
  }
  if (allowzero && has_zero && neg >= 0)
    KILN_THROW(InvalidModel, n.label() << ": shape has both 0 (allowzero=1) and -1");
  if (!in.has_rank) return out;
  // Cancel copied dims on both sides; compare what is left.
  int64_t p_in = 1, p_out = 1;
  std::vector<const Dim*> dyn_in;
  bool out_dyn = false;
  for (size_t i = 0; i < in.dims.size(); ++i) {
    if (copied[i]) continue;
    if (in.dims[i].is_static()) p_in *= in.dims[i].value;
    else dyn_in.push_back(&in.dims[i]);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (static_cast<int64_t>(i) == neg || (i < copied.size() && copied[i])) continue;
    if (out[i].is_static()) p_out *= out[i].value;
    else out_dyn = true;
  }
  if (out_dyn) return out;
  if (neg >= 0) {
    if (dyn_in.empty()) {
      if (p_out == 0 || p_in % p_out != 0)
        KILN_THROW(InvalidModel, n.label() << ": cannot reshape " << in.str() << " to " << shape_str(shape));
      out[static_cast<size_t>(neg)] = static_dim(p_in / p_out);
    } else if (dyn_in.size() == 1 && p_in == p_out) {
      out[static_cast<size_t>(neg)] = *dyn_in[0];
    }
  } else if (dyn_in.empty() && p_in != p_out) {
    KILN_THROW(InvalidModel, n.label() << ": cannot reshape " << in.str() << " (" << p_in << " elements) to "
                                       << shape_str(shape));
  }
  return out;
}

std::vector<int64_t> shape_input(const Node& n, const Tensor& t, const char* what) {
  if (t.dtype() != DType::Int64)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " must be int64, got " << t.type_str());
  if (t.rank() != 1) KILN_THROW(InvalidModel, n.label() << ": " << what << " must be 1-D, got " << t.type_str());
  return read_ints(t, n, what);
}

// Output type when a 1-D int64 shape-like input has no constant value: its length gives the rank.
ValueType rank_from_shape_input(const InferContext& ctx, size_t i, DType dt, int64_t min_rank = 0) {
  const ValueType& s = ctx.input(i);
  if (s.dtype != DType::Int64) KILN_THROW(InvalidModel, ctx.node.label() << ": input " << i << " must be int64");
  if (s.has_rank && s.dims.size() == 1 && s.dims[0].is_static())
    return rank_only(dt, std::max(s.dims[0].value, min_rank));
  return ValueType::unknown(dt);
}

std::vector<ValueType> reshape_infer(const InferContext& ctx) {
  check_arity(ctx.node, 2, 2);
  const ValueType& x = ctx.input(0);
  if (const Tensor* s = const_input(ctx, 1))
    return {make_type(x.dtype, reshape_dims(ctx.node, x, shape_input(ctx.node, *s, "shape"),
                                            ctx.node.opset >= 14 && ctx.node.attr_int("allowzero", 0) != 0))};
  return {rank_from_shape_input(ctx, 1, x.dtype)};
}

void reshape_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& x = in_tensor(n, in, 0);
  auto d = reshape_dims(n, ValueType::of(x.dtype(), x.shape()), shape_input(n, in_tensor(n, in, 1), "shape"),
                        n.opset >= 14 && n.attr_int("allowzero", 0) != 0);
  out[0] = x.reshaped(shape_of(d));
}

// ---- Flatten ----------------------------------------------------------------------------------------
int64_t flatten_axis(const Node& n, int64_t rank) {
  int64_t axis = n.attr_int("axis", 1);
  if (axis < -rank || axis > rank)
    KILN_THROW(InvalidModel, n.label() << ": axis " << axis << " is out of range for rank " << rank);
  return axis < 0 ? axis + rank : axis;
}

std::vector<ValueType> flatten_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  const ValueType& x = ctx.input(0);
  if (!x.has_rank) return {rank_only(x.dtype, 2)};
  const size_t axis = static_cast<size_t>(flatten_axis(ctx.node, static_cast<int64_t>(x.dims.size())));
  return {make_type(x.dtype, {product_dim(x.dims, 0, axis), product_dim(x.dims, axis, x.dims.size())})};
}

void flatten_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  const int64_t axis = flatten_axis(n, x.rank());
  int64_t a = 1, b = 1;
  for (int64_t i = 0; i < x.rank(); ++i) (i < axis ? a : b) *= x.shape()[i];
  out[0] = x.reshaped({a, b});
}

// ---- Transpose --------------------------------------------------------------------------------------
std::vector<int64_t> transpose_perm(const Node& n, size_t rank) {
  std::vector<int64_t> perm(rank);
  for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  if (!n.has_attr("perm")) return perm;
  perm = n.attr_ints("perm", {});
  if (perm.size() != rank)
    KILN_THROW(InvalidModel, n.label() << ": perm has " << perm.size() << " entries, input has rank " << rank);
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)])
      KILN_THROW(InvalidModel, n.label() << ": perm is not a permutation of 0.." << rank - 1);
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

std::vector<ValueType> transpose_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  const ValueType& x = ctx.input(0);
  if (!x.has_rank) {
    if (ctx.node.has_attr("perm"))
      return {rank_only(x.dtype, static_cast<int64_t>(ctx.node.attr_ints("perm", {}).size()))};
    return {x};
  }
  std::vector<Dim> out;
  for (int64_t p : transpose_perm(ctx.node, x.dims.size())) out.push_back(x.dims[static_cast<size_t>(p)]);
  return {make_type(x.dtype, out)};
}

void transpose_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  std::vector<int64_t> perm = transpose_perm(n, x.shape().size());
  std::vector<int64_t> cs = contiguous_strides(x.shape()), st;
  Shape ys;
  for (int64_t p : perm) {
    ys.push_back(x.shape()[static_cast<size_t>(p)]);
    st.push_back(cs[static_cast<size_t>(p)]);
  }
  out[0] = strided_copy(x, 0, st, ys);
}

// ---- Squeeze / Unsqueeze ----------------------------------------------------------------------------
// Axes from the attribute (opset < 13) or from input 1 (opset >= 13). `known` false when the input is
// not a constant at inference time; `present` false when no axes are given at all.
struct AxesArg {
  bool present = false, known = true;
  std::vector<int64_t> axes;
};

AxesArg axes_arg(const Node& n, const Tensor* input, bool input_given) {
  AxesArg a;
  if (n.opset < 13) {
    a.present = n.has_attr("axes");
    a.axes = n.attr_ints("axes", {});
  } else if (input_given) {
    a.present = true;
    if (input) a.axes = read_ints(*input, n, "axes");
    else a.known = false;
  }
  return a;
}

std::vector<int64_t> squeeze_axes(const Node& n, const AxesArg& a, const std::vector<Dim>& dims) {
  std::vector<int64_t> ax;
  if (a.present) {
    ax = normalize_axes(a.axes, static_cast<int64_t>(dims.size()), n);
    for (int64_t i : ax)
      if (dims[static_cast<size_t>(i)].is_static() && dims[static_cast<size_t>(i)].value != 1)
        KILN_THROW(InvalidModel, n.label() << ": cannot squeeze axis " << i << " of size "
                                           << dims[static_cast<size_t>(i)].value);
  } else {
    for (size_t i = 0; i < dims.size(); ++i)
      if (dims[i].is_static() && dims[i].value == 1) ax.push_back(static_cast<int64_t>(i));
  }
  return ax;
}

std::vector<ValueType> squeeze_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, n.opset >= 13 ? 2 : 1);
  const ValueType& x = ctx.input(0);
  AxesArg a = axes_arg(n, const_input(ctx, 1), ctx.has(1));
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  if (!a.known) {
    const ValueType& at = ctx.input(1);
    if (at.has_rank && at.dims.size() == 1 && at.dims[0].is_static())
      return {rank_only(x.dtype, static_cast<int64_t>(x.dims.size()) - at.dims[0].value)};
    return {ValueType::unknown(x.dtype)};
  }
  if (!a.present)
    for (const Dim& d : x.dims)
      if (!d.is_static()) return {ValueType::unknown(x.dtype)};  // a dynamic dim might be 1
  std::vector<int64_t> ax = squeeze_axes(n, a, x.dims);
  std::vector<Dim> out;
  for (size_t i = 0; i < x.dims.size(); ++i)
    if (std::find(ax.begin(), ax.end(), static_cast<int64_t>(i)) == ax.end()) out.push_back(x.dims[i]);
  return {make_type(x.dtype, out)};
}

void squeeze_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, n.opset >= 13 ? 2 : 1);
  const Tensor& x = in_tensor(n, in, 0);
  AxesArg a = axes_arg(n, in.size() > 1 ? in[1] : nullptr, in.size() > 1 && in[1]);
  std::vector<int64_t> ax = squeeze_axes(n, a, dims_of(x.shape()));
  Shape ys;
  for (int64_t i = 0; i < x.rank(); ++i)
    if (std::find(ax.begin(), ax.end(), i) == ax.end()) ys.push_back(x.shape()[static_cast<size_t>(i)]);
  out[0] = x.reshaped(ys);
}

std::vector<Dim> unsqueeze_dims(const Node& n, const std::vector<int64_t>& axes, const std::vector<Dim>& dims) {
  const int64_t r = static_cast<int64_t>(dims.size() + axes.size());
  std::vector<int64_t> ax = normalize_axes(axes, r, n);
  std::vector<Dim> out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) {
    if (std::find(ax.begin(), ax.end(), i) != ax.end()) out.push_back(static_dim(1));
    else out.push_back(dims[j++]);
  }
  return out;
}

std::vector<ValueType> unsqueeze_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, n.opset >= 13 ? 2 : 1, n.opset >= 13 ? 2 : 1);
  const ValueType& x = ctx.input(0);
  AxesArg a = axes_arg(n, const_input(ctx, 1), ctx.has(1));
  if (!a.present) KILN_THROW(InvalidModel, n.label() << ": axes are required");
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  if (!a.known) {
    const ValueType& at = ctx.input(1);
    if (at.has_rank && at.dims.size() == 1 && at.dims[0].is_static())
      return {rank_only(x.dtype, static_cast<int64_t>(x.dims.size()) + at.dims[0].value)};
    return {ValueType::unknown(x.dtype)};
  }
  return {make_type(x.dtype, unsqueeze_dims(n, a.axes, x.dims))};
}

void unsqueeze_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, n.opset >= 13 ? 2 : 1, n.opset >= 13 ? 2 : 1);
  const Tensor& x = in_tensor(n, in, 0);
  AxesArg a = axes_arg(n, in.size() > 1 ? in[1] : nullptr, in.size() > 1 && in[1]);
  if (!a.present) KILN_THROW(InvalidModel, n.label() << ": axes are required");
  out[0] = x.reshaped(shape_of(unsqueeze_dims(n, a.axes, dims_of(x.shape()))));
}

// ---- Identity / Shape / Expand -------------------------------------------------------------------------
std::pair<int64_t, int64_t> shape_range(const Node& n, int64_t rank) {
  auto clamp = [rank](int64_t v) {
    if (v < 0) v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  int64_t start = n.opset >= 15 ? clamp(n.attr_int("start", 0)) : 0;
  int64_t end = n.opset >= 15 && n.has_attr("end") ? clamp(n.attr_int("end")) : rank;
  return {start, std::max(start, end)};
}

std::vector<ValueType> shape_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  const ValueType& x = ctx.input(0);
  if (!x.has_rank) return {make_type(DType::Int64, {unknown_dim()})};
  auto [s, e] = shape_range(ctx.node, static_cast<int64_t>(x.dims.size()));
  return {make_type(DType::Int64, {static_dim(e - s)})};
}

void shape_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  auto [s, e] = shape_range(n, x.rank());
  Tensor y(DType::Int64, {e - s});
  for (int64_t i = s; i < e; ++i) y.mutable_as<int64_t>()[i - s] = x.shape()[static_cast<size_t>(i)];
  out[0] = y;
}

std::vector<ValueType> expand_infer(const InferContext& ctx) {
  check_arity(ctx.node, 2, 2);
  const ValueType& x = ctx.input(0);
  if (const Tensor* s = const_input(ctx, 1)) {
    std::vector<int64_t> shape = shape_input(ctx.node, *s, "shape");
    for (int64_t v : shape)
      if (v < 0) KILN_THROW(InvalidModel, ctx.node.label() << ": negative dimension " << v << " in shape");
    if (!x.has_rank) return {ValueType::unknown(x.dtype)};
    return {make_type(x.dtype, broadcast_dims(x.dims, dims_of(shape), ctx.node))};
  }
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  return {rank_from_shape_input(ctx, 1, x.dtype, static_cast<int64_t>(x.dims.size()))};
}

void expand_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& x = in_tensor(n, in, 0);
  std::vector<int64_t> shape = shape_input(n, in_tensor(n, in, 1), "shape");
  for (int64_t v : shape)
    if (v < 0) KILN_THROW(InvalidModel, n.label() << ": negative dimension " << v << " in shape");
  Shape ys = broadcast_shape(x.shape(), shape, n);
  check_output_size(n, x.dtype(), ys);
  out[0] = strided_copy(x, 0, broadcast_strides(x.shape(), ys), ys);
}

}  // namespace kiln::ops::shape_detail

namespace kiln::ops {
void register_shape_ops() {
  using namespace shape_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"Reshape", "", {5, 13, 14, 19, 21, 23, 24, 25}, reshape_infer, reshape_kernel});
  reg.add(ir::OpDef{"Flatten", "", {1, 9, 11, 13, 21, 23, 24, 25}, flatten_infer, flatten_kernel});
  reg.add(ir::OpDef{"Transpose", "", {1, 13, 21, 23, 24, 25}, transpose_infer, transpose_kernel});
  reg.add(ir::OpDef{"Squeeze", "", {1, 11, 13, 21, 23, 24, 25}, squeeze_infer, squeeze_kernel});
  reg.add(ir::OpDef{"Unsqueeze", "", {1, 11, 13, 21, 23, 24, 25}, unsqueeze_infer, unsqueeze_kernel});
  reg.add(ir::OpDef{"Shape", "", {1, 13, 15, 19, 21, 23, 24, 25}, shape_infer, shape_kernel});
  reg.add(ir::OpDef{"Expand", "", {8, 13}, expand_infer, expand_kernel});
  reg.add(ir::OpDef{"Identity", "", {1, 13, 14, 16, 19, 21, 23, 24, 25},
                    [](const InferContext& ctx) {
                      check_arity(ctx.node, 1, 1);
                      return std::vector<ValueType>{ctx.input(0)};
                    },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      check_arity(n, 1, 1);
                      out[0] = in_tensor(n, in, 0);
                    }});
}
}  // namespace kiln::ops
