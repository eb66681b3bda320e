// kiln — devices visible to this build.
#pragma once
#include <cstdint>
#include <string>

namespace kiln {
// Number of CUDA devices (0 in a CPU-only build or when no driver / GPU is present).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3 (sm_90)"; InvalidArgument when `ordinal` is out of range.
std::string cuda_device_name(int ordinal);
// Device allocations and frees (cudaMalloc + cudaFree calls) kiln has made in this process; 0 without CUDA.
// Inference after a context's first run at a shape makes none (docs/cuda.md).
uint64_t cuda_allocation_count();
}  // namespace kiln
