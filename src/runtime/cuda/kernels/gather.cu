// CUDA kernels: the movement family, part 2 (index-driven movement): Gather, GatherElements, GatherND, ScatterND.
//
// Indices may be negative (counted from the end). An index outside its axis cannot throw from the device: when the
// executor hands the indices' host value (constant indices), the kernel checks them on the host and throws
// InvalidArgument like the CPU kernels; otherwise an out-of-range index reads zeros (Gather*, GatherND) or its
// update is skipped (ScatterND). Nothing outside the tensors is ever read or written.
//
// ScatterND with reduction "none" keeps the CPU's rule for duplicate indices (the last update in index order wins)
// with a per-destination "winner" array in the workspace (atomicMax of the tuple number), then one write pass.
// add / mul / max / min use atomics (compare-and-swap for the types without a native atomic); float16/bfloat16
// compute each step in float and round once, as the CPU does. Float add/mul may differ from the CPU in the last
// bits when indices repeat (a different order).
#include <algorithm>

#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/movement_common.cuh"
#include "util/log.h"

namespace kiln::runtime::cuda::move {
namespace {

// Index i of an int32 / int64 index tensor (uniform branch).
__device__ __forceinline__ int64_t load_index(const void* p, bool i64, int64_t i) {
  return i64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

// Host-side range check of known indices (the CPU kernels' InvalidArgument).
void check_host_indices(const KernelArgs& args, size_t i, int64_t dim, const char* what) {
  if (i >= args.host_in.size() || !args.host_in[i]) return;
  const Tensor& t = *args.host_in[i];
  for (int64_t j = 0; j < t.numel(); ++j) {
    const int64_t v = t.at_int64(j);
    if (v < -dim || v >= dim)
      KILN_THROW(InvalidArgument, args.node.label() << ": index " << v << " is out of range for " << what << " of size " << dim);
  }
}

// ---- Gather: out[o, j, k] = data[o, idx[j], k] -------------------------------------------------------------------
template <typename E, bool Small>
__global__ void gather_kernel(const E* __restrict__ data, const void* __restrict__ idx, bool i64, E* __restrict__ out,
                              int64_t n, int64_t inner, int64_t nidx, int64_t dim, FastDiv inner_d, FastDiv nidx_d) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    I q, k, o, j;
    if constexpr (Small) {
      q = inner_d.div(i), k = i - q * inner_d.d;
      o = nidx_d.div(q), j = q - o * nidx_d.d;
    } else {
      q = i / inner, k = i - q * inner;
      o = q / nidx, j = q - o * nidx;
    }
    int64_t v = load_index(idx, i64, j);
    if (v < 0) v += dim;
    out[i] = (v >= 0 && v < dim) ? data[(static_cast<int64_t>(o) * dim + v) * inner + k] : E{};
  }
}

template <typename E>
void launch_gather(const KernelContext& ctx, const void* data, const void* idx, bool i64, void* out, int64_t n,
                   int64_t inner, int64_t nidx, int64_t dim) {
  const bool small = n <= kSmallIndex;
  auto* d = static_cast<const E*>(data);
  auto* y = static_cast<E*>(out);
  if (small)
    gather_kernel<E, true><<<grid_for(n), kBlock, 0, ctx.stream>>>(d, idx, i64, y, n, inner, nidx, dim, FastDiv(inner),
                                                                   FastDiv(nidx));
  else
    gather_kernel<E, false><<<grid_for(n), kBlock, 0, ctx.stream>>>(d, idx, i64, y, n, inner, nidx, dim, FastDiv(),
                                                                    FastDiv());
  KILN_CUDA_LAUNCH_CHECK("gather_kernel");
}

void gather_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const DTensor& idx = in_of(args, 1);
  DTensor& y = args.out[0];
  const size_t axis = static_cast<size_t>(ops::normalize_axis(n.attr_int("axis", 0), x.rank(), n));
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t dim = x.shape[axis], nidx = idx.numel();
  if (y.numel() != outer * nidx * inner)
    KILN_THROW(InvalidArgument, n.label() << ": output " << shape_str(y.shape) << " does not match the gather");
  check_host_indices(args, 1, dim, "the gathered axis");
  if (y.numel() == 0) return;
  // Widen the copied rows to 16-byte vectors where they allow it.
  size_t es = dtype_size(x.dtype);
  while (es < 16 && inner % 2 == 0 && reinterpret_cast<uintptr_t>(x.data) % (es * 2) == 0 &&
         reinterpret_cast<uintptr_t>(y.data) % (es * 2) == 0)
    es *= 2, inner /= 2;
  const bool i64 = idx.dtype == DType::Int64;
  const int64_t total = outer * nidx * inner;
  switch (es) {
    case 1: launch_gather<uint8_t>(ctx, x.data, idx.data, i64, y.data, total, inner, nidx, dim); break;
    case 2: launch_gather<uint16_t>(ctx, x.data, idx.data, i64, y.data, total, inner, nidx, dim); break;
    case 4: launch_gather<uint32_t>(ctx, x.data, idx.data, i64, y.data, total, inner, nidx, dim); break;
    case 8: launch_gather<uint64_t>(ctx, x.data, idx.data, i64, y.data, total, inner, nidx, dim); break;
    default: launch_gather<uint4>(ctx, x.data, idx.data, i64, y.data, total, inner, nidx, dim); break;
  }
}

