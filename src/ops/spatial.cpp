#include "ops/spatial.h"

namespace kiln::ops {

SpatialAttrs read_spatial_attrs(const Node& n, size_t nspatial, std::vector<int64_t> kernel, bool allow_ceil_mode,
                                bool allow_dilations) {
  SpatialAttrs a;
  const size_t r = nspatial;
  a.kernel = std::move(kernel);
  a.strides = n.attr_ints("strides", std::vector<int64_t>(r, 1));
  a.dilations = allow_dilations ? n.attr_ints("dilations", std::vector<int64_t>(r, 1)) : std::vector<int64_t>(r, 1);
  a.pads = n.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  a.ceil_mode = allow_ceil_mode && n.attr_int("ceil_mode", 0) != 0;
  if (a.kernel.size() != r)
    KILN_THROW(InvalidModel, n.label() << ": kernel has " << a.kernel.size() << " dims, input has " << r
                                       << " spatial dims");
  if (a.strides.size() != r || a.dilations.size() != r || a.pads.size() != 2 * r)
    KILN_THROW(InvalidModel, n.label() << ": strides/dilations need " << r << " values and pads " << 2 * r
                                       << " (got " << a.strides.size() << ", " << a.dilations.size() << ", "
                                       << a.pads.size() << ")");
  for (size_t i = 0; i < r; ++i) {
    if (a.strides[i] <= 0) KILN_THROW(InvalidModel, n.label() << ": strides must be positive");
    if (a.dilations[i] <= 0) KILN_THROW(InvalidModel, n.label() << ": dilations must be positive");
    if (a.kernel[i] == 0) KILN_THROW(InvalidModel, n.label() << ": kernel dims must be positive");
  }
  for (int64_t p : a.pads)
    if (p < 0) KILN_THROW(InvalidModel, n.label() << ": pads must be non-negative");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER" && a.auto_pad != "VALID")
    KILN_THROW(InvalidModel, n.label() << ": unknown auto_pad '" << a.auto_pad << "'");
  return a;
}

SpatialDim resolve_spatial_dim(const Node& n, const SpatialAttrs& a, size_t i, int64_t in) {
  SpatialDim r;
  const size_t nsp = a.kernel.size();
  const int64_t k = a.kernel[i], s = a.strides[i], d = a.dilations[i];
  if (a.auto_pad == "NOTSET") {
    r.pad_begin = a.pads[i];
    r.pad_end = a.pads[i + nsp];
  }
  if (in < 0 || k < 0) return r;
  const int64_t eff = d * (k - 1) + 1;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    r.out = (in + s - 1) / s;
    int64_t total = std::max<int64_t>(0, (r.out - 1) * s + eff - in);
    r.pad_begin = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    r.pad_end = total - r.pad_begin;
    return r;
  }
  const int64_t numer = in + r.pad_begin + r.pad_end - eff;
  if (numer < 0)
    KILN_THROW(InvalidModel, n.label() << ": window of extent " << eff << " does not fit spatial dim " << i
                                       << " of size " << in << " with pads " << r.pad_begin << "+" << r.pad_end);
  if (!a.ceil_mode) {
    r.out = numer / s + 1;
  } else {
    r.out = (numer + s - 1) / s + 1;
    // A window that would start in the end padding is dropped (ONNX / PyTorch rule).
    if ((r.out - 1) * s >= in + r.pad_begin) --r.out;
  }
  return r;
}

Window3 make_window3(const Node& n, const SpatialAttrs& a, const Shape& x_shape) {
  const size_t nsp = a.kernel.size();
  if (nsp < 1 || nsp > 3)
    KILN_THROW(Unsupported, n.label() << ": " << nsp << " spatial dims (kiln supports 1 to 3)");
  Window3 w;
  const size_t off = 3 - nsp;
  for (size_t i = 0; i < 3; ++i) {
    w.in[i] = w.out[i] = w.k[i] = w.s[i] = w.d[i] = 1;
    w.pb[i] = w.pe[i] = 0;
  }
  for (size_t i = 0; i < nsp; ++i) {
    SpatialDim sd = resolve_spatial_dim(n, a, i, x_shape[2 + i]);
    w.in[off + i] = x_shape[2 + i];
    w.out[off + i] = sd.out;
    w.k[off + i] = a.kernel[i];
    w.s[off + i] = a.strides[i];
    w.d[off + i] = a.dilations[i];
    w.pb[off + i] = sd.pad_begin;
    w.pe[off + i] = sd.pad_end;
  }
  return w;
}

}  // namespace kiln::ops
