// CPU tactics: named kernels per op. "ref" is always the registry's reference kernel (the oracle).
#pragma once
#include <string>
#include <vector>

#include "ir/op_registry.h"

namespace kiln::runtime::cpu {

struct Tactic {
  std::string name;
  ir::KernelFn run;
};

// Tactics that can run `node` (always at least "ref" when the op is registered).
std::vector<Tactic> tactics_for(const ir::Node& node);
// The kernel for a tactic recorded in a plan; Unsupported / PlanMismatch when unknown.
ir::KernelFn find_tactic(const ir::Node& node);

}  // namespace kiln::runtime::cpu