// ---- GatherElements: out[i] = data[i with the axis coordinate replaced by idx[i]] --------------------------------
struct ElemArgs {
  int rank, axis;
  FastDiv div[kMaxDims];       // index dims, innermost first
  int64_t dim[kMaxDims];
  int64_t dstride[kMaxDims];   // data strides, innermost first
  int64_t axis_dim;
};

template <typename E, bool Small>
__global__ void gather_elements_kernel(const E* __restrict__ data, const void* __restrict__ idx, bool i64,
                                       E* __restrict__ out, int64_t n, const __grid_constant__ ElemArgs a) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    int64_t v = load_index(idx, i64, i);
    if (v < 0) v += a.axis_dim;
    const bool ok = v >= 0 && v < a.axis_dim;
    I r = i;
    int64_t off = 0;
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      if (k < a.rank) {
        I q;
        if constexpr (Small) q = a.div[k].div(r);
        else q = r / a.dim[k];
        const int64_t c = k == a.axis ? v : static_cast<int64_t>(r - q * static_cast<I>(a.dim[k]));
        off += c * a.dstride[k];
        r = q;
      }
    }
    out[i] = ok ? data[off] : E{};
  }
}

void gather_elements_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const DTensor& idx = in_of(args, 1);
  DTensor& y = args.out[0];
  check_rank(n, x.shape);
  if (idx.shape.size() != x.shape.size())
    KILN_THROW(InvalidModel, n.label() << ": indices " << shape_str(idx.shape) << " must have the rank of data "
                                       << shape_str(x.shape));
  const size_t axis = static_cast<size_t>(ops::normalize_axis(n.attr_int("axis", 0), x.rank(), n));
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (d != axis && idx.shape[d] > x.shape[d])
      KILN_THROW(InvalidModel, n.label() << ": indices " << shape_str(idx.shape) << " exceed data " << shape_str(x.shape)
                                         << " outside axis " << axis);
  check_host_indices(args, 1, x.shape[axis], "the gathered axis");
  const int64_t total = idx.numel();
  if (total == 0) return;
  ElemArgs a{};
  a.rank = static_cast<int>(x.shape.size());
  a.axis = a.rank - 1 - static_cast<int>(axis);
  a.axis_dim = x.shape[axis];
  const std::vector<int64_t> st = row_strides(x.shape);
  const bool small = total <= kSmallIndex;
  for (int k = 0; k < a.rank; ++k) {
    const size_t d = static_cast<size_t>(a.rank - 1 - k);
    a.dim[k] = idx.shape[d];
    a.div[k] = FastDiv(small ? idx.shape[d] : 1);
    a.dstride[k] = st[d];
  }
  const bool i64 = idx.dtype == DType::Int64;
  dispatch_bytes(x.dtype, [&](auto tag) {
    using E = decltype(tag);
    auto* d = static_cast<const E*>(x.data);
    auto* o = static_cast<E*>(y.data);
    if (small) gather_elements_kernel<E, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(d, idx.data, i64, o, total, a);
    else gather_elements_kernel<E, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(d, idx.data, i64, o, total, a);
  });
  KILN_CUDA_LAUNCH_CHECK("gather_elements_kernel");
}

