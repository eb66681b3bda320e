// kiln — an engine (immutable, shareable) and execution contexts (one per thread).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/model.h"
#include "kiln/profile.h"
#include "kiln/tensor.h"

namespace kiln {

namespace detail {
struct EngineImpl;
struct ContextImpl;
}  // namespace detail

using TensorMap = std::map<std::string, Tensor>;

// One node of the built graph, as inspect shows it.
struct NodeInfo {
  std::string name;
  std::string op;
  std::string dtype;   // dtype of the first output
  std::string tactic;  // chosen kernel (profile 0's)
  // The tactic of each profile, when the engine's profiles chose differently for some node (each timed at its own
  // opt shapes); empty when every profile runs `tactic`.
  std::vector<std::string> profile_tactics;
  // Floating-point operations of one run at profile 0's opt shapes (-1: unknown). Exact for GEMM-shaped ops
  // (2 x multiply-adds), an estimate (one per element) for the rest; docs/precision.md.
  int64_t flops = -1;
  bool gemm_like = false;  // Conv, ConvTranspose, MatMul, Gemm, Einsum, Attention
};

class ExecutionContext;

// A tensor in device memory (CUDA engines' enqueue). Not owned: the caller allocates and frees it.
struct DeviceTensor {
  DType dtype = DType::Float32;
  Shape shape;
  void* data = nullptr;
  // Outputs only: bytes available at `data`; 0 means the bytes of `shape` as given. enqueue() sets `shape` to
  // the output's actual shape.
  size_t capacity = 0;
};
using DeviceTensorMap = std::map<std::string, DeviceTensor>;

// Options of one execution context.
struct ContextOptions {
  // CUDA engines: the device ordinal (cuda:N) the context runs on; -1 = the engine's build device (cuda:0).
  int device = -1;
  // CUDA engines: capture each input-shape key's run as a CUDA graph and replay it (docs/cuda.md).
  bool use_cuda_graphs = false;
  // At most this many captured graphs are kept (least recently used evicted).
  size_t max_cuda_graphs = 8;
};

// What a context did and holds (CUDA engines; a CPU context reports device "cpu" and zeros).
struct ContextStats {
  std::string device;                 // "cpu" or "cuda:N"
  size_t weight_bytes = 0;            // device copy of the weights (shared by the engine's contexts)
  size_t arena_bytes = 0;             // activation arena allocated now
  size_t planned_arena_bytes = 0;     // largest liveness plan over the profiles' max shapes
  size_t activation_bytes = 0;        // the same plan's buffers summed without reuse (activations + workspace)
  size_t arena_growths = 0;           // times an instance did not fit and the arena grew (warned)
  size_t dynamic_pool_bytes = 0;      // buffer for data-dependent outputs (grows only when too small)
  size_t host_fallback_nodes = 0;     // nodes of the max-shape plans that run with the "host" fallback
  uint64_t cuda_graph_captures = 0;
  uint64_t cuda_graph_replays = 0;
  uint64_t cuda_graph_fallbacks = 0;  // runs that wanted a graph but ran normally (not capturable / capture failed)
};

// Device memory a CUDA engine plans (no GPU needed to compute it): per context one activation arena, the largest
// liveness plan over the profiles' max shapes. All zeros for CPU engines.
struct MemoryInfo {
  size_t planned_arena_bytes = 0;  // the arena a context allocates at activation
  size_t activation_bytes = 0;     // the same plan's buffers (activations + workspace) summed without reuse
  size_t workspace_bytes = 0;      // of which per-node workspace
  size_t host_fallback_nodes = 0;  // nodes that run with the "host" fallback tactic (reference kernel on the CPU)
};

class Engine {
 public:
  Engine() = default;
  explicit Engine(std::shared_ptr<const detail::EngineImpl> impl) : impl_(std::move(impl)) {}

  // Plan file I/O. load() checks magic, format version, build id, target and checksum.
  static Engine load(const std::string& path);
  static Engine deserialize(const std::string& bytes, const std::string& origin = "<memory>");
  // Writes atomically (temp file + rename); Io error when the path is unwritable.
  void save(const std::string& path) const;
  std::string serialize() const;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const std::vector<Profile>& profiles() const;
  std::vector<NodeInfo> nodes() const;
  std::string target() const;     // "cpu" or "cuda:sm_90 ..."
  std::string precision() const;  // "fp32", ...
  std::string kiln_version() const;
  std::string build_id() const;
  size_t weights_bytes() const;
  MemoryInfo memory_info() const;

  // CUDA engines: activation allocates the arena (and uploads the weights once per engine and device); Cuda
  // error naming the device where it does not exist, OutOfMemory naming the bytes.
  ExecutionContext create_context(const ContextOptions& options = {}) const;
  const std::shared_ptr<const detail::EngineImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<const detail::EngineImpl> impl_;
};

class ExecutionContext {
 public:
  explicit ExecutionContext(Engine engine, const ContextOptions& options = {});
  ~ExecutionContext();
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;

  // Runs the engine on named host tensors. Checks names, dtypes and ranks, selects the first profile
  // containing the shapes (ShapeOutOfProfile otherwise) and returns every graph output by name.
  TensorMap run(const TensorMap& inputs);
  // CUDA engines: runs asynchronously on caller-provided device buffers. The context's work first waits for
  // what `stream` (a cudaStream_t; nullptr = the legacy default stream) has enqueued so far, and `stream` then
  // waits for the context's work, so outputs are ready in stream order. Inputs with a default may be omitted.
  // Every output must be given with enough capacity; its shape is set. Output shapes that depend on data make
  // the call wait for the device. InvalidState on a CPU engine.
  void enqueue(const DeviceTensorMap& inputs, DeviceTensorMap& outputs, void* stream);
  // Output shapes for these input shapes (-1 for dims known only after running; an empty shape when the rank
  // is unknown too), without running.
  std::map<std::string, Shape> output_shapes(const std::map<std::string, Shape>& input_shapes);
  ContextStats stats() const;
  // Index of the profile the last run used (-1 before the first run).
  int last_profile() const;
  const Engine& engine() const;

 private:
  std::unique_ptr<detail::ContextImpl> impl_;
};

}  // namespace kiln
