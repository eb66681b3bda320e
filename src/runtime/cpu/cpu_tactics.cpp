#include "runtime/cpu/cpu_tactics.h"

#include "util/error.h"

namespace kiln::runtime::cpu {

std::vector<Tactic> tactics_for(const ir::Node& node) {
  std::vector<Tactic> out;
  const ir::OpDef* def = ir::OpRegistry::instance().find(node.domain, node.op_type, node.opset);
  if (def && def->reference) out.push_back({"ref", def->reference});
  return out;
}

ir::KernelFn find_tactic(const ir::Node& node) {
  for (auto& t : tactics_for(node))
    if (t.name == node.tactic) return t.run;
  if (!ir::OpRegistry::instance().known_op(node.domain, node.op_type))
    KILN_THROW(Unsupported, node.label() << ": op is not supported by this kiln build");
  KILN_THROW(PlanMismatch, node.label() << ": plan asks for CPU tactic '" << node.tactic
                                        << "', which this kiln build does not have");
}

}  // namespace kiln::runtime::cpu
