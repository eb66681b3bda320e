// Pad: opset 2 (pads / value attributes), 11 (pads and constant_value as inputs), 13, 18 (axes input),
// 19 (wrap mode), 21, 23, 24, 25 (types only). Modes constant / reflect / edge / wrap. Negative pads crop.
// Negative pads crop first; the mode then pads the cropped axis (onnxruntime's rule; np.pad has no negative
// pads). Output position o of an axis reads position i = o - pad_begin of the cropped axis: constant mode uses
// the value outside [0, n), edge clamps, reflect mirrors without repeating the border (numpy 'reflect', also
// for pads longer than the axis), wrap takes i mod n.
#include <algorithm>

#include "ops/common.h"

namespace kiln::ops::pad_detail {

enum class PadMode { Constant, Reflect, Edge, Wrap };

PadMode pad_mode(const Node& n) {
  const std::string m = n.attr_string("mode", "constant");
  if (m == "constant") return PadMode::Constant;
  if (m == "reflect") return PadMode::Reflect;
  if (m == "edge") return PadMode::Edge;
  if (m == "wrap" && n.opset >= 19) return PadMode::Wrap;
  KILN_THROW(InvalidModel, n.label() << ": unknown mode '" << m << "' at opset " << n.opset
                                     << " (constant, reflect, edge; wrap from opset 19)");
}

void check_pad_arity(const Node& n) {
  if (n.opset < 11) check_arity(n, 1, 1);
  else check_arity(n, 2, n.opset >= 18 ? 4 : 3);
}

// Per-axis begin and end pads for a rank-r input: from the attribute (opset < 11) or the pads / axes tensors.
// Returns false when a needed tensor is not known (inference with non-constant inputs).
bool full_pads(const Node& n, int64_t rank, const Tensor* pads_t, const Tensor* axes_t, bool has_axes,
               std::vector<int64_t>& begin, std::vector<int64_t>& end) {
  std::vector<int64_t> pads;
  if (n.opset < 11) {
    pads = n.attr_ints("pads", {});
    if (!n.has_attr("pads")) KILN_THROW(InvalidModel, n.label() << ": required attribute 'pads' is missing");
  } else {
    if (!pads_t) return false;
    if (pads_t->dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": pads must be int64, got " << pads_t->type_str());
    pads = read_ints(*pads_t, n, "pads");
  }
  std::vector<int64_t> axes;
  if (has_axes) {
    if (!axes_t) return false;
    axes = normalize_axes(read_ints(*axes_t, n, "axes"), rank, n);
  } else {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size())
    KILN_THROW(InvalidModel, n.label() << ": pads has " << pads.size() << " values, expected " << 2 * axes.size()
                                       << " (2 x " << (has_axes ? "len(axes)" : "rank") << ")");
  begin.assign(static_cast<size_t>(rank), 0);
  end.assign(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    begin[static_cast<size_t>(axes[i])] = pads[i];
    end[static_cast<size_t>(axes[i])] = pads[i + axes.size()];
  }
  return true;
}

std::vector<ValueType> pad_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_pad_arity(n);
  pad_mode(n);
  const ValueType& x = ctx.input(0);
  check_dtype(AllTypes{}, x.dtype, n, "data");
  if (n.opset >= 11 && ctx.input(1).dtype != DType::Int64)
    KILN_THROW(InvalidModel, n.label() << ": pads must be int64, got " << ctx.input(1).str());
  if (ctx.has(2) && ctx.input(2).dtype != x.dtype)
    KILN_THROW(InvalidModel, n.label() << ": constant_value is " << dtype_name(ctx.input(2).dtype) << ", data is "
                                       << dtype_name(x.dtype));
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> b, e;
  const bool has_axes = ctx.has(3);
  if (!full_pads(n, rank, const_input(ctx, 1), const_input(ctx, 3), has_axes, b, e))
    return {rank_only(x.dtype, rank)};
  std::vector<Dim> out = x.dims;
  for (size_t i = 0; i < out.size(); ++i) {
    if (b[i] == 0 && e[i] == 0) continue;
    if (!out[i].is_static()) {
      out[i] = unknown_dim();
      continue;
    }
    int64_t v = 0;
    if (__builtin_add_overflow(out[i].value, b[i], &v) || __builtin_add_overflow(v, e[i], &v))
      KILN_THROW(InvalidModel, n.label() << ": pads " << b[i] << ", " << e[i] << " overflow axis " << i);
    if (v < 0 || out[i].value + std::min<int64_t>(b[i], 0) + std::min<int64_t>(e[i], 0) < 0) KILN_THROW(InvalidModel, n.label() << ": pads " << b[i] << ", " << e[i] << " crop axis " << i << " of size "
                                                  << out[i].value << " below zero");
    out[i] = static_dim(v);
  }
  return {make_type(x.dtype, out)};
}

