// CUDA kernels: the norm family (kernels/families.h): BatchNormalization (inference), LayerNormalization (axis,
// optional Mean / InvStdDev outputs in the stash type), RMSNormalization, GroupNormalization (opset 18: scale / bias
// per group; opset 21: per channel) and InstanceNormalization.
//
// BatchNormalization is one elementwise pass with 16-byte packs: each pack lies in one channel (when the spatial
// size is a multiple of the pack) and computes its channel's scale / shift from the four parameter vectors.
// The other four share one row kernel: a row is a LayerNorm row (the dims from `axis` on) or one (sample, group)
// block. A group of threads owns a row (1..32 threads for short rows, a block for long ones) and keeps it in
// registers (up to kMaxPacks 16-byte packs a thread): mean, then the variance from the deviations (two passes over
// registers, one read of memory), then one write. Rows too long for a 512-thread block's registers are read again
// from memory for each pass. Statistics in float (double for float64); Y rounded once.
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

constexpr int kMaxPacks = 8;

__device__ __forceinline__ float rsq(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double rsq(double v) { return 1.0 / sqrt(v); }

// 16-byte (or narrower) pack loads / stores with evict-first hints: x and y stream through once.
template <typename P>
__device__ __forceinline__ P ldcs_pack(const P* p) {
  if constexpr (sizeof(P) == 16) {
    const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
    return *reinterpret_cast<const P*>(&v);
  } else {
    return *p;
  }
}
// Makes the compiler forget what a pack holds, so that the float values converted from it in one pass are not kept
// alive (in 2x the registers for 2-byte types) until the next pass: each pass converts again from the packed row.
template <typename P>
__device__ __forceinline__ void forget(P& q) {
  if constexpr (sizeof(P) % 4 == 0) {
    uint32_t* w = reinterpret_cast<uint32_t*>(&q);
#pragma unroll
    for (int i = 0; i < int(sizeof(P) / 4); ++i) asm volatile("" : "+r"(w[i]));
  }
}
template <typename P>
__device__ __forceinline__ P ldg_pack(const P* p) {
  if constexpr (sizeof(P) == 16) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    return *reinterpret_cast<const P*>(&v);
  } else {
    return *p;
  }
}
template <typename P>
__device__ __forceinline__ void stcs_pack(P* p, const P& v) {
  if constexpr (sizeof(P) == 16) __stcs(reinterpret_cast<uint4*>(p), *reinterpret_cast<const uint4*>(&v));
  else *p = v;
}

// ---- BatchNormalization ------------------------------------------------------------------------------------------
struct BnParams {
  const void* p[4];  // scale, B, mean, var
  DType dt[4];
  double eps;
};

template <typename T, int V>
__global__ void bn_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t packs, DivMod by_inner, DivMod by_c,
                          BnParams bp) {
  using A = acc_t<T>;
  using P = Pack<T, V>;
  const P* xp = reinterpret_cast<const P*>(x);
  P* yp = reinterpret_cast<P*>(y);
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    const P q = xp[p];
    const int64_t c = by_c.mod(by_inner.div(p * V));
    const A a = load_param<A>(bp.p[0], bp.dt[0], c) * rsq(load_param<A>(bp.p[3], bp.dt[3], c) + static_cast<A>(bp.eps));
    const A b = load_param<A>(bp.p[1], bp.dt[1], c) - load_param<A>(bp.p[2], bp.dt[2], c) * a;
    P o;
#pragma unroll
    for (int e = 0; e < V; ++e) o.v[e] = acc_out<T>(acc_in(q.v[e]) * a + b);
    yp[p] = o;
  }
}

void run_batch_norm(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  if (n.attr_int("training_mode", 0) != 0)
    KILN_THROW(Unsupported, n.label() << ": training_mode=1 is not supported (inference only)");
  const DTensor& x = *a.in.at(0);
  if (x.rank() < 2) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2 (N, C, ...), got " << x.rank());
  const int64_t C = x.shape[1], numel = x.numel();
  if (numel == 0) return;
  const int64_t inner = numel / (x.shape[0] * C);
  BnParams bp{};
  static const char* names[] = {"scale", "B", "mean", "var"};
  for (size_t i = 0; i < 4; ++i) {
    const DTensor* t = a.in.at(i + 1);
    if (!t || t->numel() != C)
      KILN_THROW(InvalidModel, n.label() << ": " << names[i] << " must have " << C << " values");
    bp.p[i] = t->data;
    bp.dt[i] = t->dtype;
  }
  bp.eps = n.attr_float("epsilon", 1e-5f);
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    constexpr int V = vec_of<T>();
    const T* px = x.as<T>();
    T* py = a.out.at(0).as<T>();
    const DivMod by_inner = make_divmod(inner, numel), by_c = make_divmod(C, numel / inner);
    if (inner % V == 0 && aligned16(px) && aligned16(py)) {
      bn_kernel<T, V><<<grid_for(numel / V), kBlock, 0, ctx.stream>>>(px, py, numel / V, by_inner, by_c, bp);
    } else {
      bn_kernel<T, 1><<<grid_for(numel), kBlock, 0, ctx.stream>>>(px, py, numel, by_inner, by_c, bp);
    }
    KILN_CUDA_LAUNCH_CHECK("batch_norm");
  });
}

