// Redundant Cast removal.
// Matches: (a) Cast(Cast(X, A -> B), B -> C) where A -> B is an exact float widening (float16/bfloat16 -> float32,
// float16/bfloat16/float32 -> float64): the outer Cast reads X directly; (b) a Cast to the dtype its input already
// has, whose output is not a graph output: its readers read the input. Valid because an exact widening keeps every
// value, so converting X to C directly gives the same result as going through B (the Cast kernel converts through
// float either way), and a Cast to the same type is the identity. Lossy pairs such as float32 -> float16 -> float32
// are not touched: removing them would change results (autocast avoids creating them in the first place).
#include <optional>
#include <set>

#include "passes/pass.h"

namespace kiln::passes {
namespace cast_cleanup_detail {

bool exact_widening(DType from, DType to) {
  if (from == to) return true;
  if (to == DType::Float32) return from == DType::Float16 || from == DType::BFloat16;
  if (to == DType::Float64) return from == DType::Float16 || from == DType::BFloat16 || from == DType::Float32;
  return false;
}

std::optional<DType> dtype_of(const ir::Graph& g, const std::string& v) {
  auto c = g.initializers.find(v);
  if (c != g.initializers.end()) return c->second.dtype();
  const ir::ValueType* t = g.type_of(v);
  if (!t) return std::nullopt;
  return t->dtype;
}

bool is_cast(const ir::Node& n) {
  return n.domain == "" && n.op_type == "Cast" && n.has_input(0) && n.outputs.size() == 1 && !n.outputs[0].empty();
}

}  // namespace cast_cleanup_detail

bool remove_redundant_casts(ir::Graph& g) {
  using namespace cast_cleanup_detail;
  bool changed = false;
  // (a) skip exact widenings feeding another Cast.
  auto producers = g.producers();
  for (ir::Node& n : g.nodes) {
    if (!is_cast(n)) continue;
    for (;;) {
      auto p = producers.find(n.inputs[0]);
      if (p == producers.end() || !is_cast(g.nodes[p->second])) break;
      const ir::Node& inner = g.nodes[p->second];
      std::optional<DType> a = dtype_of(g, inner.inputs[0]);
      std::optional<DType> b = dtype_of(g, inner.outputs[0]);
      if (!a || !b || !exact_widening(*a, *b)) break;
      n.inputs[0] = inner.inputs[0];
      changed = true;
    }
  }
  // (b) identity Casts whose output is not a graph output.
  const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  std::map<std::string, std::string> rename;
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (ir::Node& n : g.nodes) {
    for (auto& in : n.inputs)
      if (auto r = rename.find(in); r != rename.end()) in = r->second;
    if (is_cast(n) && !outputs.count(n.outputs[0])) {
      std::optional<DType> a = dtype_of(g, n.inputs[0]);
      std::optional<DType> b = dtype_of(g, n.outputs[0]);
      if (a && b && *a == *b) {
        rename[n.outputs[0]] = n.inputs[0];
        g.types.erase(n.outputs[0]);
        changed = true;
        continue;
      }
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return changed;
}

}  // namespace kiln::passes