// ---- GatherND / ScatterND: index tuples address slices ----------------------------------------------------------
struct TupleArgs {
  int k;                         // tuple length
  int64_t dim[kMaxDims];         // data dims addressed by the tuple
  int64_t stride[kMaxDims];      // their strides (elements)
  int64_t slot_stride[kMaxDims]; // ScatterND: strides of the destination-slice number
};

// Offset of tuple t's slice (-1 when an index is out of range); `slot` gets the destination slice number.
__device__ __forceinline__ int64_t tuple_offset(const int64_t* idx, int64_t t, const TupleArgs& a, int64_t* slot) {
  int64_t off = 0, s = 0;
  for (int j = 0; j < a.k; ++j) {
    int64_t v = idx[t * a.k + j];
    if (v < 0) v += a.dim[j];
    if (v < 0 || v >= a.dim[j]) return -1;
    off += v * a.stride[j];
    s += v * a.slot_stride[j];
  }
  *slot = s;
  return off;
}

template <typename E>
__global__ void gather_nd_kernel(const E* __restrict__ data, const int64_t* __restrict__ idx, E* __restrict__ out,
                                 int64_t n, int64_t slice, int64_t per_batch, int64_t batch_stride,
                                 const __grid_constant__ TupleArgs a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / slice, e = i - t * slice;
    int64_t slot;
    const int64_t off = tuple_offset(idx, t, a, &slot);
    out[i] = off >= 0 ? data[(t / per_batch) * batch_stride + off + e] : E{};
  }
}

void gather_nd_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const DTensor& idx = in_of(args, 1);
  DTensor& y = args.out[0];
  const Shape &ds = x.shape, &is = idx.shape;
  const int64_t b64 = n.opset >= 12 ? n.attr_int("batch_dims", 0) : 0;
  if (b64 < 0 || is.empty() || static_cast<size_t>(b64) >= is.size() || static_cast<size_t>(b64) >= ds.size())
    KILN_THROW(InvalidModel, n.label() << ": batch_dims " << b64 << " with data " << shape_str(ds) << " and indices "
                                       << shape_str(is));
  const size_t b = static_cast<size_t>(b64);
  const int64_t k = is.back();
  if (k < 1 || b + static_cast<size_t>(k) > ds.size() || k > kMaxDims)
    KILN_THROW(InvalidModel, n.label() << ": indices' last dim " << k << " must be in [1, " << ds.size() - b << "]");
  const std::vector<int64_t> strides = row_strides(ds);
  int64_t batches = 1, slice = 1;
  for (size_t i = 0; i < b; ++i) batches *= ds[i];
  for (size_t i = b + static_cast<size_t>(k); i < ds.size(); ++i) slice *= ds[i];
  const int64_t tuples = shape_numel(is) / k;
  if (y.numel() != tuples * slice) KILN_THROW(InvalidArgument, n.label() << ": output " << shape_str(y.shape) << " does not match");
  if (y.numel() == 0) return;
  TupleArgs a{};
  a.k = static_cast<int>(k);
  for (int j = 0; j < a.k; ++j) a.dim[j] = ds[b + static_cast<size_t>(j)], a.stride[j] = strides[b + static_cast<size_t>(j)];
  if (args.host_in.size() > 1 && args.host_in[1]) {
    const Tensor& t = *args.host_in[1];
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t v = t.at_int64(i), d = a.dim[i % k];
      if (v < -d || v >= d)
        KILN_THROW(InvalidArgument, n.label() << ": index " << v << " is out of range for data axis " << b + static_cast<size_t>(i % k)
                                              << " of size " << d);
    }
  }
  const int64_t per_batch = batches == 0 ? 1 : std::max<int64_t>(1, tuples / batches);
  const int64_t batch_stride = b == 0 ? 0 : strides[b - 1];
  dispatch_bytes(x.dtype, [&](auto tag) {
    using E = decltype(tag);
    gather_nd_kernel<E><<<grid_for(y.numel()), kBlock, 0, ctx.stream>>>(
        static_cast<const E*>(x.data), static_cast<const int64_t*>(idx.data), static_cast<E*>(y.data), y.numel(), slice,
        per_batch, batch_stride, a);
  });
  KILN_CUDA_LAUNCH_CHECK("gather_nd_kernel");
}

