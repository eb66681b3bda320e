#include "runtime/cuda/tactic_select.h"

#include "ir/op_registry.h"
#include "runtime/cuda/instance.h"
#include "runtime/shape_instance.h"
#include "util/error.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

std::vector<std::vector<std::string>> cuda_tactic_candidates(const ir::Graph& g,
                                                             const std::vector<std::map<std::string, Shape>>& max_shapes,
                                                             size_t workspace_cap) {
  ir::register_all_ops();
  register_all_cuda_kernels();
  const GraphIndex idx(g);
  // Shapes at each profile's max (where inference succeeds): workspace sizes are checked there.
  std::vector<InstanceShapes> at_max;
  for (const auto& shapes : max_shapes) {
    std::vector<ir::ValueType> types;
    bool known = true;
    for (const auto& name : g.inputs) {
      auto it = shapes.find(name);
      const ir::ValueType* t = g.type_of(name);
      if (it == shapes.end()) {
        known &= t && t->is_static();
        types.push_back(t ? *t : ir::ValueType{});
      } else {
        types.push_back(ir::ValueType::of(t ? t->dtype : DType::Float32, it->second));
      }
    }
    if (!known) continue;
    try {
      at_max.push_back(infer_instance(idx, types));
    } catch (const Error& e) {
      KILN_WARN("build: shape inference at a profile's max shapes failed (" << e.what()
                                                                           << "); workspace sizes are not checked there");
    }
  }
  std::vector<std::vector<std::string>> out(g.nodes.size());
  std::vector<ir::ValueType> in_t, out_t;
  auto types = [&](const std::vector<int>& ids, const InstanceShapes* s, std::vector<ir::ValueType>& t) {
    t.clear();
    for (int v : ids) {
      if (v < 0) {
        t.emplace_back();
        continue;
      }
      if (s) {
        t.push_back(s->type[static_cast<size_t>(v)]);
        continue;
      }
      const std::string& name = idx.names[static_cast<size_t>(v)];
      if (const Tensor* c = idx.initializer[static_cast<size_t>(v)]) t.push_back(ir::ValueType::of(c->dtype(), c->shape()));
      else if (const ir::ValueType* vt = g.type_of(name)) t.push_back(*vt);
      else t.emplace_back();
    }
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const InstanceShapes* first = at_max.empty() ? nullptr : &at_max.front();
    types(idx.node_in[i], first && first->static_node[i] ? first : nullptr, in_t);
    for (const CudaTactic* t : cuda_tactics_for(n, in_t)) {
      bool fits = true;
      if (t->workspace && workspace_cap)
        for (const InstanceShapes& s : at_max) {
          // Sized where the node's shapes are known; a dynamic_output tactic (NonZero) only needs its inputs'.
          bool inputs_static = true;
          for (int v : idx.node_in[i]) inputs_static &= v < 0 || s.type[static_cast<size_t>(v)].is_static();
          if (!s.static_node[i] && !(t->dynamic_output && inputs_static)) continue;
          types(idx.node_in[i], &s, in_t);
          types(idx.node_out[i], &s, out_t);
          const size_t ws = t->workspace(n, in_t, out_t);
          if (ws > workspace_cap) {
            KILN_INFO("build: " << n.label() << ": tactic '" << t->name << "' needs " << ws
                                << " bytes of workspace, over workspace_size " << workspace_cap << "; not chosen");
            fits = false;
            break;
          }
        }
      if (fits) out[i].push_back(t->name);
    }
    out[i].push_back("host");
  }
  return out;
}

}  // namespace kiln::runtime::cuda
