// kiln's own Conv / ConvTranspose kernels (conv_kernels.h).
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_kernels.h"

namespace kiln::runtime::cuda {

Geo3 to_geo3(const ConvGeometry& g) {
  Geo3 r{};
  r.N = g.N, r.C = g.C, r.M = g.M, r.Cg = g.C / g.group, r.Mg = g.M / g.group;
  const int off = 3 - g.nsp;
  for (int i = 0; i < 3; ++i) r.in[i] = r.out[i] = r.k[i] = r.s[i] = r.d[i] = 1, r.pb[i] = 0;
  for (int i = 0; i < g.nsp; ++i) {
    r.in[off + i] = g.in[i], r.out[off + i] = g.out[i], r.k[off + i] = g.k[i];
    r.s[off + i] = g.s[i], r.d[off + i] = g.d[i], r.pb[off + i] = g.pb[i];
  }
  return r;
}

namespace {

// ---- own kernels ---------------------------------------------------------------------------------------------------
template <typename Acc, typename T>
__device__ inline Acc ldv(T v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return static_cast<Acc>(to_f(v));
}
template <typename T, typename Acc>
__device__ inline T stv(Acc v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return from_f<T>(static_cast<float>(v));
}

// Conv, gather form: one thread per output element; pads of any size (reads outside the input are zeros).
template <typename T, typename Acc>
__global__ void conv_direct_kernel(Geo3 g, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                   T* __restrict__ y, int64_t total) {
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2], k_sp = g.k[0] * g.k[1] * g.k[2];
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = idx;
    const int64_t o2 = r % g.out[2];
    r /= g.out[2];
    const int64_t o1 = r % g.out[1];
    r /= g.out[1];
    const int64_t o0 = r % g.out[0];
    r /= g.out[0];
    const int64_t m = r % g.M, n = r / g.M;
    const int64_t grp = m / g.Mg;
    Acc acc = b ? ldv<Acc>(b[m]) : Acc(0);
    for (int64_t c = 0; c < g.Cg; ++c) {
      const T* xc = x + (n * g.C + grp * g.Cg + c) * in_sp;
      const T* wc = w + (m * g.Cg + c) * k_sp;
      for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
        const int64_t i0 = o0 * g.s[0] - g.pb[0] + k0 * g.d[0];
        if (i0 < 0 || i0 >= g.in[0]) continue;
        for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
          const int64_t i1 = o1 * g.s[1] - g.pb[1] + k1 * g.d[1];
          if (i1 < 0 || i1 >= g.in[1]) continue;
          for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
            const int64_t i2 = o2 * g.s[2] - g.pb[2] + k2 * g.d[2];
            if (i2 < 0 || i2 >= g.in[2]) continue;
            acc += ldv<Acc>(xc[(i0 * g.in[1] + i1) * g.in[2] + i2]) * ldv<Acc>(wc[(k0 * g.k[1] + k1) * g.k[2] + k2]);
          }
        }
      }
    }
    y[idx] = stv<T>(acc);
  }
}

// ConvTranspose, gather form: each output sums the taps that reach it. W is [C, M / group, k...].
template <typename T, typename Acc>
__global__ void convt_direct_kernel(Geo3 g, const T* __restrict__ x, const T* __restrict__ w,
                                    const T* __restrict__ b, T* __restrict__ y, int64_t total) {
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2], k_sp = g.k[0] * g.k[1] * g.k[2];
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = idx;
    int64_t o[3];
    for (int dd = 2; dd >= 0; --dd) o[dd] = r % g.out[dd], r /= g.out[dd];
    const int64_t m = r % g.M, n = r / g.M;
    const int64_t grp = m / g.Mg, mm = m % g.Mg;
    Acc acc = b ? ldv<Acc>(b[m]) : Acc(0);
    for (int64_t c = grp * g.Cg; c < (grp + 1) * g.Cg; ++c) {
      const T* xc = x + (n * g.C + c) * in_sp;
      const T* wc = w + (c * g.Mg + mm) * k_sp;
      for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
        const int64_t t0 = o[0] + g.pb[0] - k0 * g.d[0];
        if (t0 < 0 || t0 % g.s[0] != 0 || t0 / g.s[0] >= g.in[0]) continue;
        for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
          const int64_t t1 = o[1] + g.pb[1] - k1 * g.d[1];
          if (t1 < 0 || t1 % g.s[1] != 0 || t1 / g.s[1] >= g.in[1]) continue;
          for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
            const int64_t t2 = o[2] + g.pb[2] - k2 * g.d[2];
            if (t2 < 0 || t2 % g.s[2] != 0 || t2 / g.s[2] >= g.in[2]) continue;
            acc += ldv<Acc>(xc[((t0 / g.s[0]) * g.in[1] + t1 / g.s[1]) * g.in[2] + t2 / g.s[2]]) *
                   ldv<Acc>(wc[(k0 * g.k[1] + k1) * g.k[2] + k2]);
          }
        }
      }
    }
    y[idx] = stv<T>(acc);
  }
}

template <typename T>
__global__ void shift_copy_kernel(ShiftParams p, const T* __restrict__ src, const T* __restrict__ bias,
                                  T* __restrict__ dst, int64_t total) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = idx;
    int64_t s[3];
    bool inside = true;
    for (int dd = 2; dd >= 0; --dd) {
      s[dd] = r % p.dst[dd] - p.off[dd];
      r /= p.dst[dd];
      inside = inside && s[dd] >= 0 && s[dd] < p.src[dd];
    }
    T v = inside ? src[((r * p.src[0] + s[0]) * p.src[1] + s[1]) * p.src[2] + s[2]] : stv<T>(0.0f);
    if (bias) v = stv<T>(ldv<double>(v) + ldv<double>(bias[r % p.channels]));
    dst[idx] = v;
  }
}

