// kiln — host tensors: a dtype, a shape and a reference-counted buffer.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/dtype.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // Owns a new zero-filled buffer.
  Tensor(DType dtype, Shape shape);
  // Views memory owned by `owner` (kept alive by this tensor and its copies).
  static Tensor view(DType dtype, Shape shape, std::shared_ptr<const void> owner, const void* data);
  // Copies `nbytes` from `src` (must equal numel * dtype_size).
  static Tensor from_bytes(DType dtype, Shape shape, const void* src, size_t nbytes);
  template <typename T>
  static Tensor from_vector(DType dtype, Shape shape, const std::vector<T>& v) {
    return from_bytes(dtype, std::move(shape), v.data(), v.size() * sizeof(T));
  }

  bool empty() const { return !data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  const void* data() const { return data_; }
  // Mutable access; the buffer is shared between copies of a Tensor (like a pointer).
  void* mutable_data() const { return const_cast<void*>(data_); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(data_); }
  template <typename T>
  T* mutable_as() const { return static_cast<T*>(mutable_data()); }

  // Deep copy into a fresh buffer.
  Tensor clone() const;
  // Same buffer, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // Element i converted to double / int64 (any dtype), for inspection and tests.
  double at_double(int64_t i) const;
  int64_t at_int64(int64_t i) const;
  // Bitwise equality of dtype, shape and bytes.
  bool bit_equal(const Tensor& other) const;
  // "float32[2,3]"
  std::string type_str() const;

 private:
  DType dtype_ = DType::Float32;
  Shape shape_;
  std::shared_ptr<const void> owner_;
  const void* data_ = nullptr;
};

}  // namespace kiln