// ScatterND -----------------------------------------------------------------------------------------------------
enum Red : int { kNone = 0, kAdd = 1, kMul = 2, kMax = 3, kMin = 4 };

Red reduction_of(const ir::Node& n) {
  if (n.opset < 16) return kNone;
  const std::string r = n.attr_string("reduction", "none");
  if (r == "none") return kNone;
  if (r == "add") return kAdd;
  if (r == "mul") return kMul;
  if (n.opset >= 18 && r == "max") return kMax;
  if (n.opset >= 18 && r == "min") return kMin;
  KILN_THROW(InvalidModel, n.label() << ": unknown reduction '" << r << "' at opset " << n.opset);
}

// Pass 1 (reduction none): the last tuple writing each destination slice.
__global__ void scatter_winner_kernel(const int64_t* __restrict__ idx, int64_t tuples, int* __restrict__ winner,
                                      const __grid_constant__ TupleArgs a) {
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < tuples;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t slot;
    if (tuple_offset(idx, t, a, &slot) >= 0) atomicMax(winner + slot, static_cast<int>(t));
  }
}

// Pass 2 (reduction none): each slice element of each winning tuple (every tuple when `winner` is null).
template <typename E>
__global__ void scatter_write_kernel(const int64_t* __restrict__ idx, const E* __restrict__ upd, E* __restrict__ out,
                                     int64_t n, int64_t slice, const int* __restrict__ winner,
                                     const __grid_constant__ TupleArgs a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / slice, e = i - t * slice;
    int64_t slot;
    const int64_t off = tuple_offset(idx, t, a, &slot);
    if (off >= 0 && (!winner || winner[slot] == static_cast<int>(t))) out[off + e] = upd[i];
  }
}

// Reductions: compare-and-swap on the aligned 4- or 8-byte word holding the element.
template <typename T>
__device__ __forceinline__ T reduce_op(int red, T a, T b) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) {
    const float x = to_f(a), y = to_f(b);
    return from_f<T>(red == kAdd ? x + y : red == kMul ? x * y : red == kMax ? (x < y ? y : x) : (y < x ? y : x));
  } else {
    return red == kAdd ? static_cast<T>(a + b) : red == kMul ? static_cast<T>(a * b) : red == kMax ? (a < b ? b : a)
                                                                                                 : (b < a ? b : a);
  }
}

template <typename T>
__device__ void atomic_reduce(T* addr, T val, int red) {
  if constexpr (std::is_same_v<T, float>) {
    if (red == kAdd) {
      atomicAdd(addr, val);
      return;
    }
  }
  if constexpr (std::is_same_v<T, double>) {
    if (red == kAdd) {
      atomicAdd(addr, val);
      return;
    }
  }
  if constexpr (sizeof(T) == 8) {
    auto* w = reinterpret_cast<unsigned long long*>(addr);
    unsigned long long old = *w, assumed;
    do {
      assumed = old;
      T cur;
      memcpy(&cur, &assumed, 8);
      const T nv = reduce_op(red, cur, val);
      unsigned long long bits;
      memcpy(&bits, &nv, 8);
      old = atomicCAS(w, assumed, bits);
    } while (old != assumed);
  } else {
    const uintptr_t p = reinterpret_cast<uintptr_t>(addr);
    auto* w = reinterpret_cast<unsigned int*>(p & ~uintptr_t(3));
    const unsigned shift = static_cast<unsigned>(p & 3) * 8;
    const unsigned mask = sizeof(T) == 4 ? 0xffffffffu : ((1u << (sizeof(T) * 8)) - 1) << shift;
    unsigned old = *w, assumed;
    do {
      assumed = old;
      const unsigned cur_bits = (assumed & mask) >> shift;
      T cur;
      memcpy(&cur, &cur_bits, sizeof(T));
      const T nv = reduce_op(red, cur, val);
      unsigned nbits = 0;
      memcpy(&nbits, &nv, sizeof(T));
      old = atomicCAS(w, assumed, (assumed & ~mask) | ((nbits << shift) & mask));
    } while (old != assumed);
  }
}

