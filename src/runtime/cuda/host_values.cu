#include <cstring>

#include "runtime/cuda/host_values.h"
#include "runtime/cuda/kernels/common.cuh"

namespace kiln::runtime::cuda {
namespace {

constexpr size_t kChunk = 3072;
struct Bytes {
  unsigned char b[kChunk];
};

__global__ void write_bytes_kernel(unsigned char* dst, const Bytes src, unsigned n) {
  for (unsigned i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src.b[i];
}

}  // namespace

void write_host_bytes(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  for (size_t off = 0; off < bytes; off += kChunk) {
    const size_t n = bytes - off < kChunk ? bytes - off : kChunk;
    Bytes chunk;
    std::memcpy(chunk.b, s + off, n);
    write_bytes_kernel<<<1, 256, 0, stream>>>(d + off, chunk, static_cast<unsigned>(n));
    KILN_CUDA_LAUNCH_CHECK("write_host_bytes");
  }
}

}  // namespace kiln::runtime::cuda
