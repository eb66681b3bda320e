// kiln.Attention (domain "kiln", opset 1): the attribute model of ops/kiln_attention.h, its inference and its
// reference kernel (float64 math: the oracle the CUDA kernel and the fuse_attention pass are checked against).
#include "ops/kiln_attention.h"

#include <cmath>
#include <limits>

#include "ops/common.h"

namespace kiln::ops::kattn {
namespace {

Layout parse_layout(const ir::Node& n, const char* key) {
  const std::string s = n.attr_string(key, "bhsd");
  if (s == "bhsd") return Layout::BHSD;
  if (s == "bshd") return Layout::BSHD;
  if (s == "bsd") return Layout::BSD;
  KILN_THROW(InvalidModel, n.label() << ": " << key << " must be bhsd, bshd or bsd, got '" << s << "'");
}

size_t layout_rank(Layout l) { return l == Layout::BSD ? 3 : 4; }

// [B, S, H, D] positions of a layout's dims (H, D = -1 for "bsd", whose last dim is H * D).
struct Pos {
  int b, s, h, d;
};
Pos positions(Layout l) {
  if (l == Layout::BHSD) return {0, 2, 1, 3};
  if (l == Layout::BSHD) return {0, 1, 2, 3};
  return {0, 1, -1, -1};
}

// Inference over symbolic dims: heads and head size of one operand.
struct OpDims {
  Dim b, s, h, d;
};
OpDims op_dims(const ir::Node& n, const Params& p, Layout l, const ValueType& t, const char* what) {
  if (!t.has_rank) return {unknown_dim(), unknown_dim(), unknown_dim(), unknown_dim()};
  if (t.dims.size() != layout_rank(l))
    KILN_THROW(InvalidModel, n.label() << ": " << what << " must be " << layout_rank(l) << "-D for layout "
                                       << layout_name(l) << ", got " << t.str());
  const Pos ps = positions(l);
  OpDims o{t.dims[static_cast<size_t>(ps.b)], t.dims[static_cast<size_t>(ps.s)], unknown_dim(), unknown_dim()};
  if (l != Layout::BSD) {
    o.h = t.dims[static_cast<size_t>(ps.h)];
    o.d = t.dims[static_cast<size_t>(ps.d)];
  } else {
    o.h = static_dim(p.num_heads);
    const Dim& e = t.dims[2];
    const int64_t parts = p.packed_qkv ? 3 : 1;  // packed: the last axis holds Q's, K's and V's heads
    if (e.is_static()) {
      if (e.value % (parts * p.num_heads) != 0)
        KILN_THROW(InvalidModel, n.label() << ": " << what << " hidden size " << e.value << " is not divisible by "
                                           << parts * p.num_heads
                                           << (parts == 3 ? " (3 x heads, packed Q / K / V)" : " heads"));
      o.d = static_dim(e.value / (parts * p.num_heads));
    }
  }
  return o;
}

std::vector<ValueType> infer(const InferContext& ctx) {
  const ir::Node& n = ctx.node;
  const Params p = decode(n);
  if (n.outputs.size() != 1) KILN_THROW(InvalidModel, n.label() << ": expects 1 output, got " << n.outputs.size());
  for (size_t i = 0; i < 3; ++i)
    if (!ctx.has(i)) KILN_THROW(InvalidModel, n.label() << ": input " << i << " (Q, K, V) is required");
  const bool has_mask = ctx.has(3);
  if (has_mask != (p.mask != MaskMode::None))
    KILN_THROW(InvalidModel, n.label() << ": mask_mode " << mask_mode_name(p.mask) << " but the mask input is "
                                       << (has_mask ? "given" : "missing"));
  const ValueType &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  const DType dt = q.dtype;
  if (dt != DType::Float32 && dt != DType::Float16 && dt != DType::BFloat16)
    KILN_THROW(Unsupported, n.label() << ": Q has dtype " << dtype_name(dt) << "; supported: float32, float16, bfloat16");
  if (k.dtype != dt || v.dtype != dt)
    KILN_THROW(InvalidModel, n.label() << ": Q, K and V must have one dtype, got " << dtype_name(dt) << ", "
                                       << dtype_name(k.dtype) << ", " << dtype_name(v.dtype));
  if (has_mask) {
    const ValueType& m = ctx.input(3);
    const bool ok = p.mask == MaskMode::Bool ? m.dtype == DType::Bool
                                             : (m.dtype == DType::Float32 || m.dtype == DType::Float16 ||
                                                m.dtype == DType::BFloat16);
    if (!ok) KILN_THROW(InvalidModel, n.label() << ": mask dtype " << dtype_name(m.dtype) << " for mask_mode "
                                                << mask_mode_name(p.mask));
    if (m.has_rank && m.dims.size() > 4)
      KILN_THROW(InvalidModel, n.label() << ": the mask has rank " << m.dims.size() << "; at most 4");
  }
  const OpDims qd = op_dims(n, p, p.q, q, "Q"), kd = op_dims(n, p, p.k, k, "K"), vd = op_dims(n, p, p.v, v, "V");
  merge_dim(qd.b, kd.b, n, "Q and K batch");
  merge_dim(qd.b, vd.b, n, "Q and V batch");
  const Dim H = merge_dim(merge_dim(qd.h, kd.h, n, "Q and K heads"), vd.h, n, "Q and V heads");
  merge_dim(qd.d, kd.d, n, "Q and K head sizes");
  merge_dim(kd.s, vd.s, n, "K and V sequence lengths");
  if (!q.has_rank || !v.has_rank) return {rank_only(dt, static_cast<int64_t>(layout_rank(p.out)))};
  switch (p.out) {
    case Layout::BHSD: return {make_type(dt, {qd.b, H, qd.s, vd.d})};
    case Layout::BSHD: return {make_type(dt, {qd.b, qd.s, H, vd.d})};
    case Layout::BSD: {
      Dim e = unknown_dim();
      if (p.v == Layout::BSD && !p.packed_qkv) e = v.dims[2];
      else if (H.is_static() && vd.d.is_static()) e = static_dim(H.value * vd.d.value);
      return {make_type(dt, {qd.b, qd.s, e})};
    }
  }
  return {};
}

// Float64 copy of a float tensor.
std::vector<double> doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.at_double(i);
  return v;
}

void reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const Params p = decode(n);
  const Tensor &Q = in_tensor(n, in, 0), &K = in_tensor(n, in, 1), &V = in_tensor(n, in, 2);
  const Tensor* M = in.size() > 3 ? in[3] : nullptr;
  if ((M != nullptr) != (p.mask != MaskMode::None))
    KILN_THROW(InvalidModel, n.label() << ": mask_mode " << mask_mode_name(p.mask) << " but the mask input is "
                                       << (M ? "given" : "missing"));
  const Dims d = dims(n, p, Q.shape(), K.shape(), V.shape());
  int64_t ms[4] = {0, 0, 0, 0};
  if (M) mask_strides(n, M->shape(), d, ms);
  const std::vector<double> q = doubles(Q), k = doubles(K), v = doubles(V);
  const Shape oshape = out_shape(p, d);
  std::vector<double> o(static_cast<size_t>(shape_numel(oshape)));
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> score(static_cast<size_t>(d.Sk)), acc(static_cast<size_t>(d.Dv));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const RowAddr qa = operand_addr(p, 0, b, h, d), ka = operand_addr(p, 1, b, h, d);
      const RowAddr va = operand_addr(p, 2, b, h, d), oa = operand_addr(p, 3, b, h, d);
      for (int64_t i = 0; i < d.Sq; ++i) {
        const double* qi = q.data() + qa.base + i * qa.row_stride;
        double mx = ninf;
        for (int64_t j = 0; j < d.Sk; ++j) {
          const double* kj = k.data() + ka.base + j * ka.row_stride;
          double s = 0;
          for (int64_t e = 0; e < d.D; ++e) s += qi[e] * kj[e];
          // The score is rounded to float before the bias is added, as the graph's float32 Add does.
          s = static_cast<float>(s * static_cast<double>(p.scale));
          if (M) {
            const int64_t off = b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3];
            if (p.mask == MaskMode::Bool) s += M->at_int64(off) ? p.mask_true : p.mask_false;
            else s += M->at_double(off);
            s = static_cast<float>(s);
            if (p.score_dtype == DType::Float16) s = util::half_to_float(util::float_to_half(static_cast<float>(s)));
            if (p.score_dtype == DType::BFloat16) s = util::bf16_to_float(util::float_to_bf16(static_cast<float>(s)));
          }
          if (p.causal && j > i) s = ninf;
          score[static_cast<size_t>(j)] = s;
          mx = std::max(mx, s);  // NaN scores are skipped here and poison the sum below
        }
        // Softmax as the graph's Softmax computes it: exp(s - max) / sum (a row of -inf gives NaN, 0 / 0).
        double sum = 0;
        for (int64_t j = 0; j < d.Sk; ++j) {
          double& e = score[static_cast<size_t>(j)];
          e = std::exp(e - mx);
          sum += e;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < d.Sk; ++j) {
          double pj = score[static_cast<size_t>(j)] / sum;
          if (p.nan_to_zero && std::isnan(pj)) pj = 0;
          const double* vj = v.data() + va.base + j * va.row_stride;
          for (int64_t e = 0; e < d.Dv; ++e) acc[static_cast<size_t>(e)] += pj * vj[e];
        }
        for (int64_t e = 0; e < d.Dv; ++e) o[static_cast<size_t>(oa.base + i * oa.row_stride + e)] = acc[static_cast<size_t>(e)];
      }
    }
  Tensor O(Q.dtype(), oshape);
  dispatch(FloatTypes{}, Q.dtype(), n, "Q", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    auto* dst = O.mutable_as<typename T::S>();
    for (size_t i = 0; i < o.size(); ++i) dst[i] = T::store(static_cast<typename T::C>(o[i]));
  });
  out[0] = std::move(O);
}

}  // namespace

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::BHSD: return "bhsd";
    case Layout::BSHD: return "bshd";
    case Layout::BSD: return "bsd";
  }
  return "?";
}

