// kiln — where an engine's time goes: each node's time in a run (`kiln bench --layers`, docs/cli.md).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "kiln/engine.h"

namespace kiln {

// One node of the engine's graph in a layer profile.
struct LayerTime {
  size_t index = 0;       // position in the engine's graph (Engine::nodes())
  std::string name;       // the node's name, or "<op>_<index>" when it has none
  std::string op;
  std::string dtype;      // of the first output
  std::string tactic;     // the kernel that ran (as recorded in the plan for the profile the inputs select)
  double median_ms = 0;   // median over the profiled runs of the node's time in one run
  double share = 0;       // median_ms / LayerProfile::layers_ms, in [0, 1]
};

struct LayerProfileOptions {
  int iterations = 20;  // profiled runs; medians are over these (and the end-to-end runs: as many)
  int warmup = 3;       // unprofiled runs before each series
  int device = -1;      // CUDA engines: the device (ContextOptions::device)
  // CUDA engines: whether the end-to-end runs replay CUDA graphs (as a context with use_cuda_graphs would). The
  // profiled runs never use CUDA graphs: each node's work is bracketed by CUDA events.
  bool use_cuda_graphs = false;
};

struct LayerProfile {
  std::vector<LayerTime> layers;  // every node of the graph, slowest first (ties in graph order)
  double layers_ms = 0;           // sum of the layers' medians
  // Median of whole runs on the same inputs with an ordinary context (not profiled): on CUDA engines enqueue() on
  // device buffers timed with CUDA events (no host copies), on CPU engines run() timed with steady_clock. The gap
  // to layers_ms is what runs between the nodes: kernel launch and host overhead (or, with CUDA graphs, what the
  // graph saves).
  double end_to_end_ms = 0;
  int iterations = 0;
  int profile = -1;    // the optimization profile the inputs selected (its tactics ran)
  std::string device;  // "cpu" or "cuda:N"
  std::string method;  // "cuda events" or "steady_clock"
  std::string profile_note;  // how the profiled runs differ from ordinary ones (e.g. "no CUDA graphs")
};

// Profiles `engine` on `inputs` (host tensors, checked as ExecutionContext::run checks them; inputs with a default
// may be omitted). Creates its own contexts. Each node's time is taken around its kernel(s): on CUDA engines with a
// pair of CUDA events per node on the context's stream (nodes that launch nothing, such as shape arithmetic done on
// the host or views that reuse their input's buffer, take ~0), on CPU engines with steady_clock around the node's
// kernel. Throws kiln::Error (InvalidArgument for iterations < 1 or bad inputs).
LayerProfile profile_layers(const Engine& engine, const TensorMap& inputs, const LayerProfileOptions& options = {});

}  // namespace kiln
