// Constant and shape-subgraph folding.
// Matches: (a) any node whose inputs are all constants, (b) Shape / Size of a value whose shape is static
// after the profile specialized the inputs. The node is evaluated once with its reference kernel (the
// oracle) and its outputs become initializers. Valid because kernels are pure functions of their inputs;
// (b) is valid because every shape the engine accepts at run time equals the static one. Chains
// Shape -> Gather -> Concat -> Reshape fold completely when shapes are known.
#include <algorithm>

#include "ir/op_registry.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace constant_folding_detail {

// Folding must not blow up the plan: outputs above this many bytes stay computed at run time.
constexpr int64_t kMaxFoldedBytes = 64ll << 20;

bool output_small_enough(const ir::Graph& g, const ir::Node& n) {
  for (const auto& o : n.outputs) {
    if (o.empty()) continue;
    const ir::ValueType* t = g.type_of(o);
    if (!t || !t->is_static()) return false;
    int64_t bytes = 1;
    for (const auto& d : t->dims) {
      bytes *= d.value;
      if (bytes > kMaxFoldedBytes) return false;
    }
    if (bytes * static_cast<int64_t>(dtype_size(t->dtype)) > kMaxFoldedBytes) return false;
  }
  return true;
}

// Nodes with subgraphs (If, Loop) read outer-scope values implicitly: never fold them here.
bool has_subgraph(const ir::Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (std::holds_alternative<ir::GraphPtr>(a)) return true;
  return false;
}

bool fold_shape_of_static(ir::Graph& g, const ir::Node& n) {
  if (n.domain != "" || (n.op_type != "Shape" && n.op_type != "Size") || !n.has_input(0)) return false;
  const ir::ValueType* t = g.type_of(n.inputs[0]);
  if (!t || !t->is_static()) return false;
  Shape s = t->static_shape();
  if (n.op_type == "Size") {
    g.initializers[n.outputs[0]] = Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{shape_numel(s)});
    return true;
  }
  int64_t r = static_cast<int64_t>(s.size());
  int64_t start = n.attr_int("start", 0), end = n.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> v;
  for (int64_t i = start; i < end; ++i) v.push_back(s[i]);
  g.initializers[n.outputs[0]] = Tensor::from_vector(DType::Int64, {static_cast<int64_t>(v.size())}, v);
  return true;
}

}  // namespace constant_folding_detail

bool fold_constants(ir::Graph& g) {
  using namespace constant_folding_detail;
  auto& reg = ir::OpRegistry::instance();
  bool changed = false;
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (auto& n : g.nodes) {
    if (fold_shape_of_static(g, n)) {
      changed = true;
      continue;
    }
    bool all_const = !has_subgraph(n);
    for (const auto& in : n.inputs) all_const &= in.empty() || g.is_constant(in);
    const ir::OpDef* def = reg.find(n.domain, n.op_type, n.opset);
    if (!all_const || !def || !def->reference || !output_small_enough(g, n)) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<const Tensor*> ins;
    for (const auto& in : n.inputs) ins.push_back(in.empty() ? nullptr : &g.initializers.at(in));
    std::vector<Tensor> outs(n.outputs.size());
    def->reference(n, ins, outs);
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) g.initializers[n.outputs[i]] = std::move(outs[i]);
    KILN_DEBUG("constant_folding: folded " << n.label());
    changed = true;
  }
  g.nodes = std::move(kept);
  return changed;
}

}  // namespace kiln::passes