// y[n, m, ...] += bias[m] over `total` elements with `sp` spatial elements per channel.
template <typename T>
__global__ void bias_add_kernel(T* __restrict__ y, const T* __restrict__ bias, int64_t sp, int64_t channels,
                                int64_t total) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x)
    y[idx] = stv<T>(ldv<A>(y[idx]) + ldv<A>(bias[(idx / sp) % channels]));
}

template <typename T>
__global__ void to_nhwc_kernel(ShiftParams p, int64_t C, const T* __restrict__ src, T* __restrict__ dst,
                               int64_t total) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = idx % C;
    int64_t r = idx / C;
    int64_t s[3];
    bool inside = true;
    for (int dd = 2; dd >= 0; --dd) {
      s[dd] = r % p.dst[dd] - p.off[dd];
      r /= p.dst[dd];
      inside = inside && s[dd] >= 0 && s[dd] < p.src[dd];
    }
    dst[idx] = inside ? src[(((r * C + c) * p.src[0] + s[0]) * p.src[1] + s[1]) * p.src[2] + s[2]] : T(0);
  }
}

template <typename T>
__global__ void from_nhwc_kernel(int64_t C, int64_t sp, const T* __restrict__ src, const T* __restrict__ bias,
                                 T* __restrict__ dst, int64_t total) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = idx % sp, r = idx / sp;
    const int64_t c = r % C, n = r / C;
    const T v = src[(n * sp + s) * C + c];
    dst[idx] = bias ? stv<T>(ldv<A>(v) + ldv<A>(bias[c])) : v;
  }
}

template <typename F>
void dispatch_conv(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}, float{}); return;
    case DType::Float16: f(__half{}, float{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}, float{}); return;
    case DType::Float64: f(double{}, double{}); return;
    default: break;
  }
  KILN_THROW(Unsupported, "CUDA conv: dtype " << dtype_name(dt));
}

}  // namespace

void launch_direct(const KernelContext& ctx, bool transpose, const Geo3& g, const DTensor& X, const DTensor& W,
                   const DTensor* B, DTensor& Y) {
  const int64_t total = Y.numel();
  dispatch_conv(X.dtype, [&](auto t, auto acc) {
    using T = decltype(t);
    using A = decltype(acc);
    const T* b = B ? B->as<const T>() : nullptr;
    if (transpose)
      convt_direct_kernel<T, A><<<grid_for(total), kBlock, 0, ctx.stream>>>(g, X.as<const T>(), W.as<const T>(), b,
                                                                            Y.as<T>(), total);
    else
      conv_direct_kernel<T, A><<<grid_for(total), kBlock, 0, ctx.stream>>>(g, X.as<const T>(), W.as<const T>(), b,
                                                                           Y.as<T>(), total);
  });
  KILN_CUDA_LAUNCH_CHECK("conv direct");
}

void launch_shift(const KernelContext& ctx, DType dt, const ShiftParams& p, int64_t total, const void* src,
                  const void* bias, void* dst) {
  dispatch_conv(dt, [&](auto t, auto) {
    using T = decltype(t);
    shift_copy_kernel<T><<<grid_for(total), kBlock, 0, ctx.stream>>>(p, static_cast<const T*>(src),
                                                                     static_cast<const T*>(bias), static_cast<T*>(dst),
                                                                     total);
  });
  KILN_CUDA_LAUNCH_CHECK("conv shift copy");
}

void launch_to_nhwc(const KernelContext& ctx, DType dt, const ShiftParams& p, int64_t C, int64_t total,
                    const void* src, void* dst) {
  dispatch_bytes(dt, [&](auto tag) {
    using E = decltype(tag);
    to_nhwc_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(p, C, static_cast<const E*>(src),
                                                                  static_cast<E*>(dst), total);
  });
  KILN_CUDA_LAUNCH_CHECK("conv to NHWC");
}

void launch_from_nhwc(const KernelContext& ctx, DType dt, int64_t C, int64_t sp, int64_t total, const void* src,
                      const void* bias, void* dst) {
  dispatch_conv(dt, [&](auto t, auto) {
    using T = decltype(t);
    from_nhwc_kernel<T><<<grid_for(total), kBlock, 0, ctx.stream>>>(C, sp, static_cast<const T*>(src),
                                                                    static_cast<const T*>(bias), static_cast<T*>(dst),
                                                                    total);
  });
  KILN_CUDA_LAUNCH_CHECK("conv from NHWC");
}

void launch_bias(const KernelContext& ctx, const DTensor* B, DTensor& Y) {
  if (!B || !B->data) return;
  const int64_t channels = Y.shape[1], total = Y.numel();
  const int64_t sp = total / (Y.shape[0] * channels);
  dispatch_conv(Y.dtype, [&](auto t, auto) {
    using T = decltype(t);
    bias_add_kernel<T><<<grid_for(total), kBlock, 0, ctx.stream>>>(Y.as<T>(), B->as<const T>(), sp, channels, total);
  });
  KILN_CUDA_LAUNCH_CHECK("conv bias");
}

}  // namespace kiln::runtime::cuda