// ---- the row normalizations --------------------------------------------------------------------------------------
enum ParamMode : int {
  kParamRow = 0,       // scale / bias index = position in the row (they span exactly the normalized dims)
  kParamBroadcast = 1, // general unidirectional broadcast to X (BroadcastIndex of the flat X index)
  kParamChannel = 2,   // group row: channel = (row % groups) * cpg + k / spatial
  kParamGroup = 3,     // group row: row % groups
};

struct NormArgs {
  int64_t rows = 0, len = 0;
  double eps = 1e-5;
  bool rms = false;
  int mode = kParamRow;
  BroadcastIndex sb{}, bb{};
  DivMod by_groups{}, by_spatial{};
  int64_t cpg = 1;
  void* mean = nullptr;  // optional statistics outputs (LayerNormalization), stash dtype
  void* inv = nullptr;
  DType stat_dt = DType::Float32;
};

template <typename A>
struct ScaleShift {
  A s, b;
};
// Scale and bias of element k of row r in the modes other than kParamRow.
template <typename T>
__device__ __forceinline__ ScaleShift<acc_t<T>> load_params(const NormArgs& na, const T* scale, const T* bias, int64_t r,
                                                        int64_t k) {
  int64_t is, ib;
  switch (na.mode) {
    case kParamBroadcast: {
      const int64_t i = r * na.len + k;
      is = na.sb.map(i);
      ib = na.bb.map(i);
      break;
    }
    case kParamChannel: is = ib = na.by_groups.mod(r) * na.cpg + na.by_spatial.div(k); break;
    default: is = ib = na.by_groups.mod(r); break;
  }
  return {acc_in(scale[is]), bias ? acc_in(bias[ib]) : acc_t<T>(0)};
}

