// ConvTranspose (opset 1, 11, 22): 1-D/2-D/3-D, group, dilations, strides, pads / auto_pad, output_padding,
// output_shape, optional bias. W is [C, M/group, k...]. Geometry per spatial dim (ONNX formulas):
//   full = stride * (in - 1) + output_padding + (k - 1) * dilation + 1
//   output_shape given (or SAME_* without it: out = in * stride): total = full - out, split as
//     SAME_UPPER: begin = total // 2, end = total - begin; otherwise begin = total - total // 2, end = total // 2
//     (// = floor division, as in the spec: a negative total -1 gives begin 0, end -1)
//   else out = full - pad_begin - pad_end (pads from the attribute; VALID = 0).
// Reference kernel: gather form (each output position sums the taps that reach it), float64 accumulation.
#include "ops/spatial.h"

namespace kiln::ops::conv_transpose_detail {

struct CtGeom {
  int64_t group = 1;
  size_t nsp = 0;
  std::vector<int64_t> kernel, strides, dilations, out_pad, pb, out;  // out: -1 when unknown
};

std::vector<int64_t> ints_of_len(const Node& n, const char* name, size_t len, int64_t dflt) {
  std::vector<int64_t> v = n.attr_ints(name, std::vector<int64_t>(len, dflt));
  if (v.size() != len)
    KILN_THROW(InvalidModel, n.label() << ": '" << name << "' has " << v.size() << " values, expected " << len);
  return v;
}

// x / w: input and weight dims (-1 unknown). Validates attributes and resolves pads and output sizes.
CtGeom ct_geometry(const Node& n, const std::vector<int64_t>& x, const std::vector<int64_t>& w) {
  if (x.size() < 3)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got rank " << x.size());
  if (w.size() != x.size())
    KILN_THROW(InvalidModel, n.label() << ": weights rank " << w.size() << " differs from input rank " << x.size());
  CtGeom g;
  g.nsp = x.size() - 2;
  if (g.nsp > 3) KILN_THROW(Unsupported, n.label() << ": " << g.nsp << " spatial dims (kiln supports 1 to 3)");
  g.group = n.attr_int("group", 1);
  if (g.group < 1) KILN_THROW(InvalidModel, n.label() << ": group must be >= 1, got " << g.group);
  g.kernel.assign(w.begin() + 2, w.end());
  if (n.has_attr("kernel_shape")) {
    std::vector<int64_t> ks = ints_of_len(n, "kernel_shape", g.nsp, 1);
    for (size_t i = 0; i < g.nsp; ++i) {
      if (ks[i] <= 0) KILN_THROW(InvalidModel, n.label() << ": kernel_shape must be positive");
      if (g.kernel[i] >= 0 && g.kernel[i] != ks[i])
        KILN_THROW(InvalidModel, n.label() << ": kernel_shape " << ks[i] << " disagrees with weights dim " << g.kernel[i]);
      g.kernel[i] = ks[i];
    }
  }
  g.strides = ints_of_len(n, "strides", g.nsp, 1);
  g.dilations = ints_of_len(n, "dilations", g.nsp, 1);
  g.out_pad = ints_of_len(n, "output_padding", g.nsp, 0);
  std::vector<int64_t> pads = ints_of_len(n, "pads", 2 * g.nsp, 0);
  for (size_t i = 0; i < g.nsp; ++i) {
    if (g.strides[i] <= 0 || g.dilations[i] <= 0)
      KILN_THROW(InvalidModel, n.label() << ": strides and dilations must be positive");
    if (g.out_pad[i] < 0) KILN_THROW(InvalidModel, n.label() << ": output_padding must be >= 0");
  }
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "SAME_UPPER" && ap != "SAME_LOWER" && ap != "VALID")
    KILN_THROW(InvalidModel, n.label() << ": unknown auto_pad '" << ap << "'");
  std::vector<int64_t> oshape;
  if (n.has_attr("output_shape")) {
    oshape = n.attr_ints("output_shape", {});
    if (oshape.size() == g.nsp + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);
    if (oshape.size() != g.nsp)
      KILN_THROW(InvalidModel, n.label() << ": output_shape has " << oshape.size() << " values, expected " << g.nsp);
    for (int64_t v : oshape)
      if (v < 0) KILN_THROW(InvalidModel, n.label() << ": output_shape values must be >= 0");
  }
  const bool same = ap == "SAME_UPPER" || ap == "SAME_LOWER";
  g.pb.assign(g.nsp, 0);
  g.out.assign(g.nsp, -1);
  for (size_t i = 0; i < g.nsp; ++i) {
    const int64_t in = x[2 + i], k = g.kernel[i];
    if (!oshape.empty() || same) {
      if (!oshape.empty()) g.out[i] = oshape[i];
      if (in < 0 || k < 0) continue;  // pads depend on unknown sizes
      const int64_t out = oshape.empty() ? in * g.strides[i] : oshape[i];
      const int64_t total = g.strides[i] * (in - 1) + g.out_pad[i] + (k - 1) * g.dilations[i] + 1 - out;
      // total / 2 rounds toward -infinity as in the spec's (Python) formulas: a negative odd total (output_shape
      // larger than the full output) leaves the extra row at the end, like a positive one does for SAME_UPPER.
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      g.pb[i] = ap == "SAME_UPPER" ? half : total - half;
      g.out[i] = out;
    } else {
      if (ap == "NOTSET") g.pb[i] = pads[i];
      if (pads[i] < 0 || pads[i + g.nsp] < 0) KILN_THROW(InvalidModel, n.label() << ": pads must be >= 0");
      if (in < 0 || k < 0) continue;
      const int64_t pe = ap == "NOTSET" ? pads[i + g.nsp] : 0;
      g.out[i] = g.strides[i] * (in - 1) + g.out_pad[i] + (k - 1) * g.dilations[i] + 1 - g.pb[i] - pe;
      if (g.out[i] < 0)
        KILN_THROW(InvalidModel, n.label() << ": pads " << g.pb[i] << "+" << pe << " exceed the output size of spatial dim " << i);
    }
  }
  const int64_t c = x[1], wc = w[0];
  if (c >= 0 && c % g.group != 0)
    KILN_THROW(InvalidModel, n.label() << ": input channels " << c << " not divisible by group " << g.group);
  if (c >= 0 && wc >= 0 && c != wc)
    KILN_THROW(InvalidModel, n.label() << ": weights have " << wc << " input channels, input has " << c);
  return g;
}

