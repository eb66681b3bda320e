// Random device data for the builder's tactic timing (tactic_bench.h): floats uniform in [-1, 1) without exact
// zeros, integers and bools 0 or 1, from a counter-based hash (no state, any size, one launch).
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/random_fill.h"

namespace kiln::runtime::cuda {
namespace {

__device__ inline uint32_t mix(uint64_t i, uint32_t seed) {
  uint64_t x = i * 0x9e3779b97f4a7c15ull + (uint64_t(seed) << 32 | seed) + 0x632be59bd9b4e019ull;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<uint32_t>(x);
}

template <typename T>
__global__ void random_fill_kernel(T* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t r = mix(static_cast<uint64_t>(i), seed);
    if constexpr (std::is_integral_v<T>) {
      p[i] = static_cast<T>(r & 1);
    } else if constexpr (std::is_same_v<T, double>) {
      p[i] = (static_cast<double>(r >> 8) + 0.5) / 8388608.0 - 1.0;
    } else {
      p[i] = from_f<T>((static_cast<float>(r >> 8) + 0.5f) / 8388608.0f - 1.0f);  // never 0
    }
  }
}

// sums[0] += sum (a - b)^2, sums[1] += sum b^2, sums[2] += count of |a - b| > atol + rtol |b| or a non-finite a
// where b is finite (float types; double accumulation).
template <typename T>
__global__ void l2_diff_kernel(const T* a, const T* b, int64_t n, double atol, double rtol, double* sums) {
  __shared__ double sh[3][kBlock];
  double d2 = 0, b2 = 0, bad = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double x, y;
    if constexpr (std::is_same_v<T, double>) x = a[i], y = b[i];
    else x = to_f(a[i]), y = to_f(b[i]);
    d2 += (x - y) * (x - y);
    b2 += y * y;
    if (!(fabs(x - y) <= atol + rtol * fabs(y)) && isfinite(y)) bad += 1;
  }
  sh[0][threadIdx.x] = d2;
  sh[1][threadIdx.x] = b2;
  sh[2][threadIdx.x] = bad;
  __syncthreads();
  for (int s = kBlock / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s)
      for (int k = 0; k < 3; ++k) sh[k][threadIdx.x] += sh[k][threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int k = 0; k < 3; ++k) atomicAdd(&sums[k], sh[k][0]);
}

}  // namespace

void diff_sums(const void* a, const void* b, DType dtype, int64_t count, double atol, double rtol, double* sums,
               cudaStream_t stream) {
  KILN_CUDA_CHECK(cudaMemsetAsync(sums, 0, 3 * sizeof(double), stream));
  if (count <= 0) return;
  const unsigned grid = grid_for(count, 8) < 1024 ? grid_for(count, 8) : 1024;
  switch (dtype) {
    case DType::Float32:
      l2_diff_kernel<float><<<grid, kBlock, 0, stream>>>(static_cast<const float*>(a), static_cast<const float*>(b),
                                                         count, atol, rtol, sums);
      break;
    case DType::Float16:
      l2_diff_kernel<__half><<<grid, kBlock, 0, stream>>>(static_cast<const __half*>(a),
                                                          static_cast<const __half*>(b), count, atol, rtol, sums);
      break;
    case DType::BFloat16:
      l2_diff_kernel<__nv_bfloat16><<<grid, kBlock, 0, stream>>>(static_cast<const __nv_bfloat16*>(a),
                                                                 static_cast<const __nv_bfloat16*>(b), count, atol,
                                                                 rtol, sums);
      break;
    case DType::Float64:
      l2_diff_kernel<double><<<grid, kBlock, 0, stream>>>(static_cast<const double*>(a),
                                                          static_cast<const double*>(b), count, atol, rtol, sums);
      break;
    default: KILN_THROW(Unsupported, "diff_sums: dtype " << dtype_name(dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("diff_sums");
}

void random_fill(void* data, DType dtype, int64_t count, uint32_t seed, cudaStream_t stream) {
  if (count <= 0) return;
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    random_fill_kernel<T><<<grid_for(count, 4), kBlock, 0, stream>>>(static_cast<T*>(data), count, seed);
  });
  KILN_CUDA_LAUNCH_CHECK("random_fill");
}

}  // namespace kiln::runtime::cuda
