#include <algorithm>

#include "ir/op_registry.h"
#include "ops/common.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {

bool has_subgraph(const ir::Node& n) {
  for (const auto& kv : n.attrs)
    if (std::holds_alternative<ir::GraphPtr>(kv.second)) return true;
  return false;
}

bool has_subgraphs(const ir::Graph& g) {
  return std::any_of(g.nodes.begin(), g.nodes.end(), [](const ir::Node& n) { return has_subgraph(n); });
}

const Tensor* fixed_initializer(const ir::Graph& g, const std::string& v) {
  if (v.empty() || g.input_defaults.count(v) || std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end())
    return nullptr;
  auto it = g.initializers.find(v);
  return it == g.initializers.end() ? nullptr : &it->second;
}

bool is_float3(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

bool same_dims(const ir::ValueType& a, const ir::ValueType& b) {
  if (!a.has_rank || !b.has_rank || a.dims.size() != b.dims.size()) return false;
  for (size_t d = 0; d < a.dims.size(); ++d)
    if (!ops::same_dim(a.dims[d], b.dims[d])) return false;
  return true;
}

bool same_shape(const ir::ValueType* a, const ir::ValueType* b, const std::string& v, const std::string& r,
                const std::vector<ValueShapes>& samples) {
  if (!a || !b) return false;
  if (same_dims(*a, *b)) return true;
  if (!a->has_rank || !b->has_rank || a->dims.size() != b->dims.size() || samples.empty()) return false;
  for (const ValueShapes& s : samples) {
    auto ia = s.find(v), ib = s.find(r);
    if (ia == s.end() || ib == s.end() || ia->second != ib->second) return false;
  }
  return true;
}

size_t splice_fused(ir::Graph& g, const std::vector<int>& replace_at, const std::vector<bool>& drop,
                    std::vector<ir::Node>& fused) {
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (replace_at[i] >= 0) kept.push_back(std::move(fused[static_cast<size_t>(replace_at[i])]));
    else if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(kept);
  return g.nodes.size();
}

std::vector<Pass> cpu_pipeline(int optimization_level) {
  std::vector<Pass> p = {{"constant_folding", fold_constants}, {"dead_code_elimination", eliminate_dead_code}};
  if (optimization_level >= 1) {
    p.push_back({"batchnorm_folding", fold_batchnorm_into_conv});
    p.push_back({"cast_cleanup", remove_redundant_casts});
    p.push_back({"dead_code_elimination", eliminate_dead_code});
  }
  return p;
}

std::vector<std::string> run_pipeline(ir::Graph& g, const std::vector<Pass>& passes) {
  std::vector<std::string> changed;
  ir::infer_types(g);
  for (const Pass& p : passes) {
    size_t before = g.nodes.size();
    if (p.run(g)) {
      changed.push_back(p.name);
      ir::infer_types(g);
      KILN_DEBUG("pass " << p.name << ": " << before << " -> " << g.nodes.size() << " nodes");
    }
  }
  return changed;
}

}  // namespace kiln::passes