// Index into the cropped axis [0, n) read by output position o (-1: the constant value).
int64_t source_index(PadMode m, int64_t o, int64_t pb, int64_t n) {
  int64_t i = o - pb;
  if (i >= 0 && i < n) return i;
  switch (m) {
    case PadMode::Constant: return -1;
    case PadMode::Edge: return std::clamp<int64_t>(i, 0, n - 1);
    case PadMode::Wrap: return ((i % n) + n) % n;
    case PadMode::Reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      i = ((i % period) + period) % period;
      return i < n ? i : period - i;
    }
  }
  return -1;
}

template <class E>
void pad_copy(const Tensor& x, Tensor& y, const std::vector<std::vector<int64_t>>& src, E fill) {
  const Shape& ys = y.shape();
  const std::vector<int64_t> xst = contiguous_strides(x.shape());
  const E* px = x.as<E>();
  E* py = y.mutable_as<E>();
  const int64_t total = y.numel();
  const size_t r = ys.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < total; ++o) {
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < r; ++d) {
      const int64_t s = src[d][static_cast<size_t>(idx[d])];
      if (s < 0) {
        inside = false;
        break;
      }
      off += s * xst[d];
    }
    py[o] = inside ? px[off] : fill;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
}

void pad_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_pad_arity(n);
  const PadMode mode = pad_mode(n);
  const Tensor& x = in_tensor(n, in, 0);
  const bool has_axes = n.opset >= 18 && n.has_input(3);
  std::vector<int64_t> b, e;
  full_pads(n, x.rank(), n.opset >= 11 ? &in_tensor(n, in, 1) : nullptr, has_axes ? &in_tensor(n, in, 3) : nullptr,
            has_axes, b, e);
  Shape ys = x.shape();
  for (size_t d = 0; d < ys.size(); ++d) {
    if (__builtin_add_overflow(x.shape()[d], b[d], &ys[d]) || __builtin_add_overflow(ys[d], e[d], &ys[d]))
      KILN_THROW(InvalidArgument, n.label() << ": pads " << b[d] << ", " << e[d] << " overflow axis " << d);
    if (ys[d] < 0)
      KILN_THROW(InvalidArgument, n.label() << ": pads " << b[d] << ", " << e[d] << " crop axis " << d << " of size "
                                            << x.shape()[d] << " below zero");
  }
  check_output_size(n, x.dtype(), ys);
  if (shape_numel(ys) == 0) {
    out[0] = Tensor(x.dtype(), ys);
    return;
  }
  std::vector<std::vector<int64_t>> src(ys.size());
  for (size_t d = 0; d < ys.size(); ++d) {
    const int64_t len = x.shape()[d];
    const int64_t lo = std::max<int64_t>(0, -b[d]), kept = len - lo - std::max<int64_t>(0, -e[d]);
    if (kept < 0)
      KILN_THROW(InvalidArgument, n.label() << ": pads " << b[d] << ", " << e[d] << " crop axis " << d << " of size " << len
                                            << " below zero");
    if (kept == 0 && ys[d] > 0 && mode != PadMode::Constant)
      KILN_THROW(InvalidArgument, n.label() << ": cannot pad the empty axis " << d << " in a non-constant mode");
    for (int64_t o = 0; o < ys[d]; ++o) {
      const int64_t i = source_index(mode, o, std::max<int64_t>(0, b[d]), kept);
      src[d].push_back(i < 0 ? -1 : lo + i);
    }
  }
  // The fill value converted to data's type: constant_value input (11+) or the 'value' attribute (2).
  Tensor fill(x.dtype(), {});
  if (n.opset >= 11 && n.has_input(2)) {
    const Tensor& cv = in_tensor(n, in, 2);
    if (cv.dtype() != x.dtype() || cv.numel() != 1)
      KILN_THROW(InvalidModel, n.label() << ": constant_value must be one " << dtype_name(x.dtype()) << " value, got "
                                         << cv.type_str());
    fill = cv.reshaped({});
  } else if (n.opset < 11) {
    const double v = n.attr_float("value", 0.f);
    dispatch(AllTypes{}, x.dtype(), n, "data", [&](auto tag) {
      using T = DT<decltype(tag)::value>;
      *fill.mutable_as<typename T::S>() = T::store(convert_value<typename T::C>(v));
    });
  }
  Tensor y(x.dtype(), ys);
  switch (dtype_size(x.dtype())) {
    case 1: pad_copy<uint8_t>(x, y, src, *fill.as<uint8_t>()); break;
    case 2: pad_copy<uint16_t>(x, y, src, *fill.as<uint16_t>()); break;
    case 4: pad_copy<uint32_t>(x, y, src, *fill.as<uint32_t>()); break;
    default: pad_copy<uint64_t>(x, y, src, *fill.as<uint64_t>()); break;
  }
  out[0] = y;
}

}  // namespace kiln::ops::pad_detail

namespace kiln::ops {
void register_pad() {
  ir::OpRegistry::instance().add(
      ir::OpDef{"Pad", "", {2, 11, 13, 18, 19, 21, 23, 24, 25}, pad_detail::pad_infer, pad_detail::pad_kernel});
}
}  // namespace kiln::ops
