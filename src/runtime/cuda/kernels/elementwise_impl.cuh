// Private to the CUDA elementwise family (elementwise*.cu): storage types and their compute types, dtype lists
// and dispatch, operand indexing under broadcasting, and the vectorized grid-stride kernels every elementwise op
// uses. Semantics follow the CPU reference kernels (src/ops/elementwise_*.cpp, variadic.cpp): float16/bfloat16
// compute in float and round once; integer Add/Sub/Mul wrap; float -> integer conversions saturate (NaN -> 0).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"

namespace kiln::runtime::cuda::ew {

using bf16 = __nv_bfloat16;

// ONNX bool storage (one byte, 0 or 1), kept apart from uint8 because conversions differ (Cast 2.0 -> bool is 1).
struct Bool8 {
  uint8_t v;
};
// Pow's exponent: any numeric dtype, read per element as double (Operand::dtype says which).
struct AnyNum {};

// ---- storage <-> compute ------------------------------------------------------------------------------------
template <class T>
struct Num {
  using C = T;
  __host__ __device__ static C ld(T v) { return v; }
  __host__ __device__ static T st(C v) { return v; }
};
template <>
struct Num<__half> {
  using C = float;
  __device__ static C ld(__half v) { return __half2float(v); }
  __device__ static __half st(C v) { return __float2half_rn(v); }
};
template <>
struct Num<bf16> {
  using C = float;
  __device__ static C ld(bf16 v) { return __bfloat162float(v); }
  __device__ static bf16 st(C v) { return __float2bfloat16_rn(v); }
};
template <>
struct Num<Bool8> {
  using C = bool;
  __host__ __device__ static C ld(Bool8 v) { return v.v != 0; }
  __host__ __device__ static Bool8 st(C v) { return Bool8{static_cast<uint8_t>(v ? 1 : 0)}; }
};
template <class T>
using CT = typename Num<T>::C;

// Integer limits usable in device code (std::numeric_limits is host constexpr).
template <class T>
struct Lim;
#define KILN_EW_LIM(T, LO, HI)              \
  template <>                               \
  struct Lim<T> {                           \
    static constexpr T lo = LO;             \
    static constexpr T hi = HI;             \
  };
KILN_EW_LIM(int64_t, INT64_MIN, INT64_MAX)
KILN_EW_LIM(int32_t, INT32_MIN, INT32_MAX)
KILN_EW_LIM(int16_t, INT16_MIN, INT16_MAX)
KILN_EW_LIM(int8_t, INT8_MIN, INT8_MAX)
KILN_EW_LIM(uint8_t, 0, UINT8_MAX)
#undef KILN_EW_LIM

// Compute value -> compute value without UB, like ops::convert_value: NaN -> 0, float -> integer saturates,
// anything -> bool is `!= 0`.
template <class To, class From>
__host__ __device__ inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (v != v) return To(0);
    const double d = static_cast<double>(v);
    if (d <= static_cast<double>(Lim<To>::lo)) return Lim<To>::lo;
    if (d >= static_cast<double>(Lim<To>::hi)) return Lim<To>::hi;
    return static_cast<To>(d);
  } else {
    return static_cast<To>(v);
  }
}

// ---- dtype lists ---------------------------------------------------------------------------------------------
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, __half>) return DType::Float16;
  else if constexpr (std::is_same_v<T, bf16>) return DType::BFloat16;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::Int64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::Int32;
  else if constexpr (std::is_same_v<T, int16_t>) return DType::Int16;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::Int8;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::UInt8;
  else return DType::Bool;
}

template <class... Ts>
struct TypeList {
  static bool contains(DType dt) { return ((dt == dtype_of<Ts>()) || ...); }
};
using FloatT = TypeList<float, __half, bf16, double>;
using SignedNumT = TypeList<float, __half, bf16, double, int64_t, int32_t, int16_t, int8_t>;
using NumT = TypeList<float, __half, bf16, double, int64_t, int32_t, int16_t, int8_t, uint8_t>;
using AllT = TypeList<float, __half, bf16, double, int64_t, int32_t, int16_t, int8_t, uint8_t, Bool8>;
using BoolT = TypeList<Bool8>;
// Pow's base, PRelu (opset 16).
using FloatI3264T = TypeList<float, __half, bf16, double, int64_t, int32_t>;

// Calls f(T{}) for the T of the list whose dtype is dt; Unsupported naming the node otherwise.
template <class... Ts, class F>
void dispatch(TypeList<Ts...>, DType dt, const ir::Node& n, F&& f) {
  const bool done = ((dt == dtype_of<Ts>() ? (f(Ts{}), true) : false) || ...);
  if (!done) KILN_THROW(Unsupported, n.label() << ": CUDA kernel has no " << dtype_name(dt) << " variant");
}

// ---- 32-bit division by a constant (n < 2^31): q = (umulhi(n, m) + n) >> s -------------------------------------
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  void init(uint32_t div) {
    d = div;
    s = 0;
    while (s < 31 && (uint32_t(1) << s) < d) ++s;
    const uint64_t one = 1;
    m = static_cast<uint32_t>(((one << 32) * ((one << s) - d)) / d + 1);
  }
  __device__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

