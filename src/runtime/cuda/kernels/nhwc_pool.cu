// CUDA kernels of kiln.Pool (ops/nhwc.h): ONNX MaxPool / AveragePool over channels-last [N, H, W, C] input, every
// attribute of the NCHW op (pads, auto_pad, strides, dilations, ceil_mode, count_include_pad; the window geometry
// from ops/spatial.h, as pool.cu), the semantics of the NCHW kernels: MaxPool takes the first in-range element, then
// any larger one (a window with no in-range element gives -inf); AveragePool accumulates in float (double for
// float64) and divides by the in-range count, or with count_include_pad by the window positions inside input + pads.
//
// Vector path (C a multiple of 16 bytes' worth of elements, 16-byte aligned buffers, < 2^31 vectors): one thread per
// (output pixel, 16-byte channel vector), adjacent threads on adjacent vectors of one pixel, so each window position
// is one coalesced 16-byte load per thread and the output one 16-byte store; 32-bit index math with multiply-shift
// division once per output vector; the window unrolled when it is 3x3. Scalar path otherwise: one thread per output
// element, channels innermost, 64-bit indices.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "ops/nhwc.h"
#include "ops/spatial.h"
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

struct PoolGeo {
  int64_t N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw, ph, pw, peh, pew;
  bool include_pad;
};

PoolGeo pool_geo(const ir::Node& n, const Shape& xs, bool* is_max) {
  if (xs.size() != 4) KILN_THROW(InvalidModel, n.label() << ": input must have rank 4 (NHWC), got " << shape_str(xs));
  const ir::Node onnx = ops::nhwc::onnx_pool_of(n);
  *is_max = onnx.op_type == "MaxPool";
  if (!onnx.has_attr("kernel_shape"))
    KILN_THROW(InvalidModel, n.label() << ": required attribute 'kernel_shape' is missing");
  const bool dilations = *is_max ? onnx.opset >= 10 : onnx.opset >= 19;
  const ops::SpatialAttrs sp =
      ops::read_spatial_attrs(onnx, 2, onnx.attr_ints("kernel_shape", {}), onnx.opset >= 10, dilations);
  const ops::Window3 w = ops::make_window3(onnx, sp, Shape{xs[0], xs[3], xs[1], xs[2]});
  return {xs[0], xs[1], xs[2], xs[3], w.out[1], w.out[2], w.k[1], w.k[2], w.s[1], w.s[2], w.d[1], w.d[2],
          w.pb[1], w.pb[2], w.pe[1], w.pe[2], !*is_max && onnx.attr_int("count_include_pad", 0) != 0};
}

// ---- scalar path ---------------------------------------------------------------------------------------------------
template <typename T, bool MAX>
__global__ void pool_nhwc_kernel(PoolGeo g, const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  using A = acc_t<T>;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = o % g.C;
    int64_t r = o / g.C;
    const int64_t ow = r % g.OW;
    r /= g.OW;
    const int64_t oh = r % g.OH, n = r / g.OH;
    const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    A acc = 0;
    bool any = false;
    int64_t count = 0;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t ih = h0 + a * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t b = 0; b < g.kw; ++b) {
        const int64_t iw = w0 + b * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const A v = acc_in(x[((n * g.H + ih) * g.W + iw) * g.C + c]);
        if constexpr (MAX) {
          if (!any || v > acc) acc = v;
          any = true;
        } else {
          acc += v;
          ++count;
        }
      }
    }
    if constexpr (MAX) {
      y[o] = acc_out<T>(any ? acc : static_cast<A>(-INFINITY));
    } else {
      int64_t div = count;
      if (g.include_pad) {  // window positions inside input + pads
        int64_t ch = 0, cw = 0;
        for (int64_t a = 0; a < g.kh; ++a) ch += (h0 + a * g.dh >= -g.ph && h0 + a * g.dh < g.H + g.peh);
        for (int64_t b = 0; b < g.kw; ++b) cw += (w0 + b * g.dw >= -g.pw && w0 + b * g.dw < g.W + g.pew);
        div = ch * cw;
      }
      y[o] = acc_out<T>(div > 0 ? acc / static_cast<A>(div) : static_cast<A>(NAN));
    }
  }
}

