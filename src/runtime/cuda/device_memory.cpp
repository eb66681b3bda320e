#include "runtime/cuda/device_memory.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "kiln/device.h"

namespace kiln::runtime::cuda {
namespace {
std::atomic<uint64_t> g_allocations{0};
}

void* device_alloc(size_t bytes, const std::string& what) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaSuccess) return p;
  cudaGetLastError();  // clear the error so the context stays usable
  int dev = -1;
  cudaGetDevice(&dev);
  size_t free_b = 0, total_b = 0;
  const bool have_info = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
  cudaGetLastError();
  if (e == cudaErrorMemoryAllocation) {
    std::ostringstream os;
    os << "out of device memory: cannot allocate " << bytes << " bytes (" << (bytes >> 20) << " MiB) for " << what
       << " on cuda:" << dev;
    if (have_info) os << " (" << (free_b >> 20) << " MiB free of " << (total_b >> 20) << " MiB)";
    throw Error(ErrorCode::OutOfMemory, os.str());
  }
  KILN_THROW(Cuda, "cudaMalloc(" << bytes << " bytes for " << what << ") on cuda:" << dev << ": "
                                 << cudaGetErrorString(e));
}

void device_free(void* p) noexcept {
  if (!p) return;
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (cudaFree(p) != cudaSuccess) cudaGetLastError();  // at process exit the driver may already be gone
}

uint64_t device_allocation_count() { return g_allocations.load(std::memory_order_relaxed); }

void DeviceBuffer::allocate(size_t bytes, const std::string& what) {
  reset();
  ptr_ = device_alloc(bytes, what);
  size_ = bytes;
}

void DeviceBuffer::reset() noexcept {
  device_free(ptr_);
  ptr_ = nullptr;
  size_ = 0;
}

void set_device(int device) {
  const int n = cuda_device_count();
  if (n == 0) KILN_THROW(Cuda, "cuda:" << device << ": no CUDA device is visible on this machine");
  if (device < 0 || device >= n) KILN_THROW(InvalidArgument, "cuda:" << device << " does not exist (" << n << " CUDA devices)");
  KILN_CU(cudaSetDevice(device));
}

const cudaDeviceProp& device_properties(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<const cudaDeviceProp>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& p = cache[device];
  if (!p) {
    auto q = std::make_unique<cudaDeviceProp>();
    KILN_CU(cudaGetDeviceProperties(q.get(), device));
    p = std::move(q);
  }
  return *p;
}

}  // namespace kiln::runtime::cuda

namespace kiln {
uint64_t cuda_allocation_count() { return runtime::cuda::device_allocation_count(); }
}  // namespace kiln
