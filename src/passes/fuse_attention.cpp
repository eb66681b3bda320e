// Attention fusion (CUDA engines, after autocast; docs/passes.md).
// Matches, around each Softmax over the last axis of a 4-D value:
//   scores = MatMul(Qh, Kt)                 Qh [B, H, Sq, D], Kt [B, H, D, Sk] (no batch broadcasting)
//            optionally Mul / Div by one-element float constants (on Qh, Kt or the scores: their product is the
//            scale) and widening / same-type Casts (float16 / bfloat16 -> float32) on the way to the Softmax
//   x      = scores, or Add(scores, mask) with a float mask of rank <= 4 that does not broadcast the scores up; a
//            mask made by Where(bool, c1, c2) from one-element constants is read as the bool (mask_mode "bool");
//            the Add's type is the score_dtype (its rounding lets a large finite fill absorb the score, as there)
//   P      = Softmax(x, last axis), then float Casts and at most one guard Where(IsNaN(P), 0, P)
//   O      = MatMul(P, Vh)                  Vh [B, H, Sk, Dv]
// The head split of an operand is folded when it is Transpose(perm 0,2,1,3) of [B, S, H, D] (layout "bshd"), itself
// possibly a Reshape of a token-major [B, S, H * D] (layout "bsd"); Kt may be Transpose(perm 0,1,3,2) of such a Kh,
// the dynamo exporter's Reshape [B*H, S, D] -> Transpose(0,2,1) -> Reshape [B, H, D, S] of it, or the TorchScript
// exporter's Transpose(perm 0,2,3,1) of [B, S, H, D]. O's Transpose(perm 0,2,1,3) (and a Reshape to [B, Sq, H * Dv]
// after it) is folded into the output layout when O and the Transpose have no other reader.
// Rewrites: the node producing the last matched value becomes one kiln.Attention node (ops/kiln_attention.h); the
// rest is left to dead-code elimination (values read elsewhere keep their producers).
// Valid because every peeled step is exact in meaning: a scalar factor commutes with transposes, reshapes and the
// matrix product; widening Casts do not change values; Reshape / Transpose only move elements, and each one is
// checked by its input and output shapes (in the inferred types, or in every sample of concrete shapes the builder
// gives); Where(bool, c1, c2) + s is s + (bool ? c1 : c2); the guard is nan_to_zero. Shapes, dtypes (Q, K, V and O
// one float type) and constants are checked; anything else is left unfused. The kernel computes the scores in float
// without the graph's intermediate float16 rounding (docs/passes.md).
#include <cmath>
#include <optional>
#include <set>

#include "ops/kiln_attention.h"
#include "passes/pass.h"
#include "util/error.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_attention_detail {

namespace ka = ops::kattn;

bool float3(std::optional<DType> t) { return t && is_float3(*t); }

struct Operand {
  std::string value;
  ka::Layout layout = ka::Layout::BHSD;
};

class Fuser {
 public:
  Fuser(ir::Graph& g, const std::vector<ValueShapes>& samples)
      : g_(g), samples_(samples), consumers_(g.consumers()), producers_(g.producers()) {
    outputs_.insert(g.outputs.begin(), g.outputs.end());
  }

