// CUDA kernels of the reduce family: ArgMax / ArgMin (axis, keepdims, select_last_index), CumSum (exclusive,
// reverse) and TopK (largest, sorted, K from the attribute or the host value of input 1).
//
// ArgMax / ArgMin: a group of threads per output (1..32 threads or a block along a contiguous axis, one thread per
// output otherwise, coalesced across outputs), reducing (value, index) pairs: the first NaN wins, ties go to the
// lowest index (highest with select_last_index), like the CPU reference.
// CumSum: a block per row scans a contiguous axis in tiles (cub::BlockScan with a running prefix); along other axes
// one thread per column. Floats accumulate in double like the reference (a long prefix sum in float drifts), integers
// wrap.
// TopK: a block per row sorts (value, index) pairs in shared memory (bitonic sort; NaN counts as the largest, ties by
// the lower index: the CPU reference's stable order). Rows longer than kTopkTile are taken in tiles, keeping the best
// K of each round, which needs K <= kTopkTile / 2. Output is always sorted (valid for sorted = 0 too).
#include <cub/block/block_scan.cuh>

#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

using NumericDTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                             DType::Int32, DType::Int16, DType::Int8, DType::UInt8>;

// [outer, len, inner] view of a tensor around `axis`.
struct AxisView {
  int64_t outer = 1, len = 1, inner = 1;
};
AxisView axis_view(const Shape& s, int64_t axis) {
  AxisView v;
  for (size_t d = 0; d < s.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) v.outer *= s[d];
    else if (static_cast<int64_t>(d) == axis) v.len = s[d];
    else v.inner *= s[d];
  }
  return v;
}

// ---- ArgMax / ArgMin ---------------------------------------------------------------------------------------------
template <typename A>
__device__ __forceinline__ bool arg_take(A va, int64_t ia, A vb, int64_t ib, bool is_max, bool last) {
  if (ib < 0) return false;
  if (ia < 0) return true;
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return na && nb ? ib < ia : nb;  // the first NaN wins
  if (va == vb) return last ? ib > ia : ib < ia;
  return is_max ? vb > va : vb < va;
}

template <typename T>
__global__ void __launch_bounds__(512) arg_kernel(const T* __restrict__ x, int64_t* __restrict__ y, int64_t outs,
                                                  int64_t len, int64_t inner, DivMod by_inner, int tpr, bool is_max,
                                                  bool last) {
  using A = acc_t<T>;
  __shared__ A rv[32];
  __shared__ int64_t ri[32];
  const int rpb = blockDim.x / tpr;
  const int g = threadIdx.x / tpr, lane = threadIdx.x % tpr;
  for (int64_t base = int64_t(blockIdx.x) * rpb; base < outs; base += int64_t(gridDim.x) * rpb) {
    const int64_t o = base + g;
    const bool active = o < outs;
    const int64_t oo = active ? by_inner.div(o) : 0, i = active ? o - oo * inner : 0;
    const T* xr = x + oo * len * inner + i;
    A bv = acc_in(T{});
    int64_t bi = -1;
    for (int64_t k = lane; active && k < len; k += tpr) {
      const A v = acc_in(xr[k * inner]);
      if (arg_take(bv, bi, v, k, is_max, last)) bv = v, bi = k;
    }
    const int lim = tpr < 32 ? tpr : 32;
    for (int off = lim / 2; off > 0; off >>= 1) {
      const A v = __shfl_xor_sync(0xffffffffu, bv, off);
      const int64_t k = __shfl_xor_sync(0xffffffffu, bi, off);
      if (arg_take(bv, bi, v, k, is_max, last)) bv = v, bi = k;
    }
    if (tpr > 32) {
      __syncthreads();
      if ((threadIdx.x & 31) == 0) rv[threadIdx.x >> 5] = bv, ri[threadIdx.x >> 5] = bi;
      __syncthreads();
      for (int w = 0; w < int(blockDim.x >> 5); ++w)
        if (arg_take(bv, bi, rv[w], ri[w], is_max, last)) bv = rv[w], bi = ri[w];
    }
    if (active && lane == 0) y[o] = bi;
  }
}

void run_arg(const KernelContext& ctx, KernelArgs& a, bool is_max) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const int64_t axis = norm_axis(n, n.attr_int("axis", 0), x.rank());
  const bool last = n.opset >= 12 && n.attr_int("select_last_index", 0) != 0;
  const AxisView v = axis_view(x.shape, axis);
  const int64_t outs = v.outer * v.inner;
  if (outs == 0) return;
  if (v.len == 0)
    KILN_THROW(InvalidArgument, n.label() << ": cannot take the arg" << (is_max ? "max" : "min")
                                          << " of an empty axis (input " << shape_str(x.shape) << ")");
  const RowShape rs = v.inner == 1 ? row_shape(outs, v.len, 16, 512) : RowShape{1, kBlock, grid_for(outs)};
  dispatch_list(NumericDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    arg_kernel<T><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(
        x.as<T>(), a.out.at(0).as<int64_t>(), outs, v.len, v.inner, make_divmod(v.inner, outs), rs.tpr, is_max, last);
    KILN_CUDA_LAUNCH_CHECK("argmax");
  });
}