template <typename T>
__global__ void scatter_reduce_kernel(const int64_t* __restrict__ idx, const T* __restrict__ upd, T* __restrict__ out,
                                      int64_t n, int64_t slice, int red, const __grid_constant__ TupleArgs a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / slice, e = i - t * slice;
    int64_t slot;
    const int64_t off = tuple_offset(idx, t, a, &slot);
    if (off >= 0) atomic_reduce(out + off + e, upd[i], red);
  }
}

// Destination slices (the winner array's length): product of the data dims the tuples address.
int64_t scatter_slots(const Shape& ds, int64_t k) {
  int64_t s = 1;
  for (int64_t j = 0; j < k && j < static_cast<int64_t>(ds.size()); ++j) s *= ds[static_cast<size_t>(j)];
  return s;
}

size_t scatter_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>&) {
  if (in.size() < 2 || !in[0].is_static() || !in[1].is_static() || reduction_of(n) != kNone) return 0;
  const Shape is = in[1].static_shape();
  if (is.empty()) return 0;
  return static_cast<size_t>(scatter_slots(in[0].static_shape(), is.back())) * sizeof(int);
}

void scatter_nd_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const DTensor& idx = in_of(args, 1);
  const DTensor& upd = in_of(args, 2);
  DTensor& y = args.out[0];
  const Red red = reduction_of(n);
  const Shape &ds = x.shape, &is = idx.shape;
  if (is.empty() || is.back() < 1 || static_cast<size_t>(is.back()) > ds.size())
    KILN_THROW(InvalidModel, n.label() << ": indices " << shape_str(is) << " do not fit data " << shape_str(ds));
  const int64_t k = is.back();
  const std::vector<int64_t> strides = row_strides(ds);
  int64_t slice = 1;
  for (size_t i = static_cast<size_t>(k); i < ds.size(); ++i) slice *= ds[i];
  const int64_t tuples = shape_numel(is) / k;
  if (upd.numel() != tuples * slice)
    KILN_THROW(InvalidModel, n.label() << ": updates " << shape_str(upd.shape) << " do not match indices " << shape_str(is));
  if (y.data != x.data && x.nbytes() > 0)
    KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
  if (upd.numel() == 0) return;
  TupleArgs a{};
  a.k = static_cast<int>(k);
  int64_t slot_stride = 1;
  for (int j = a.k; j-- > 0;) {
    a.dim[j] = ds[static_cast<size_t>(j)];
    a.stride[j] = strides[static_cast<size_t>(j)];
    a.slot_stride[j] = slot_stride;
    slot_stride *= ds[static_cast<size_t>(j)];
  }
  // Known indices: range-checked here; when no destination repeats, the duplicate-order pass is skipped.
  bool maybe_repeats = true;
  if (args.host_in.size() > 1 && args.host_in[1]) {
    const Tensor& t = *args.host_in[1];
    std::vector<int64_t> slots_used(static_cast<size_t>(tuples), 0);
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t v = t.at_int64(i);
      const int64_t d = a.dim[i % k];
      if (v < -d || v >= d)
        KILN_THROW(InvalidArgument, n.label() << ": index " << v << " is out of range for data axis " << i % k << " of size " << d);
      if (v < 0) v += d;
      slots_used[static_cast<size_t>(i / k)] += v * a.slot_stride[i % k];
    }
    std::sort(slots_used.begin(), slots_used.end());
    maybe_repeats = std::adjacent_find(slots_used.begin(), slots_used.end()) != slots_used.end();
  }
  const auto* pidx = static_cast<const int64_t*>(idx.data);
  const int64_t total = upd.numel();
  if (red == kNone) {
    const int64_t slots = scatter_slots(ds, k);
    int* winner = nullptr;
    if (maybe_repeats && tuples > 1 && static_cast<size_t>(slots) * sizeof(int) <= ctx.workspace_size &&
        tuples < (int64_t(1) << 31)) {
      winner = static_cast<int*>(ctx.workspace);
      KILN_CUDA_CHECK(cudaMemsetAsync(winner, 0xff, static_cast<size_t>(slots) * sizeof(int), ctx.stream));
      scatter_winner_kernel<<<grid_for(tuples), kBlock, 0, ctx.stream>>>(pidx, tuples, winner, a);
      KILN_CUDA_LAUNCH_CHECK("scatter_winner_kernel");
    } else if (maybe_repeats && tuples > 1) {
      KILN_WARN(n.label() << ": no workspace for the duplicate-index order; repeated indices write in any order");
    }
    dispatch_bytes(x.dtype, [&](auto tag) {
      using E = decltype(tag);
      scatter_write_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(
          pidx, static_cast<const E*>(upd.data), static_cast<E*>(y.data), total, slice, winner, a);
    });
    KILN_CUDA_LAUNCH_CHECK("scatter_write_kernel");
    return;
  }
  auto go = [&](auto tag) {
    using T = decltype(tag);
    scatter_reduce_kernel<T><<<grid_for(total), kBlock, 0, ctx.stream>>>(
        pidx, static_cast<const T*>(upd.data), static_cast<T*>(y.data), total, slice, static_cast<int>(red), a);
  };
  switch (x.dtype) {
    case DType::Float32: go(float{}); break;
    case DType::Float16: go(__half{}); break;
    case DType::BFloat16: go(__nv_bfloat16{}); break;
    case DType::Float64: go(double{}); break;
    case DType::Int64: go(int64_t{}); break;
    case DType::Int32: go(int32_t{}); break;
    case DType::Int16: go(int16_t{}); break;
    case DType::Int8: go(int8_t{}); break;
    case DType::UInt8: go(uint8_t{}); break;
    default: KILN_THROW(Unsupported, n.label() << ": reduction over " << dtype_name(x.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("scatter_reduce_kernel");
}

bool index_dtype_ok(const std::vector<ir::ValueType>& in, size_t i, bool int32_too) {
  return i < in.size() && (in[i].dtype == DType::Int64 || (int32_too && in[i].dtype == DType::Int32));
}

CudaTactic tactic(KernelFn fn, SupportsFn sup, WorkspaceFn ws = nullptr) {
  CudaTactic t;
  t.name = "cuda";
  t.run = std::move(fn);
  t.supports = std::move(sup);
  t.workspace = std::move(ws);
  return t;
}

}  // namespace

void register_gather_kernels() {
  register_cuda_tactic("", "Gather", tactic(gather_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                         return index_dtype_ok(in, 1, true);
                       }));
  register_cuda_tactic("", "GatherElements",
                       tactic(gather_elements_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                         return index_dtype_ok(in, 1, true) && ranks_at_most(in, kMaxDims);
                       }));
  register_cuda_tactic("", "GatherND", tactic(gather_nd_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                         return index_dtype_ok(in, 1, false);
                       }));
  register_cuda_tactic("", "ScatterND",
                       tactic(
                           scatter_nd_run,
                           [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
                             if (!index_dtype_ok(in, 1, false) || in.empty()) return false;
                             return n.opset < 16 || n.attr_string("reduction", "none") == "none" || in[0].dtype != DType::Bool;
                           },
                           scatter_workspace));
}

}  // namespace kiln::runtime::cuda::move
