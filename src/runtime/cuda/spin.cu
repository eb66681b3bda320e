#include "runtime/cuda/spin.h"

#include <cstdint>

#include "util/error.h"

namespace kiln::runtime::cuda {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void spin_kernel(uint64_t ns) {
  const uint64_t t0 = global_ns();
  while (global_ns() - t0 < ns) {
  }
}

}  // namespace

void enqueue_spin(cudaStream_t stream, double ms) {
  if (ms <= 0) return;
  spin_kernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(ms * 1e6));
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) KILN_THROW(Cuda, "spin kernel: " << cudaGetErrorString(e));
}

}  // namespace kiln::runtime::cuda
