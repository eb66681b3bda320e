// CUDA kernels: the pool family (kernels/families.h): MaxPool (auto_pad, pads, strides, dilations, ceil_mode,
// storage_order, optional Indices output), AveragePool (count_include_pad, ceil_mode, dilations from opset 19),
// GlobalAveragePool and GlobalMaxPool; 1-D, 2-D and 3-D (NC + spatial dims, row-major).
//
// The window geometry comes from the same host code as the CPU kernels (ops/spatial.h), padded to three spatial
// dims. MaxPool / AveragePool: one thread per output element walks its window (neighbouring threads read
// neighbouring inputs); averages accumulate in float (double for float64). 1-D / 2-D float pools that fit 32-bit
// indices (and MaxPool without Indices) take pool2d_kernel: 32-bit index math, the 3x3 window unrolled. The global pools are row reductions
// over each (n, c) plane (launch_reduce in reduce.cu: 16-byte loads, a group of threads per plane).
// Semantics follow the CPU reference: MaxPool takes the first in-range element, then any larger one (a window
// with no in-range element gives -inf / the type's lowest and index -1); GlobalMaxPool ignores NaN.
#include <limits>
#include <type_traits>

#include "ops/spatial.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

struct Geom {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int64_t total = 0;  // output elements
  DivMod by_out[3];   // dividends: flat output index / products of out dims
  bool include_pad = false;
  int storage_order = 0;
  double empty_max = 0;  // MaxPool's value for a window with no element in range (-inf / the type's lowest)
};

Geom make_geom(const ir::Node& n, const Shape& xs, bool is_max) {
  if (xs.size() < 3) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << xs.size());
  const size_t nsp = xs.size() - 2;
  if (nsp > 3) KILN_THROW(Unsupported, n.label() << ": " << nsp << " spatial dims (kiln supports 1 to 3)");
  if (!n.has_attr("kernel_shape"))
    KILN_THROW(InvalidModel, n.label() << ": required attribute 'kernel_shape' is missing");
  const bool dilations = is_max ? n.opset >= 10 : n.opset >= 19;
  ops::SpatialAttrs sp = ops::read_spatial_attrs(n, nsp, n.attr_ints("kernel_shape", {}), n.opset >= 10, dilations);
  ops::Window3 w = ops::make_window3(n, sp, xs);
  Geom g;
  for (int i = 0; i < 3; ++i) {
    g.in[i] = w.in[i], g.out[i] = w.out[i], g.k[i] = w.k[i], g.s[i] = w.s[i], g.d[i] = w.d[i];
    g.pb[i] = w.pb[i], g.pe[i] = w.pe[i];
  }
  g.total = xs[0] * xs[1] * g.out[0] * g.out[1] * g.out[2];
  g.by_out[2] = make_divmod(g.out[2], g.total);
  g.by_out[1] = make_divmod(g.out[1], g.total);
  g.by_out[0] = make_divmod(g.out[0], g.total);
  if (is_max) {
    g.storage_order = static_cast<int>(n.attr_int("storage_order", 0));
    if (g.storage_order != 0 && g.storage_order != 1)
      KILN_THROW(InvalidModel, n.label() << ": storage_order must be 0 or 1, got " << g.storage_order);
  } else {
    g.include_pad = n.attr_int("count_include_pad", 0) != 0;
  }
  return g;
}

// Output index -> plane and window origin.
struct At {
  int64_t plane, o[3];
};
__device__ __forceinline__ At locate(const Geom& g, int64_t i) {
  At a;
  int64_t q = g.by_out[2].div(i);
  a.o[2] = i - q * g.out[2];
  i = q;
  q = g.by_out[1].div(i);
  a.o[1] = i - q * g.out[1];
  i = q;
  q = g.by_out[0].div(i);
  a.o[0] = i - q * g.out[0];
  a.plane = q;
  return a;
}