const char* mask_mode_name(MaskMode m) {
  switch (m) {
    case MaskMode::None: return "none";
    case MaskMode::Add: return "add";
    case MaskMode::Bool: return "bool";
  }
  return "?";
}

Params decode(const ir::Node& n) {
  Params p;
  p.scale = n.attr_float("scale", 1.0f);
  p.num_heads = n.attr_int("num_heads", 0);
  p.q = parse_layout(n, "q_layout");
  p.k = parse_layout(n, "k_layout");
  p.v = parse_layout(n, "v_layout");
  p.out = parse_layout(n, "out_layout");
  const std::string m = n.attr_string("mask_mode", "none");
  if (m == "none") p.mask = MaskMode::None;
  else if (m == "add") p.mask = MaskMode::Add;
  else if (m == "bool") p.mask = MaskMode::Bool;
  else KILN_THROW(InvalidModel, n.label() << ": mask_mode must be none, add or bool, got '" << m << "'");
  p.mask_true = n.attr_float("mask_true", 0.0f);
  p.mask_false = n.attr_float("mask_false", 0.0f);
  const std::string sd = n.attr_string("score_dtype", "float32");
  const std::optional<DType> sdt = dtype_from_name(sd);
  if (!sdt || (*sdt != DType::Float32 && *sdt != DType::Float16 && *sdt != DType::BFloat16))
    KILN_THROW(InvalidModel, n.label() << ": score_dtype must be float32, float16 or bfloat16, got '" << sd << "'");
  p.score_dtype = *sdt;
  p.causal = n.attr_int("causal", 0) != 0;
  p.nan_to_zero = n.attr_int("nan_to_zero", 0) != 0;
  p.packed_qkv = n.attr_int("packed_qkv", 0) != 0;
  if (p.packed_qkv && (p.q != Layout::BSD || p.k != Layout::BSD || p.v != Layout::BSD))
    KILN_THROW(InvalidModel, n.label() << ": packed_qkv needs q_layout, k_layout and v_layout bsd");
  const bool bsd = p.q == Layout::BSD || p.k == Layout::BSD || p.v == Layout::BSD || p.out == Layout::BSD;
  if (p.num_heads < 0 || (bsd && p.num_heads == 0))
    KILN_THROW(InvalidModel, n.label() << ": num_heads must be positive with a bsd layout, got " << p.num_heads);
  return p;
}

