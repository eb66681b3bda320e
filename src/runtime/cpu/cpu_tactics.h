// CPU tactics: named kernels per op. "ref" is always the registry's reference kernel (the oracle) and always a
// candidate; faster tactics ("blas", "im2col_blas", "fast", ...) register here per op type (one family per file:
// cpu_gemm.cpp, cpu_conv.cpp, ...). The builder times the candidates of a node and records the winner's name in the
// plan (docs/cpu.md).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/op_registry.h"

namespace kiln::runtime::cpu {

// Whether a tactic can run `node` with these input types (nullptr for an omitted optional input).
using SupportsFn = std::function<bool(const ir::Node& node, const std::vector<const ir::ValueType*>& in)>;

struct Tactic {
  std::string name;
  ir::KernelFn run;
  SupportsFn supports;  // null: every node of the op
};

// Adds a tactic for (domain, op_type); candidates are listed in registration order (the first is the heuristic).
void register_cpu_tactic(const std::string& domain, const std::string& op_type, Tactic tactic);
// Registers every CPU tactic family (idempotent).
void register_all_cpu_tactics();

// Tactics that can run `node` with these input types: the registered ones that support it, heuristic first, then
// "ref" (when the op has a reference kernel).
std::vector<Tactic> tactics_for(const ir::Node& node, const std::vector<const ir::ValueType*>& in);
// The same, with the input types taken from `g` (initializers and g.types).
std::vector<Tactic> tactics_for(const ir::Graph& g, const ir::Node& node);
// The kernel for a tactic recorded in a plan; Unsupported / PlanMismatch when unknown.
ir::KernelFn find_tactic(const ir::Node& node);

// Family registration (each in its own file).
void register_gemm_tactics();
void register_conv_tactics();
void register_eltwise_tactics();
void register_norm_tactics();
void register_pool_tactics();
void register_data_tactics();
void register_reduce_tactics();

}  // namespace kiln::runtime::cpu