// ---- how output element i maps to an input element -----------------------------------------------------------
enum OperandKind : int {
  kFull = 0,      // same element count as the output: element i
  kScalar = 1,    // one element
  kTwoLevel = 2,  // (i / inner) % mid: one contiguous block of non-broadcast dims (bias, per-channel scale)
  kGeneral = 3,   // BroadcastIndex over the collapsed dims
};
// How a vector of V lanes reads a kTwoLevel operand.
enum LaneMode : int { kPerLane = 0, kUniform = 1 /* inner % V == 0 */, kContig = 2 /* inner == 1, mid % V == 0 */ };

struct Operand {
  const void* p = nullptr;
  int kind = kFull;
  int lanes = kPerLane;
  DType dtype = DType::Float32;  // only read for AnyNum operands
  FastDiv inner, mid;
  BroadcastIndex bi{};
  __device__ int64_t index(int64_t i) const {
    switch (kind) {
      case kFull: return i;
      case kScalar: return 0;
      case kTwoLevel: {
        const uint32_t q = inner.div(static_cast<uint32_t>(i));
        return static_cast<int64_t>(q - mid.div(q) * mid.d);
      }
      default: return bi.map(i);
    }
  }
};

template <class T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <class T>
__device__ inline double load_any(const Operand& o, int64_t j) {
  return static_cast<double>(Num<T>::ld(static_cast<const T*>(o.p)[j]));
}
// Element j of an AnyNum operand as double.
__device__ inline double load_any_dt(const Operand& o, int64_t j) {
  switch (o.dtype) {
    case DType::Float32: return load_any<float>(o, j);
    case DType::Float16: return load_any<__half>(o, j);
    case DType::BFloat16: return load_any<bf16>(o, j);
    case DType::Float64: return load_any<double>(o, j);
    case DType::Int64: return load_any<int64_t>(o, j);
    case DType::Int32: return load_any<int32_t>(o, j);
    case DType::Int16: return load_any<int16_t>(o, j);
    case DType::Int8: return load_any<int8_t>(o, j);
    default: return load_any<uint8_t>(o, j);
  }
}

template <class T>
using Loaded = std::conditional_t<std::is_same_v<T, AnyNum>, double, T>;

template <class T>
__device__ inline Loaded<T> load_one(const Operand& o, int64_t i) {
  if constexpr (std::is_same_v<T, AnyNum>) return load_any_dt(o, o.index(i));
  else return static_cast<const T*>(o.p)[o.index(i)];
}

// Lanes base .. base+V-1 of an operand on the vector path, which plan_vectors allows only for kFull, kScalar and
// kTwoLevel with kUniform / kContig lanes (and AnyNum only as kScalar): one index per vector, so the per-lane index
// arithmetic (kGeneral, kPerLane) exists once per kernel, in the scalar loop.
template <class T, int V>
__device__ inline void load_vec(const Operand& o, int64_t base, Loaded<T> (&out)[V]) {
  if constexpr (std::is_same_v<T, AnyNum>) {
    const double s = load_any_dt(o, 0);
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = s;
  } else {
    const T* p = static_cast<const T*>(o.p);
    int64_t j = base;
    if (o.kind == kScalar) {
      j = 0;
    } else if (o.kind == kTwoLevel) {
      const uint32_t q = o.inner.div(static_cast<uint32_t>(base));
      j = static_cast<int64_t>(q - o.mid.div(q) * o.mid.d);
    }
    if (o.kind == kScalar || o.lanes == kUniform) {
      const T s = p[j];
#pragma unroll
      for (int k = 0; k < V; ++k) out[k] = s;
    } else {
      const Vec<T, V> v = *reinterpret_cast<const Vec<T, V>*>(p + j);
#pragma unroll
      for (int k = 0; k < V; ++k) out[k] = v.v[k];
    }
  }
}

template <class T, class... Ts>
struct MaxSize {
  static constexpr size_t v = sizeof(T) > MaxSize<Ts...>::v ? sizeof(T) : MaxSize<Ts...>::v;
};
template <class T>
struct MaxSize<T> {
  static constexpr size_t v = sizeof(T);
};
// Element size in bytes (AnyNum, an empty struct, counts 1).
template <class T>
inline constexpr int kSize = static_cast<int>(sizeof(T));
// Lanes per thread: 16 bytes of the widest type.
template <class... Ts>
inline constexpr int kVec = static_cast<int>(16 / MaxSize<Ts...>::v);

// Grid-stride index of this thread and the stride.
__device__ inline int64_t gtid() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t gstride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- kernels ---------------------------------------------------------------------------------------------------
// y[i] = op(x[i]) over contiguous same-shape tensors; vectors [0, nvec), then the scalar tail.
template <class In, class Out, class Op>
__global__ void __launch_bounds__(kBlock) unary_kernel(const In* x, Out* y, int64_t n, int64_t nvec, Op op_in) {
  constexpr int V = kVec<In, Out>;
  const auto op = op_in.bind();
  for (int64_t v = gtid(); v < nvec; v += gstride()) {
    const Vec<In, V> a = reinterpret_cast<const Vec<In, V>*>(x)[v];
    Vec<Out, V> b;
#pragma unroll
    for (int k = 0; k < V; ++k) b.v[k] = op(a.v[k]);
    reinterpret_cast<Vec<Out, V>*>(y)[v] = b;
  }
  for (int64_t i = nvec * V + gtid(); i < n; i += gstride()) y[i] = op(x[i]);
}

