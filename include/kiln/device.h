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

// Threads the CPU executor uses: the KILN_CPU_THREADS environment variable when it is a positive integer, else the
// hardware threads. One pool per process, shared by every ExecutionContext (docs/cpu.md).
int cpu_threads();
// Sets the CPU thread count for runs that start afterwards; n <= 0 goes back to the default.
void set_cpu_threads(int n);
}  // namespace kiln
