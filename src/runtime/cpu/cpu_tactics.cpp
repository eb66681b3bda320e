#include "runtime/cpu/cpu_tactics.h"

#include <map>
#include <mutex>
#include <utility>

#include "util/error.h"

namespace kiln::runtime::cpu {
namespace {

std::map<std::pair<std::string, std::string>, std::vector<Tactic>>& registry() {
  static std::map<std::pair<std::string, std::string>, std::vector<Tactic>> r;
  return r;
}

}  // namespace

void register_cpu_tactic(const std::string& domain, const std::string& op_type, Tactic tactic) {
  registry()[{domain, op_type}].push_back(std::move(tactic));
}

void register_all_cpu_tactics() {
  static std::once_flag once;
  std::call_once(once, [] {
    ir::register_all_ops();
    register_gemm_tactics();
    register_conv_tactics();
    register_eltwise_tactics();
    register_norm_tactics();
    register_pool_tactics();
    register_data_tactics();
    register_reduce_tactics();
  });
}

std::vector<Tactic> tactics_for(const ir::Node& node, const std::vector<const ir::ValueType*>& in) {
  register_all_cpu_tactics();
  std::vector<Tactic> out;
  const ir::OpDef* def = ir::OpRegistry::instance().find(node.domain, node.op_type, node.opset);
  if (!def || !def->reference) return out;  // the op (at this opset) is not runnable at all
  auto it = registry().find({node.domain, node.op_type});
  if (it != registry().end())
    for (const auto& t : it->second)
      if (!t.supports || t.supports(node, in)) out.push_back(t);
  out.push_back({"ref", def->reference, nullptr});
  return out;
}

std::vector<Tactic> tactics_for(const ir::Graph& g, const ir::Node& node) {
  std::vector<ir::ValueType> owned;  // types of constant inputs
  owned.reserve(node.inputs.size());
  std::vector<const ir::ValueType*> in;
  for (const auto& name : node.inputs) {
    if (name.empty()) {
      in.push_back(nullptr);
      continue;
    }
    auto c = g.initializers.find(name);
    if (c != g.initializers.end()) {
      owned.push_back(ir::ValueType::of(c->second.dtype(), c->second.shape()));
      in.push_back(&owned.back());
    } else {
      in.push_back(g.type_of(name));
    }
  }
  return tactics_for(node, in);
}

ir::KernelFn find_tactic(const ir::Node& node) {
  register_all_cpu_tactics();
  const ir::OpDef* def = ir::OpRegistry::instance().find(node.domain, node.op_type, node.opset);
  if (def && def->reference) {
    if (node.tactic == "ref") return def->reference;
    auto it = registry().find({node.domain, node.op_type});
    if (it != registry().end())
      for (const auto& t : it->second)
        if (t.name == node.tactic) return t.run;
  }
  if (!ir::OpRegistry::instance().known_op(node.domain, node.op_type))
    KILN_THROW(Unsupported, node.label() << ": op is not supported by this kiln build");
  if (!def || !def->reference)
    KILN_THROW(Unsupported, node.label() << ": op is not supported at opset " << node.opset << " by this kiln build");
  KILN_THROW(PlanMismatch, node.label() << ": plan asks for CPU tactic '" << node.tactic
                                        << "', which this kiln build does not have");
}

}  // namespace kiln::runtime::cpu
