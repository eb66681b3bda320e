// The CUDA executor: runs an engine's graph on one CUDA device (docs/cuda.md, docs/ARCHITECTURE.md).
// One CudaExecutor per ExecutionContext: its own stream, library handles, activation arena, run-time buffer for
// data-dependent outputs and CUDA graphs; the weights are the engine's, shared (weights.h).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "runtime/engine_impl.h"

namespace kiln::runtime::cuda {

struct ExecutorOptions {
  int device = 0;
  bool use_cuda_graphs = false;
  size_t max_cuda_graphs = 8;
};

class CudaExecutor {
 public:
  // Activation: device, stream, handles, weights (once per engine), the arena at the largest profile plan.
  CudaExecutor(std::shared_ptr<const detail::EngineImpl> engine, const ExecutorOptions& options);
  ~CudaExecutor();
  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  // Host tensors for every graph input (defaults included), checked by the caller; synchronous.
  TensorMap run(const TensorMap& inputs);
  // Device tensors; inputs omitted fall back to their defaults. See ExecutionContext::enqueue.
  void enqueue(const DeviceTensorMap& inputs, DeviceTensorMap& outputs, void* stream);
  std::map<std::string, Shape> output_shapes(const std::map<std::string, Shape>& input_shapes);
  ContextStats stats() const;
  // Profiling mode (kiln::profile_layers): `warmup` plain runs, then `iterations` runs of `inputs` (as run() takes
  // them) without CUDA graphs, each node's step between two CUDA events on the context's stream. Per run, per node
  // of the graph, the milliseconds between its events (about 0 for nodes that launch nothing).
  std::vector<std::vector<double>> profile_nodes(const TensorMap& inputs, int warmup, int iterations);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The arena plan of a CUDA engine at each profile's max shapes (host only: needs no GPU); Engine::memory_info.
MemoryInfo plan_memory_info(const detail::EngineImpl& e);

// Runs a bare graph on CUDA device `device`, host tensors in and out: nodes without a tactic get their heuristic
// CUDA tactic (the first registered one that supports them) or the host fallback. For tests (every op test also runs
// here, compared with the reference kernels) and the conformance runner. Throws kiln::Error.
TensorMap run_graph_cuda(const ir::Graph& g, const TensorMap& inputs, int device = 0, bool allow_tf32 = false);

}  // namespace kiln::runtime::cuda