std::vector<int64_t> dim_values(const std::vector<Dim>& d) {
  std::vector<int64_t> v;
  for (const Dim& x : d) v.push_back(x.is_static() ? x.value : -1);
  return v;
}

std::vector<ValueType> ct_infer(const InferContext& ctx) {
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
  CtGeom g = ct_geometry(n, dim_values(x.dims), dim_values(w.dims));
  Dim m = w.dims[1].is_static() ? static_dim(w.dims[1].value * g.group) : unknown_dim();
  if (ctx.has(2) && ctx.in[2]->has_rank) {
    const ValueType& b = *ctx.in[2];
    if (b.dims.size() != 1) KILN_THROW(InvalidModel, n.label() << ": bias must be 1-D, got " << b.str());
    m = merge_dim(m, b.dims[0], n, "bias length vs output channels");
  }
  std::vector<Dim> out = {x.dims[0], m};
  for (size_t i = 0; i < g.nsp; ++i) out.push_back(g.out[i] >= 0 ? static_dim(g.out[i]) : unknown_dim());
  return {make_type(x.dtype, out)};
}

void ct_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 3);
  const Tensor& x = in_tensor(n, in, 0);
  const Tensor& w = in_tensor(n, in, 1);
  const Tensor* b = in.size() > 2 ? in[2] : nullptr;
  if (w.dtype() != x.dtype() || (b && b->dtype() != x.dtype()))
    KILN_THROW(InvalidModel, n.label() << ": input, weights and bias must share a dtype");
  CtGeom g = ct_geometry(n, x.shape(), w.shape());
  const int64_t N = x.shape()[0], C = x.shape()[1], Cg = C / g.group, Mg = w.shape()[1], M = Mg * g.group;
  if (b && (b->rank() != 1 || b->shape()[0] != M))
    KILN_THROW(InvalidModel, n.label() << ": bias must be [" << M << "], got " << b->type_str());
  // Pad the geometry to 3 spatial dims.
  int64_t I[3] = {1, 1, 1}, O[3] = {1, 1, 1}, K[3] = {1, 1, 1}, S[3] = {1, 1, 1}, D[3] = {1, 1, 1}, P[3] = {0, 0, 0};
  const size_t off = 3 - g.nsp;
  Shape ys = {N, M};
  for (size_t i = 0; i < g.nsp; ++i) {
    I[off + i] = x.shape()[2 + i], O[off + i] = g.out[i], K[off + i] = g.kernel[i];
    S[off + i] = g.strides[i], D[off + i] = g.dilations[i], P[off + i] = g.pb[i];
    ys.push_back(g.out[i]);
  }
  check_output_size(n, x.dtype(), ys);
  Tensor y(x.dtype(), ys);
  const int64_t in_sp = I[0] * I[1] * I[2], out_sp = O[0] * O[1] * O[2], k_sp = K[0] * K[1] * K[2];
  // Input index along one dim for output o and tap k, or -1 when no input element lands there.
  auto src = [&](int dim, int64_t o, int64_t k) -> int64_t {
    const int64_t t = o + P[dim] - k * D[dim];
    if (t < 0 || t % S[dim] != 0 || t / S[dim] >= I[dim]) return -1;
    return t / S[dim];
  };
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    const auto* pw = w.as<typename T::S>();
    const auto* pbias = b ? b->as<typename T::S>() : nullptr;
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t bn = 0; bn < N; ++bn)
      for (int64_t m = 0; m < M; ++m) {
        const int64_t grp = m / Mg, mm = m % Mg;
        for (int64_t o0 = 0; o0 < O[0]; ++o0)
          for (int64_t o1 = 0; o1 < O[1]; ++o1)
            for (int64_t o2 = 0; o2 < O[2]; ++o2) {
              double acc = pbias ? static_cast<double>(T::load(pbias[m])) : 0.0;
              for (int64_t c = grp * Cg; c < (grp + 1) * Cg; ++c) {
                const auto* xc = px + (bn * C + c) * in_sp;
                const auto* wc = pw + (c * Mg + mm) * k_sp;
                for (int64_t k0 = 0; k0 < K[0]; ++k0) {
                  const int64_t i0 = src(0, o0, k0);
                  if (i0 < 0) continue;
                  for (int64_t k1 = 0; k1 < K[1]; ++k1) {
                    const int64_t i1 = src(1, o1, k1);
                    if (i1 < 0) continue;
                    for (int64_t k2 = 0; k2 < K[2]; ++k2) {
                      const int64_t i2 = src(2, o2, k2);
                      if (i2 < 0) continue;
                      acc += static_cast<double>(T::load(xc[(i0 * I[1] + i1) * I[2] + i2])) *
                             static_cast<double>(T::load(wc[(k0 * K[1] + k1) * K[2] + k2]));
                    }
                  }
                }
              }
              py[(bn * M + m) * out_sp + (o0 * O[1] + o1) * O[2] + o2] = T::store(static_cast<typename T::C>(acc));
            }
      }
  });
  out[0] = y;
}

}  // namespace kiln::ops::conv_transpose_detail

namespace kiln::ops {
void register_conv_transpose() {
  ir::OpRegistry::instance().add(ir::OpDef{"ConvTranspose", "", {1, 11, 22}, conv_transpose_detail::ct_infer,
                                           conv_transpose_detail::ct_kernel});
}
}  // namespace kiln::ops
