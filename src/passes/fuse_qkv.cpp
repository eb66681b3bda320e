// QKV projection fusion (CUDA engines, optimization_level >= 1, after attention and GEMM epilogue fusion;
// KILN_FUSE_QKV=0 turns it off; docs/passes.md).
// Matches: a kiln.Attention node (not packed) whose Q, K and V layouts are "bsd" and whose Q, K and V are three
// distinct values, each made by a kiln.FusedMatMul with activation "none" that reads the same A, with a 2-D weight
// initializer [K, C] and a bias initializer of C elements, all of one shape and dtype across the three; each
// projection's output is read only by the attention node (once) and is no graph output.
// Rewrites: one kiln.FusedMatMul(A, [Wq | Wk | Wv], [bq | bk | bv]) producing a [.., 3 * C] value, read by the
// attention node as Q, K and V with packed_qkv = 1 (Q is the first third of the last axis, K the second, V the third;
// ops/kiln_attention.h). Valid because column j of A x [Wq | Wk | Wv] + [bq | bk | bv] is column j of the projection
// that owns it, computed from the same operands (the fused GEMM rounds each output once, as each projection did).
// The one GEMM is three times wider: one launch instead of three and better use of the GPU at small batch.
#include <cstring>
#include <set>

#include "ops/fused_ops.h"
#include "ops/kiln_attention.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_qkv_detail {

struct Proj {
  size_t node = 0;
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;
};

class Fuser {
 public:
  explicit Fuser(ir::Graph& g) : g_(g), producers_(g.producers()), consumers_(g.consumers()) {
    outputs_.insert(g.outputs.begin(), g.outputs.end());
  }

  bool run() {
    size_t fused = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      ir::Node& at = g_.nodes[i];
      if (at.domain != ops::kattn::kDomain || at.op_type != ops::kattn::kOpType || at.inputs.size() < 3) continue;
      ops::kattn::Params p = ops::kattn::decode(at);
      using ops::kattn::Layout;
      if (p.packed_qkv || p.q != Layout::BSD || p.k != Layout::BSD || p.v != Layout::BSD) continue;
      const std::string q = at.inputs[0], k = at.inputs[1], v = at.inputs[2];
      if (q == k || k == v || q == v) continue;
      Proj pr[3];
      bool ok = true;
      for (int j = 0; j < 3 && ok; ++j) ok = projection(at.inputs[static_cast<size_t>(j)], i, &pr[j]);
      if (!ok) continue;
      const ir::Node &nq = g_.nodes[pr[0].node], &nk = g_.nodes[pr[1].node], &nv = g_.nodes[pr[2].node];
      if (nq.inputs[0] != nk.inputs[0] || nq.inputs[0] != nv.inputs[0]) continue;
      const Shape& ws = pr[0].w->shape();
      bool same = true;
      for (int j = 1; j < 3; ++j)
        same = same && pr[j].w->shape() == ws && pr[j].w->dtype() == pr[0].w->dtype() &&
               pr[j].b->numel() == pr[0].b->numel() && pr[j].b->dtype() == pr[0].b->dtype();
      if (!same || pr[0].b->numel() != ws[1]) continue;

      // [K, 3C] weights and [3C] bias: row r of the packed weight is Wq[r] | Wk[r] | Wv[r].
      const int64_t K = ws[0], C = ws[1];
      const size_t es = dtype_size(pr[0].w->dtype());
      Tensor w(pr[0].w->dtype(), {K, 3 * C}), b(pr[0].b->dtype(), {3 * C});
      char* wd = static_cast<char*>(w.mutable_data());
      char* bd = static_cast<char*>(b.mutable_data());
      const size_t row = static_cast<size_t>(C) * es;
      for (int j = 0; j < 3; ++j) {
        const char* src = static_cast<const char*>(pr[j].w->data());
        for (int64_t r = 0; r < K; ++r) {
          const size_t rr = static_cast<size_t>(r);
          std::memcpy(wd + (rr * 3 + static_cast<size_t>(j)) * row, src + rr * row, row);
        }
        std::memcpy(bd + static_cast<size_t>(j) * row, pr[j].b->data(), row);
      }
      ir::Node f;
      f.name = g_.unique_name("fused_qkv_" + nq.name);
      f.op_type = ops::fused_ops::kFusedMatMul;
      f.domain = ops::fused_ops::kDomain;
      f.opset = 1;
      const std::string wn = g_.unique_name(f.name + "_weight");
      g_.initializers[wn] = std::move(w);
      const std::string bn = g_.unique_name(f.name + "_bias");
      g_.initializers[bn] = std::move(b);
      const std::string out = g_.unique_name(f.name + "_out");
      f.inputs = {nq.inputs[0], wn, bn};
      f.outputs = {out};
      f.attrs["activation"] = std::string("none");
      KILN_DEBUG("fuse_qkv: " << nq.label() << ", " << nk.label() << ", " << nv.label() << " -> " << f.name
                              << " for " << at.label());
      // The packed projection takes Q's projection's place (all three read A, which is made before any of them);
      // the attention node reads it three times.
      for (int j = 0; j < 3; ++j) g_.types.erase(at.inputs[static_cast<size_t>(j)]);
      at.inputs[0] = at.inputs[1] = at.inputs[2] = out;
      p.packed_qkv = true;
      ops::kattn::encode(p, at);
      const size_t first = std::min({pr[0].node, pr[1].node, pr[2].node});
      for (int j = 0; j < 3; ++j) drop_.insert(pr[j].node);
      place_[first] = std::move(f);
      ++fused;
    }
    if (!fused) return false;
    std::vector<ir::Node> kept;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      auto it = place_.find(i);
      if (it != place_.end()) kept.push_back(std::move(it->second));
      else if (!drop_.count(i)) kept.push_back(std::move(g_.nodes[i]));
    }
    KILN_INFO("fuse_qkv: " << fused << " Q / K / V projection triples packed into one GEMM each ("
                           << g_.nodes.size() << " -> " << kept.size() << " nodes)");
    g_.nodes = std::move(kept);
    return true;
  }

 private:
  // v is made by a kiln.FusedMatMul (activation none, weight and bias initializers) that nothing but node `reader`
  // reads (once), and is no graph output.
  bool projection(const std::string& v, size_t reader, Proj* out) const {
    if (outputs_.count(v)) return false;
    auto c = consumers_.find(v);
    if (c == consumers_.end() || c->second.size() != 1 || c->second[0] != reader) return false;
    auto pi = producers_.find(v);
    if (pi == producers_.end() || drop_.count(pi->second)) return false;
    const ir::Node& n = g_.nodes[pi->second];
    if (n.domain != ops::fused_ops::kDomain || n.op_type != ops::fused_ops::kFusedMatMul || n.inputs.size() != 3 ||
        n.outputs.size() != 1 || n.attr_string("activation", "none") != "none")
      return false;
    const Tensor* w = constant(n.inputs[1]);
    const Tensor* b = constant(n.inputs[2]);
    if (!w || !b || w->rank() != 2) return false;
    *out = {pi->second, w, b};
    return true;
  }
  const Tensor* constant(const std::string& v) const { return fixed_initializer(g_, v); }

  ir::Graph& g_;
  std::map<std::string, size_t> producers_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::set<std::string> outputs_;
  std::set<size_t> drop_;
  std::map<size_t, ir::Node> place_;
};

}  // namespace fuse_qkv_detail

bool fuse_qkv(ir::Graph& g) {
  if (has_subgraphs(g)) return false;  // outer-scope reads of subgraphs are not in consumers()
  return fuse_qkv_detail::Fuser(g).run();
}

}  // namespace kiln::passes
