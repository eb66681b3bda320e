// Helpers for the attention-fusion tests (test_fuse_attention*.cpp, test_cuda_attention_fused.cpp): scaled-dot-product
// attention graphs built node by node the way the exporters write them, their inputs (masks with fully masked
// rows), and a one-node kiln.Attention graph.
#pragma once
#include <cmath>
#include <limits>
#include <string>

#include "fuse_test_util.h"
#include "ops/kiln_attention.h"

namespace kiln::test_attn {

using test_fuse::GraphBuilder;
using test_fuse::random_tensor;
using test_fuse::scalar;

enum class Form {
  Dynamo,       // torch.onnx dynamo (onnxscript): K^T by Reshape [B*H, S, D] / Transpose(0,2,1) / Reshape; sqrt-scale on Q and K^T
  TorchScript,  // torch.onnx TorchScript: K^T = Transpose(perm 0,2,3,1) of [B, S, H, D]; Div of the scores by sqrt(D)
  Plain4D,      // Q, K, V given [B, H, S, D]; K^T = Transpose(perm 0,1,3,2); scores Mul by the scale; no output Transpose
};
enum class MaskKind { None, Float, Bool };

struct Spec {
  DType dt = DType::Float32;
  int64_t B = 2, H = 2, Sq = 8, Sk = 8, D = 4;
  Form form = Form::Dynamo;
  MaskKind mask = MaskKind::Float;
  bool mask_full = true;  // mask [B, 1, Sq, Sk]; else [B, 1, 1, Sk]
  bool guard = false;     // Where(IsNaN(P), 0, P) after the Softmax
  int64_t E() const { return H * D; }
};

inline Tensor f32_tensor(const Shape& s, const std::vector<float>& v) {
  Tensor t(DType::Float32, s);
  for (size_t i = 0; i < v.size(); ++i) t.mutable_as<float>()[i] = v[i];
  return t;
}
inline Tensor i64_tensor(const std::vector<int64_t>& v) {
  Tensor t(DType::Int64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.mutable_as<int64_t>()[i] = v[i];
  return t;
}
inline std::vector<int64_t> ints(std::initializer_list<int64_t> v) { return v; }

// The token-major projections: x [B, S, E] (one input for Q, one for K and V when Sq != Sk) times weights + bias.
struct Built {
  GraphBuilder b;
  TensorMap feeds;
  std::string out;
};

inline std::string projection(Built& g, const Spec& s, const std::string& x, const std::string& tag, uint32_t seed) {
  const int64_t E = s.E();
  const float w = 1.0f / std::sqrt(static_cast<float>(E));
  const std::string W = g.b.constant("W" + tag, random_tensor(s.dt, {E, E}, seed, -2 * w, 2 * w));
  const std::string bias = g.b.constant("b" + tag, random_tensor(s.dt, {E}, seed + 1, -0.5f, 0.5f));
  return g.b.node("Add", {g.b.node("MatMul", {x, W}), bias});
}

// [B, S, E] -> [B, H, S, D] as the exporters split heads.
inline std::string split_heads(Built& g, const Spec& s, const std::string& v, int64_t S) {
  const std::string shape = g.b.constant("split_" + v, i64_tensor({s.B, S, s.H, s.D}));
  return g.b.node("Transpose", {g.b.node("Reshape", {v, shape})}, {{"perm", ints({0, 2, 1, 3})}});
}

// Fills x / mask feeds; masks get fully masked rows (every key of query row 1 of batch 0 masked, and in the
// [B, 1, 1, Sk] form every key of batch 1) besides random ones.
inline void add_mask(Built& g, const Spec& s, std::string& m) {
  const Shape ms = s.mask_full ? Shape{s.B, 1, s.Sq, s.Sk} : Shape{s.B, 1, 1, s.Sk};
  Tensor t = random_tensor(DType::Bool, ms, 77);
  auto* p = t.mutable_as<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (i % 3 != 1);  // mostly attend
  const int64_t rows = ms[2], cols = ms[3];
  for (int64_t j = 0; j < cols; ++j) {
    if (s.mask_full && rows > 1) p[1 * cols + j] = 0;             // batch 0, query row 1: fully masked
    if (!s.mask_full && s.B > 1) p[(1 * rows) * cols + j] = 0;    // batch 1: fully masked
  }
  if (s.mask == MaskKind::Bool) {
    m = g.b.input("mask", DType::Bool, ms);
    g.feeds["mask"] = t;
    return;
  }
  // Float: 0 where attended, -inf where masked (so a fully masked row is all -inf).
  Tensor f(s.dt, ms);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = p[i] ? 0.0f : -std::numeric_limits<float>::infinity();
    if (s.dt == DType::Float32) f.mutable_as<float>()[i] = v;
    else f.mutable_as<uint16_t>()[i] = s.dt == DType::Float16 ? util::float_to_half(v) : util::float_to_bf16(v);
  }
  m = g.b.input("mask", s.dt, ms);
  g.feeds["mask"] = f;
}

inline Built build_sdpa(const Spec& s) {
  Built g;
  const int64_t E = s.E();
  std::string qh, kt, vh;
  if (s.form == Form::Plain4D) {
    qh = g.b.input("q", s.dt, {s.B, s.H, s.Sq, s.D});
    const std::string k = g.b.input("k", s.dt, {s.B, s.H, s.Sk, s.D});
    vh = g.b.input("v", s.dt, {s.B, s.H, s.Sk, s.D});
    g.feeds["q"] = random_tensor(s.dt, {s.B, s.H, s.Sq, s.D}, 11);
    g.feeds["k"] = random_tensor(s.dt, {s.B, s.H, s.Sk, s.D}, 12);
    g.feeds["v"] = random_tensor(s.dt, {s.B, s.H, s.Sk, s.D}, 13);
    kt = g.b.node("Transpose", {k}, {{"perm", ints({0, 1, 3, 2})}});
  } else {
    const std::string xq = g.b.input("x", s.dt, {s.B, s.Sq, E});
    g.feeds["x"] = random_tensor(s.dt, {s.B, s.Sq, E}, 10, -1.5f, 1.5f);
    std::string xk = xq;
    if (s.Sk != s.Sq) {
      xk = g.b.input("xkv", s.dt, {s.B, s.Sk, E});
      g.feeds["xkv"] = random_tensor(s.dt, {s.B, s.Sk, E}, 9, -1.5f, 1.5f);
    }
    const std::string q = projection(g, s, xq, "q", 20), k = projection(g, s, xk, "k", 30);
    const std::string v = projection(g, s, xk, "v", 40);
    qh = split_heads(g, s, q, s.Sq);
    vh = split_heads(g, s, v, s.Sk);
    if (s.form == Form::Dynamo) {
      const std::string kh = split_heads(g, s, k, s.Sk);
      const std::string r1 = g.b.node("Reshape", {kh, g.b.constant("k_merge", i64_tensor({-1, s.Sk, s.D}))});
      const std::string t = g.b.node("Transpose", {r1}, {{"perm", ints({0, 2, 1})}});
      kt = g.b.node("Reshape", {t, g.b.constant("k_unmerge", i64_tensor({s.B, s.H, s.D, s.Sk}))});
    } else {
      const std::string kr = g.b.node("Reshape", {k, g.b.constant("k_split", i64_tensor({s.B, s.Sk, s.H, s.D}))});
      kt = g.b.node("Transpose", {kr}, {{"perm", ints({0, 2, 3, 1})}});
    }
  }
  std::string sc;
  const float root = std::sqrt(static_cast<float>(s.D));
  if (s.form == Form::Dynamo) {
    const std::string c = g.b.constant("sqrt_scale", f32_tensor({1}, {1.0f / std::sqrt(root)}));
    const std::string cq = s.dt == DType::Float32 ? c : g.b.constant("sqrt_scale_lo", scalar(s.dt, 1.0f / std::sqrt(root)));
    sc = g.b.node("MatMul", {g.b.node("Mul", {qh, cq}), g.b.node("Mul", {kt, cq})});
  } else if (s.form == Form::TorchScript) {
    sc = g.b.node("Div", {g.b.node("MatMul", {qh, kt}), g.b.constant("root", scalar(s.dt, root))});
  } else {
    sc = g.b.node("Mul", {g.b.node("MatMul", {qh, kt}), g.b.constant("scale", scalar(s.dt, 1.0f / root))});
  }
  if (s.mask != MaskKind::None) {
    std::string m;
    add_mask(g, s, m);
    if (s.mask == MaskKind::Bool)
      m = g.b.node("Where", {m, g.b.constant("zero", scalar(s.dt, 0.0f)),
                             g.b.constant("lowest", scalar(s.dt, s.dt == DType::Float32 ? -3.4028234663852886e38f
                                                                                       : -65504.0f))});
    sc = g.b.node("Add", {sc, m});
  }
  std::string p = g.b.node("Softmax", {sc}, {{"axis", int64_t{-1}}});
  if (s.guard) p = g.b.node("Where", {g.b.node("IsNaN", {p}), g.b.constant("pzero", scalar(s.dt, 0.0f)), p});
  std::string o = g.b.node("MatMul", {p, vh});
  if (s.form != Form::Plain4D) {
    o = g.b.node("Transpose", {o}, {{"perm", ints({0, 2, 1, 3})}});
    o = g.b.node("Reshape", {o, g.b.constant("merge", i64_tensor({s.B, s.Sq, E}))});
  }
  g.b.output(o);
  g.out = o;
  return g;
}

inline size_t count_attention(const ir::Graph& g) {
  size_t k = 0;
  for (const auto& n : g.nodes) k += n.domain == ops::kattn::kDomain && n.op_type == ops::kattn::kOpType;
  return k;
}

inline const ir::Node* attention_node(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.domain == ops::kattn::kDomain && n.op_type == ops::kattn::kOpType) return &n;
  return nullptr;
}

}  // namespace kiln::test_attn
