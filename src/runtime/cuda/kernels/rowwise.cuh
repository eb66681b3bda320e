// Shared pieces of the reduce, norm and pool kernel families (reduce.cu, softmax.cu, reduce_arg.cu, norm.cu,
// pool.cu): 16-byte packs, accumulator types, warp / block ("group") reductions, 32-bit fast division, a compile-time
// dtype list dispatch, launch shapes for row kernels and host readers of small integer inputs. Include only from .cu.
#pragma once
#include <initializer_list>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"

namespace kiln::runtime::cuda {

// ---- dtypes ----------------------------------------------------------------------------------------------------
template <DType D>
struct CType;
template <> struct CType<DType::Float32> { using type = float; };
template <> struct CType<DType::Float16> { using type = __half; };
template <> struct CType<DType::BFloat16> { using type = __nv_bfloat16; };
template <> struct CType<DType::Float64> { using type = double; };
template <> struct CType<DType::Int64> { using type = int64_t; };
template <> struct CType<DType::Int32> { using type = int32_t; };
template <> struct CType<DType::Int16> { using type = int16_t; };
template <> struct CType<DType::Int8> { using type = int8_t; };
template <> struct CType<DType::UInt8> { using type = uint8_t; };
template <> struct CType<DType::Bool> { using type = uint8_t; };

template <DType... Ds>
struct DTypes {
  static bool has(DType t) { return ((t == Ds) || ...); }
};
// Calls f(T{}) for the C++ type of `dt` when dt is in the list (only those are instantiated); Unsupported naming
// `who` otherwise.
template <DType... Ds, typename F>
void dispatch_list(DTypes<Ds...>, DType dt, const ir::Node& who, F&& f) {
  bool done = ((dt == Ds ? (f(typename CType<Ds>::type{}), true) : false) || ...);
  if (!done) KILN_THROW(Unsupported, who.label() << ": the CUDA kernel does not take dtype " << dtype_name(dt));
}

using FloatDTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64>;

// Accumulator of a storage type: float for float / half / bfloat16, double for double, long long for integers.
template <typename T> struct AccOf { using type = long long; };
template <> struct AccOf<float> { using type = float; };
template <> struct AccOf<__half> { using type = float; };
template <> struct AccOf<__nv_bfloat16> { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <typename T>
using acc_t = typename AccOf<T>::type;

template <typename T>
__host__ __device__ __forceinline__ acc_t<T> acc_in(T v) {
  return static_cast<acc_t<T>>(v);
}
template <>
__host__ __device__ __forceinline__ float acc_in<__half>(__half v) {
  return __half2float(v);
}
template <>
__host__ __device__ __forceinline__ float acc_in<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <typename T, typename A>
__host__ __device__ __forceinline__ T acc_out(A v) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>)
    return from_f<T>(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

// Element i of a float tensor of runtime dtype `dt` (float32 / float16 / bfloat16 / float64) as A.
template <typename A>
__device__ __forceinline__ A load_param(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::Float16: return static_cast<A>(__half2float(static_cast<const __half*>(p)[i]));
    case DType::BFloat16: return static_cast<A>(__bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]));
    case DType::Float64: return static_cast<A>(static_cast<const double*>(p)[i]);
    default: return static_cast<A>(static_cast<const float*>(p)[i]);
  }
}
// Stores v as float32 or bfloat16 (the stash types of the norm statistics).
__device__ __forceinline__ void store_stat(void* p, DType dt, int64_t i, float v) {
  if (dt == DType::BFloat16) static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else static_cast<float*>(p)[i] = v;
}

// ---- 16-byte packs -----------------------------------------------------------------------------------------------
template <typename T>
__host__ __device__ constexpr int vec_of() {
  return sizeof(T) >= 16 ? 1 : static_cast<int>(16 / sizeof(T));
}
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- reductions --------------------------------------------------------------------------------------------------
struct OpAdd {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return a + b;
  }
};
struct OpMaxNaN {  // NaN propagates
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return (a > b || a != a) ? a : b;
  }
};
struct OpMinNaN {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return (a < b || a != a) ? a : b;
  }
};

// Reduces v over a group of `tpr` consecutive threads: tpr a power of two <= 32 (shuffles) or tpr == blockDim.x
// (shuffles + `red`, 32 values of shared memory). Every thread of the block must call it (uniform control flow);
// every thread of the group gets the result.
template <typename A, typename F>
__device__ __forceinline__ A group_reduce(A v, F op, int tpr, A* red) {
  const int lim = tpr < 32 ? tpr : 32;
  for (int o = lim / 2; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (tpr <= 32) return v;
  const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();  // the previous call's readers are done with red
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  A r = red[0];
  for (int w = 1; w < nw; ++w) r = op(r, red[w]);
  return r;
}

// n / d and n % d by a multiply and a shift when every dividend is < 2^31 (the host decides), plain division
// otherwise.
struct DivMod {
  int64_t d = 1;
  uint32_t mul = 0;
  uint32_t shr = 0;
  bool fast = false;
  __host__ __device__ __forceinline__ int64_t div(int64_t n) const {
    if (fast) {
      if (d == 1) return n;
      return static_cast<int64_t>(
          static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(n)) * mul) >> 32) >> shr);
    }
    return n / d;
  }
  __host__ __device__ __forceinline__ int64_t mod(int64_t n) const { return n - div(n) * d; }
};
// `max_n`: the largest dividend the kernel will use.
inline DivMod make_divmod(int64_t d, int64_t max_n) {
  DivMod m;
  m.d = d < 1 ? 1 : d;
  if (m.d < (int64_t(1) << 31) && max_n < (int64_t(1) << 31)) {
    m.fast = true;
    if (m.d > 1) {
      uint32_t l2 = 0;
      while ((int64_t(1) << l2) < m.d) ++l2;  // ceil(log2(d))
      const uint32_t p = 31 + l2;
      m.mul = static_cast<uint32_t>(((uint64_t(1) << p) + static_cast<uint64_t>(m.d) - 1) / static_cast<uint64_t>(m.d));
      m.shr = p - 32;
    }
  }
  return m;
}