template <typename T, int V>
__global__ void __launch_bounds__(512) norm_rows_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                        const T* __restrict__ scale, const T* __restrict__ bias,
                                                        NormArgs na, int tpr) {
  using A = acc_t<T>;
  using P = Pack<T, V>;
  __shared__ A red[32];
  const int rpb = blockDim.x / tpr;
  const int g = threadIdx.x / tpr, lane = threadIdx.x % tpr;
  const int64_t packs = na.len / V;
  const bool cached = packs <= int64_t(kMaxPacks) * tpr;
  const P* xp = reinterpret_cast<const P*>(x);
  P* yp = reinterpret_cast<P*>(y);
  for (int64_t base = int64_t(blockIdx.x) * rpb; base < na.rows; base += int64_t(gridDim.x) * rpb) {
    const int64_t row = base + g;
    const bool active = row < na.rows;
    const P* xr = xp + (active ? row : 0) * packs;
    P* yr = yp + (active ? row : 0) * packs;
    P buf[kMaxPacks];
    A mean = 0;
    if (cached) {
#pragma unroll
      for (int j = 0; j < kMaxPacks; ++j) {
        const int64_t p = lane + int64_t(j) * tpr;
        if (active && p < packs) buf[j] = xr[p];
      }
    }
    // Calls f(pack, index) for this thread's packs, from the registers or from memory.
    auto each = [&](auto&& f) {
      if (cached) {
#pragma unroll
        for (int j = 0; j < kMaxPacks; ++j) {
          const int64_t p = lane + int64_t(j) * tpr;
          if (active && p < packs) f(buf[j], p);
        }
      } else {
        for (int64_t p = lane; active && p < packs; p += tpr) f(xr[p], p);
      }
    };
    if (!na.rms) {
      A s = 0;
      each([&](const P& q, int64_t) {
#pragma unroll
        for (int e = 0; e < V; ++e) s += acc_in(q.v[e]);
      });
      mean = group_reduce(s, OpAdd{}, tpr, red) / static_cast<A>(na.len);
    }
    A ss = 0;
    each([&](const P& q, int64_t) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const A d = acc_in(q.v[e]) - mean;
        ss += d * d;
      }
    });
    const A var = group_reduce(ss, OpAdd{}, tpr, red) / static_cast<A>(na.len);
    const A inv = rsq(var + static_cast<A>(na.eps));
    if (na.mode == kParamRow) {
      each([&](const P& q, int64_t p) {
        P o;
        if constexpr (V > 1) {  // launched with V > 1 only when scale / bias are 16-byte aligned
          const P sp = reinterpret_cast<const P*>(scale)[p];
          P bp{};
          if (bias) bp = reinterpret_cast<const P*>(bias)[p];
#pragma unroll
          for (int e = 0; e < V; ++e)
            o.v[e] = acc_out<T>((acc_in(q.v[e]) - mean) * inv * acc_in(sp.v[e]) + (bias ? acc_in(bp.v[e]) : A(0)));
        } else {
#pragma unroll
          for (int e = 0; e < V; ++e) {
            const int64_t k = p * V + e;
            o.v[e] = acc_out<T>((acc_in(q.v[e]) - mean) * inv * acc_in(scale[k]) + (bias ? acc_in(bias[k]) : A(0)));
          }
        }
        yr[p] = o;
      });
    } else {
      // Index arithmetic per element: a rolled loop, reading the row again (from cache) instead of the registers.
      for (int64_t p = lane; active && p < packs; p += tpr) {
        const P q = xr[p];
        P o;
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const ScaleShift<A> sb = load_params(na, scale, bias, row, p * V + e);
          o.v[e] = acc_out<T>((acc_in(q.v[e]) - mean) * inv * sb.s + sb.b);
        }
        yr[p] = o;
      }
    }
    if (active && lane == 0) {
      if (na.mean) store_stat(na.mean, na.stat_dt, row, static_cast<float>(mean));
      if (na.inv) store_stat(na.inv, na.stat_dt, row, static_cast<float>(inv));
    }
  }
}

// LayerNormalization / RMSNormalization rows whose scale / bias span the row (kParamRow), 16-byte aligned, short
// enough for the registers: each thread owns up to NP packs of a row, kept packed in registers from the one read to
// the one write (each pass converts them to float again, see forget(), so 2-byte rows do not hold 2x the registers),
// and reads scale / bias one pack at a time while writing (read-only path; they stay in L1 across rows, while x and
// y stream with evict-first hints). Leaner than norm_rows_kernel (no broadcast or re-read paths, 32-bit pack
// indices): 64 registers for float32 / float16 / bfloat16 (was 94 / 98 / 124), so 16 rows of 4096 float16 (128 KB)
// are in flight per SM instead of 9.
// ADD (kiln.AddLayerNormalization): the row is x + r, rounded to T as the Add did, and written to s when s is set.
template <typename T, int V, int NP, bool ADD = false>
__global__ void __launch_bounds__(512)
    ln_rows_kernel(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ scale,
                   const T* __restrict__ bias, NormArgs na, int tpr, const T* __restrict__ r = nullptr,
                   T* __restrict__ s = nullptr) {
  using A = acc_t<T>;
  using P = Pack<T, V>;
  __shared__ A red[32];
  const int rpb = blockDim.x / tpr;
  const int g = threadIdx.x / tpr, lane = threadIdx.x % tpr;
  const int packs = static_cast<int>(na.len / V);  // <= NP * 512
  const P* xp = reinterpret_cast<const P*>(x);
  P* yp = reinterpret_cast<P*>(y);
  const P* sp = reinterpret_cast<const P*>(scale);
  const P* bp = reinterpret_cast<const P*>(bias);
  for (int64_t base = int64_t(blockIdx.x) * rpb; base < na.rows; base += int64_t(gridDim.x) * rpb) {
    const int64_t row = base + g;
    const bool active = row < na.rows;
    const P* xr = xp + (active ? row : 0) * packs;
    P* yr = yp + (active ? row : 0) * packs;
    P buf[NP];
#pragma unroll
    for (int j = 0; j < NP; ++j) {
      const int p = lane + j * tpr;
      if (active && p < packs) {
        buf[j] = ldcs_pack(xr + p);
        if constexpr (ADD) {
          const P q = ldcs_pack(reinterpret_cast<const P*>(r) + (row * packs + p));
#pragma unroll
          for (int e = 0; e < V; ++e) buf[j].v[e] = acc_out<T>(acc_in(buf[j].v[e]) + acc_in(q.v[e]));
          if (s) stcs_pack(reinterpret_cast<P*>(s) + (row * packs + p), buf[j]);
        }
      }
    }
    A sum = 0;
#pragma unroll
    for (int j = 0; j < NP; ++j) {
      const int p = lane + j * tpr;
      if (active && p < packs) {
#pragma unroll
        for (int e = 0; e < V; ++e) sum += acc_in(buf[j].v[e]);
      }
    }
    const A mean = na.rms ? A(0) : group_reduce(sum, OpAdd{}, tpr, red) / static_cast<A>(na.len);
    A ss = 0;
#pragma unroll
    for (int j = 0; j < NP; ++j) {
      const int p = lane + j * tpr;
      if (active && p < packs) {
        forget(buf[j]);
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const A d = acc_in(buf[j].v[e]) - mean;
          ss += d * d;
        }
      }
    }
    const A inv = rsq(group_reduce(ss, OpAdd{}, tpr, red) / static_cast<A>(na.len) + static_cast<A>(na.eps));
#pragma unroll
    for (int j = 0; j < NP; ++j) {
      const int p = lane + j * tpr;
      if (active && p < packs) {
        forget(buf[j]);
        const P sv = ldg_pack(sp + p);
        P bv{};
        if (bp) bv = ldg_pack(bp + p);
        P o;
#pragma unroll
        for (int e = 0; e < V; ++e)
          o.v[e] = acc_out<T>((acc_in(buf[j].v[e]) - mean) * inv * acc_in(sv.v[e]) + (bp ? acc_in(bv.v[e]) : A(0)));
        stcs_pack(yr + p, o);
      }
    }
    if (active && lane == 0) {
      if (na.mean) store_stat(na.mean, na.stat_dt, row, static_cast<float>(mean));
      if (na.inv) store_stat(na.inv, na.stat_dt, row, static_cast<float>(inv));
    }
  }
}

