// Conv (opset 1, 11): 1-D/2-D/3-D, group, dilations, strides, pads / auto_pad, optional bias.
// Reference kernel: direct loops, float64 accumulation.
#include "ops/spatial.h"

namespace kiln::ops::conv_detail {

struct ConvGeom {
  int64_t group = 1;
  SpatialAttrs sp;
};

// Validates attributes against the weight dims (kernel_shape must agree with W when both are known).
ConvGeom conv_geometry(const Node& n, const std::vector<Dim>& x, const std::vector<Dim>& w) {
  if (x.size() < 3)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got rank " << x.size());
  if (w.size() != x.size())
    KILN_THROW(InvalidModel, n.label() << ": weights rank " << w.size() << " differs from input rank " << x.size());
  const size_t nsp = x.size() - 2;
  if (nsp > 3) KILN_THROW(Unsupported, n.label() << ": " << nsp << " spatial dims (kiln supports 1 to 3)");
  ConvGeom g;
  g.group = n.attr_int("group", 1);
  if (g.group < 1) KILN_THROW(InvalidModel, n.label() << ": group must be >= 1, got " << g.group);
  std::vector<int64_t> kernel(nsp);
  for (size_t i = 0; i < nsp; ++i) kernel[i] = w[2 + i].value;
  if (n.has_attr("kernel_shape")) {
    std::vector<int64_t> ks = n.attr_ints("kernel_shape", {});
    if (ks.size() != nsp)
      KILN_THROW(InvalidModel, n.label() << ": kernel_shape has " << ks.size() << " dims, expected " << nsp);
    for (size_t i = 0; i < nsp; ++i) {
      if (ks[i] <= 0) KILN_THROW(InvalidModel, n.label() << ": kernel_shape must be positive");
      if (kernel[i] >= 0 && kernel[i] != ks[i])
        KILN_THROW(InvalidModel, n.label() << ": kernel_shape " << ks[i] << " disagrees with weights dim " << kernel[i]);
      kernel[i] = ks[i];
    }
  }
  g.sp = read_spatial_attrs(n, nsp, kernel, false, true);
  const Dim& c = x[1];
  const Dim& m = w[0];
  const Dim& cg = w[1];
  if (c.is_static() && c.value % g.group != 0)
    KILN_THROW(InvalidModel, n.label() << ": input channels " << c.value << " not divisible by group " << g.group);
  if (c.is_static() && cg.is_static() && cg.value * g.group != c.value)
    KILN_THROW(InvalidModel, n.label() << ": weights expect " << cg.value * g.group << " input channels (" << cg.value
                                       << " x group " << g.group << "), input has " << c.value);
  if (m.is_static() && m.value % g.group != 0)
    KILN_THROW(InvalidModel, n.label() << ": output channels " << m.value << " not divisible by group " << g.group);
  return g;
}

void check_bias(const Node& n, const std::vector<Dim>* b, const Dim& m) {
  if (!b) return;
  if (b->size() != 1)
    KILN_THROW(InvalidModel, n.label() << ": bias must be 1-D, got rank " << b->size());
  if ((*b)[0].is_static() && m.is_static() && (*b)[0].value != m.value)
    KILN_THROW(InvalidModel, n.label() << ": bias has " << (*b)[0].value << " values, weights have " << m.value
                                       << " output channels");
}

std::vector<Dim> dims_of(const Shape& s) {
  std::vector<Dim> d;
  for (int64_t v : s) d.push_back(static_dim(v));
  return d;
}

std::vector<ValueType> conv_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 3);
  const ValueType& x = ctx.input(0);
  const ValueType& w = ctx.input(1);
  check_dtype(FloatTypes{}, x.dtype, n, "input");
  if (w.dtype != x.dtype || (ctx.has(2) && ctx.in[2]->dtype != x.dtype))
    KILN_THROW(InvalidModel, n.label() << ": input, weights and bias must share a dtype");
  if (!x.has_rank || !w.has_rank) {
    if (x.has_rank) return {rank_only(x.dtype, static_cast<int64_t>(x.dims.size()))};
    if (w.has_rank) return {rank_only(x.dtype, static_cast<int64_t>(w.dims.size()))};
    return {ValueType::unknown(x.dtype)};
  }
  ConvGeom g = conv_geometry(n, x.dims, w.dims);
  check_bias(n, ctx.has(2) && ctx.in[2]->has_rank ? &ctx.in[2]->dims : nullptr, w.dims[0]);
  std::vector<Dim> out = {x.dims[0], w.dims[0]};
  for (size_t i = 0; i + 2 < x.dims.size(); ++i) {
    SpatialDim sd = resolve_spatial_dim(n, g.sp, i, x.dims[2 + i].value);
    out.push_back(sd.out >= 0 ? static_dim(sd.out) : unknown_dim());
  }
  return {make_type(x.dtype, out)};
}

