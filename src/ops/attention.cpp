// Attention (opset 23; 24 adds nonpad_kv_seqlen; 25 adds left/right_window_size). Q, K, V 3-D ([B, S, H*D] with
// q_num_heads / kv_num_heads) or 4-D ([B, H, S, D]); grouped-query heads (query head h reads kv head
// h / (Hq / Hkv)); past_key / past_value concatenated in front of K / V (present outputs, 4-D); attn_mask bool
// (true = attend) or float (added), broadcast to [B, Hq, Sq, T] and, when its last dim is shorter than the
// T = past + kv length, padded with "masked"; is_causal with bottom-right alignment (query i sees key j iff
// j <= i + offset, offset = past length, or nonpad_kv_seqlen[b] - Sq with an external cache, else 0); scale
// (default 1/sqrt(head size)); softcap; qk_matmul_output_mode 0 (scaled Q.K^T), 1 (after softcap), 2 (after
// softcap and mask), 3 (after softmax).
// Semantics are the ONNX spec's: softcap before the mask; a query row whose whole bias is -inf gives zeros
// (not NaN) in Y and in mode 3. (onnxruntime 1.23.2 adds the mask before softcap and numbers modes 1 / 2 the
// other way round; the tests compare those cases with the reference evaluator, the rest with onnxruntime.)
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/common.h"