// y[i] = op(a[..], b[..]) under broadcasting.
template <class A, class B, class Out, class Op>
__global__ void __launch_bounds__(kBlock) binary_kernel(Operand a, Operand b, Out* y, int64_t n, int64_t nvec,
                                                        Op op) {
  constexpr int V = kVec<A, B, Out>;
  for (int64_t v = gtid(); v < nvec; v += gstride()) {
    const int64_t base = v * V;
    Loaded<A> av[V];
    Loaded<B> bv[V];
    load_vec<A, V>(a, base, av);
    load_vec<B, V>(b, base, bv);
    Vec<Out, V> o;
#pragma unroll
    for (int k = 0; k < V; ++k) o.v[k] = op(av[k], bv[k]);
    reinterpret_cast<Vec<Out, V>*>(y)[v] = o;
  }
  for (int64_t i = nvec * V + gtid(); i < n; i += gstride()) y[i] = op(load_one<A>(a, i), load_one<B>(b, i));
}

// ---- host side: operand plans and launches ----------------------------------------------------------------------
// Fills one Operand per input for an output of shape `out`: drops size-1 output dims, merges dims that every
// input walks contiguously (or broadcasts together), then classifies each input. Unsupported when an input
// needs the general path with more than kMaxDims collapsed dims.
void plan_operands(const ir::Node& n, const Shape& out, const std::vector<const DTensor*>& ins, Operand* ops);

// Vector count for V lanes: n / V when every input can be read one index per vector (see load_vec) and the output
// and every kFull / kContig input are aligned to V elements of their type (esizes[k], 0 for AnyNum); else 0: all
// elements take the scalar path. Also sets each kTwoLevel operand's lane mode.
int64_t plan_vectors(int64_t n, int V, const void* y, int y_esize, Operand* ops, const int* esizes, int k);

// Blocks for a grid-stride launch over nvec vectors plus the scalar tail.
inline unsigned ew_grid(int64_t n, int64_t nvec, int V) { return grid_for(std::max(nvec, n - nvec * V)); }

template <class In, class Out, class Op>
void launch_unary(const KernelContext& ctx, const void* x, void* y, int64_t n, Op op) {
  if (n == 0) return;
  constexpr int V = kVec<In, Out>;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % (sizeof(In) * V) == 0 &&
                       reinterpret_cast<uintptr_t>(y) % (sizeof(Out) * V) == 0;
  const int64_t nvec = aligned ? n / V : 0;
  unary_kernel<In, Out, Op><<<ew_grid(n, nvec, V), kBlock, 0, ctx.stream>>>(static_cast<const In*>(x),
                                                                            static_cast<Out*>(y), n, nvec, op);
  KILN_CUDA_LAUNCH_CHECK("unary_kernel");
}

template <class A, class B, class Out, class Op>
void launch_binary(const KernelContext& ctx, const KernelArgs& args, Op op) {
  const DTensor& y = args.out[0];
  const int64_t n = y.numel();
  if (n == 0) return;
  Operand ops[2];
  plan_operands(args.node, y.shape, {args.in[0], args.in[1]}, ops);
  ops[1].dtype = args.in[1]->dtype;
  constexpr int V = kVec<A, B, Out>;
  const int es[2] = {std::is_same_v<A, AnyNum> ? 0 : kSize<A>, std::is_same_v<B, AnyNum> ? 0 : kSize<B>};
  const int64_t nvec = plan_vectors(n, V, y.data, kSize<Out>, ops, es, 2);
  binary_kernel<A, B, Out, Op><<<ew_grid(n, nvec, V), kBlock, 0, ctx.stream>>>(ops[0], ops[1], y.as<Out>(), n,
                                                                               nvec, op);
  KILN_CUDA_LAUNCH_CHECK("binary_kernel");
}

// ---- supports() helpers -------------------------------------------------------------------------------------------
// Input i is present in the node.
inline bool present(const ir::Node& n, size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); }
// Every present input's rank is unknown or at most `max_rank` (the general broadcast path's limit).
bool ranks_ok(const ir::Node& n, const std::vector<ir::ValueType>& in, size_t max_rank = kMaxDims);

// Family parts, each in its own file; register_elementwise_kernels (elementwise.cu) calls them.
void register_unary();     // elementwise_unary.cu: math ops, Clip, Identity, Dropout
void register_cast();      // elementwise_cast.cu: Cast, CastLike
void register_binary();    // elementwise_binary.cu: arithmetic, Pow, Mod, compare, logical, PRelu
void register_variadic();  // elementwise_variadic.cu: Sum, Mean, Max, Min, Where
void register_fused();     // elementwise_fused.cu: kiln.FusedElementwise (the fuse_elementwise pass)

}  // namespace kiln::runtime::cuda::ew
