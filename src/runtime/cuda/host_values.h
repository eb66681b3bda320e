// Writes small host-known values (shape arithmetic computed on the host) into device buffers with a kernel whose
// bytes travel as kernel parameters: stream-ordered, capturable in a CUDA graph, no allocation, no pageable copy.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

namespace kiln::runtime::cuda {

// Copies `bytes` host bytes to `dst` on `stream` (any size; one launch per 3 KiB).
void write_host_bytes(void* dst, const void* src, size_t bytes, cudaStream_t stream);

}  // namespace kiln::runtime::cuda