void launch_norm_rows(const KernelContext& ctx, const ir::Node& n, const DTensor& x, DTensor& y, const DTensor& scale,
                      const DTensor* bias, NormArgs na) {
  if (na.rows == 0) return;
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    constexpr int V = vec_of<T>();
    const T* px = x.as<T>();
    T* py = y.as<T>();
    const T* ps = scale.as<T>();
    const T* pb = bias ? bias->as<T>() : nullptr;
    const bool params_ok = na.mode != kParamRow || (aligned16(ps) && (!pb || aligned16(pb)));
    const bool vec = V > 1 && na.len % V == 0 && aligned16(px) && aligned16(py) && params_ok;
    const int v = vec ? V : 1;
    const int64_t lp = na.len / V;
    if (vec && na.mode == kParamRow && lp <= int64_t(kMaxPacks) * 512) {
      const RowShape rs = row_shape(na.rows, lp, kMaxPacks, 512);
      ln_rows_kernel<T, V, kMaxPacks>
          <<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(px, py, ps, pb, na, rs.tpr);
      KILN_CUDA_LAUNCH_CHECK("ln_rows");
      return;
    }
    const RowShape rs = row_shape(na.rows, na.len / v, 4, 512);
    if (vec)
      norm_rows_kernel<T, V><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(px, py, ps, pb, na, rs.tpr);
    else
      norm_rows_kernel<T, 1><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(px, py, ps, pb, na, rs.tpr);
    KILN_CUDA_LAUNCH_CHECK("norm_rows");
  });
}

const DTensor* optional_in(const KernelArgs& a, size_t i) {
  return i < a.in.size() && a.in[i] && a.in[i]->data ? a.in[i] : nullptr;
}
void* optional_out(KernelArgs& a, size_t i) { return i < a.out.size() ? a.out[i].data : nullptr; }