  bool run() {
    size_t fused = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      if (n.domain != "" || n.op_type != "Softmax") continue;
      std::optional<std::pair<size_t, ir::Node>> m = match(n);
      if (!m) continue;
      g_.nodes[m->first] = std::move(m->second);  // after every node it reads; DCE drops the rest
      consumers_ = g_.consumers();
      producers_ = g_.producers();
      ++fused;
    }
    if (fused) KILN_INFO("fuse_attention: " << fused << " attention blocks fused into kiln.Attention nodes");
    return fused > 0;
  }

 private:
  // ---- graph and shape queries --------------------------------------------------------------------------------
  const ir::Node* producer(const std::string& v) const {
    auto it = producers_.find(v);
    return it == producers_.end() ? nullptr : &g_.nodes[it->second];
  }
  const ir::Node* op(const std::string& v, const char* type) const {
    const ir::Node* n = producer(v);
    return n && n->domain.empty() && n->op_type == type ? n : nullptr;
  }
  std::vector<const ir::Node*> readers(const std::string& v) const {
    std::vector<const ir::Node*> r;
    auto it = consumers_.find(v);
    if (it != consumers_.end())
      for (size_t k : it->second) r.push_back(&g_.nodes[k]);
    return r;
  }
  // Read by exactly one node (counted once even if it reads it twice) and not a graph output.
  const ir::Node* sole_reader(const std::string& v) const {
    if (outputs_.count(v)) return nullptr;
    const std::vector<const ir::Node*> r = readers(v);
    for (const ir::Node* n : r)
      if (n != r.front()) return nullptr;
    return r.empty() ? nullptr : r.front();
  }
  std::optional<DType> dtype(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it != g_.initializers.end()) return it->second.dtype();
    const ir::ValueType* t = g_.type_of(v);
    if (!t) return std::nullopt;
    return t->dtype;
  }
  // Concrete shapes of v, one per sample (the static type repeated when it is static); nullopt when unknown.
  std::optional<std::vector<Shape>> shapes(const std::string& v) const {
    const size_t n = samples_.empty() ? 1 : samples_.size();
    auto it = g_.initializers.find(v);
    if (it != g_.initializers.end()) return std::vector<Shape>(n, it->second.shape());
    const ir::ValueType* t = g_.type_of(v);
    if (t && t->is_static()) return std::vector<Shape>(n, t->static_shape());
    if (samples_.empty()) return std::nullopt;
    std::vector<Shape> out;
    for (const ValueShapes& s : samples_) {
      auto f = s.find(v);
      if (f == s.end()) return std::nullopt;
      out.push_back(f->second);
    }
    return out;
  }
  // pred(shape of a, shape of b) holds in every sample.
  template <class F>
  bool shapes_hold(const std::string& a, const std::string& b, F pred) const {
    const auto sa = shapes(a), sb = shapes(b);
    if (!sa || !sb) return false;
    for (size_t i = 0; i < sa->size(); ++i)
      if (!pred((*sa)[i], (*sb)[i])) return false;
    return true;
  }
  bool same_shape(const std::string& a, const std::string& b) const {
    return shapes_hold(a, b, [](const Shape& x, const Shape& y) { return x == y; });
  }
  // A one-element float initializer's value.
  std::optional<double> scalar(const std::string& v) const {
    auto it = g_.initializers.find(v);
    if (it == g_.initializers.end() || it->second.numel() != 1 || !is_float3(it->second.dtype())) return std::nullopt;
    return it->second.at_double(0);
  }
  static std::vector<int64_t> perm(const ir::Node& t) { return t.attr_ints("perm", {}); }

  // ---- operand chains ---------------------------------------------------------------------------------------------
  // Peels Mul / Div by a one-element float constant (that does not change the shape) off v, multiplying `scale`.
  std::string peel_scalars(std::string v, double& scale) const {
    for (;;) {
      const ir::Node* n = producer(v);
      if (!n || !n->domain.empty() || n->inputs.size() != 2 || (n->op_type != "Mul" && n->op_type != "Div")) return v;
      const bool div = n->op_type == "Div";
      int ci = -1;
      std::optional<double> c;
      for (int i : {1, 0}) {
        if (div && i == 0) continue;
        if ((c = scalar(n->inputs[static_cast<size_t>(i)]))) {
          ci = i;
          break;
        }
      }
      if (ci < 0 || !std::isfinite(*c) || *c == 0) return v;
      const std::string& x = n->inputs[static_cast<size_t>(1 - ci)];
      if (!same_shape(x, v) || !dtype(x) || dtype(x) != dtype(v)) return v;
      scale *= div ? 1.0 / *c : *c;
      v = x;
    }
  }
  // Peels Casts that keep every value (same type, or float16 / bfloat16 to float32) and, with scale, scalar factors.
  std::string peel_exact(std::string v, double* scale) const {
    for (;;) {
      if (scale) v = peel_scalars(v, *scale);
      const ir::Node* c = op(v, "Cast");
      if (!c) return v;
      const std::optional<DType> from = dtype(c->inputs[0]), to = dtype(v);
      if (!float3(from) || !float3(to) || !(from == to || to == DType::Float32)) return v;
      v = c->inputs[0];
    }
  }

  // v holds [B, H, S, D]: the operand it is read from (itself, or its head split folded).
  Operand head_split_source(std::string v, double* scale) const {
    if (scale) v = peel_scalars(v, *scale);
    Operand o{v, ka::Layout::BHSD};
    const ir::Node* t = op(v, "Transpose");
    if (!t || perm(*t) != std::vector<int64_t>{0, 2, 1, 3}) return o;
    return token_major_source(t->inputs[0], scale);
  }
  // v holds [B, S, H, D]: itself ("bshd") or the [B, S, H * D] value a Reshape split ("bsd").
  Operand token_major_source(std::string v, double* scale) const {
    if (scale) v = peel_scalars(v, *scale);
    Operand o{v, ka::Layout::BSHD};
    const ir::Node* r = op(v, "Reshape");
    if (!r) return o;
    std::string x = r->inputs[0];
    const bool split = shapes_hold(x, v, [](const Shape& a, const Shape& b) {
      return a.size() == 3 && b.size() == 4 && a[0] == b[0] && a[1] == b[1] && a[2] == b[2] * b[3];
    });
    if (!split) return o;
    if (scale) x = peel_scalars(x, *scale);
    return {x, ka::Layout::BSD};
  }
  // kt holds K^T [B, H, D, Sk]: the K operand it is read from.
  std::optional<Operand> key_source(std::string kt, double& scale) const {
    kt = peel_scalars(kt, scale);
    const ir::Node* n = producer(kt);
    if (!n || !n->domain.empty()) return std::nullopt;
    if (n->op_type == "Transpose" && perm(*n) == std::vector<int64_t>{0, 1, 3, 2})
      return head_split_source(n->inputs[0], &scale);
    if (n->op_type == "Transpose" && perm(*n) == std::vector<int64_t>{0, 2, 3, 1})
      return token_major_source(n->inputs[0], &scale);
    if (n->op_type != "Reshape") return std::nullopt;
    // dynamo: Reshape(Transpose(Reshape(Kh, [B*H, S, D]), perm 0,2,1), [B, H, D, S])
    const ir::Node* t = op(n->inputs[0], "Transpose");
    if (!t || perm(*t) != std::vector<int64_t>{0, 2, 1}) return std::nullopt;
    const ir::Node* r = op(t->inputs[0], "Reshape");
    if (!r) return std::nullopt;
    const std::string& kh = r->inputs[0];
    const bool merge = shapes_hold(kh, t->inputs[0], [](const Shape& a, const Shape& b) {
      return a.size() == 4 && b.size() == 3 && b[0] == a[0] * a[1] && b[1] == a[2] && b[2] == a[3];
    });
    const bool unmerge = shapes_hold(kh, kt, [](const Shape& a, const Shape& b) {
      return b.size() == 4 && b[0] == a[0] && b[1] == a[1] && b[2] == a[3] && b[3] == a[2];
    });
    if (!merge || !unmerge) return std::nullopt;
    return head_split_source(kh, &scale);
  }

  // ---- one attention block around the Softmax sm --------------------------------------------------------------
  static std::nullopt_t fail(const ir::Node& sm, const char* why) {
    KILN_DEBUG("fuse_attention: " << sm.label() << " left unfused: " << why);
    return std::nullopt;
  }
  std::optional<std::pair<size_t, ir::Node>> match(const ir::Node& sm) const {
    const std::string& x0 = sm.inputs[0];
    const auto xs = shapes(x0);
    if (!xs || xs->front().size() != 4 || sm.outputs.size() != 1) return fail(sm, "the Softmax input is not a 4-D value of known shape");
    const int64_t axis = sm.attr_int("axis", sm.opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != 3) return fail(sm, "the Softmax is not over the last axis");
    if (!sole_reader(x0)) return fail(sm, "the Softmax input is read elsewhere");

    // Scores (and the mask) above the Softmax.
    ka::Params p;
    double scale = 1.0;
    std::string x = peel_exact(x0, nullptr);
    std::string mask;
    const ir::Node* mm = nullptr;
    if (const ir::Node* add = op(x, "Add")) {
      for (size_t side : {0u, 1u}) {
        double s = 1.0;
        const std::string sc = peel_exact(add->inputs[side], &s);
        const ir::Node* m = op(sc, "MatMul");
        if (!m || !sole_reader(sc) || !same_shape(sc, x)) continue;
        mm = m, scale = s, mask = add->inputs[1 - side];
        break;
      }
      if (!mm || !sole_reader(x) || !float3(dtype(x))) return fail(sm, "the Add before the Softmax does not add a mask to Q K^T (or is read elsewhere)");
      p.score_dtype = *dtype(x);  // the Add's type: where scores + mask were rounded
    } else {
      x = peel_exact(x, &scale);
      mm = op(x, "MatMul");
      if (!mm || !sole_reader(x)) return fail(sm, "no MatMul (Q K^T) before the Softmax, or it is read elsewhere");
    }
    const std::string& qh = mm->inputs[0];
    const std::string& kt = mm->inputs[1];
    const std::string& sc = mm->outputs[0];
    const bool qk_shapes = shapes_hold(qh, kt, [](const Shape& a, const Shape& b) {
      return a.size() == 4 && b.size() == 4 && a[0] == b[0] && a[1] == b[1] && a[3] == b[2];
    });
    if (!qk_shapes || !same_shape(sc, x0)) return fail(sm, "Q and K^T are not [B, H, Sq, D] and [B, H, D, Sk] (or the scores are broadcast)");
    if (!mask.empty() && !read_mask(mask, p)) return fail(sm, "the mask is neither a float value of rank <= 4 nor Where(bool, constant, constant)");

    // Below the Softmax: Casts, the NaN guard, then P V.
    std::string pv = sm.outputs[0];
    const ir::Node* out_mm = nullptr;
    while (!out_mm) {
      if (outputs_.count(pv)) return fail(sm, "the probabilities are a graph output");
      const std::vector<const ir::Node*> r = readers(pv);
      if (r.size() == 1 && r[0]->domain.empty() && r[0]->op_type == "Cast" && float3(dtype(r[0]->outputs[0]))) {
        pv = r[0]->outputs[0];
      } else if (r.size() == 1 && r[0]->domain.empty() && r[0]->op_type == "MatMul" && r[0]->inputs[0] == pv &&
                 r[0]->inputs[1] != pv) {
        out_mm = r[0];
      } else if (r.size() == 2 && !p.nan_to_zero) {
        const std::optional<std::string> g = guard(pv, r);
        if (!g) return fail(sm, "the probabilities are read by something other than the NaN guard");
        p.nan_to_zero = true;
        pv = *g;
      } else {
        return fail(sm, "the probabilities do not reach a MatMul (P V) through Casts and the guard");
      }
    }
    const std::string& vh = out_mm->inputs[1];
    const bool v_shapes = shapes_hold(kt, vh, [](const Shape& a, const Shape& b) {
      return b.size() == 4 && a[0] == b[0] && a[1] == b[1] && a[3] == b[2];
    });
    if (!v_shapes) return fail(sm, "V is not [B, H, Sk, Dv]");

    // Operands (their head splits folded) and the output layout.
    const Operand q = head_split_source(qh, &scale);
    const std::optional<Operand> k = key_source(kt, scale);
    const Operand v = head_split_source(vh, nullptr);
    if (!k) return fail(sm, "K^T is not a transpose of K the pass recognises");
    const std::optional<DType> dt = dtype(q.value);
    if (!float3(dt) || dtype(k->value) != dt || dtype(v.value) != dt || dtype(out_mm->outputs[0]) != dt ||
        dtype(qh) != dt || dtype(vh) != dt)
      return fail(sm, "Q, K, V and O do not share one float type");
    std::string out = out_mm->outputs[0];
    p.out = ka::Layout::BHSD;
    const ir::Node* last = out_mm;
    if (const ir::Node* t = sole_reader(out); t && t->domain.empty() && t->op_type == "Transpose" &&
                                              perm(*t) == std::vector<int64_t>{0, 2, 1, 3}) {
      out = t->outputs[0], p.out = ka::Layout::BSHD, last = t;
      if (const ir::Node* r = sole_reader(out); r && r->domain.empty() && r->op_type == "Reshape" &&
                                                shapes_hold(out, r->outputs[0], [](const Shape& a, const Shape& b) {
                                                  return b.size() == 3 && b[0] == a[0] && b[1] == a[1] &&
                                                         b[2] == a[2] * a[3];
                                                })) {
        out = r->outputs[0], p.out = ka::Layout::BSD, last = r;
      }
    }

    p.q = q.layout, p.k = k->layout, p.v = v.layout;
    p.scale = static_cast<float>(scale);
    if (!std::isfinite(p.scale)) return fail(sm, "the scale is not finite");
    // The heads (static) and every size, checked through the op's own shape rules in each sample.
    const auto qs = shapes(q.value), ks = shapes(k->value), vs = shapes(v.value), hs = shapes(qh), vhs = shapes(vh);
    if (!qs || !ks || !vs || !hs || !vhs) return fail(sm, "an operand's shape is unknown");
    p.num_heads = hs->front()[1];
    ir::Node fused;
    fused.name = g_.unique_name("fused_attention_" + sm.name);
    fused.op_type = ka::kOpType;
    fused.domain = ka::kDomain;
    fused.opset = 1;
    fused.inputs = {q.value, k->value, v.value};
    if (p.mask != ka::MaskMode::None) fused.inputs.push_back(mask);
    fused.outputs = {out};
    ka::encode(p, fused);
    for (size_t i = 0; i < qs->size(); ++i) {
      const Shape& h = (*hs)[i];
      if (h[1] != p.num_heads) return fail(sm, "the head count differs between shape samples");
      try {
        const ka::Dims d = ka::dims(fused, p, (*qs)[i], (*ks)[i], (*vs)[i]);
        if (d.B != h[0] || d.H != h[1] || d.Sq != h[2] || d.D != h[3] || d.Dv != (*vhs)[i][3]) return fail(sm, "the operand shapes disagree with the op's shape rules");
      } catch (const Error&) {
        return fail(sm, "the operand shapes disagree with the op's shape rules");
      }
    }
    return std::make_pair(static_cast<size_t>(last - g_.nodes.data()), std::move(fused));
  }

  // The mask added to the scores: a float value, or Where(bool, c1, c2) read as the bool. Sets p.mask*; false when
  // neither. Its rank must be <= 4 (the Add's output having the scores' shape, it broadcasts to them).
  bool read_mask(std::string& mask, ka::Params& p) const {
    const std::string m = peel_exact(mask, nullptr);
    const auto ms = shapes(m);
    if (!ms || ms->front().size() > 4) return false;
    if (const ir::Node* w = op(m, "Where"); w && w->inputs.size() == 3 && dtype(w->inputs[0]) == DType::Bool) {
      const std::optional<double> a = scalar(w->inputs[1]), b = scalar(w->inputs[2]);
      if (a && b && same_shape(w->inputs[0], m)) {
        p.mask = ka::MaskMode::Bool;
        p.mask_true = static_cast<float>(*a);
        p.mask_false = static_cast<float>(*b);
        mask = w->inputs[0];
        return true;
      }
    }
    if (!float3(dtype(m))) return false;
    p.mask = ka::MaskMode::Add;
    mask = m;
    return true;
  }

  // pv read by IsNaN(pv) (or IsNaN of a float Cast of pv: a Cast neither makes nor removes NaNs; autocast writes
  // that) and Where(IsNaN(...), 0, pv): the Where's output.
  std::optional<std::string> guard(const std::string& pv, const std::vector<const ir::Node*>& r) const {
    const ir::Node *isnan = nullptr, *where = nullptr;
    for (const ir::Node* n : r) {
      if (!n->domain.empty()) return std::nullopt;
      if (n->op_type == "Where") where = n;
      if (n->op_type == "IsNaN") isnan = n;
      if (n->op_type == "Cast" && float3(dtype(n->outputs[0]))) {
        const ir::Node* i = sole_reader(n->outputs[0]);
        if (i && i->domain.empty() && i->op_type == "IsNaN") isnan = i;
      }
    }
    if (!isnan || !where || where->inputs.size() != 3 || where->inputs[0] != isnan->outputs[0] ||
        where->inputs[2] != pv || sole_reader(isnan->outputs[0]) != where)
      return std::nullopt;
    const std::optional<double> zero = scalar(where->inputs[1]);
    if (!zero || *zero != 0.0 || !same_shape(where->outputs[0], pv) || dtype(where->outputs[0]) != dtype(pv))
      return std::nullopt;
    return where->outputs[0];
  }

  ir::Graph& g_;
  const std::vector<ValueShapes>& samples_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::map<std::string, size_t> producers_;
  std::set<std::string> outputs_;
};

}  // namespace fuse_attention_detail

bool fuse_attention(ir::Graph& g, const std::vector<ValueShapes>& samples) {
  return fuse_attention_detail::Fuser(g, samples).run();
}

bool fuse_attention(ir::Graph& g) { return fuse_attention(g, {}); }

}  // namespace kiln::passes
