// kiln's own Conv / ConvTranspose kernels (conv_kernels.cu), used by the "cuda" tactics and as the fallback of the
// cuDNN ones (conv.cu): direct gather convolutions, the shifted copy that pads inputs / crops results, bias add.
#pragma once
#include <cstdint>

#include "runtime/cuda/kernel.h"
#include "runtime/cuda/kernels/conv_geom.h"

namespace kiln::runtime::cuda {

// Geometry in 3 slots (1-D and 2-D right-aligned, leading slots of size 1), as the own kernels use it.
struct Geo3 {
  int64_t N, C, M, Cg, Mg;
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
};
Geo3 to_geo3(const ConvGeometry& g);

// dst [NC, D0, D1, D2] = src [NC, S0, S1, S2] shifted by `off` (dst index - off = src index), zeros outside src;
// plus bias[channel] when given (channel = row % channels, rows being [N, channels]). Pads Conv inputs (off = pads at the
// begin) and crops ConvTranspose results (off = -pads at the begin).
struct ShiftParams {
  int64_t dst[3], src[3], off[3];
  int64_t channels;
};

// Y = conv(X, W) + B (B may be nullptr), or the ConvTranspose when `transpose`; one launch.
void launch_direct(const KernelContext& ctx, bool transpose, const Geo3& g, const DTensor& X, const DTensor& W,
                   const DTensor* B, DTensor& Y);
// The shifted copy above over `total` destination elements.
void launch_shift(const KernelContext& ctx, DType dt, const ShiftParams& p, int64_t total, const void* src,
                  const void* bias, void* dst);
// dst [N, D0, D1, D2, C] = src [N, C, S0, S1, S2] shifted as above (p.channels unused): NCHW -> NHWC, padding on
// the way. `total` = destination elements.
void launch_to_nhwc(const KernelContext& ctx, DType dt, const ShiftParams& p, int64_t C, int64_t total,
                    const void* src, void* dst);
// dst [N, C, sp] = src [N, sp, C] (+ bias[c] when bias is not nullptr): NHWC -> NCHW. Float types.
void launch_from_nhwc(const KernelContext& ctx, DType dt, int64_t C, int64_t sp, int64_t total, const void* src,
                      const void* bias, void* dst);
// Y[n, m, ...] += B[m] (nothing when B is nullptr).
void launch_bias(const KernelContext& ctx, const DTensor* B, DTensor& Y);

}  // namespace kiln::runtime::cuda
