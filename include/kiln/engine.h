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
  std::string tactic;  // chosen kernel
  // Floating-point operations of one run at profile 0's opt shapes (-1: unknown). Exact for GEMM-shaped ops
  // (2 x multiply-adds), an estimate (one per element) for the rest; docs/precision.md.
  int64_t flops = -1;
  bool gemm_like = false;  // Conv, ConvTranspose, MatMul, Gemm, Einsum, Attention
};

class ExecutionContext;

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

  ExecutionContext create_context() const;
  const std::shared_ptr<const detail::EngineImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<const detail::EngineImpl> impl_;
};

class ExecutionContext {
 public:
  explicit ExecutionContext(Engine engine);
  ~ExecutionContext();
  ExecutionContext(ExecutionContext&&) noexcept;
  ExecutionContext& operator=(ExecutionContext&&) noexcept;

  // Runs the engine on named host tensors. Checks names, dtypes and ranks, selects the first profile
  // containing the shapes (ShapeOutOfProfile otherwise) and returns every graph output by name.
  TensorMap run(const TensorMap& inputs);
  // Index of the profile the last run used (-1 before the first run).
  int last_profile() const;
  const Engine& engine() const;

 private:
  std::unique_ptr<detail::ContextImpl> impl_;
};

}  // namespace kiln
