// A kernel that keeps the stream busy for a while, so that the host can enqueue the work to be timed behind it:
// CUDA events around each piece then measure device time alone, not the host's launch latency (per-layer profiles,
// tactic timing; docs/cuda.md).
#pragma once
#include <cuda_runtime_api.h>

namespace kiln::runtime::cuda {

// Enqueues one single-thread kernel on `stream` that returns after `ms` milliseconds of GPU time (global timer).
void enqueue_spin(cudaStream_t stream, double ms);

}  // namespace kiln::runtime::cuda