// ---- vector path ---------------------------------------------------------------------------------------------------
struct PoolVecGeo {
  int H, W, CV, OH, OW, kh, kw, sh, sw, dh, dw, ph, pw, peh, pew;  // CV: 16-byte vectors per pixel
  uint32_t total;                                                  // output vectors
  DivMod by_cv, by_ow, by_oh;
  bool include_pad;
};

// The 32-bit vector geometry, when it applies (see the file comment).
template <typename T>
bool make_vec_geo(const PoolGeo& g, const void* x, const void* y, PoolVecGeo& q) {
  constexpr int64_t V = 16 / static_cast<int64_t>(sizeof(T));
  const int64_t lim = int64_t(1) << 31;
  if (g.C % V != 0 || (reinterpret_cast<uintptr_t>(x) & 15) != 0 || (reinterpret_cast<uintptr_t>(y) & 15) != 0)
    return false;
  const int64_t cv = g.C / V;
  const int64_t in_vecs = g.N * g.H * g.W * cv, out_vecs = g.N * g.OH * g.OW * cv;
  if (in_vecs >= lim || out_vecs >= lim) return false;
  for (int64_t v : {g.kh * g.dh, g.kw * g.dw, g.OH * g.sh, g.OW * g.sw, g.ph, g.pw, g.peh, g.pew})
    if (v >= lim / 4) return false;
  q.H = static_cast<int>(g.H), q.W = static_cast<int>(g.W), q.CV = static_cast<int>(cv);
  q.OH = static_cast<int>(g.OH), q.OW = static_cast<int>(g.OW);
  q.kh = static_cast<int>(g.kh), q.kw = static_cast<int>(g.kw), q.sh = static_cast<int>(g.sh);
  q.sw = static_cast<int>(g.sw), q.dh = static_cast<int>(g.dh), q.dw = static_cast<int>(g.dw);
  q.ph = static_cast<int>(g.ph), q.pw = static_cast<int>(g.pw), q.peh = static_cast<int>(g.peh);
  q.pew = static_cast<int>(g.pew);
  q.total = static_cast<uint32_t>(out_vecs);
  q.by_cv = make_divmod(cv, out_vecs);
  q.by_ow = make_divmod(g.OW, out_vecs / cv);
  q.by_oh = make_divmod(g.OH, out_vecs / cv / g.OW);
  q.include_pad = g.include_pad;
  return q.by_cv.fast && q.by_ow.fast && q.by_oh.fast;
}