void encode(const Params& p, ir::Node& n) {
  n.attrs["scale"] = p.scale;
  n.attrs["num_heads"] = p.num_heads;
  n.attrs["q_layout"] = std::string(layout_name(p.q));
  n.attrs["k_layout"] = std::string(layout_name(p.k));
  n.attrs["v_layout"] = std::string(layout_name(p.v));
  n.attrs["out_layout"] = std::string(layout_name(p.out));
  n.attrs["mask_mode"] = std::string(mask_mode_name(p.mask));
  n.attrs["mask_true"] = p.mask_true;
  n.attrs["mask_false"] = p.mask_false;
  n.attrs["score_dtype"] = std::string(dtype_name(p.score_dtype));
  n.attrs["causal"] = static_cast<int64_t>(p.causal);
  n.attrs["nan_to_zero"] = static_cast<int64_t>(p.nan_to_zero);
  if (p.packed_qkv) n.attrs["packed_qkv"] = int64_t(1);
}

Dims dims(const ir::Node& n, const Params& p, const Shape& q, const Shape& k, const Shape& v) {
  auto one = [&](Layout l, const Shape& s, const char* what, int64_t& B, int64_t& S, int64_t& H, int64_t& D) {
    if (s.size() != layout_rank(l))
      KILN_THROW(InvalidModel, n.label() << ": " << what << " must be " << layout_rank(l) << "-D for layout "
                                         << layout_name(l) << ", got " << shape_str(s));
    const Pos ps = positions(l);
    B = s[static_cast<size_t>(ps.b)], S = s[static_cast<size_t>(ps.s)];
    if (l == Layout::BSD) {
      H = p.num_heads;
      const int64_t parts = p.packed_qkv ? 3 : 1;  // packed: the last axis holds Q's, K's and V's heads
      if (s[2] % (parts * H) != 0)
        KILN_THROW(InvalidModel, n.label() << ": " << what << " hidden size " << s[2] << " is not divisible by "
                                           << parts * H
                                           << (p.packed_qkv ? " (3 x heads, packed Q / K / V)" : " heads"));
      D = s[2] / (parts * H);
    } else {
      H = s[static_cast<size_t>(ps.h)], D = s[static_cast<size_t>(ps.d)];
    }
  };
  Dims d;
  int64_t kb, kh, kd, vb, vh, vs;
  one(p.q, q, "Q", d.B, d.Sq, d.H, d.D);
  one(p.k, k, "K", kb, d.Sk, kh, kd);
  one(p.v, v, "V", vb, vs, vh, d.Dv);
  if (kb != d.B || vb != d.B || kh != d.H || vh != d.H || kd != d.D || vs != d.Sk)
    KILN_THROW(InvalidModel, n.label() << ": Q " << shape_str(q) << ", K " << shape_str(k) << " and V "
                                       << shape_str(v) << " disagree in batch, heads, head size or key length");
  if (p.num_heads > 0 && d.H != p.num_heads)
    KILN_THROW(InvalidModel, n.label() << ": num_heads " << p.num_heads << " but the inputs have " << d.H);
  return d;
}

