#include "kiln/tensor.h"

#include <cstring>
#include <new>

#include "util/error.h"
#include "util/half.h"

namespace kiln {
namespace {
std::shared_ptr<void> alloc_buffer(size_t nbytes) {
  // 64-byte aligned, zero-filled; at least one byte so empty tensors still have a non-null pointer.
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  void* p = ::operator new(n, std::align_val_t(64), std::nothrow);
  if (!p) KILN_THROW(OutOfMemory, "host allocation of " << nbytes << " bytes failed");
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, std::align_val_t(64)); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  const int64_t n = shape_numel(shape_);  // throws on negative dims / overflow
  if (n > static_cast<int64_t>((size_t(1) << 62) / dtype_size(dtype_)))
    KILN_THROW(OutOfMemory, "tensor " << type_str() << " is too large to allocate");
  auto buf = alloc_buffer(nbytes());
  data_ = buf.get();
  owner_ = std::move(buf);
}

Tensor Tensor::view(DType dtype, Shape shape, std::shared_ptr<const void> owner, const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.data_ = data;
  return t;
}

Tensor Tensor::from_bytes(DType dtype, Shape shape, const void* src, size_t nbytes) {
  Tensor t(dtype, std::move(shape));
  if (nbytes != t.nbytes())
    KILN_THROW(InvalidArgument, "tensor " << t.type_str() << " needs " << t.nbytes() << " bytes, got " << nbytes);
  if (nbytes) std::memcpy(t.mutable_data(), src, nbytes);
  return t;
}

Tensor Tensor::clone() const {
  if (empty()) return Tensor();
  return from_bytes(dtype_, shape_, data_, nbytes());
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    KILN_THROW(InvalidArgument, "cannot reshape " << type_str() << " to " << shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::at_double(int64_t i) const {
  switch (dtype_) {
    case DType::Float32: return as<float>()[i];
    case DType::Float16: return util::half_to_float(as<uint16_t>()[i]);
    case DType::BFloat16: return util::bf16_to_float(as<uint16_t>()[i]);
    case DType::Float64: return as<double>()[i];
    case DType::Int64: return static_cast<double>(as<int64_t>()[i]);
    case DType::Int32: return as<int32_t>()[i];
    case DType::Int16: return as<int16_t>()[i];
    case DType::Int8: return as<int8_t>()[i];
    case DType::UInt8: return as<uint8_t>()[i];
    case DType::Bool: return as<uint8_t>()[i] ? 1.0 : 0.0;
  }
  return 0;
}

int64_t Tensor::at_int64(int64_t i) const {
  switch (dtype_) {
    case DType::Int64: return as<int64_t>()[i];
    case DType::Int32: return as<int32_t>()[i];
    case DType::Int16: return as<int16_t>()[i];
    case DType::Int8: return as<int8_t>()[i];
    case DType::UInt8: return as<uint8_t>()[i];
    case DType::Bool: return as<uint8_t>()[i] ? 1 : 0;
    default: return static_cast<int64_t>(at_double(i));
  }
}

bool Tensor::bit_equal(const Tensor& o) const {
  if (dtype_ != o.dtype_ || shape_ != o.shape_) return false;
  if (nbytes() == 0) return true;
  return std::memcmp(data_, o.data_, nbytes()) == 0;
}

std::string Tensor::type_str() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

}  // namespace kiln
