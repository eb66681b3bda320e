// CudaExecutor's state, shared by its source files (executor.cpp: activation and the API; frame.cpp: running an
// instance's steps; graphs.cpp: CUDA graph capture and replay). Host C++.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/executor.h"
#include "runtime/cuda/instance.h"
#include "runtime/cuda/weights.h"
#include "runtime/target.h"

namespace kiln::runtime::cuda {

using ShapeKey = std::vector<Shape>;

// Run-time buffers for data-dependent outputs (and subgraph runs): bump allocation within a run from chunks;
// a run that needed more than one chunk makes reset() merge them into one, so a steady workload allocates nothing.
class DynamicPool {
 public:
  void* alloc(size_t bytes);
  void reset();  // at the start of a run (no buffer of the previous run is used afterwards)
  size_t capacity() const;

 private:
  std::vector<DeviceBuffer> chunks_;
  size_t used_ = 0;      // in the last chunk
  size_t run_total_ = 0; // bytes handed out this run
};

// The values of one running instance.
struct Frame {
  const Instance* inst = nullptr;
  char* base = nullptr;          // where the instance's plan offsets point (the arena or a pool block)
  std::vector<DTensor> dv;       // per value: device tensor (data nullptr when not on the device)
  std::vector<Tensor> host;      // per value, instances with dynamic steps only: host values known at run time
  const Tensor* host_of(size_t v) const {
    const Tensor& t = host.empty() ? inst->shapes.host[v] : host[v];
    return t.empty() ? nullptr : &t;
  }
};

struct CapturedGraph {
  cudaGraphExec_t exec = nullptr;
  uint64_t last_use = 0;
};

struct CudaExecutor::Impl {
  std::shared_ptr<const detail::EngineImpl> engine;
  ExecutorOptions opts;
  CudaTarget target;
  int device = 0;
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;
  cudaEvent_t ev_in = nullptr, ev_out = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  KernelContext kctx;
  std::shared_ptr<const DeviceWeights> weights;

  std::unique_ptr<GraphIndex> top;
  // Per profile: the graph's nodes with that profile's tactics (EngineImpl::profile_tactics); empty when the engine
  // has one tactic per node. Instances point into these.
  std::vector<std::vector<ir::Node>> nodes_by_profile;
  std::vector<DType> input_dtype;         // per graph input: its type in the graph, else the first run's
  std::vector<uint8_t> input_dtype_known;
  std::map<ShapeKey, std::unique_ptr<Instance>> instances;
  std::map<const ir::Graph*, std::unique_ptr<GraphIndex>> sub_index;
  std::map<std::pair<const ir::Graph*, ShapeKey>, std::unique_ptr<Instance>> sub_instances;

  DeviceBuffer arena;
  DynamicPool pool;

  std::map<ShapeKey, CapturedGraph> graphs;
  std::set<ShapeKey> not_captured;  // keys whose capture failed or cannot be captured (warned once)
  uint64_t use_clock = 0;

  ContextStats st;
  // Profiling (profile_nodes): while set, execute() records events[2 i] and events[2 i + 1] around node i's step of
  // the top-level graph.
  const std::vector<cudaEvent_t>* prof_events = nullptr;

  ~Impl();
  void activate();
  // run(): inputs copied into their arena slots, the steps (through a CUDA graph when allowed), outputs copied back.
  TensorMap run_host(const TensorMap& inputs, bool allow_graph);
  // Checks (or, for a graph without input types, learns) the dtype of graph input k.
  void check_input_dtype(size_t k, DType given);
  // The top-level plan for input shapes in graph-input order, built and cached on first use.
  const Instance& plan_for(const ShapeKey& key);
  // The same, with the arena grown (with a warning) when the plan does not fit.
  const Instance& instance(const ShapeKey& key);
  // Device tensors of a frame's weights and planned buffers; inputs / outputs bound by the caller afterwards.
  void init_frame(Frame& f, const Instance& inst, char* base);
  void execute(Frame& f);
  void run_dynamic_step(Frame& f, size_t node);
  void launch(Frame& f, size_t node, const CudaTactic& t, void* ws, size_t ws_bytes, bool presets);
  std::vector<DTensor> run_subgraph(const ir::Graph& g, const std::vector<std::pair<std::string, DTensor>>& captured);
  // Puts a host-known value on the device (a pool buffer) if it is not there yet.
  void materialize(Frame& f, size_t v);

  // CUDA graphs (graphs.cpp): runs the frame by replaying / capturing; false when the instance cannot be captured
  // (the caller runs it normally).
  bool run_with_graph(Frame& f, const ShapeKey& key);
  void clear_graphs();
};

}  // namespace kiln::runtime::cuda