// Rows, length, epsilon and the scale / bias mode of a LayerNormalization (or RMSNormalization) over x.
NormArgs layer_norm_args(const ir::Node& n, const DTensor& x, const DTensor& scale, const DTensor* bias, bool rms) {
  if (scale.dtype != x.dtype || (bias && bias->dtype != x.dtype))
    KILN_THROW(Unsupported, n.label() << ": the CUDA kernel needs scale and bias of X's dtype " << dtype_name(x.dtype));
  const int64_t rank = x.rank();
  const int64_t axis = norm_axis(n, n.attr_int("axis", -1), rank);
  NormArgs na;
  na.rows = 1;
  na.len = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? na.rows : na.len) *= x.shape[static_cast<size_t>(d)];
  na.eps = n.attr_float("epsilon", 1e-5f);
  na.rms = rms;
  if (x.numel() == 0) return na;
  // Scale / B span exactly the normalized dims (the usual case) or broadcast some other way.
  auto spans_row = [&](const DTensor& p) {
    if (p.numel() != na.len || p.rank() > rank) return false;
    const int64_t off = rank - p.rank();  // p's dim d lines up with X's dim off + d
    for (int64_t d = 0; d < p.rank(); ++d)
      if (off + d < axis && p.shape[static_cast<size_t>(d)] != 1) return false;
    return true;  // numel == len with no extent before axis: p's dims from axis on are X's
  };
  if (!spans_row(scale) || (bias && !spans_row(*bias))) {
    na.mode = kParamBroadcast;
    na.sb = make_broadcast(scale.shape, x.shape);
    na.bb = bias ? make_broadcast(bias->shape, x.shape) : na.sb;
  }
  return na;
}

void run_layer_norm(const KernelContext& ctx, KernelArgs& a, bool rms) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const DTensor& scale = *a.in.at(1);
  const DTensor* bias = rms ? nullptr : optional_in(a, 2);
  NormArgs na = layer_norm_args(n, x, scale, bias, rms);
  if (x.numel() == 0) return;
  if (!rms) {
    na.mean = optional_out(a, 1);
    na.inv = optional_out(a, 2);
    if (na.mean) na.stat_dt = a.out[1].dtype;
    else if (na.inv) na.stat_dt = a.out[2].dtype;
  }
  launch_norm_rows(ctx, n, x, a.out.at(0), scale, bias, na);
}

void run_group_norm(const KernelContext& ctx, KernelArgs& a, bool instance) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  if (x.rank() < 2) KILN_THROW(InvalidModel, n.label() << ": X must have rank >= 2 (N, C, ...), got " << x.rank());
  const DTensor& scale = *a.in.at(1);
  const DTensor& bias = *a.in.at(2);
  if (scale.dtype != x.dtype || bias.dtype != x.dtype)
    KILN_THROW(InvalidModel, n.label() << ": scale and bias must have X's dtype " << dtype_name(x.dtype));
  const int64_t N = x.shape[0], C = x.shape[1];
  const int64_t groups = instance ? C : n.attr_int("num_groups");
  if (groups <= 0 || C % groups != 0)
    KILN_THROW(InvalidModel, n.label() << ": num_groups " << groups << " does not divide the " << C << " channels");
  const bool per_channel = instance || n.opset >= 21;
  const int64_t plen = per_channel ? C : groups;
  if (scale.numel() != plen || bias.numel() != plen)
    KILN_THROW(InvalidModel, n.label() << ": scale and bias must have " << plen << " values");
  if (x.numel() == 0) return;
  const int64_t spatial = x.numel() / (N * C);
  NormArgs na;
  na.rows = N * groups;
  na.cpg = C / groups;
  na.len = na.cpg * spatial;
  na.eps = n.attr_float("epsilon", 1e-5f);
  na.mode = per_channel ? kParamChannel : kParamGroup;
  na.by_groups = make_divmod(groups, na.rows);
  na.by_spatial = make_divmod(spatial, na.len);
  launch_norm_rows(ctx, n, x, a.out.at(0), scale, &bias, na);
}

// ---- kiln.AddLayerNormalization ------------------------------------------------------------------------------------
template <typename T>
__global__ void add_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s[i] = acc_out<T>(acc_in(a[i]) + acc_in(b[i]));
}