template <typename T, bool MAX, int KH, int KW>
__global__ void __launch_bounds__(kBlock) pool_nhwc_vec_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                               PoolVecGeo g) {
  using A = acc_t<T>;
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  const int kh = KH > 0 ? KH : g.kh, kw = KW > 0 ? KW : g.kw;
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  for (uint32_t o = blockIdx.x * blockDim.x + threadIdx.x; o < g.total; o += gridDim.x * blockDim.x) {
    const uint32_t pix = static_cast<uint32_t>(g.by_cv.div(o));
    const uint32_t cv = o - pix * static_cast<uint32_t>(g.CV);
    const uint32_t t = static_cast<uint32_t>(g.by_ow.div(pix));
    const int ow = static_cast<int>(pix - t * static_cast<uint32_t>(g.OW));
    const uint32_t n = static_cast<uint32_t>(g.by_oh.div(t));
    const int oh = static_cast<int>(t - n * static_cast<uint32_t>(g.OH));
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const uint32_t img = n * static_cast<uint32_t>(g.H);
    A acc[V];
#pragma unroll
    for (int i = 0; i < V; ++i) acc[i] = A(0);
    bool any = false;
    int count = 0;
#pragma unroll
    for (int a = 0; a < kh; ++a) {
      const int ih = h0 + a * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      const uint32_t row = (img + static_cast<uint32_t>(ih)) * static_cast<uint32_t>(g.W);
#pragma unroll
      for (int b = 0; b < kw; ++b) {
        const int iw = w0 + b * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const uint4 raw = __ldg(xv + (row + static_cast<uint32_t>(iw)) * static_cast<uint32_t>(g.CV) + cv);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const A f = acc_in(v[i]);
          if constexpr (MAX) {
            if (!any || f > acc[i]) acc[i] = f;
          } else {
            acc[i] += f;
          }
        }
        any = true;
        ++count;
      }
    }
    uint4 out;
    T* ov = reinterpret_cast<T*>(&out);
    if constexpr (MAX) {
#pragma unroll
      for (int i = 0; i < V; ++i) ov[i] = acc_out<T>(any ? acc[i] : static_cast<A>(-INFINITY));
    } else {
      int div = count;
      if (g.include_pad) {  // window positions inside input + pads
        int ch = 0, cw = 0;
        for (int a = 0; a < kh; ++a) ch += (h0 + a * g.dh >= -g.ph && h0 + a * g.dh < g.H + g.peh);
        for (int b = 0; b < kw; ++b) cw += (w0 + b * g.dw >= -g.pw && w0 + b * g.dw < g.W + g.pew);
        div = ch * cw;
      }
#pragma unroll
      for (int i = 0; i < V; ++i) ov[i] = acc_out<T>(div > 0 ? acc[i] / static_cast<A>(div) : static_cast<A>(NAN));
    }
    reinterpret_cast<uint4*>(y)[o] = out;
  }
}

template <typename T, bool MAX>
void launch_vec(const KernelContext& ctx, const T* x, T* y, const PoolVecGeo& q) {
  const unsigned grid = grid_for(q.total);
  if (q.kh == 3 && q.kw == 3)
    pool_nhwc_vec_kernel<T, MAX, 3, 3><<<grid, kBlock, 0, ctx.stream>>>(x, y, q);
  else if (q.kh == 2 && q.kw == 2)
    pool_nhwc_vec_kernel<T, MAX, 2, 2><<<grid, kBlock, 0, ctx.stream>>>(x, y, q);
  else
    pool_nhwc_vec_kernel<T, MAX, 0, 0><<<grid, kBlock, 0, ctx.stream>>>(x, y, q);
}

// KILN_NHWC_POOL_VECTOR=0 forces the scalar path (for A/B timing and tests).
bool vector_path_enabled() {
  const char* e = std::getenv("KILN_NHWC_POOL_VECTOR");
  return !(e && e[0] == '0' && e[1] == 0);
}

void run_kpool(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  DTensor& y = a.out.at(0);
  bool is_max = false;
  const PoolGeo g = pool_geo(n, x.shape, &is_max);
  const Shape want = {g.N, g.OH, g.OW, g.C};
  if (y.shape != want)
    KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(y.shape) << ", the window geometry gives "
                                       << shape_str(want));
  const int64_t total = y.numel();
  if (total == 0) return;
  const bool vec_ok = vector_path_enabled();
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    PoolVecGeo q{};
    if (vec_ok && make_vec_geo<T>(g, x.data, y.data, q)) {
      if (is_max) launch_vec<T, true>(ctx, x.as<const T>(), y.as<T>(), q);
      else launch_vec<T, false>(ctx, x.as<const T>(), y.as<T>(), q);
    } else if (is_max) {
      pool_nhwc_kernel<T, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(g, x.as<const T>(), y.as<T>(), total);
    } else {
      pool_nhwc_kernel<T, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(g, x.as<const T>(), y.as<T>(), total);
    }
  });
  KILN_CUDA_LAUNCH_CHECK("kiln.Pool");
}

}  // namespace

void register_nhwc_pool_kernels() {
  register_cuda_tactic(ops::nhwc::kDomain, ops::nhwc::kPool,
                       CudaTactic{"cuda",
                                  [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                                    return !in.empty() && FloatDTypes::has(in[0].dtype) &&
                                           (!in[0].has_rank || in[0].dims.size() == 4);
                                  },
                                  run_kpool, nullptr});
}

}  // namespace kiln::runtime::cuda
