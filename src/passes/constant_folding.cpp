// Constant and shape-subgraph folding.
// Matches: (a) any node whose inputs are all constants, (b) Shape / Size of a value whose shape is static
// after the profile specialized the inputs, (c) Slice / Gather (other inputs constant) of a Shape whose selected
// dims are static though others are not (a dynamic batch: Slice(Shape(x), -1) is still the static head size). The node is evaluated once with its reference kernel (the
// oracle) and its outputs become initializers. Valid because kernels are pure functions of their inputs;
// (b) is valid because every shape the engine accepts at run time equals the static one. Chains
// Shape -> Gather -> Concat -> Reshape fold completely when shapes are known.
#include <algorithm>
#include <map>

#include "ir/op_registry.h"
#include "passes/pass.h"
#include "util/error.h"
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

// (c): runs the Slice / Gather reference on the Shape's dim positions, then reads the selected dims.
bool fold_static_part_of_shape(ir::Graph& g, const ir::Node& n, const std::map<std::string, const ir::Node*>& shapes,
                               const ir::OpDef* def) {
  if (n.domain != "" || (n.op_type != "Slice" && n.op_type != "Gather") || n.inputs.empty() || !def) return false;
  auto it = shapes.find(n.inputs[0]);
  if (it == shapes.end() || n.outputs.size() != 1) return false;
  const ir::Node& sh = *it->second;
  const ir::ValueType* t = sh.has_input(0) ? g.type_of(sh.inputs[0]) : nullptr;
  if (!t || !t->has_rank) return false;
  std::vector<const Tensor*> ins = {nullptr};
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    if (!n.inputs[i].empty() && !g.initializers.count(n.inputs[i])) return false;
    ins.push_back(n.inputs[i].empty() ? nullptr : &g.initializers.at(n.inputs[i]));
  }
  const int64_t r = static_cast<int64_t>(t->dims.size());
  int64_t start = sh.attr_int("start", 0), end = sh.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  std::vector<int64_t> pos;
  for (int64_t i = start; i < end; ++i) pos.push_back(i);
  const Tensor positions = Tensor::from_vector(DType::Int64, {static_cast<int64_t>(pos.size())}, pos);
  ins[0] = &positions;
  std::vector<Tensor> outs(1);
  try {
    def->reference(n, ins, outs);
  } catch (const Error&) {
    return false;  // left for run time, where it fails or not as it would have
  }
  Tensor& v = outs[0];
  if (v.dtype() != DType::Int64) return false;
  for (int64_t k = 0; k < v.numel(); ++k) {
    const Dim& d = t->dims[static_cast<size_t>(v.as<int64_t>()[k])];
    if (!d.is_static()) return false;
    v.mutable_as<int64_t>()[k] = d.value;
  }
  g.initializers[n.outputs[0]] = std::move(v);
  return true;
}

}  // namespace constant_folding_detail

namespace constant_folding_detail {
bool fold_round(ir::Graph& g);
}

// Rounds until nothing folds: a fold can make a shape static (a Reshape's folded target), which lets the Shape /
// Slice / Sqrt chains that read it fold in the next round (the TorchScript exporter's attention scale).
bool fold_constants(ir::Graph& g) {
  bool changed = false;
  for (int round = 0; round < 8 && constant_folding_detail::fold_round(g); ++round) {
    changed = true;
    ir::infer_types(g);
  }
  return changed;
}

bool constant_folding_detail::fold_round(ir::Graph& g) {
  using namespace constant_folding_detail;
  auto& reg = ir::OpRegistry::instance();
  bool changed = false;
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());  // never reallocates: shape_of points into it
  std::map<std::string, const ir::Node*> shape_of;  // Shape output -> its (kept) Shape node, for (c)
  for (auto& n : g.nodes) {
    if (fold_shape_of_static(g, n)) {
      changed = true;
      continue;
    }
    if (n.has_input(0) && shape_of.count(n.inputs[0]) &&
        fold_static_part_of_shape(g, n, shape_of, reg.find(n.domain, n.op_type, n.opset))) {
      KILN_DEBUG("constant_folding: folded " << n.label() << " (static dims of a shape)");
      changed = true;
      continue;
    }
    bool all_const = !has_subgraph(n);  // a subgraph reads outer-scope values: never fold it here
    for (const auto& in : n.inputs) all_const &= in.empty() || g.is_constant(in);
    const ir::OpDef* def = reg.find(n.domain, n.op_type, n.opset);
    if (!all_const || !def || !def->reference || !output_small_enough(g, n)) {
      kept.push_back(std::move(n));
      const ir::Node& k = kept.back();
      if (k.domain == "" && k.op_type == "Shape" && k.outputs.size() == 1) shape_of[k.outputs[0]] = &k;
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