template <typename T>
__global__ void maxpool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx, Geom g) {
  using A = acc_t<T>;
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < g.total; o += int64_t(gridDim.x) * blockDim.x) {
    const At at = locate(g, o);
    const T* xp = x + at.plane * in_sp;
    A best = acc_in(T{});
    int64_t b0 = -1, b1 = -1, b2 = -1;
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
      const int64_t i0 = at.o[0] * g.s[0] - g.pb[0] + k0 * g.d[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
        const int64_t i1 = at.o[1] * g.s[1] - g.pb[1] + k1 * g.d[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          const int64_t i2 = at.o[2] * g.s[2] - g.pb[2] + k2 * g.d[2];
          if (i2 < 0 || i2 >= g.in[2]) continue;
          const A v = acc_in(xp[(i0 * g.in[1] + i1) * g.in[2] + i2]);
          if (b0 < 0 || v > best) best = v, b0 = i0, b1 = i1, b2 = i2;
        }
      }
    }
    if (b0 < 0) best = static_cast<A>(g.empty_max);
    y[o] = acc_out<T>(best);
    if (idx) {
      const int64_t sp = g.storage_order == 0 ? (b0 * g.in[1] + b1) * g.in[2] + b2
                                              : b0 + b1 * g.in[0] + b2 * g.in[0] * g.in[1];
      idx[o] = b0 < 0 ? -1 : at.plane * in_sp + sp;
    }
  }
}

template <typename T>
__global__ void avgpool_kernel(const T* __restrict__ x, T* __restrict__ y, Geom g) {
  using A = acc_t<T>;
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < g.total; o += int64_t(gridDim.x) * blockDim.x) {
    const At at = locate(g, o);
    const T* xp = x + at.plane * in_sp;
    int64_t padded = 1;  // window positions inside input + pads
    for (int d = 0; d < 3; ++d) {
      int64_t c = 0;
      for (int64_t k = 0; k < g.k[d]; ++k) {
        const int64_t i = at.o[d] * g.s[d] - g.pb[d] + k * g.d[d];
        if (i >= -g.pb[d] && i < g.in[d] + g.pe[d]) ++c;
      }
      padded *= c;
    }
    A sum = 0;
    int64_t count = 0;
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
      const int64_t i0 = at.o[0] * g.s[0] - g.pb[0] + k0 * g.d[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
        const int64_t i1 = at.o[1] * g.s[1] - g.pb[1] + k1 * g.d[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          const int64_t i2 = at.o[2] * g.s[2] - g.pb[2] + k2 * g.d[2];
          if (i2 < 0 || i2 >= g.in[2]) continue;
          sum += acc_in(xp[(i0 * g.in[1] + i1) * g.in[2] + i2]);
          ++count;
        }
      }
    }
    const int64_t div = g.include_pad ? padded : count;
    y[o] = acc_out<T>(div > 0 ? sum / static_cast<A>(div) : static_cast<A>(NAN));
  }
}

// ---- 1-D / 2-D pools with 32-bit indexing -------------------------------------------------------------------------
// The common case (no depth dim, fewer than 2^31 input and output elements, no Indices output): one thread per output,
// adjacent threads on adjacent output columns (so a warp reads a few contiguous input row segments), 32-bit index
// math with multiply-shift division once per output, the window unrolled when it is 3x3 (KH = KW = 3; 0: any size).
// Same semantics as maxpool_kernel / avgpool_kernel.
struct Geom2 {
  int H, W, OH, OW, kh, kw, sh, sw, dh, dw, ph, pw, peh, pew;
  uint32_t total;
  DivMod by_ow, by_oh;
  bool include_pad;
};

