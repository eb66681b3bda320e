// kiln — a model imported from ONNX.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/dtype.h"

namespace kiln {

namespace detail {
struct ModelImpl;
}

// One dimension of a declared tensor: a fixed size, or dynamic (value < 0) with an optional symbol ("batch").
struct Dim {
  int64_t value = -1;
  std::string symbol;
  bool is_static() const { return value >= 0; }
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<Dim> dims;
  // True for an ONNX IR >= 4 input that is also an initializer: optional at run time, the initializer is the default.
  bool has_default = false;
  bool is_static() const;
  // "float32[batch,3,224,224]"
  std::string str() const;
};

class Model {
 public:
  // Reads an ONNX file; external data files are resolved relative to its folder.
  static Model load(const std::string& path);
  // Parses serialized ModelProto bytes; `base_dir` resolves external data ("" = none allowed).
  static Model from_bytes(const std::string& bytes, const std::string& base_dir = "");

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  int64_t ir_version() const;
  // Opset of the default ("" / ai.onnx) domain.
  int64_t opset() const;
  std::string producer() const;
  size_t node_count() const;
  // Op type -> number of nodes, after function inlining.
  std::map<std::string, size_t> op_counts() const;
  // sha256 (hex) of the serialized model and its external data.
  const std::string& content_hash() const;

  const std::shared_ptr<const detail::ModelImpl>& impl() const { return impl_; }
  explicit Model(std::shared_ptr<const detail::ModelImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const detail::ModelImpl> impl_;
};

}  // namespace kiln
