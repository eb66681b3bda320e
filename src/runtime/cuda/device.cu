// CUDA device discovery (built only with the CUDA toolkit).
#include <cuda_runtime.h>

#include "kiln/device.h"
#include "runtime/cuda/device_memory.h"
#include "util/error.h"

namespace kiln {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string cuda_device_name(int ordinal) {
  int n = cuda_device_count();
  if (ordinal < 0 || ordinal >= n) KILN_THROW(InvalidArgument, "cuda:" << ordinal << " does not exist (" << n << " CUDA devices)");
  const cudaDeviceProp& p = runtime::cuda::device_properties(ordinal);
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
}

}  // namespace kiln