template <typename T, bool MAX, int KH, int KW>
__global__ void __launch_bounds__(kBlock) pool2d_kernel(const T* __restrict__ x, T* __restrict__ y, Geom2 g,
                                                        float empty_max) {
  using A = acc_t<T>;
  const int kh = KH > 0 ? KH : g.kh, kw = KW > 0 ? KW : g.kw;
  const uint32_t HW = static_cast<uint32_t>(g.H) * static_cast<uint32_t>(g.W);
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < g.total; o += gridDim.x * blockDim.x) {
    const uint32_t t = static_cast<uint32_t>(g.by_ow.div(o));
    const int ow = static_cast<int>(o - t * static_cast<uint32_t>(g.OW));
    const uint32_t plane = static_cast<uint32_t>(g.by_oh.div(t));
    const int oh = static_cast<int>(t - plane * static_cast<uint32_t>(g.OH));
    const T* xp = x + plane * HW;
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    A acc = 0;
    bool any = false;
    int count = 0;
#pragma unroll
    for (int a = 0; a < (KH > 0 ? KH : 1); ++a) {
      for (int a2 = (KH > 0 ? a : 0); a2 < (KH > 0 ? a + 1 : kh); ++a2) {
        const int ih = h0 + a2 * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        const T* xr = xp + ih * g.W;
#pragma unroll
        for (int b = 0; b < (KW > 0 ? KW : 1); ++b) {
          for (int b2 = (KW > 0 ? b : 0); b2 < (KW > 0 ? b + 1 : kw); ++b2) {
            const int iw = w0 + b2 * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const A v = acc_in(xr[iw]);
            if constexpr (MAX) {
              if (!any || v > acc) acc = v;
              any = true;
            } else {
              acc += v;
              ++count;
            }
          }
        }
      }
    }
    if constexpr (MAX) {
      y[o] = acc_out<T>(any ? acc : static_cast<A>(empty_max));
    } else {
      int div = count;
      if (g.include_pad) {  // window positions inside input + pads
        int ch = 0, cw = 0;
        for (int a = 0; a < kh; ++a) {
          const int ih = h0 + a * g.dh;
          ch += (ih >= -g.ph && ih < g.H + g.peh);
        }
        for (int b = 0; b < kw; ++b) {
          const int iw = w0 + b * g.dw;
          cw += (iw >= -g.pw && iw < g.W + g.pew);
        }
        div = ch * cw;
      }
      y[o] = acc_out<T>(div > 0 ? acc / static_cast<A>(div) : static_cast<A>(NAN));
    }
  }
}

// The 32-bit 2-D geometry of g, when it applies (see pool2d_kernel).
bool make_geom2(const Geom& g, const Shape& xs, Geom2& q) {
  const int64_t lim = int64_t(1) << 31;
  int64_t numel = 1;
  for (int64_t d : xs) numel *= d;
  if (g.in[0] != 1 || g.out[0] != 1 || g.k[0] != 1 || g.pb[0] != 0 || numel >= lim || g.total >= lim) return false;
  for (int i = 1; i < 3; ++i)
    if (g.k[i] * g.d[i] >= lim || g.out[i] * g.s[i] >= lim || g.pb[i] >= lim || g.pe[i] >= lim) return false;
  q.H = static_cast<int>(g.in[1]), q.W = static_cast<int>(g.in[2]);
  q.OH = static_cast<int>(g.out[1]), q.OW = static_cast<int>(g.out[2]);
  q.kh = static_cast<int>(g.k[1]), q.kw = static_cast<int>(g.k[2]);
  q.sh = static_cast<int>(g.s[1]), q.sw = static_cast<int>(g.s[2]);
  q.dh = static_cast<int>(g.d[1]), q.dw = static_cast<int>(g.d[2]);
  q.ph = static_cast<int>(g.pb[1]), q.pw = static_cast<int>(g.pb[2]);
  q.peh = static_cast<int>(g.pe[1]), q.pew = static_cast<int>(g.pe[2]);
  q.total = static_cast<uint32_t>(g.total);
  q.by_ow = make_divmod(q.OW, g.total);
  q.by_oh = make_divmod(q.OH, g.total / q.OW);
  q.include_pad = g.include_pad;
  return q.by_ow.fast && q.by_oh.fast;
}

template <typename T, bool MAX>
void launch_pool2d(const KernelContext& ctx, const T* x, T* y, const Geom2& q, float empty_max) {
  const unsigned grid = grid_for(q.total);
  if (q.kh == 3 && q.kw == 3)
    pool2d_kernel<T, MAX, 3, 3><<<grid, kBlock, 0, ctx.stream>>>(x, y, q, empty_max);
  else
    pool2d_kernel<T, MAX, 0, 0><<<grid, kBlock, 0, ctx.stream>>>(x, y, q, empty_max);
  KILN_CUDA_LAUNCH_CHECK("pool2d");
}

using MaxPoolTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8,
                            DType::UInt8>;

void check_out(const ir::Node& n, const Geom& g, const DTensor& y) {
  if (y.numel() != g.total)
    KILN_THROW(InvalidArgument, n.label() << ": output has " << y.numel() << " elements, the window geometry gives " << g.total);
}

void run_maxpool(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  Geom g = make_geom(n, x.shape, true);
  check_out(n, g, a.out.at(0));
  if (g.total == 0) return;
  int64_t* idx = a.out.size() > 1 ? static_cast<int64_t*>(a.out[1].data) : nullptr;
  dispatch_list(MaxPoolTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_integral_v<T>) g.empty_max = static_cast<double>(std::numeric_limits<T>::lowest());
    else g.empty_max = -std::numeric_limits<double>::infinity();
    Geom2 q{};
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) {
      if (!idx && make_geom2(g, x.shape, q)) {
        launch_pool2d<T, true>(ctx, x.as<T>(), a.out[0].as<T>(), q, -INFINITY);
        return;
      }
    }
    maxpool_kernel<T><<<grid_for(g.total), kBlock, 0, ctx.stream>>>(x.as<T>(), a.out[0].as<T>(), idx, g);
    KILN_CUDA_LAUNCH_CHECK("maxpool");
  });
}

void run_avgpool(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const Geom g = make_geom(n, x.shape, false);
  check_out(n, g, a.out.at(0));
  if (g.total == 0) return;
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    Geom2 q{};
    if constexpr (!std::is_same_v<T, double>) {
      if (make_geom2(g, x.shape, q)) {
        launch_pool2d<T, false>(ctx, x.as<T>(), a.out[0].as<T>(), q, 0.0f);
        return;
      }
    }
    avgpool_kernel<T><<<grid_for(g.total), kBlock, 0, ctx.stream>>>(x.as<T>(), a.out[0].as<T>(), g);
    KILN_CUDA_LAUNCH_CHECK("avgpool");
  });
}

void run_global(const KernelContext& ctx, KernelArgs& a, bool is_max) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  if (x.rank() < 3) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << x.rank());
  const int64_t planes = x.shape[0] * x.shape[1];
  int64_t spatial = 1;
  for (size_t d = 2; d < x.shape.size(); ++d) spatial *= x.shape[d];
  launch_reduce(ctx, n, x.dtype, is_max ? RedKind::MaxIgnoreNaN : RedKind::Mean, x.data, a.out.at(0).data,
                {planes, spatial}, {false, true});
}

bool rank_3_to_5(const std::vector<ir::ValueType>& in) {
  return !in.empty() && (!in[0].has_rank || (in[0].dims.size() >= 3 && in[0].dims.size() <= 5));
}

void reg(const char* op, SupportsFn s, KernelFn k, bool reduce_ws) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = std::move(s);
  t.run = std::move(k);
  if (reduce_ws)
    t.workspace = [](const ir::Node&, const std::vector<ir::ValueType>&, const std::vector<ir::ValueType>&) {
      return kReduceWorkspace;
    };
  register_cuda_tactic("", op, std::move(t));
}

}  // namespace

void register_pool_kernels() {
  reg("MaxPool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) {
        return rank_3_to_5(in) && MaxPoolTypes::has(in[0].dtype);
      },
      run_maxpool, false);
  reg("AveragePool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) {
        return rank_3_to_5(in) && FloatDTypes::has(in[0].dtype);
      },
      run_avgpool, false);
  reg("GlobalAveragePool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && FloatDTypes::has(in[0].dtype); },
      [](const KernelContext& ctx, KernelArgs& a) { run_global(ctx, a, false); }, true);
  reg("GlobalMaxPool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && FloatDTypes::has(in[0].dtype); },
      [](const KernelContext& ctx, KernelArgs& a) { run_global(ctx, a, true); }, true);
}

}  // namespace kiln::runtime::cuda