// ---- CumSum ------------------------------------------------------------------------------------------------------
template <typename T>
using scan_t = std::conditional_t<std::is_integral_v<T>, unsigned long long, double>;

template <typename T>
__device__ __forceinline__ scan_t<T> scan_in(T v) {
  if constexpr (std::is_integral_v<T>) return static_cast<unsigned long long>(static_cast<long long>(v));
  else return static_cast<double>(acc_in(v));
}
template <typename T, typename S>
__device__ __forceinline__ T scan_out(S v) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<long long>(v));
  else return acc_out<T>(v);
}

// One thread per column of an [outer, len, inner] view (inner > 1).
template <typename T>
__global__ void cumsum_cols_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols, int64_t len,
                                   int64_t inner, DivMod by_inner, bool exclusive, bool reverse) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = by_inner.div(c), i = c - o * inner;
    const int64_t base = o * len * inner + i;
    scan_t<T> acc = 0;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t at = base + (reverse ? len - 1 - j : j) * inner;
      const scan_t<T> v = scan_in(x[at]);
      if (exclusive) y[at] = scan_out<T>(acc);
      acc += v;
      if (!exclusive) y[at] = scan_out<T>(acc);
    }
  }
}

constexpr int kScanThreads = 256, kScanItems = 4;

template <typename S>
struct RunningPrefix {
  S total;
  __device__ S operator()(S tile_sum) {
    const S old = total;
    total += tile_sum;
    return old;
  }
};

// A block per contiguous row; tiles of kScanThreads * kScanItems elements, a thread's items consecutive.
template <typename T>
__global__ void __launch_bounds__(kScanThreads) cumsum_rows_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                                   int64_t rows, int64_t len, bool exclusive,
                                                                   bool reverse) {
  using S = scan_t<T>;
  using Scan = cub::BlockScan<S, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  constexpr int64_t kTile = int64_t(kScanThreads) * kScanItems;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    RunningPrefix<S> prefix{0};
    for (int64_t t0 = 0; t0 < len; t0 += kTile) {
      S items[kScanItems];
#pragma unroll
      for (int e = 0; e < kScanItems; ++e) {
        const int64_t j = t0 + int64_t(threadIdx.x) * kScanItems + e;  // position in scan order
        items[e] = j < len ? scan_in(xr[reverse ? len - 1 - j : j]) : S(0);
      }
      if (exclusive) Scan(tmp).ExclusiveSum(items, items, prefix);
      else Scan(tmp).InclusiveSum(items, items, prefix);
      __syncthreads();  // tmp is reused by the next tile
#pragma unroll
      for (int e = 0; e < kScanItems; ++e) {
        const int64_t j = t0 + int64_t(threadIdx.x) * kScanItems + e;
        if (j < len) yr[reverse ? len - 1 - j : j] = scan_out<T>(items[e]);
      }
    }
  }
}

using CumSumTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32>;

void run_cumsum(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const std::vector<int64_t> ax = input_ints(ctx, a, 1, "axis");
  if (ax.size() != 1) KILN_THROW(InvalidModel, n.label() << ": axis must hold one value, got " << ax.size());
  const AxisView v = axis_view(x.shape, norm_axis(n, ax[0], x.rank()));
  const bool exclusive = n.attr_int("exclusive", 0) != 0, reverse = n.attr_int("reverse", 0) != 0;
  if (x.numel() == 0) return;
  dispatch_list(CumSumTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    T* y = a.out.at(0).as<T>();
    if (v.inner == 1) {
      const unsigned grid = static_cast<unsigned>(std::min<int64_t>(v.outer, int64_t(1) << 20));
      cumsum_rows_kernel<T><<<grid, kScanThreads, 0, ctx.stream>>>(x.as<T>(), y, v.outer, v.len, exclusive, reverse);
    } else {
      const int64_t cols = v.outer * v.inner;
      cumsum_cols_kernel<T><<<grid_for(cols), kBlock, 0, ctx.stream>>>(x.as<T>(), y, cols, v.len, v.inner,
                                                                       make_divmod(v.inner, cols), exclusive, reverse);
    }
    KILN_CUDA_LAUNCH_CHECK("cumsum");
  });
}

// ---- TopK --------------------------------------------------------------------------------------------------------
constexpr int kTopkTile = 4096;  // sort size in shared memory (49152 bytes with 8-byte keys)
constexpr int kTopkThreads = 512;

// Whether (va, ia) comes before (vb, ib): padding (index < 0) last, NaN largest, ties by index.
template <typename A>
__device__ __forceinline__ bool topk_before(A va, int ia, A vb, int ib, bool largest) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  const bool na = va != va, nb = vb != vb;
  if (na || nb) {
    const bool a_first = largest ? na && !nb : !na && nb;
    const bool b_first = largest ? nb && !na : !nb && na;
    if (a_first != b_first) return a_first;
    return ia < ib;
  }
  if (va != vb) return largest ? va > vb : va < vb;
  return ia < ib;
}

