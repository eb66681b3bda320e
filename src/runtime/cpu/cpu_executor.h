// Runs an engine's graph on the CPU, node by node, with the tactic each node records.
// Intermediate tensors are released after their last use.
#pragma once
#include <memory>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/engine.h"
#include "runtime/engine_impl.h"

namespace kiln::runtime::cpu {

class CpuExecutor {
 public:
  explicit CpuExecutor(std::shared_ptr<const detail::EngineImpl> engine);
  TensorMap run(const TensorMap& inputs);

 private:
  std::shared_ptr<const detail::EngineImpl> engine_;
  std::vector<ir::KernelFn> kernels_;            // per node
  std::vector<std::vector<std::string>> frees_;  // per node: values dead after it
};

// Runs a bare graph with reference kernels (the oracle path, used by tests and folding).
TensorMap run_graph_reference(const ir::Graph& g, const TensorMap& inputs);
// Runs a subgraph (an If branch) with reference kernels; `captured` binds its outer-scope names and inputs.
TensorMap run_subgraph_reference(const ir::Graph& g, const TensorMap& captured);
// Installs run_subgraph_reference as ir::run_subgraph's implementation (idempotent; done by the executors).
void register_subgraph_runner();

}  // namespace kiln::runtime::cpu
