// The contract between the CUDA executor (src/runtime/cuda/executor.*) and the CUDA op kernels
// (src/runtime/cuda/kernels/<family>.cu). Host C++: no device code here.
//
// The executor, per input-shape key, infers every value's shape on the host (OpDef::infer with the host values it
// knows: initializers and shape-like values computed from shapes), plans device buffers and then calls each node's
// tactic with device tensors whose shapes and buffers are already set. A kernel enqueues its work on ctx.stream,
// never synchronizes the stream (unless its tactic says capturable = false) and never allocates device memory: scratch
// comes from ctx.workspace (sized by the tactic's workspace function at plan time).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::runtime::cuda {

// A tensor in device memory (not owned).
struct DTensor {
  DType dtype = DType::Float32;
  Shape shape;
  void* data = nullptr;
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

struct KernelArgs;

// What a kernel may use while it runs. Owned by the executor (one per ExecutionContext).
struct KernelContext {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  int device = 0;
  const cudaDeviceProp* props = nullptr;
  bool allow_tf32 = false;  // BuildConfig::enable_tf32: float32 GEMM / conv may use TF32 tensor cores
  // Scratch for the node being run: at least what its tactic's workspace function asked for (at plan time, or for a
  // node whose input shapes are known only at run time, then). Every tactic gets it, dynamic_output ones included.
  void* workspace = nullptr;
  size_t workspace_size = 0;
  // Only for tactics with dynamic_output: allocates a device buffer for an output whose size the kernel learns
  // while running (NonZero). Valid until the run ends.
  std::function<void*(size_t bytes)> alloc_dynamic;
  // Only for tactics with dynamic_output: runs a subgraph (an If branch) on the device with `captured` binding its
  // inputs / outer-scope names; returns its outputs (buffers valid until the run ends).
  std::function<std::vector<DTensor>(const ir::Graph& g, const std::vector<std::pair<std::string, DTensor>>& captured)>
      run_subgraph;
};

struct KernelArgs {
  const ir::Node& node;
  // Device inputs; nullptr for an omitted optional input. Constant inputs (initializers) are device copies too.
  std::vector<const DTensor*> in;
  // Host value of input i when the executor knows it (initializers and values computed on the host from shapes,
  // like a Reshape's shape); nullptr otherwise. Kernels read attributes-like inputs (axes, pads, starts, k) here.
  std::vector<const Tensor*> host_in;
  // Outputs: shape and buffer set by the executor before the call. For a dynamic_output tactic, shape is empty and
  // data nullptr: the kernel sets both (buffer from ctx.alloc_dynamic). An omitted output has data nullptr.
  std::vector<DTensor> out;
};

using KernelFn = std::function<void(const KernelContext& ctx, KernelArgs& args)>;
// Scratch bytes the node needs at these input / output types; 0 when none. Inputs are static. Outputs are static
// except for a dynamic_output tactic whose output shapes are data-dependent (NonZero): its function must size the
// workspace from the inputs (and attributes) alone.
using WorkspaceFn = std::function<size_t(const ir::Node& node, const std::vector<ir::ValueType>& in,
                                         const std::vector<ir::ValueType>& out)>;
// Whether a tactic can run the node with these input types (null / omitted inputs have has_rank = false and
// dtype Float32); the first registered tactic that supports a node is the heuristic choice.
using SupportsFn = std::function<bool(const ir::Node& node, const std::vector<ir::ValueType>& in)>;

struct CudaTactic {
  std::string name;          // recorded in the plan: "cuda", "cublaslt", "cudnn", "host", ...
  SupportsFn supports;       // null: supports every node of the op
  KernelFn run;
  WorkspaceFn workspace;     // null: 0 bytes
  bool dynamic_output = false;  // output shapes known only after running (NonZero, If)
  bool capturable = true;       // false when the kernel synchronizes with the host (never inside a CUDA graph)
};

// Registry of CUDA tactics by (domain, op type), in registration order.
void register_cuda_tactic(const std::string& domain, const std::string& op_type, CudaTactic tactic);
// Every registered tactic of the op (empty when none).
std::vector<const CudaTactic*> cuda_tactics(const std::string& domain, const std::string& op_type);
// The tactics that support `node` with these input types, heuristic order (the "host" fallback is never listed here).
std::vector<const CudaTactic*> cuda_tactics_for(const ir::Node& node, const std::vector<ir::ValueType>& in);
// The tactic named `name` of the node's op, matched on the part before '#' ("cublaslt#<variant>" is "cublaslt";
// the kernel reads the variant from node.tactic, tactic_variant.h); nullptr when this build has none.
const CudaTactic* find_cuda_tactic(const ir::Node& node, const std::string& name);

// Registers every kernel family (idempotent). Each family's register function is declared in kernels/families.h.
void register_all_cuda_kernels();

}  // namespace kiln::runtime::cuda