template <typename T>
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const T* __restrict__ x, T* __restrict__ vals,
                                                            int64_t* __restrict__ idx, int64_t rows, int64_t dim,
                                                            int64_t inner, DivMod by_inner, int64_t k, bool largest,
                                                            int n2) {
  using A = acc_t<T>;
  extern __shared__ unsigned char smem[];
  A* key = reinterpret_cast<A*>(smem);
  int* id = reinterpret_cast<int*>(key + n2);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t o = by_inner.div(r), i = r - o * inner;
    const T* xr = x + o * dim * inner + i;
    int kept = 0;
    for (int64_t next = 0;;) {
      for (int s = kept + threadIdx.x; s < n2; s += blockDim.x) {
        const int64_t j = next + (s - kept);
        id[s] = j < dim ? static_cast<int>(j) : -1;
        key[s] = j < dim ? acc_in(xr[j * inner]) : A(0);
      }
      next += n2 - kept;
      __syncthreads();
      for (int size = 2; size <= n2; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
          for (int t = threadIdx.x; t < (n2 >> 1); t += blockDim.x) {
            const int p = 2 * t - (t & (stride - 1)), q = p + stride;
            const bool up = (p & size) == 0;
            const bool swap = up ? topk_before(key[q], id[q], key[p], id[p], largest)
                                 : topk_before(key[p], id[p], key[q], id[q], largest);
            if (swap) {
              const A kv = key[p];
              key[p] = key[q], key[q] = kv;
              const int iv = id[p];
              id[p] = id[q], id[q] = iv;
            }
          }
          __syncthreads();
        }
      kept = static_cast<int>(k);
      if (next >= dim) break;
    }
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const int64_t src = id[j];
      vals[(o * k + j) * inner + i] = xr[src * inner];
      if (idx) idx[(o * k + j) * inner + i] = src;
    }
    __syncthreads();  // the next row overwrites key / id
  }
}

void run_topk(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  int64_t k = 0;
  if (n.opset < 10) {
    k = n.attr_int("k");
  } else {
    const std::vector<int64_t> kv = input_ints(ctx, a, 1, "K");
    if (kv.size() != 1) KILN_THROW(InvalidModel, n.label() << ": K must hold one value, got " << kv.size());
    k = kv[0];
  }
  const int64_t axis = norm_axis(n, n.attr_int("axis", -1), x.rank());
  const bool largest = n.opset < 11 || n.attr_int("largest", 1) != 0;
  const AxisView v = axis_view(x.shape, axis);
  if (k < 0 || k > v.len)
    KILN_THROW(InvalidArgument, n.label() << ": K = " << k << " is outside [0, " << v.len << "] (axis " << axis
                                          << " of " << shape_str(x.shape) << ")");
  if (v.len > std::numeric_limits<int>::max())
    KILN_THROW(Unsupported, n.label() << ": axis of " << v.len << " elements is too long for the CUDA TopK");
  const int64_t rows = v.outer * v.inner;
  if (k == 0 || rows == 0) return;
  const int n2 = v.len <= kTopkTile ? std::max(2, pow2_at_least(v.len)) : kTopkTile;
  if (v.len > kTopkTile && k > kTopkTile / 2)
    KILN_THROW(Unsupported, n.label() << ": the CUDA TopK takes K <= " << kTopkTile / 2 << " along an axis longer than "
                                      << kTopkTile << " (K = " << k << ", axis of " << v.len << ")");
  int64_t* idx = a.out.size() > 1 ? static_cast<int64_t*>(a.out[1].data) : nullptr;
  dispatch_list(NumericDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    const size_t smem = static_cast<size_t>(n2) * (sizeof(acc_t<T>) + sizeof(int));
    const int threads = std::min(kTopkThreads, std::max(32, n2 / 2));
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, int64_t(1) << 20));
    topk_kernel<T><<<grid, threads, smem, ctx.stream>>>(x.as<T>(), a.out.at(0).as<T>(), idx, rows, v.len, v.inner,
                                                        make_divmod(v.inner, rows), k, largest, n2);
    KILN_CUDA_LAUNCH_CHECK("topk");
  });
}

void reg(const char* op, SupportsFn s, KernelFn k) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = std::move(s);
  t.run = std::move(k);
  register_cuda_tactic("", op, std::move(t));
}

}  // namespace

void register_arg_tactics() {
  auto numeric = [](const ir::Node&, const std::vector<ir::ValueType>& in) {
    return !in.empty() && NumericDTypes::has(in[0].dtype);
  };
  reg("ArgMax", numeric, [](const KernelContext& ctx, KernelArgs& a) { run_arg(ctx, a, true); });
  reg("ArgMin", numeric, [](const KernelContext& ctx, KernelArgs& a) { run_arg(ctx, a, false); });
  reg("CumSum",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && CumSumTypes::has(in[0].dtype); },
      run_cumsum);
  reg("TopK", numeric, run_topk);
}

}  // namespace kiln::runtime::cuda
