// Statistics normalizations: LayerNormalization (opset 17: axis, epsilon, stash_type, optional Mean / InvStdDev
// outputs), RMSNormalization (opset 23), GroupNormalization (opset 18: scale / bias per group; opset 21: per
// channel, stash_type) and InstanceNormalization. Reference kernels compute in float64 whatever the input dtype
// (float16 / bfloat16 included) and round once; Scale / B broadcast unidirectionally to X for the layer forms.
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::layer_norm_detail {

std::vector<double> load_f64(const Node& n, const Tensor& t, const char* what) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch(FloatTypes{}, t.dtype(), n, what, [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* p = t.as<typename T::S>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(T::load(p[i]));
  });
  return v;
}

Tensor store_f64(const Node& n, DType dt, const Shape& s, const std::vector<double>& v) {
  Tensor y(dt, s);
  dispatch(FloatTypes{}, dt, n, "output", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    auto* p = y.mutable_as<typename T::S>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = T::store(static_cast<typename T::C>(v[i]));
  });
  return y;
}

void check_same_dtype(const Node& n, DType x, DType other, const char* what) {
  if (x != other)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " has dtype " << dtype_name(other) << ", expected "
                                       << dtype_name(x) << " (the dtype of X)");
}

// Inference-side check that `p` broadcasts unidirectionally to `x` (static dims only).
void check_unidirectional(const Node& n, const ValueType& x, const ValueType& p, const char* what) {
  if (!x.has_rank || !p.has_rank) return;
  if (p.dims.size() > x.dims.size())
    KILN_THROW(InvalidModel, n.label() << ": " << what << " " << p.str() << " has a higher rank than X " << x.str());
  const size_t off = x.dims.size() - p.dims.size();
  for (size_t i = 0; i < p.dims.size(); ++i) {
    const Dim& a = x.dims[off + i];
    const Dim& b = p.dims[i];
    if (a.is_static() && b.is_static() && b.value != 1 && b.value != a.value)
      KILN_THROW(InvalidModel, n.label() << ": " << what << " " << p.str() << " does not broadcast to X " << x.str());
  }
}

// y[i] = nv[i] * scale[..] (+ bias[..]), scale / bias broadcast to X's shape.
std::vector<double> scale_shift(const Node& n, const Shape& xs, const std::vector<double>& nv, const Tensor& scale,
                                const Tensor* bias) {
  const std::vector<double> sv = load_f64(n, scale, "scale");
  const std::vector<double> bv = bias ? load_f64(n, *bias, "bias") : std::vector<double>{0.0};
  for (const Tensor* t : {&scale, bias}) {
    if (t && broadcast_shape(xs, t->shape(), n) != xs)
      KILN_THROW(InvalidModel, n.label() << ": " << (t == &scale ? "scale " : "bias ") << t->type_str()
                                         << " does not broadcast to X " << shape_str(xs));
  }
  const std::vector<int64_t> st[2] = {broadcast_strides(scale.shape(), xs),
                                      bias ? broadcast_strides(bias->shape(), xs) : std::vector<int64_t>(xs.size(), 0)};
  std::vector<double> y(nv.size());
  for_each_broadcast(xs, st, [&](int64_t i, const int64_t* off) {
    y[static_cast<size_t>(i)] =
        nv[static_cast<size_t>(i)] * sv[static_cast<size_t>(off[0])] + bv[static_cast<size_t>(off[1])];
  });
  return y;
}

// Dtype of the statistics (stash_type: float32 or bfloat16 per ONNX).
DType stash_dtype(const Node& n) {
  const DType dt = dtype_from_onnx(n.attr_int("stash_type", 1), n);
  if (dt != DType::Float32 && dt != DType::BFloat16)
    KILN_THROW(InvalidModel, n.label() << ": stash_type must be float32 (1) or bfloat16 (16), got " << dtype_name(dt));
  return dt;
}

// Shape of Mean / InvStdDev: X's dims before `axis`, 1 from there.
template <class D>
std::vector<D> stat_dims(const std::vector<D>& x, size_t axis, D one) {
  std::vector<D> out(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(axis));
  out.resize(x.size(), one);
  return out;
}