Shape out_shape(const Params& p, const Dims& d) {
  switch (p.out) {
    case Layout::BHSD: return {d.B, d.H, d.Sq, d.Dv};
    case Layout::BSHD: return {d.B, d.Sq, d.H, d.Dv};
    case Layout::BSD: return {d.B, d.Sq, d.H * d.Dv};
  }
  return {};
}

void mask_strides(const ir::Node& n, const Shape& mask, const Dims& d, int64_t out[4]) {
  const Shape full = {d.B, d.H, d.Sq, d.Sk};
  if (mask.size() > 4)
    KILN_THROW(InvalidModel, n.label() << ": the mask " << shape_str(mask) << " has more than 4 dims");
  Shape m4(4 - mask.size(), 1);
  m4.insert(m4.end(), mask.begin(), mask.end());
  int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    const int64_t md = m4[static_cast<size_t>(i)];
    if (md != 1 && md != full[static_cast<size_t>(i)])
      KILN_THROW(InvalidModel, n.label() << ": the mask " << shape_str(mask) << " does not broadcast to [B, H, Sq, Sk] = "
                                         << shape_str(full));
    out[i] = md == 1 ? 0 : stride;
    stride *= md;
  }
}

void register_kiln_attention() {
  ir::OpRegistry::instance().add(ir::OpDef{kOpType, kDomain, {1}, infer, reference});
}

}  // namespace kiln::ops::kattn
