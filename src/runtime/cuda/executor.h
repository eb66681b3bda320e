// The CUDA executor: runs an engine's graph on one CUDA device (docs/ARCHITECTURE.md, issue 5).
// Only the entry points other layers and tests call are declared here so far; the executor itself is being written.
#pragma once
#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::runtime::cuda {

// Runs a bare graph on CUDA device `device`, host tensors in and out: nodes without a tactic get their heuristic
// CUDA tactic (the first registered one that supports them) or the host fallback. For tests (every op test also runs
// here, compared with the reference kernels) and the conformance runner. Throws kiln::Error.
TensorMap run_graph_cuda(const ir::Graph& g, const TensorMap& inputs, int device = 0, bool allow_tf32 = false);

}  // namespace kiln::runtime::cuda