namespace kiln::ops::attention_detail {

struct AttnDims {
  bool is3d = false;
  int64_t B = -1, Hq = -1, Hkv = -1, Sq = -1, Skv = -1, P = 0, D = -1, Dv = -1;
};

int64_t div_exact(int64_t a, int64_t b, const Node& n, const char* what) {
  if (a < 0 || b <= 0) return -1;
  if (a % b != 0) KILN_THROW(InvalidModel, n.label() << ": " << what << " " << a << " is not divisible by " << b << " heads");
  return a / b;
}

Dim first_known(const Dim& a, const Dim& b) { return a.is_static() ? a : b; }
int64_t val(const Dim& d) { return d.is_static() ? d.value : -1; }

void check_same(int64_t a, int64_t b, const Node& n, const char* what) {
  if (a >= 0 && b >= 0 && a != b) KILN_THROW(InvalidModel, n.label() << ": " << what << ": " << a << " vs " << b);
}

// Dims of Q/K/V (and past_key / past_value when given), validated. Unknown sizes stay -1.
AttnDims attn_dims(const Node& n, const std::vector<Dim>& q, const std::vector<Dim>& k, const std::vector<Dim>& v,
                   const std::vector<Dim>* pk, const std::vector<Dim>* pv) {
  if (q.size() != k.size() || q.size() != v.size() || (q.size() != 3 && q.size() != 4))
    KILN_THROW(InvalidModel, n.label() << ": Q, K and V must all be 3-D or all 4-D, got ranks " << q.size() << ", "
                                       << k.size() << ", " << v.size());
  AttnDims d;
  d.is3d = q.size() == 3;
  const bool heads_given = n.has_attr("q_num_heads") || n.has_attr("kv_num_heads");
  if (d.is3d) {
    if (!n.has_attr("q_num_heads") || !n.has_attr("kv_num_heads"))
      KILN_THROW(InvalidModel, n.label() << ": 3-D inputs need the q_num_heads and kv_num_heads attributes");
    d.Hq = n.attr_int("q_num_heads");
    d.Hkv = n.attr_int("kv_num_heads");
    if (d.Hq <= 0 || d.Hkv <= 0) KILN_THROW(InvalidModel, n.label() << ": head counts must be positive");
    d.Sq = val(q[1]), d.Skv = val(k[1]);
    d.D = div_exact(val(q[2]), d.Hq, n, "Q hidden size");
    check_same(d.D, div_exact(val(k[2]), d.Hkv, n, "K hidden size"), n, "Q and K head sizes");
    d.Dv = div_exact(val(v[2]), d.Hkv, n, "V hidden size");
    check_same(val(k[1]), val(v[1]), n, "K and V sequence lengths");
  } else {
    if (heads_given && n.opset >= 25)
      KILN_THROW(InvalidModel, n.label() << ": q_num_heads / kv_num_heads must not be given with 4-D inputs");
    d.Hq = val(q[1]), d.Hkv = val(first_known(k[1], v[1]));
    check_same(val(k[1]), val(v[1]), n, "K and V head counts");
    d.Sq = val(q[2]), d.Skv = val(first_known(k[2], v[2]));
    check_same(val(k[2]), val(v[2]), n, "K and V sequence lengths");
    d.D = val(first_known(q[3], k[3]));
    check_same(val(q[3]), val(k[3]), n, "Q and K head sizes");
    d.Dv = val(v[3]);
  }
  d.B = val(first_known(q[0], first_known(k[0], v[0])));
  check_same(val(q[0]), val(k[0]), n, "Q and K batch sizes");
  check_same(val(q[0]), val(v[0]), n, "Q and V batch sizes");
  if (d.Hq == 0 || d.Hkv == 0) KILN_THROW(InvalidModel, n.label() << ": head counts must be positive");
  if (d.Hq > 0 && d.Hkv > 0 && d.Hq % d.Hkv != 0)
    KILN_THROW(InvalidModel, n.label() << ": q heads " << d.Hq << " are not a multiple of kv heads " << d.Hkv);
  if ((pk == nullptr) != (pv == nullptr))
    KILN_THROW(InvalidModel, n.label() << ": past_key and past_value must be given together");
  if (pk) {
    if (pk->size() != 4 || pv->size() != 4)
      KILN_THROW(InvalidModel, n.label() << ": past_key and past_value must be 4-D [B, kv_heads, past, head_size]");
    check_same(val((*pk)[0]), d.B, n, "past_key batch");
    check_same(val((*pk)[1]), d.Hkv, n, "past_key heads");
    check_same(val((*pk)[3]), d.D, n, "past_key head size");
    check_same(val((*pv)[1]), d.Hkv, n, "past_value heads");
    check_same(val((*pv)[3]), d.Dv, n, "past_value head size");
    check_same(val((*pk)[2]), val((*pv)[2]), n, "past_key and past_value lengths");
    d.P = val(first_known((*pk)[2], (*pv)[2]));
  }
  return d;
}

Dim dim_or_unknown(int64_t v) { return v >= 0 ? static_dim(v) : unknown_dim(); }
int64_t add_known(int64_t a, int64_t b) { return a < 0 || b < 0 ? -1 : a + b; }
int64_t mul_known(int64_t a, int64_t b) { return a < 0 || b < 0 ? -1 : a * b; }

void check_attn_arity(const Node& n) { check_arity(n, 3, n.opset >= 24 ? 7 : 6, 4); }

std::vector<ValueType> attention_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_attn_arity(n);
  const ValueType &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
  check_dtype(FloatTypes{}, q.dtype, n, "Q");
  if (k.dtype != q.dtype || v.dtype != q.dtype) KILN_THROW(InvalidModel, n.label() << ": Q, K and V must share a dtype");
  if (ctx.has(3) && ctx.input(3).dtype != DType::Bool && ctx.input(3).dtype != q.dtype)
    KILN_THROW(InvalidModel, n.label() << ": attn_mask must be bool or " << dtype_name(q.dtype));
  if (ctx.has(6) && ctx.input(6).dtype != DType::Int64)
    KILN_THROW(InvalidModel, n.label() << ": nonpad_kv_seqlen must be int64, got " << ctx.input(6).str());
  const DType dt = q.dtype;
  const bool ranked = q.has_rank && k.has_rank && v.has_rank && (!ctx.has(4) || ctx.input(4).has_rank) &&
                      (!ctx.has(5) || ctx.input(5).has_rank);
  if (!ranked)
    return {ValueType::unknown(dt), rank_only(dt, 4), rank_only(dt, 4), rank_only(dt, 4)};
  const AttnDims d = attn_dims(n, q.dims, k.dims, v.dims, ctx.has(4) ? &ctx.input(4).dims : nullptr,
                               ctx.has(5) ? &ctx.input(5).dims : nullptr);
  // Batch, query length and (without a cache) key length keep their symbols.
  const Dim B = first_known(q.dims[0], first_known(k.dims[0], v.dims[0]));
  const Dim Sq = d.is3d ? q.dims[1] : q.dims[2];
  const Dim Skv = d.is3d ? first_known(k.dims[1], v.dims[1]) : first_known(k.dims[2], v.dims[2]);
  const Dim T = ctx.has(4) ? dim_or_unknown(add_known(d.P, d.Skv)) : Skv;
  ValueType y = d.is3d ? make_type(dt, {B, Sq, dim_or_unknown(mul_known(d.Hq, d.Dv))})
                       : make_type(dt, {B, dim_or_unknown(d.Hq), Sq, dim_or_unknown(d.Dv)});
  return {y, make_type(dt, {B, dim_or_unknown(d.Hkv), T, dim_or_unknown(d.D)}),
          make_type(dt, {B, dim_or_unknown(d.Hkv), T, dim_or_unknown(d.Dv)}),
          make_type(dt, {B, dim_or_unknown(d.Hq), Sq, T})};
}