// Sum = A + B, Y = LayerNorm(Sum): one ln_rows_kernel that adds while loading (rows that fit its registers, 16-byte
// aligned, scale / bias spanning the row), else an add kernel into Sum (or the workspace) and the LayerNorm kernels.
void run_add_layer_norm(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const DTensor& r = *a.in.at(1);
  const DTensor& scale = *a.in.at(2);
  const DTensor* bias = optional_in(a, 3);
  if (r.shape != x.shape || r.dtype != x.dtype)
    KILN_THROW(InvalidModel, n.label() << ": A " << shape_str(x.shape) << " and B " << shape_str(r.shape)
                                       << " must have one shape and dtype");
  const NormArgs na = layer_norm_args(n, x, scale, bias, false);
  if (x.numel() == 0) return;
  void* sum = optional_out(a, 1);
  DTensor& y = a.out.at(0);
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    constexpr int V = vec_of<T>();
    const int64_t lp = na.len / V;
    const bool fast = V > 1 && na.mode == kParamRow && na.len % V == 0 && lp <= int64_t(kMaxPacks) * 512 &&
                      aligned16(x.data) && aligned16(r.data) && aligned16(y.data) && (!sum || aligned16(sum)) &&
                      aligned16(scale.data) && (!bias || aligned16(bias->data));
    if (fast) {
      const RowShape rs = row_shape(na.rows, lp, kMaxPacks, 512);
      ln_rows_kernel<T, V, kMaxPacks, true><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(
          x.as<T>(), y.as<T>(), scale.as<T>(), bias ? bias->as<T>() : nullptr, na, rs.tpr, r.as<T>(),
          static_cast<T*>(sum));
      KILN_CUDA_LAUNCH_CHECK("add_ln_rows");
      return;
    }
    DTensor s{x.dtype, x.shape, sum};
    if (!s.data) {
      if (!ctx.workspace || ctx.workspace_size < x.nbytes())
        KILN_THROW(InvalidState, n.label() << ": needs " << x.nbytes() << " workspace bytes for the sum, has "
                                           << ctx.workspace_size);
      s.data = ctx.workspace;
    }
    add_kernel<T><<<grid_for(x.numel()), kBlock, 0, ctx.stream>>>(x.as<T>(), r.as<T>(), s.as<T>(), x.numel());
    KILN_CUDA_LAUNCH_CHECK("add_ln add");
    launch_norm_rows(ctx, n, s, y, scale, bias, na);
  });
}

size_t add_layer_norm_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in,
                                const std::vector<ir::ValueType>& out) {
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) return 0;  // the sum has its own buffer
  if (out.empty() || !out[0].is_static()) return 0;
  (void)in;
  return static_cast<size_t>(shape_numel(out[0].static_shape())) * dtype_size(out[0].dtype);
}

bool float_x(const std::vector<ir::ValueType>& in, size_t n_same) {
  if (in.empty() || !FloatDTypes::has(in[0].dtype)) return false;
  if (in[0].has_rank && in[0].dims.size() > static_cast<size_t>(kMaxDims)) return false;
  for (size_t i = 1; i < n_same && i < in.size(); ++i)
    if (in[i].has_rank && in[i].dtype != in[0].dtype) return false;
  return true;
}

void reg(const char* op, SupportsFn s, KernelFn k) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = std::move(s);
  t.run = std::move(k);
  register_cuda_tactic("", op, std::move(t));
}

}  // namespace

void register_norm_kernels() {
  reg("BatchNormalization",
      [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
        return n.attr_int("training_mode", 0) == 0 && !in.empty() && FloatDTypes::has(in[0].dtype);
      },
      run_batch_norm);
  reg("LayerNormalization", [](const ir::Node&, const std::vector<ir::ValueType>& in) { return float_x(in, 3); },
      [](const KernelContext& ctx, KernelArgs& a) { run_layer_norm(ctx, a, false); });
  // RMSNormalization's Y has scale's dtype: the kernel takes scale of X's dtype only.
  reg("RMSNormalization", [](const ir::Node&, const std::vector<ir::ValueType>& in) { return float_x(in, 2); },
      [](const KernelContext& ctx, KernelArgs& a) { run_layer_norm(ctx, a, true); });
  {
    CudaTactic t;
    t.name = "cuda";
    t.supports = [](const ir::Node&, const std::vector<ir::ValueType>& in) {
      return float_x(in, 4) && in.size() > 1 && in[1].dtype == in[0].dtype;
    };
    t.run = run_add_layer_norm;
    t.workspace = add_layer_norm_workspace;
    register_cuda_tactic("kiln", "AddLayerNormalization", std::move(t));
  }
  reg("GroupNormalization", [](const ir::Node&, const std::vector<ir::ValueType>& in) { return float_x(in, 3); },
      [](const KernelContext& ctx, KernelArgs& a) { run_group_norm(ctx, a, false); });
  reg("InstanceNormalization", [](const ir::Node&, const std::vector<ir::ValueType>& in) { return float_x(in, 3); },
      [](const KernelContext& ctx, KernelArgs& a) { run_group_norm(ctx, a, true); });
}

}  // namespace kiln::runtime::cuda
