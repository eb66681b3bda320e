// CUDA kernels of the reduce family: Softmax and LogSoftmax. Opset >= 13 normalizes along `axis` (default -1);
// opset < 13 coerces the input to 2-D at `axis` (default 1) and normalizes each row of the product of the dims from
// `axis` on, like the CPU reference.
//
// Rows (the axis innermost, or any opset < 13 node): one read and one write. A group of threads owns a row (1..32
// threads for short rows, a block for long ones), loads it with 16-byte loads into registers (up to kMaxPacks packs
// a thread), reduces max and sum of exponentials with shuffles and writes. Rows too long for the registers of a
// 512-thread block (more than 16K float32 / 32K float16 values) are read again from memory for each pass.
// Other axes: one thread per (outer, inner) column, three strided passes (coalesced across columns).
// Math in float for float32 / float16 / bfloat16, double for float64; the max ignores NaN like std::max in the
// reference (a NaN then makes its row NaN through the sum).
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

constexpr int kMaxPacks = 8;

__device__ __forceinline__ float ex(float v) { return expf(v); }
__device__ __forceinline__ double ex(double v) { return exp(v); }
__device__ __forceinline__ float lg(float v) { return logf(v); }
__device__ __forceinline__ double lg(double v) { return log(v); }

struct MaxKeep {  // std::max(a, b): a NaN b is ignored
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return a < b ? b : a;
  }
};

template <typename A>
__device__ __forceinline__ A neg_inf() {
  return -static_cast<A>(INFINITY);
}

template <typename T, int V>
__global__ void __launch_bounds__(512) softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                                            int64_t packs, int tpr, bool log_form) {
  using A = acc_t<T>;
  using P = Pack<T, V>;
  __shared__ A red[32];
  const int rpb = blockDim.x / tpr;
  const int g = threadIdx.x / tpr, lane = threadIdx.x % tpr;
  const bool cached = packs <= int64_t(kMaxPacks) * tpr;
  const P* xp = reinterpret_cast<const P*>(x);
  P* yp = reinterpret_cast<P*>(y);
  for (int64_t base = int64_t(blockIdx.x) * rpb; base < rows; base += int64_t(gridDim.x) * rpb) {
    const int64_t row = base + g;
    const bool active = row < rows;
    const P* xr = xp + (active ? row : 0) * packs;
    P* yr = yp + (active ? row : 0) * packs;
    P buf[kMaxPacks];
    A mx = neg_inf<A>();
    if (cached) {
#pragma unroll
      for (int j = 0; j < kMaxPacks; ++j) {  // every load in flight before the first use
        const int64_t p = lane + int64_t(j) * tpr;
        if (active && p < packs) buf[j] = xr[p];
      }
#pragma unroll
      for (int j = 0; j < kMaxPacks; ++j) {
        const int64_t p = lane + int64_t(j) * tpr;
        if (active && p < packs) {
#pragma unroll
          for (int e = 0; e < V; ++e) mx = MaxKeep{}(mx, acc_in(buf[j].v[e]));
        }
      }
    } else {
      for (int64_t p = lane; active && p < packs; p += tpr) {
        const P q = xr[p];
#pragma unroll
        for (int e = 0; e < V; ++e) mx = MaxKeep{}(mx, acc_in(q.v[e]));
      }
    }
    mx = group_reduce(mx, MaxKeep{}, tpr, red);
    A sum = 0;
    if (cached) {
#pragma unroll
      for (int j = 0; j < kMaxPacks; ++j) {
        const int64_t p = lane + int64_t(j) * tpr;
        if (active && p < packs) {
#pragma unroll
          for (int e = 0; e < V; ++e) sum += ex(acc_in(buf[j].v[e]) - mx);
        }
      }
    } else {
      for (int64_t p = lane; active && p < packs; p += tpr) {
        const P q = xr[p];
#pragma unroll
        for (int e = 0; e < V; ++e) sum += ex(acc_in(q.v[e]) - mx);
      }
    }
    sum = group_reduce(sum, OpAdd{}, tpr, red);
    const A shift = log_form ? mx + lg(sum) : mx;
    const A inv = A(1) / sum;
    auto out = [&](const P& q) {
      P o;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const A v = acc_in(q.v[e]) - shift;
        o.v[e] = acc_out<T>(log_form ? v : ex(v) * inv);
      }
      return o;
    };
    if (cached) {
#pragma unroll
      for (int j = 0; j < kMaxPacks; ++j) {
        const int64_t p = lane + int64_t(j) * tpr;
        if (active && p < packs) yr[p] = out(buf[j]);
      }
    } else {
      for (int64_t p = lane; active && p < packs; p += tpr) yr[p] = out(xr[p]);
    }
  }
}

