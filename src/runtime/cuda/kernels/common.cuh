// Shared device-side helpers for the CUDA kernel families: error checks, launch sizes, dtype dispatch, float
// conversions of the low types, and broadcast index arithmetic. Include only from .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <sstream>

#include "kiln/dtype.h"
#include "runtime/cuda/kernel.h"
#include "util/error.h"

// Throws kiln::Error(Cuda) naming the call and the CUDA error string.
#define KILN_CUDA_CHECK(call)                                                                   \
  do {                                                                                          \
    cudaError_t kiln_err_ = (call);                                                             \
    if (kiln_err_ != cudaSuccess) KILN_THROW(Cuda, #call << ": " << cudaGetErrorString(kiln_err_)); \
  } while (0)
// After a launch: reports launch-configuration errors (not asynchronous faults).
#define KILN_CUDA_LAUNCH_CHECK(what) KILN_CUDA_CHECK(cudaGetLastError())

namespace kiln::runtime::cuda {

constexpr int kBlock = 256;
constexpr int kMaxDims = 8;

// Blocks for n elements at `per_thread` elements per thread, capped so grid-stride loops cover the rest.
inline unsigned grid_for(int64_t n, int per_thread = 1, int block = kBlock) {
  int64_t threads = (n + per_thread - 1) / per_thread;
  int64_t blocks = (threads + block - 1) / block;
  if (blocks < 1) blocks = 1;
  if (blocks > (int64_t(1) << 20)) blocks = int64_t(1) << 20;
  return static_cast<unsigned>(blocks);
}

// float <-> storage type, the same on host and device.
template <typename T>
__host__ __device__ inline float to_f(T v) {
  return static_cast<float>(v);
}
template <>
__host__ __device__ inline float to_f<__half>(__half v) {
  return __half2float(v);
}
template <>
__host__ __device__ inline float to_f<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <typename T>
__host__ __device__ inline T from_f(float v) {
  return static_cast<T>(v);
}
template <>
__host__ __device__ inline __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__host__ __device__ inline __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Calls f(T{}) with T the C++ type of dtype `dt`. Bool is uint8_t (ONNX bools are one byte, 0 or 1).
template <typename F>
inline void dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}); return;
    case DType::Float16: f(__half{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}); return;
    case DType::Float64: f(double{}); return;
    case DType::Int64: f(int64_t{}); return;
    case DType::Int32: f(int32_t{}); return;
    case DType::Int16: f(int16_t{}); return;
    case DType::Int8: f(int8_t{}); return;
    case DType::UInt8: f(uint8_t{}); return;
    case DType::Bool: f(uint8_t{}); return;
  }
  KILN_THROW(Unsupported, "CUDA kernel: unknown dtype");
}
// Float types only (float, half, bfloat16); Unsupported otherwise.
template <typename F>
inline void dispatch_float(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}); return;
    case DType::Float16: f(__half{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}); return;
    default: break;
  }
  KILN_THROW(Unsupported, "CUDA kernel: dtype " << dtype_name(dt) << " is not a float type here");
}
// Calls f with an unsigned integer type of the element size (1, 2, 4 or 8 bytes): for pure data movement.
template <typename F>
inline void dispatch_bytes(DType dt, F&& f) {
  switch (dtype_size(dt)) {
    case 1: f(uint8_t{}); return;
    case 2: f(uint16_t{}); return;
    case 4: f(uint32_t{}); return;
    case 8: f(uint64_t{}); return;
  }
  KILN_THROW(Unsupported, "CUDA kernel: element size " << dtype_size(dt));
}

// Row-major strides of an output of rank `rank`, and the input strides that map each output index to the input
// element it reads under ONNX (numpy) broadcasting: stride 0 on broadcast axes. Passed to kernels by value.
struct BroadcastIndex {
  int rank = 0;
  int64_t out_dims[kMaxDims];
  int64_t in_strides[kMaxDims];
  __host__ __device__ int64_t map(int64_t i) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t q = i / out_dims[d];
      off += (i - q * out_dims[d]) * in_strides[d];
      i = q;
    }
    return off;
  }
};
// Unsupported when the output rank exceeds kMaxDims.
inline BroadcastIndex make_broadcast(const Shape& in, const Shape& out) {
  if (out.size() > static_cast<size_t>(kMaxDims))
    KILN_THROW(Unsupported, "CUDA kernel: rank " << out.size() << " > " << kMaxDims);
  BroadcastIndex b{};
  b.rank = static_cast<int>(out.size());
  int64_t stride = 1;
  for (int d = b.rank - 1; d >= 0; --d) {
    int id = d - (b.rank - static_cast<int>(in.size()));
    int64_t dim = id >= 0 ? in[static_cast<size_t>(id)] : 1;
    b.out_dims[d] = out[static_cast<size_t>(d)];
    b.in_strides[d] = (dim == 1) ? 0 : stride;
    stride *= dim;
  }
  return b;
}

}  // namespace kiln::runtime::cuda

// ---- appended by the gemm/conv family --------------------------------------------------------------------------
// Throw kiln::Error(Cuda) naming the call and the library's status string.
#define KILN_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                   \
    cublasStatus_t kiln_st_ = (call);                                                                    \
    if (kiln_st_ != CUBLAS_STATUS_SUCCESS) KILN_THROW(Cuda, #call << ": " << cublasLtGetStatusString(kiln_st_)); \
  } while (0)
#define KILN_CUDNN_CHECK(call)                                                                           \
  do {                                                                                                   \
    cudnnStatus_t kiln_st_ = (call);                                                                     \
    if (kiln_st_ != CUDNN_STATUS_SUCCESS) KILN_THROW(Cuda, #call << ": " << cudnnGetErrorString(kiln_st_)); \
  } while (0)

namespace kiln::runtime::cuda {
// Largest power of two (at most 256) that divides the address: the alignment cuBLASLt / cuDNN may assume.
inline uint32_t ptr_alignment(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a == 0) return 256;
  uint32_t al = 1;
  while (al < 256 && (a & (2 * al - 1)) == 0) al *= 2;
  return al;
}
}  // namespace kiln::runtime::cuda