// ---- LayerNormalization / RMSNormalization --------------------------------------------------------------
std::vector<ValueType> layer_norm_infer(const InferContext& ctx, bool rms) {
  const Node& n = ctx.node;
  check_arity(n, 2, rms ? 2 : 3, rms ? 1 : 3);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, n, "X");
  const ValueType& scale = ctx.input(1);
  if (rms)
    check_dtype(FloatTypes{}, scale.dtype, n, "scale");
  else
    check_same_dtype(n, x.dtype, scale.dtype, "Scale");
  check_unidirectional(n, x, scale, "scale");
  if (ctx.has(2)) {
    check_same_dtype(n, x.dtype, ctx.input(2).dtype, "B");
    check_unidirectional(n, x, ctx.input(2), "B");
  }
  const DType u = stash_dtype(n);
  ValueType y = x;
  if (rms) y.dtype = scale.dtype;  // RMSNormalization: Y has scale's dtype (V)
  if (!x.has_rank) return {y, ValueType::unknown(u), ValueType::unknown(u)};
  const size_t axis =
      static_cast<size_t>(normalize_axis(n.attr_int("axis", -1), static_cast<int64_t>(x.dims.size()), n));
  ValueType stat = make_type(u, stat_dims(x.dims, axis, static_dim(1)));
  return {y, stat, stat};
}

void layer_norm_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, bool rms) {
  check_arity(n, 2, rms ? 2 : 3, rms ? 1 : 3);
  const Tensor& x = in_tensor(n, in, 0);
  const Tensor& scale = in_tensor(n, in, 1);
  const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
  check_dtype(FloatTypes{}, x.dtype(), n, "X");
  if (!rms) check_same_dtype(n, x.dtype(), scale.dtype(), "Scale");
  if (bias) check_same_dtype(n, x.dtype(), bias->dtype(), "B");
  const DType u = stash_dtype(n);
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", -1), x.rank(), n));
  const double eps = n.attr_float("epsilon", 1e-5f);
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < s.size(); ++d) (d < axis ? outer : inner) *= s[d];
  std::vector<double> xv = load_f64(n, x, "X");
  std::vector<double> mean(static_cast<size_t>(outer)), inv(static_cast<size_t>(outer));
  for (int64_t o = 0; o < outer; ++o) {
    double* row = xv.data() + o * inner;
    double m = 0, var = 0;
    if (!rms) {
      for (int64_t k = 0; k < inner; ++k) m += row[k];
      m /= static_cast<double>(inner);
    }
    for (int64_t k = 0; k < inner; ++k) var += (row[k] - m) * (row[k] - m);
    var /= static_cast<double>(inner);
    const double is = 1.0 / std::sqrt(var + eps);
    for (int64_t k = 0; k < inner; ++k) row[k] = (row[k] - m) * is;
    mean[static_cast<size_t>(o)] = m;
    inv[static_cast<size_t>(o)] = is;
  }
  out[0] = store_f64(n, rms ? scale.dtype() : x.dtype(), s, scale_shift(n, s, xv, scale, bias));
  const Shape ss = stat_dims(s, axis, int64_t(1));
  if (out.size() > 1 && !n.outputs[1].empty()) out[1] = store_f64(n, u, ss, mean);
  if (out.size() > 2 && !n.outputs[2].empty()) out[2] = store_f64(n, u, ss, inv);
}

// ---- GroupNormalization / InstanceNormalization -----------------------------------------------------------
// X is [N, C, D1, ...]; statistics per (n, group of C / groups channels); scale and bias per group
// (`per_channel` false: GroupNormalization-18) or per channel.
struct GroupSpec {
  int64_t groups = 1;
  bool per_channel = true;
  const char* scale_name = "scale";
  const char* bias_name = "bias";
};

GroupSpec group_spec(const Node& n, bool instance) {
  GroupSpec g;
  if (instance) {
    g.groups = -1;  // = C
    g.bias_name = "B";
    return g;
  }
  g.groups = n.attr_int("num_groups");
  if (g.groups <= 0) KILN_THROW(InvalidModel, n.label() << ": num_groups must be positive, got " << g.groups);
  g.per_channel = n.opset >= 21;
  if (n.opset >= 21) stash_dtype(n);
  return g;
}

// Expected length of scale / bias for C channels.
int64_t group_param_len(const Node& n, const GroupSpec& g, int64_t c) {
  const int64_t groups = g.groups < 0 ? c : g.groups;
  if (c % groups != 0)
    KILN_THROW(InvalidModel, n.label() << ": num_groups " << groups << " does not divide the " << c << " channels");
  return g.per_channel ? c : groups;
}

