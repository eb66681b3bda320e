// Runs an engine's graph on the CPU, node by node, with the tactic each node records (or, for an engine with
// per-profile tactics, the tactic of the profile the run's input shapes select).
// Intermediate tensors are released after their last use. Values live in numbered slots resolved once, when the
// executor is made, so a run does no name lookups (graphs of a thousand small nodes spend real time there).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/engine.h"
#include "runtime/engine_impl.h"

namespace kiln::runtime::cpu {

class CpuExecutor {
 public:
  explicit CpuExecutor(std::shared_ptr<const detail::EngineImpl> engine);
  TensorMap run(const TensorMap& inputs);
  // Per-node wall time, summed over the runs since profiling was switched on (for bench/cpu_profile.cpp).
  void set_profiling(bool on);
  const std::vector<double>& node_ms() const { return node_ms_; }

 private:
  // An input of a node: a constant (initializer), a slot, or omitted.
  struct Operand {
    const Tensor* constant = nullptr;
    int slot = -1;
  };
  struct Step {
    std::vector<Operand> ins;
    std::vector<int> outs;   // slot per output (-1: omitted output)
    std::vector<int> frees;  // slots dead after this node
  };
  std::shared_ptr<const detail::EngineImpl> engine_;
  std::vector<ir::KernelFn> kernels_;  // per node (node.tactic)
  std::vector<std::vector<ir::KernelFn>> profile_kernels_;  // per profile, per node (EngineImpl::profile_tactics)
  std::vector<Step> steps_;            // per node
  std::vector<std::pair<std::string, int>> inputs_;    // graph input -> slot
  std::vector<std::pair<std::string, Operand>> outputs_;  // graph output -> constant or slot
  size_t slots_ = 0;
  bool profiling_ = false;
  std::vector<double> node_ms_;
};

// Per node: the values that are dead after it (last read there; graph outputs and constants are never listed).
std::vector<std::vector<std::string>> plan_frees(const ir::Graph& g);

// A node's inputs by name: the graph's initializers, else `env` (the values computed so far); nullptr for an
// omitted input. InvalidModel naming the node and the input when one has not been computed.
void gather_inputs(const ir::Graph& g, const ir::Node& n, const std::unordered_map<std::string, Tensor>& env,
                   std::vector<const Tensor*>& ins);

// Runs a bare graph with reference kernels (the oracle path, used by tests and folding).
TensorMap run_graph_reference(const ir::Graph& g, const TensorMap& inputs);
// Runs a subgraph (an If branch) with reference kernels; `captured` binds its outer-scope names and inputs.
TensorMap run_subgraph_reference(const ir::Graph& g, const TensorMap& captured);
// Installs run_subgraph_reference as ir::run_subgraph's implementation (idempotent; done by the executors).
void register_subgraph_runner();

}  // namespace kiln::runtime::cpu