// ---- launch shapes -----------------------------------------------------------------------------------------------
// Rows of `packs` packs each: `tpr` threads per row (a power of two <= 32, several rows per block) for short rows,
// or one block of `tpr` threads per row for long ones. `per_thread`: packs a thread should own at most.
struct RowShape {
  int tpr = 32;
  int block = kBlock;
  int64_t grid = 1;
};
inline int pow2_at_least(int64_t v) {
  int p = 1;
  while (p < v && p < (1 << 30)) p <<= 1;
  return p;
}
inline RowShape row_shape(int64_t rows, int64_t packs, int per_thread, int max_block = 1024) {
  RowShape s;
  const int64_t want = (packs + per_thread - 1) / per_thread;
  if (want <= 32) {
    s.tpr = pow2_at_least(want < 1 ? 1 : want);
    s.block = kBlock;
  } else {
    s.tpr = s.block = std::max(64, std::min(max_block, pow2_at_least(want)));
  }
  const int64_t rpb = s.block / s.tpr;
  s.grid = std::max<int64_t>(1, std::min<int64_t>((rows + rpb - 1) / rpb, int64_t(1) << 20));
  return s;
}
inline int sm_count(const KernelContext& ctx) { return ctx.props ? ctx.props->multiProcessorCount : 132; }

// ---- host side ---------------------------------------------------------------------------------------------------
// Integer values of input i (an axes / K / axis input): from args.host_in when the executor knows them, else copied
// from the device, which synchronizes the stream and is refused while the stream is being captured.
inline std::vector<int64_t> input_ints(const KernelContext& ctx, const KernelArgs& a, size_t i, const char* what) {
  std::vector<int64_t> v;
  if (i < a.host_in.size() && a.host_in[i]) {
    const Tensor& t = *a.host_in[i];
    if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
      KILN_THROW(InvalidModel, a.node.label() << ": " << what << " must be int64 or int32, got " << t.type_str());
    for (int64_t k = 0; k < t.numel(); ++k) v.push_back(t.at_int64(k));
    return v;
  }
  if (i >= a.in.size() || !a.in[i]) return v;
  const DTensor& d = *a.in[i];
  if (d.dtype != DType::Int64 && d.dtype != DType::Int32)
    KILN_THROW(InvalidModel, a.node.label() << ": " << what << " must be int64 or int32, got " << dtype_name(d.dtype));
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream, &cap));
  if (cap != cudaStreamCaptureStatusNone)
    KILN_THROW(Unsupported, a.node.label() << ": " << what
                                           << " is computed on the device; the CUDA kernel needs it on the host, "
                                              "which cannot happen inside a CUDA graph capture");
  const int64_t n = d.numel();
  if (d.dtype == DType::Int64) {
    v.resize(static_cast<size_t>(n));
    KILN_CUDA_CHECK(cudaMemcpyAsync(v.data(), d.data, d.nbytes(), cudaMemcpyDeviceToHost, ctx.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  } else {
    std::vector<int32_t> w(static_cast<size_t>(n));
    KILN_CUDA_CHECK(cudaMemcpyAsync(w.data(), d.data, d.nbytes(), cudaMemcpyDeviceToHost, ctx.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    v.assign(w.begin(), w.end());
  }
  return v;
}

inline int64_t norm_axis(const ir::Node& n, int64_t axis, int64_t rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " " << axis << " is out of range for rank " << rank);
  return axis < 0 ? axis + rank : axis;
}

// Input i's dtype is in `ds` (has_rank or not).
inline bool dtype_is(DType t, std::initializer_list<DType> ds) {
  for (DType d : ds)
    if (t == d) return true;
  return false;
}

// ---- entry points shared between these files ------------------------------------------------------------------
enum class RedKind { Sum, Mean, Max, Min, Prod, L2, SumSquare, MaxIgnoreNaN };
// Scratch a reduction may use to split long reductions over several blocks (partial results).
constexpr size_t kReduceWorkspace = size_t(32) << 10;
// Reduces x (dtype dt, shape `shape`) over the dims flagged in `reduced` into y, whose elements are the kept dims
// in row-major order. MaxIgnoreNaN (GlobalMaxPool) takes float types only. At most two launches (a split long
// reduction finishes in a second kernel, with ctx.workspace).
void launch_reduce(const KernelContext& ctx, const ir::Node& n, DType dt, RedKind kind, const void* x, void* y,
                   const Shape& shape, const std::vector<bool>& reduced);
void register_softmax_tactics();  // softmax.cu: Softmax, LogSoftmax
void register_arg_tactics();      // reduce_arg.cu: ArgMax, ArgMin, CumSum, TopK

}  // namespace kiln::runtime::cuda