std::vector<ValueType> group_norm_infer(const InferContext& ctx, bool instance) {
  const Node& n = ctx.node;
  check_arity(n, 3, 3);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, n, "X");
  const GroupSpec g = group_spec(n, instance);
  if (x.has_rank && x.dims.size() < 2)
    KILN_THROW(InvalidModel, n.label() << ": X must have rank >= 2 (N, C, ...), got " << x.str());
  for (size_t i = 1; i < 3; ++i) {
    const ValueType& p = ctx.input(i);
    const char* what = i == 1 ? g.scale_name : g.bias_name;
    check_same_dtype(n, x.dtype, p.dtype, what);
    if (!p.has_rank) continue;
    if (p.dims.size() != 1) KILN_THROW(InvalidModel, n.label() << ": " << what << " must be 1-D, got " << p.str());
    if (x.has_rank && x.dims[1].is_static() && p.dims[0].is_static()) {
      const int64_t want = group_param_len(n, g, x.dims[1].value);
      if (p.dims[0].value != want)
        KILN_THROW(InvalidModel, n.label() << ": " << what << " " << p.str() << " must have " << want << " values");
    }
  }
  return {x};
}

void group_norm_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, bool instance) {
  check_arity(n, 3, 3);
  const Tensor& x = in_tensor(n, in, 0);
  check_dtype(FloatTypes{}, x.dtype(), n, "X");
  const GroupSpec g = group_spec(n, instance);
  if (x.rank() < 2) KILN_THROW(InvalidModel, n.label() << ": X must have rank >= 2 (N, C, ...), got " << x.type_str());
  const Shape& s = x.shape();
  const int64_t N = s[0], C = s[1];
  const int64_t groups = g.groups < 0 ? C : g.groups;
  const int64_t plen = group_param_len(n, g, C);
  std::vector<double> pv[2];
  for (size_t i = 1; i < 3; ++i) {
    const Tensor& p = in_tensor(n, in, i);
    const char* what = i == 1 ? g.scale_name : g.bias_name;
    check_same_dtype(n, x.dtype(), p.dtype(), what);
    if (p.rank() != 1 || p.shape()[0] != plen)
      KILN_THROW(InvalidModel, n.label() << ": " << what << " must be [" << plen << "], got " << p.type_str());
    pv[i - 1] = load_f64(n, p, what);
  }
  const double eps = n.attr_float("epsilon", 1e-5f);
  int64_t spatial = 1;
  for (size_t d = 2; d < s.size(); ++d) spatial *= s[d];
  const int64_t cpg = C / groups, block = cpg * spatial;
  std::vector<double> xv = load_f64(n, x, "X");
  for (int64_t b = 0; b < N; ++b)
    for (int64_t gi = 0; gi < groups; ++gi) {
      double* p = xv.data() + (b * C + gi * cpg) * spatial;
      double m = 0, var = 0;
      for (int64_t k = 0; k < block; ++k) m += p[k];
      m /= static_cast<double>(block);
      for (int64_t k = 0; k < block; ++k) var += (p[k] - m) * (p[k] - m);
      var /= static_cast<double>(block);
      const double is = 1.0 / std::sqrt(var + eps);
      for (int64_t c = 0; c < cpg; ++c) {
        const size_t pi = static_cast<size_t>(g.per_channel ? gi * cpg + c : gi);
        for (int64_t k = 0; k < spatial; ++k) {
          double& v = p[c * spatial + k];
          v = (v - m) * is * pv[0][pi] + pv[1][pi];
        }
      }
    }
  out[0] = store_f64(n, x.dtype(), s, xv);
}

}  // namespace kiln::ops::layer_norm_detail

namespace kiln::ops {
void register_layer_norm() {
  using namespace layer_norm_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"LayerNormalization",
                    "",
                    {17},
                    [](const InferContext& c) { return layer_norm_infer(c, false); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      layer_norm_kernel(n, in, out, false);
                    }});
  reg.add(ir::OpDef{"RMSNormalization",
                    "",
                    {23},
                    [](const InferContext& c) { return layer_norm_infer(c, true); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      layer_norm_kernel(n, in, out, true);
                    }});
  reg.add(ir::OpDef{"GroupNormalization",
                    "",
                    {18, 21},
                    [](const InferContext& c) { return group_norm_infer(c, false); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      group_norm_kernel(n, in, out, false);
                    }});
  reg.add(ir::OpDef{"InstanceNormalization",
                    "",
                    {6, 22},
                    [](const InferContext& c) { return group_norm_infer(c, true); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      group_norm_kernel(n, in, out, true);
                    }});
}
}  // namespace kiln::ops