void conv_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 3);
  const Tensor& x = in_tensor(n, in, 0);
  const Tensor& w = in_tensor(n, in, 1);
  const Tensor* b = in.size() > 2 ? in[2] : nullptr;
  if (w.dtype() != x.dtype() || (b && b->dtype() != x.dtype()))
    KILN_THROW(InvalidModel, n.label() << ": input, weights and bias must share a dtype");
  ConvGeom g = conv_geometry(n, dims_of(x.shape()), dims_of(w.shape()));
  std::vector<Dim> bd;
  if (b) bd = dims_of(b->shape());
  check_bias(n, b ? &bd : nullptr, static_dim(w.shape()[0]));
  Window3 win = make_window3(n, g.sp, x.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], M = w.shape()[0];
  const int64_t Cg = C / g.group, Mg = M / g.group;
  Shape ys = {N, M};
  for (size_t i = 2; i < x.shape().size(); ++i) ys.push_back(win.out[3 - (x.shape().size() - i)]);
  Tensor y(x.dtype(), ys);
  const int64_t in_sp = win.in[0] * win.in[1] * win.in[2];
  const int64_t out_sp = win.out[0] * win.out[1] * win.out[2];
  const int64_t k_sp = win.k[0] * win.k[1] * win.k[2];
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    const auto* pw = w.as<typename T::S>();
    const auto* pb = b ? b->as<typename T::S>() : nullptr;
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t bn = 0; bn < N; ++bn)
      for (int64_t m = 0; m < M; ++m) {
        const int64_t grp = m / Mg;
        for (int64_t o0 = 0; o0 < win.out[0]; ++o0)
          for (int64_t o1 = 0; o1 < win.out[1]; ++o1)
            for (int64_t o2 = 0; o2 < win.out[2]; ++o2) {
              double acc = pb ? static_cast<double>(T::load(pb[m])) : 0.0;
              for (int64_t c = 0; c < Cg; ++c) {
                const auto* xc = px + (bn * C + grp * Cg + c) * in_sp;
                const auto* wc = pw + (m * Cg + c) * k_sp;
                for (int64_t k0 = 0; k0 < win.k[0]; ++k0) {
                  const int64_t i0 = o0 * win.s[0] - win.pb[0] + k0 * win.d[0];
                  if (i0 < 0 || i0 >= win.in[0]) continue;
                  for (int64_t k1 = 0; k1 < win.k[1]; ++k1) {
                    const int64_t i1 = o1 * win.s[1] - win.pb[1] + k1 * win.d[1];
                    if (i1 < 0 || i1 >= win.in[1]) continue;
                    for (int64_t k2 = 0; k2 < win.k[2]; ++k2) {
                      const int64_t i2 = o2 * win.s[2] - win.pb[2] + k2 * win.d[2];
                      if (i2 < 0 || i2 >= win.in[2]) continue;
                      acc += static_cast<double>(T::load(xc[(i0 * win.in[1] + i1) * win.in[2] + i2])) *
                             static_cast<double>(T::load(wc[(k0 * win.k[1] + k1) * win.k[2] + k2]));
                    }
                  }
                }
              }
              py[((bn * M + m) * out_sp) + (o0 * win.out[1] + o1) * win.out[2] + o2] =
                  T::store(static_cast<typename T::C>(acc));
            }
      }
  });
  out[0] = y;
}

}  // namespace kiln::ops::conv_detail

namespace kiln::ops {
void register_conv() {
  ir::OpRegistry::instance().add(ir::OpDef{"Conv", "", {1, 11, 22}, conv_detail::conv_infer, conv_detail::conv_kernel});
}
}  // namespace kiln::ops
