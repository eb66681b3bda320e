// CUDA kernels of kiln.ToNhwc (ops/nhwc.h): X [N, C, H, W] -> Y [N, H, W, channels], channels C..channels-1 zero.
// The layout_nhwc pass writes it for the entry of an image stem (C = 3 padded to 8, or 4): one kernel instead of a
// Transpose and a Pad, reading X once and writing Y once. Pure data movement: the kernels copy element bits.
//
// Narrow path (channels 4, 8 or 16, at least 4 bytes per output pixel, Y aligned to them, < 2^31 elements): a thread
// per pixel reads its C values (adjacent threads on adjacent pixels: coalesced rows of each input plane) and writes
// the whole padded pixel with 4- to 16-byte stores (two 16-byte stores for 32-byte pixels); each thread takes 4
// pixels a block apart, issuing all their loads before the stores.
// General path otherwise: one thread per output element (coalesced writes, 64-bit indices).
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "ops/nhwc.h"
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

// The store word for a pixel of `bytes` bytes.
template <int BYTES>
using StoreWord = std::conditional_t<
    (BYTES >= 16), uint4, std::conditional_t<BYTES == 8, uint2, std::conditional_t<BYTES == 4, uint32_t, void>>>;

constexpr int kPixelsPerThread = 4;  // block-strided, so that each load instruction stays coalesced

template <typename E, int CP>
__global__ void __launch_bounds__(kBlock) to_nhwc_narrow_kernel(const E* __restrict__ x, E* __restrict__ y, int C,
                                                                uint32_t hw, uint32_t pixels, DivMod by_hw) {
  constexpr int kBytes = CP * static_cast<int>(sizeof(E));
  using W = StoreWord<kBytes>;
  constexpr int kWords = kBytes / static_cast<int>(sizeof(W));
  constexpr int U = kPixelsPerThread;
  union Pixel {
    E e[CP];
    W w[kWords];
  };
  const uint32_t step = gridDim.x * blockDim.x * U;
  for (uint32_t base = blockIdx.x * blockDim.x * U + threadIdx.x; base < pixels; base += step) {
    Pixel px[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {  // every load first: U * C reads in flight per thread
      const uint32_t p = base + static_cast<uint32_t>(u) * blockDim.x;
      if (p >= pixels) break;
      const uint32_t n = static_cast<uint32_t>(by_hw.div(p));
      const E* xp = x + n * static_cast<uint32_t>(C) * hw + (p - n * hw);
#pragma unroll
      for (int c = 0; c < CP; ++c) px[u].e[c] = c < C ? xp[static_cast<uint32_t>(c) * hw] : E(0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const uint32_t p = base + static_cast<uint32_t>(u) * blockDim.x;
      if (p >= pixels) break;
      W* yp = reinterpret_cast<W*>(y) + static_cast<size_t>(p) * kWords;
#pragma unroll
      for (int i = 0; i < kWords; ++i) yp[i] = px[u].w[i];
    }
  }
}

template <typename E>
__global__ void to_nhwc_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t C, int64_t CP, int64_t hw,
                               int64_t total) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = o % CP, p = o / CP;
    const int64_t n = p / hw, s = p - n * hw;
    y[o] = c < C ? x[(n * C + c) * hw + s] : E(0);
  }
}

template <typename E>
bool launch_narrow(const KernelContext& ctx, const void* x, void* y, int64_t C, int64_t CP, int64_t hw,
                   int64_t pixels) {
  const int64_t bytes = CP * static_cast<int64_t>(sizeof(E));
  const int64_t lim = int64_t(1) << 31;
  if ((CP != 4 && CP != 8 && CP != 16) || pixels * CP >= lim || pixels * C >= lim) return false;
  if ((reinterpret_cast<uintptr_t>(y) % static_cast<uintptr_t>(bytes < 16 ? bytes : 16)) != 0) return false;
  const DivMod by_hw = make_divmod(hw, pixels);
  if (!by_hw.fast) return false;
  const unsigned grid = grid_for(pixels, kPixelsPerThread);
  const E* xs = static_cast<const E*>(x);
  E* ys = static_cast<E*>(y);
  const int c = static_cast<int>(C);
  const uint32_t h = static_cast<uint32_t>(hw), px = static_cast<uint32_t>(pixels);
  if (CP == 4)
    to_nhwc_narrow_kernel<E, 4><<<grid, kBlock, 0, ctx.stream>>>(xs, ys, c, h, px, by_hw);
  else if (CP == 8)
    to_nhwc_narrow_kernel<E, 8><<<grid, kBlock, 0, ctx.stream>>>(xs, ys, c, h, px, by_hw);
  else
    to_nhwc_narrow_kernel<E, 16><<<grid, kBlock, 0, ctx.stream>>>(xs, ys, c, h, px, by_hw);
  return true;
}

template <typename E>
void launch_to_nhwc(const KernelContext& ctx, const void* x, void* y, int64_t C, int64_t CP, int64_t hw,
                    int64_t pixels, bool narrow) {
  if (narrow && launch_narrow<E>(ctx, x, y, C, CP, hw, pixels)) return;
  const int64_t total = pixels * CP;
  to_nhwc_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(static_cast<const E*>(x), static_cast<E*>(y), C, CP,
                                                                 hw, total);
}

// KILN_NHWC_ENTRY_NARROW=0 forces the general kernel (A/B timing, tests).
bool narrow_enabled() {
  const char* e = std::getenv("KILN_NHWC_ENTRY_NARROW");
  return !(e && e[0] == '0' && e[1] == 0);
}

void run_to_nhwc(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  DTensor& y = a.out.at(0);
  if (x.shape.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank 4 (NCHW), got " << shape_str(x.shape));
  const int64_t C = x.shape[1];
  const int64_t CP = n.has_attr("channels") ? n.attr_int("channels", C) : C;
  if (CP < C) KILN_THROW(InvalidModel, n.label() << ": channels = " << CP << " must be >= the input's " << C);
  const Shape want = {x.shape[0], x.shape[2], x.shape[3], CP};
  if (y.shape != want)
    KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(y.shape) << ", the input gives " << shape_str(want));
  if (y.numel() == 0) return;
  const int64_t hw = x.shape[2] * x.shape[3], pixels = x.shape[0] * hw;
  const bool narrow = narrow_enabled();
  switch (dtype_size(x.dtype)) {
    case 1: launch_to_nhwc<uint8_t>(ctx, x.data, y.data, C, CP, hw, pixels, narrow); break;
    case 2: launch_to_nhwc<uint16_t>(ctx, x.data, y.data, C, CP, hw, pixels, narrow); break;
    case 4: launch_to_nhwc<uint32_t>(ctx, x.data, y.data, C, CP, hw, pixels, narrow); break;
    case 8: launch_to_nhwc<uint64_t>(ctx, x.data, y.data, C, CP, hw, pixels, narrow); break;
    default: KILN_THROW(Unsupported, n.label() << ": element size " << dtype_size(x.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("kiln.ToNhwc");
}

}  // namespace

void register_nhwc_entry_kernels() {
  register_cuda_tactic(ops::nhwc::kDomain, ops::nhwc::kToNhwc,
                       CudaTactic{"cuda",
                                  [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                                    return !in.empty() && (!in[0].has_rank || in[0].dims.size() == 4);
                                  },
                                  run_to_nhwc, nullptr});
}

}  // namespace kiln::runtime::cuda
