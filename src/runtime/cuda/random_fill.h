// Random device data and a device-side output comparison (the builder's tactic timing): floats uniform in [-1, 1) without exact zeros, integers and
// bools 0 or 1. Host declaration; the kernel is in random_fill.cu.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kiln/dtype.h"

namespace kiln::runtime::cuda {

// Fills `count` elements of `dtype` at `data` on `stream`; the same seed gives the same data.
void random_fill(void* data, DType dtype, int64_t count, uint32_t seed, cudaStream_t stream);

// For float tensors a (candidate) and b (reference) of `count` elements, into the device array `sums` (3 doubles) on
// `stream`: sums[0] = sum (a - b)^2, sums[1] = sum b^2 (relative L2 = sqrt(sums[0] / sums[1])), sums[2] = how many
// elements have |a - b| > atol + rtol |b| (or a non-finite a where b is finite). Unsupported for other types.
void diff_sums(const void* a, const void* b, DType dtype, int64_t count, double atol, double rtol, double* sums,
               cudaStream_t stream);

}  // namespace kiln::runtime::cuda
