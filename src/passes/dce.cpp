// Dead-code elimination.
// Matches: nodes none of whose outputs reach a graph output, and initializers no node or output reads.
// Valid because ONNX inference ops have no side effects: a value nobody reads cannot change any output.
#include <set>

#include "passes/pass.h"

namespace kiln::passes {

bool eliminate_dead_code(ir::Graph& g) {
  std::set<std::string> live(g.outputs.begin(), g.outputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const ir::Node& n = g.nodes[i];
    bool used = false;
    for (const auto& o : n.outputs) used |= !o.empty() && live.count(o);
    if (!used) continue;
    keep[i] = true;
    for (const auto& in : n.inputs)
      if (!in.empty()) live.insert(in);
  }
  bool changed = false;
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (keep[i]) {
      // Outputs nobody reads become omitted optional outputs (e.g. MaxPool's Indices).
      for (auto& o : g.nodes[i].outputs)
        if (!o.empty() && !live.count(o) && &o != &g.nodes[i].outputs.front()) {
          g.types.erase(o);
          o.clear();
        }
      kept.push_back(std::move(g.nodes[i]));
    } else {
      for (const auto& o : g.nodes[i].outputs) g.types.erase(o);
      changed = true;
    }
  }
  g.nodes = std::move(kept);
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    if (!live.count(it->first)) {
      g.types.erase(it->first);
      it = g.initializers.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

}  // namespace kiln::passes
