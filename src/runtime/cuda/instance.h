// One execution plan of a graph for one input-shape key: every value's shape and placement (weights, arena
// offset, run-time buffer or host only), each node's step (skip, write host-known values, kernel with its tactic,
// or run-time inference past a data-dependent shape) and the arena plan by liveness. Host C++ (no device calls).
#pragma once
#include <memory>
#include <vector>

#include "runtime/cuda/kernel.h"
#include "runtime/memory_plan.h"
#include "runtime/shape_instance.h"

namespace kiln::runtime::cuda {

enum class Place : uint8_t {
  None,     // omitted / never materialized
  Weight,   // an initializer: the engine's device weights
  Bound,    // an input of the graph: bound by the caller (its arena slot when inputs_in_arena)
  Arena,    // a static-shaped value with an arena offset
  Dynamic,  // a buffer found at run time (data-dependent shape or a dynamic-output tactic)
  Alias,    // the buffer of the node's first input (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout)
  Host,     // host-known and never needed on the device
};

struct Step {
  enum Kind : uint8_t { Skip, Fill, Kernel, Dynamic, Alias };
  Kind kind = Skip;
  const CudaTactic* tactic = nullptr;  // Kernel
  bool presets_outputs = true;         // Kernel: the executor sets the outputs' shapes and buffers
  int workspace = -1;                  // Kernel: request index of its workspace, -1 when none
  size_t workspace_bytes = 0;
  std::vector<int> fill;               // Fill: values to write from the host
};

struct InstanceOptions {
  size_t workspace_cap = 0;      // BuildConfig::workspace_size (0: none)
  bool inputs_in_arena = true;   // graph inputs get arena slots (the top-level graph); false for subgraphs
  // Per node of the graph: copies carrying the active profile's tactics (EngineImpl::profile_tactics), kept alive
  // by the caller as long as the instance; null: the graph's own nodes (node.tactic).
  const std::vector<ir::Node>* nodes = nullptr;
};

struct Instance {
  const GraphIndex* idx = nullptr;
  const std::vector<ir::Node>* nodes = nullptr;  // InstanceOptions::nodes
  // Node i as its steps run it: with the tactic of the profile this instance was planned for.
  const ir::Node& node(size_t i) const { return nodes ? (*nodes)[i] : idx->graph->nodes[i]; }
  InstanceShapes shapes;
  std::vector<Step> steps;           // per node
  std::vector<Place> place;          // per value
  std::vector<int> request;          // per value: index into requests, -1 when none
  std::vector<BufferRequest> requests;
  MemoryPlan plan;
  bool capturable = true;   // every step can run inside a CUDA graph
  bool all_static = true;   // no Dynamic step and no dynamic-output kernel: every buffer is planned
  size_t host_fallbacks = 0;
  size_t aliases = 0;          // nodes that reuse their input's buffer instead of running
  size_t workspace_bytes = 0;  // sum over nodes
};

// The host fallback tactic ("host"): copies the inputs to the host, runs the reference kernel and copies the
// outputs back. Not capturable; allocates its outputs with ctx.alloc_dynamic when the executor did not.
const CudaTactic& host_fallback_tactic();
bool is_host_fallback(const CudaTactic* t);

// The tactic for a node with these input types: the one its plan records (PlanMismatch when this build lacks it),
// or for a bare graph the first CUDA tactic supporting it whose workspace fits `workspace_cap`, else "host".
const CudaTactic* choose_tactic(const ir::Node& n, const std::vector<ir::ValueType>& in,
                                const std::vector<ir::ValueType>& out, size_t workspace_cap);
// Workspace bytes of a tactic for the node at these types; OutOfMemory when over a non-zero cap.
size_t tactic_workspace(const CudaTactic& t, const ir::Node& n, const std::vector<ir::ValueType>& in,
                        const std::vector<ir::ValueType>& out, size_t workspace_cap);

// A node's tactic at these types and what the executor owes it: whether it sets the outputs' shapes and buffers
// before the call, and the workspace its WorkspaceFn asks for. Inputs are static; outputs may be non-static
// (a dynamic_output tactic run before its output shapes are known): every tactic gets its workspace either way, so
// a dynamic_output tactic's WorkspaceFn must size it from the inputs alone. Used at plan time (build_instance) and
// at run time (dynamic steps), so both agree. When the outputs are not static and the tactic is not dynamic_output
// (it cannot run until they are known), presets_outputs is false and no workspace is asked for.
struct StepChoice {
  const CudaTactic* tactic = nullptr;
  bool presets_outputs = true;
  size_t workspace_bytes = 0;
};
StepChoice choose_step(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>& out,
                       size_t workspace_cap);

// Whether node i of the instance may take its first input's buffer as its output (a view op with static shapes
// and the same element type and count, no second output).
bool is_view_op(const ir::Node& n);

// Builds the plan for these input types (static shapes, one per idx.inputs).
std::unique_ptr<Instance> build_instance(const GraphIndex& idx, const std::vector<ir::ValueType>& input_types,
                                         const InstanceOptions& opts);

}  // namespace kiln::runtime::cuda