std::vector<Dim> dims_of(const Tensor& t) {
  std::vector<Dim> v;
  for (int64_t x : t.shape()) v.push_back(static_dim(x));
  return v;
}

// Tensor -> float64 [B, H, S, Dh] (3-D inputs [B, S, H*Dh] are split into heads).
std::vector<double> to_bhsd(const Tensor& t, bool is3d, int64_t H, int64_t Dh) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  const Shape& s = t.shape();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!is3d) {
      out[static_cast<size_t>(i)] = t.at_double(i);
      continue;
    }
    const int64_t S = s[1];
    const int64_t b = i / (S * H * Dh), r = i % (S * H * Dh), sq = r / (H * Dh), h = (r % (H * Dh)) / Dh, e = r % Dh;
    out[static_cast<size_t>(((b * H + h) * S + sq) * Dh + e)] = t.at_double(i);
  }
  return out;
}

// [B, H, S1, Dh] ++ [B, H, S2, Dh] along S.
std::vector<double> concat_seq(const std::vector<double>& a, int64_t s1, const std::vector<double>& b, int64_t s2,
                               int64_t BH, int64_t Dh) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(BH * (s1 + s2) * Dh));
  for (int64_t i = 0; i < BH; ++i) {
    out.insert(out.end(), a.begin() + i * s1 * Dh, a.begin() + (i + 1) * s1 * Dh);
    out.insert(out.end(), b.begin() + i * s2 * Dh, b.begin() + (i + 1) * s2 * Dh);
  }
  return out;
}

Tensor from_doubles(DType dt, const Shape& s, const std::vector<double>& v, const Node& n) {
  Tensor t(dt, s);
  dispatch(FloatTypes{}, dt, n, "Q", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    auto* p = t.mutable_as<typename T::S>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = T::store(static_cast<typename T::C>(v[i]));
  });
  return t;
}

