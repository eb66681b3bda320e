// Device memory as kiln allocates it: every cudaMalloc / cudaFree goes through here and is counted, and an
// allocation failure is ErrorCode::OutOfMemory naming the bytes asked for. Host C++.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/error.h"

// Throws kiln::Error(Cuda) naming the call and the CUDA error string (host code; kernels use KILN_CUDA_CHECK).
#define KILN_CU(call)                                                                              \
  do {                                                                                             \
    cudaError_t kiln_cu_err_ = (call);                                                             \
    if (kiln_cu_err_ != cudaSuccess) {                                                             \
      cudaGetLastError();                                                                          \
      KILN_THROW(Cuda, #call << ": " << cudaGetErrorString(kiln_cu_err_));                         \
    }                                                                                              \
  } while (0)

namespace kiln::runtime::cuda {

// cudaMalloc on the current device; OutOfMemory "... N bytes (X MiB) for <what> on cuda:D ..." on failure.
// 0 bytes returns nullptr without allocating.
void* device_alloc(size_t bytes, const std::string& what);
// cudaFree (nullptr is a no-op and not counted). Never throws.
void device_free(void* p) noexcept;
// cudaMalloc + cudaFree calls kiln made in this process (kiln::cuda_allocation_count()).
uint64_t device_allocation_count();

// An owned device buffer.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) { o.ptr_ = nullptr, o.size_ = 0; }
  // Frees the old buffer, then allocates `bytes` (OutOfMemory on failure; the buffer is then empty).
  void allocate(size_t bytes, const std::string& what);
  void reset() noexcept;
  void* get() const { return ptr_; }
  char* bytes() const { return static_cast<char*>(ptr_); }
  size_t size() const { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Makes `device` current (InvalidArgument naming cuda:N when it does not exist).
void set_device(int device);

// cudaGetDeviceProperties of an existing device, queried once per process (the call costs milliseconds; engines
// and contexts ask it each time they are made). Cuda error when the query fails.
const cudaDeviceProp& device_properties(int device);

}  // namespace kiln::runtime::cuda