// One thread per (o, i) column of an [outer, len, inner] tensor.
template <typename T>
__global__ void softmax_strided_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols, int64_t len,
                                       int64_t inner, DivMod by_inner, bool log_form) {
  using A = acc_t<T>;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = by_inner.div(c), i = c - o * inner;
    const T* xc = x + o * len * inner + i;
    T* yc = y + o * len * inner + i;
    A mx = neg_inf<A>(), sum = 0;
    for (int64_t k = 0; k < len; ++k) mx = MaxKeep{}(mx, acc_in(xc[k * inner]));
    for (int64_t k = 0; k < len; ++k) sum += ex(acc_in(xc[k * inner]) - mx);
    const A shift = log_form ? mx + lg(sum) : mx;
    const A inv = A(1) / sum;
    for (int64_t k = 0; k < len; ++k) {
      const A v = acc_in(xc[k * inner]) - shift;
      yc[k * inner] = acc_out<T>(log_form ? v : ex(v) * inv);
    }
  }
}

template <typename T, int V>
void launch_rows(const KernelContext& ctx, const T* x, T* y, int64_t rows, int64_t len, bool log_form) {
  const int64_t packs = len / V;
  const RowShape rs = row_shape(rows, packs, 4, 512);
  softmax_rows_kernel<T, V><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(x, y, rows, packs, rs.tpr,
                                                                                        log_form);
  KILN_CUDA_LAUNCH_CHECK("softmax_rows");
}

void run_softmax(const KernelContext& ctx, KernelArgs& a, bool log_form) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  DTensor& y = a.out.at(0);
  const int64_t rank = x.rank();
  const int64_t axis = norm_axis(n, n.attr_int("axis", n.opset >= 13 ? -1 : 1), rank);
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[static_cast<size_t>(d)];
  if (n.opset >= 13) {
    len = x.shape[static_cast<size_t>(axis)];
    for (int64_t d = axis + 1; d < rank; ++d) inner *= x.shape[static_cast<size_t>(d)];
  } else {
    for (int64_t d = axis; d < rank; ++d) len *= x.shape[static_cast<size_t>(d)];
  }
  if (x.numel() == 0) return;
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    constexpr int V = vec_of<T>();
    const T* px = x.as<T>();
    T* py = y.as<T>();
    if (inner == 1) {
      if (V > 1 && len % V == 0 && aligned16(px) && aligned16(py))
        launch_rows<T, V>(ctx, px, py, outer, len, log_form);
      else
        launch_rows<T, 1>(ctx, px, py, outer, len, log_form);
      return;
    }
    const int64_t cols = outer * inner;
    softmax_strided_kernel<T><<<grid_for(cols), kBlock, 0, ctx.stream>>>(px, py, cols, len, inner,
                                                                         make_divmod(inner, cols), log_form);
    KILN_CUDA_LAUNCH_CHECK("softmax_strided");
  });
}

}  // namespace

void register_softmax_tactics() {
  for (bool log_form : {false, true}) {
    CudaTactic t;
    t.name = "cuda";
    t.supports = [](const ir::Node&, const std::vector<ir::ValueType>& in) {
      return !in.empty() && FloatDTypes::has(in[0].dtype);
    };
    t.run = [log_form](const KernelContext& ctx, KernelArgs& a) { run_softmax(ctx, a, log_form); };
    register_cuda_tactic("", log_form ? "LogSoftmax" : "Softmax", std::move(t));
  }
}

}  // namespace kiln::runtime::cuda