void attention_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_attn_arity(n);
  const Tensor &q = in_tensor(n, in, 0), &k = in_tensor(n, in, 1), &v = in_tensor(n, in, 2);
  const Tensor* mask = n.has_input(3) ? in[3] : nullptr;
  const Tensor* pk = n.has_input(4) ? in[4] : nullptr;
  const Tensor* pv = n.has_input(5) ? in[5] : nullptr;
  const Tensor* nonpad = n.opset >= 24 && n.has_input(6) ? in[6] : nullptr;
  const DType dt = q.dtype();
  check_dtype(FloatTypes{}, dt, n, "Q");
  if (k.dtype() != dt || v.dtype() != dt || (pk && pk->dtype() != dt) || (pv && pv->dtype() != dt))
    KILN_THROW(InvalidModel, n.label() << ": Q, K, V and the past tensors must share a dtype");
  std::vector<Dim> pkd, pvd;
  if (pk) pkd = dims_of(*pk);
  if (pv) pvd = dims_of(*pv);
  const AttnDims d = attn_dims(n, dims_of(q), dims_of(k), dims_of(v), pk ? &pkd : nullptr, pv ? &pvd : nullptr);
  if (nonpad && pk) KILN_THROW(InvalidModel, n.label() << ": nonpad_kv_seqlen cannot be combined with past_key");
  const int64_t B = d.B, Hq = d.Hq, Hkv = d.Hkv, Sq = d.Sq, D = d.D, Dv = d.Dv, T = d.P + d.Skv;
  std::vector<double> Q = to_bhsd(q, d.is3d, Hq, D), K = to_bhsd(k, d.is3d, Hkv, D), V = to_bhsd(v, d.is3d, Hkv, Dv);
  if (pk) {
    K = concat_seq(to_bhsd(*pk, false, Hkv, D), d.P, K, d.Skv, B * Hkv, D);
    V = concat_seq(to_bhsd(*pv, false, Hkv, Dv), d.P, V, d.Skv, B * Hkv, Dv);
  }
  // Mask geometry: broadcast to [B, Hq, Sq, T], last dim possibly shorter (padded as masked).
  std::vector<int64_t> mstride(4, 0);
  int64_t mlast = 0;
  if (mask) {
    if (mask->dtype() != DType::Bool && mask->dtype() != dt)
      KILN_THROW(InvalidModel, n.label() << ": attn_mask must be bool or " << dtype_name(dt) << ", got " << mask->type_str());
    const Shape& ms = mask->shape();
    if (ms.empty() || ms.size() > 4) KILN_THROW(InvalidModel, n.label() << ": attn_mask must be 1-D to 4-D, got " << mask->type_str());
    const int64_t target[4] = {B, Hq, Sq, T};
    const std::vector<int64_t> cs = contiguous_strides(ms);
    for (size_t i = 0; i < ms.size(); ++i) {
      const size_t ax = 4 - ms.size() + i;
      const bool last = ax == 3;
      if (last ? ms[i] > T : (ms[i] != 1 && ms[i] != target[ax]))
        KILN_THROW(InvalidModel, n.label() << ": attn_mask " << mask->type_str() << " does not broadcast to ["
                                           << B << "," << Hq << "," << Sq << "," << T << "]");
      mstride[ax] = ms[i] == 1 && !last ? 0 : cs[i];
    }
    mlast = ms.back();
  }
  std::vector<int64_t> np_len;
  if (nonpad) {
    if (nonpad->dtype() != DType::Int64 || nonpad->numel() != B)
      KILN_THROW(InvalidModel, n.label() << ": nonpad_kv_seqlen must be int64 [" << B << "], got " << nonpad->type_str());
    for (int64_t b = 0; b < B; ++b) np_len.push_back(nonpad->at_int64(b));
  }
  const bool causal = n.attr_int("is_causal", 0) != 0;
  const double scale = n.has_attr("scale") ? n.attr_float("scale", 1.f) : 1.0 / std::sqrt(static_cast<double>(D));
  const double softcap = n.attr_float("softcap", 0.f);
  const int64_t mode = n.attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) KILN_THROW(InvalidModel, n.label() << ": qk_matmul_output_mode must be 0..3, got " << mode);
  const int64_t left = n.opset >= 25 ? n.attr_int("left_window_size", -1) : -1;
  const int64_t right = n.opset >= 25 ? n.attr_int("right_window_size", -1) : -1;
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> Y(static_cast<size_t>(B * Hq * Sq * Dv), 0.0), QK(static_cast<size_t>(B * Hq * Sq * T));
  std::vector<double> score(static_cast<size_t>(T)), bias(static_cast<size_t>(T));
  const int64_t group = Hq / Hkv;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      const int64_t offset = pk ? d.P : nonpad ? np_len[static_cast<size_t>(b)] - Sq : 0;
      for (int64_t i = 0; i < Sq; ++i) {
        const double* qi = Q.data() + ((b * Hq + h) * Sq + i) * D;
        double* qk = QK.data() + ((b * Hq + h) * Sq + i) * T;
        bool any = false;
        for (int64_t j = 0; j < T; ++j) {
          const double* kj = K.data() + ((b * Hkv + hk) * T + j) * D;
          double s = 0;
          for (int64_t e = 0; e < D; ++e) s += qi[e] * kj[e];
          s *= scale;
          if (mode == 0) qk[j] = s;
          if (softcap > 0) s = softcap * std::tanh(s / softcap);
          if (mode == 1) qk[j] = s;
          double bj = 0;
          if (mask) {
            if (j >= mlast) {
              bj = ninf;
            } else {
              const int64_t off = b * mstride[0] + h * mstride[1] + i * mstride[2] + j * mstride[3];
              bj = mask->dtype() == DType::Bool ? (mask->at_int64(off) ? 0.0 : ninf) : mask->at_double(off);
            }
          }
          const int64_t diff = i + offset - j;
          if (causal && diff < 0) bj = ninf;
          if ((left >= 0 && diff > left) || (right >= 0 && -diff > right)) bj = ninf;
          if (nonpad && j >= np_len[static_cast<size_t>(b)]) bj = ninf;
          any |= bj != ninf;
          score[static_cast<size_t>(j)] = s + bj;
          if (mode == 2) qk[j] = s + bj;
        }
        // Softmax over j; a row with no attendable key is all zeros.
        double mx = ninf, sum = 0;
        for (int64_t j = 0; j < T; ++j) mx = std::max(mx, score[static_cast<size_t>(j)]);
        for (int64_t j = 0; j < T; ++j) {
          double& p = score[static_cast<size_t>(j)];
          p = !any || p == ninf ? 0.0 : std::exp(p - mx);
          sum += p;
        }
        double* yi = Y.data() + ((b * Hq + h) * Sq + i) * Dv;
        for (int64_t j = 0; j < T; ++j) {
          const double p = sum > 0 ? score[static_cast<size_t>(j)] / sum : 0.0;
          if (mode == 3) qk[j] = p;
          if (p == 0) continue;
          const double* vj = V.data() + ((b * Hkv + hk) * T + j) * Dv;
          for (int64_t e = 0; e < Dv; ++e) yi[e] += p * vj[e];
        }
      }
    }
  if (d.is3d) {  // [B, Hq, Sq, Dv] -> [B, Sq, Hq * Dv]
    std::vector<double> t(Y.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t i = 0; i < Sq; ++i)
          for (int64_t e = 0; e < Dv; ++e)
            t[static_cast<size_t>(((b * Sq + i) * Hq + h) * Dv + e)] = Y[static_cast<size_t>(((b * Hq + h) * Sq + i) * Dv + e)];
    out[0] = from_doubles(dt, {B, Sq, Hq * Dv}, t, n);
  } else {
    out[0] = from_doubles(dt, {B, Hq, Sq, Dv}, Y, n);
  }
  if (out.size() > 1) out[1] = from_doubles(dt, {B, Hkv, T, D}, K, n);
  if (out.size() > 2) out[2] = from_doubles(dt, {B, Hkv, T, Dv}, V, n);
  if (out.size() > 3) out[3] = from_doubles(dt, {B, Hq, Sq, T}, QK, n);
}

}  // namespace kiln::ops::attention_detail

namespace kiln::ops {
void register_attention() {
  ir::OpRegistry::instance().add(
      ir::OpDef{"Attention", "", {23, 24, 25}, attention_detail::attention_infer, attention_detail::attention_kernel});
}
}  // namespace kiln::ops
