// Add + LayerNormalization fusion (CUDA engines, optimization_level >= 1; KILN_FUSE_ADD_LAYERNORM=0 turns it off;
// docs/passes.md). Matches: LayerNormalization(X, Scale, B?) whose Mean / InvStdDev outputs are absent or unread,
// with Scale and B initializers, and X produced by an Add(A, B') of two float values of X's shape (same dims by the
// inferred types, or where they leave dims unknown, in every sample of concrete shapes the builder gives).
// Rewrites: the pair becomes one kiln.AddLayerNormalization(A, B', Scale, B) node at the Add's position, with the
// LayerNorm's attributes; when X is read elsewhere (or is a graph output) the fused node's second output is X, so
// the sum is still written. Valid because the fused op is defined as Add then LayerNormalization (its reference
// kernel runs those two ops; ops/fused_ops.h), the node sits where the Add was (its inputs exist there; Scale and B
// are constants) and every reader of X still finds it. The CUDA kernel adds while loading the row, rounds the sum to
// X's dtype (as the Add did), normalizes in float and writes Y (and X) once.
#include <algorithm>
#include <set>

#include "ops/common.h"
#include "ops/fused_ops.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_add_layernorm_detail {

bool run(ir::Graph& g, const std::vector<ValueShapes>& samples) {
  if (has_subgraphs(g)) return false;  // outer-scope reads are not in consumers()
  const auto consumers = g.consumers();
  const auto producers = g.producers();
  const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  auto read = [&](const std::string& v) {
    auto it = consumers.find(v);
    return outputs.count(v) || (it != consumers.end() && !it->second.empty());
  };
  auto is_const = [&](const std::string& v) { return fixed_initializer(g, v) != nullptr; };
  // Value v has value r's shape: by the types, or in every sample.
  auto same_shape = [&](const std::string& v, const std::string& r) {
    return passes::same_shape(g.type_of(v), g.type_of(r), v, r, samples);
  };
  const size_t N = g.nodes.size();
  std::vector<int> replace_at(N, -1);
  std::vector<bool> drop(N, false);
  std::vector<ir::Node> fused;
  for (size_t i = 0; i < N; ++i) {
    const ir::Node& ln = g.nodes[i];
    if (ln.domain != "" || ln.op_type != "LayerNormalization" || ln.inputs.size() < 2 || ln.outputs.empty()) continue;
    bool stats_read = false;
    for (size_t o = 1; o < ln.outputs.size(); ++o) stats_read = stats_read || (!ln.outputs[o].empty() && read(ln.outputs[o]));
    if (stats_read || !is_const(ln.inputs[1]) || (ln.inputs.size() > 2 && !ln.inputs[2].empty() && !is_const(ln.inputs[2])))
      continue;
    const std::string& x = ln.inputs[0];
    auto p = producers.find(x);
    if (p == producers.end() || drop[p->second] || replace_at[p->second] >= 0) continue;
    const ir::Node& add = g.nodes[p->second];
    if (add.domain != "" || add.op_type != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    const ir::ValueType* xt = g.type_of(x);
    if (!xt || !is_float3(xt->dtype) || !same_shape(add.inputs[0], x) || !same_shape(add.inputs[1], x)) continue;
    // X read by anyone but this LayerNorm: keep writing it.
    const auto& readers = consumers.at(x);
    const bool sum_used = outputs.count(x) || readers.size() != 1;
    ir::Node f;
    f.name = g.unique_name("fused_" + ln.name);
    f.op_type = ops::fused_ops::kAddLayerNorm;
    f.domain = ops::fused_ops::kDomain;
    f.opset = 1;
    f.inputs = {add.inputs[0], add.inputs[1], ln.inputs[1]};
    if (ln.inputs.size() > 2 && !ln.inputs[2].empty()) f.inputs.push_back(ln.inputs[2]);
    f.outputs = {ln.outputs[0]};
    if (sum_used) f.outputs.push_back(x);
    for (const char* k : {"axis", "epsilon", "stash_type"})
      if (auto it = ln.attrs.find(k); it != ln.attrs.end()) f.attrs[k] = it->second;
    KILN_DEBUG("fuse_add_layernorm: " << add.label() << " + " << ln.label() << " -> " << f.name
                                      << (sum_used ? " (sum kept)" : ""));
    replace_at[p->second] = static_cast<int>(fused.size());
    drop[i] = true;
    if (!sum_used) g.types.erase(x);
    for (size_t o = 1; o < ln.outputs.size(); ++o)
      if (!ln.outputs[o].empty()) g.types.erase(ln.outputs[o]);
    fused.push_back(std::move(f));
  }
  if (fused.empty()) return false;
  const size_t count = fused.size(), kept = splice_fused(g, replace_at, drop, fused);
  KILN_INFO("fuse_add_layernorm: " << count << " Add + LayerNormalization pairs fused (" << N << " -> " << kept
                                   << " nodes)");
  return true;
}

}  // namespace fuse_add_layernorm_detail

bool fuse_add_layernorm(ir::Graph& g, const std::vector<ValueShapes>& samples) {
  return fuse_add_layernorm_detail::run(g, samples);
}
bool fuse_add_layernorm(ir::Graph& g) {
  static const std::vector<ValueShapes> none;
  return fuse_add_layernorm_detail::run(g, none);
}

}  // namespace kiln::passes
