#include "runtime/cuda/kernels/conv_geom.h"

#include "ops/spatial.h"

namespace kiln::runtime::cuda {

namespace {
void check_ranks(const ir::Node& n, const Shape& x, const Shape& w) {
  if (x.size() < 3 || x.size() > 5)
    KILN_THROW(Unsupported, n.label() << ": input " << shape_str(x) << " needs 1 to 3 spatial dims");
  if (w.size() != x.size())
    KILN_THROW(InvalidModel, n.label() << ": weights " << shape_str(w) << " and input " << shape_str(x)
                                       << " differ in rank");
}
std::vector<int64_t> ints_of_len(const ir::Node& n, const char* name, size_t len, int64_t dflt) {
  std::vector<int64_t> v = n.attr_ints(name, std::vector<int64_t>(len, dflt));
  if (v.size() != len)
    KILN_THROW(InvalidModel, n.label() << ": '" << name << "' has " << v.size() << " values, expected " << len);
  return v;
}
}  // namespace

ConvGeometry conv_geometry(const ir::Node& n, const Shape& x, const Shape& w) {
  check_ranks(n, x, w);
  ConvGeometry g;
  g.nsp = static_cast<int>(x.size()) - 2;
  g.N = x[0], g.C = x[1], g.M = w[0];
  g.group = n.attr_int("group", 1);
  if (g.group < 1 || g.C % g.group != 0 || g.M % g.group != 0 || w[1] * g.group != g.C)
    KILN_THROW(InvalidModel, n.label() << ": input " << shape_str(x) << ", weights " << shape_str(w) << " and group "
                                       << g.group << " do not agree");
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  const ops::SpatialAttrs a = ops::read_spatial_attrs(n, kernel.size(), kernel, false, true);
  for (int i = 0; i < g.nsp; ++i) {
    const ops::SpatialDim sd = ops::resolve_spatial_dim(n, a, static_cast<size_t>(i), x[2 + i]);
    g.in[i] = x[2 + i], g.out[i] = sd.out, g.k[i] = kernel[i];
    g.s[i] = a.strides[i], g.d[i] = a.dilations[i];
    g.pb[i] = sd.pad_begin, g.pe[i] = sd.pad_end;
  }
  return g;
}

ConvGeometry conv_transpose_geometry(const ir::Node& n, const Shape& x, const Shape& w) {
  check_ranks(n, x, w);
  ConvGeometry g;
  const size_t nsp = x.size() - 2;
  g.nsp = static_cast<int>(nsp);
  g.group = n.attr_int("group", 1);
  g.N = x[0], g.C = x[1], g.M = w[1] * g.group;
  if (g.group < 1 || g.C % g.group != 0 || w[0] != g.C)
    KILN_THROW(InvalidModel, n.label() << ": input " << shape_str(x) << ", weights " << shape_str(w) << " and group "
                                       << g.group << " do not agree");
  const std::vector<int64_t> strides = ints_of_len(n, "strides", nsp, 1);
  const std::vector<int64_t> dil = ints_of_len(n, "dilations", nsp, 1);
  const std::vector<int64_t> opad = ints_of_len(n, "output_padding", nsp, 0);
  const std::vector<int64_t> pads = ints_of_len(n, "pads", 2 * nsp, 0);
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> oshape;
  if (n.has_attr("output_shape")) {
    oshape = n.attr_ints("output_shape", {});
    if (oshape.size() == nsp + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);
    if (oshape.size() != nsp)
      KILN_THROW(InvalidModel, n.label() << ": output_shape has " << oshape.size() << " values, expected " << nsp);
  }
  const bool same = ap == "SAME_UPPER" || ap == "SAME_LOWER";
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t in = x[2 + i], k = w[2 + i], s = strides[i], d = dil[i];
    if (s <= 0 || d <= 0) KILN_THROW(InvalidModel, n.label() << ": strides and dilations must be positive");
    const int64_t full = s * (in - 1) + opad[i] + (k - 1) * d + 1;
    int64_t pb = 0, out = 0;
    if (!oshape.empty() || same) {
      out = oshape.empty() ? in * s : oshape[i];
      const int64_t total = full - out;
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor division, as in the spec
      pb = ap == "SAME_UPPER" ? half : total - half;
    } else {
      pb = ap == "NOTSET" ? pads[i] : 0;
      const int64_t pe = ap == "NOTSET" ? pads[i + nsp] : 0;
      out = full - pb - pe;
    }
    if (out < 0) KILN_THROW(InvalidModel, n.label() << ": spatial dim " << i << " has a negative output size " << out);
    g.in[i] = in, g.out[i] = out, g.k[i] = k, g.s[i] = s, g.d[i] = d;
    g.pb[i] = pb, g.pe[i] = full - pb - out;
  }
  return g;
}

}  // namespace kiln::runtime::cuda
