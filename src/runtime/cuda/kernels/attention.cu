// CUDA kernels: Attention (opset 23-25; gemm family, registered by register_gemm_kernels). Semantics are the CPU
// reference's (src/ops/attention.cpp): 3-D or 4-D Q/K/V, grouped-query heads, past_key / past_value concatenated in
// front (present outputs), bool or float attn_mask broadcast to [B, Hq, Sq, T] (a shorter last dim pads as masked),
// is_causal with bottom-right alignment, nonpad_kv_seqlen, left/right windows, scale, softcap and the four
// qk_matmul_output modes. Work: K / V (and 3-D Q) rearranged into [B, H, S, D] in the workspace (or straight into
// present_key / present_value), scores = scale * Q K^T by one strided-batched cuBLASLt GEMM (query heads of a group
// folded into the rows, float32 scores), one softmax kernel (softcap, masks, outputs), Y = P V by a second GEMM.
#include <cmath>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"

namespace kiln::runtime::cuda {
namespace {

struct AttnShape {
  bool is3d = false;
  int64_t B = 0, Hq = 0, Hkv = 0, Sq = 0, Skv = 0, P = 0, D = 0, Dv = 0, T = 0;
};

AttnShape attn_shape(const ir::Node& n, const Shape& q, const Shape& k, const Shape& v, const Shape* pk,
                     const Shape* pv) {
  if (q.size() != k.size() || q.size() != v.size() || (q.size() != 3 && q.size() != 4))
    KILN_THROW(InvalidModel, n.label() << ": Q, K and V must all be 3-D or all 4-D, got " << shape_str(q) << ", "
                                       << shape_str(k) << ", " << shape_str(v));
  AttnShape s;
  s.is3d = q.size() == 3;
  s.B = q[0];
  if (s.is3d) {
    s.Hq = n.attr_int("q_num_heads", 0), s.Hkv = n.attr_int("kv_num_heads", 0);
    if (s.Hq <= 0 || s.Hkv <= 0 || q[2] % s.Hq != 0 || k[2] % s.Hkv != 0 || v[2] % s.Hkv != 0)
      KILN_THROW(InvalidModel, n.label() << ": 3-D inputs need head counts that divide the hidden sizes");
    s.Sq = q[1], s.Skv = k[1], s.D = q[2] / s.Hq, s.Dv = v[2] / s.Hkv;
    if (k[2] / s.Hkv != s.D) KILN_THROW(InvalidModel, n.label() << ": Q and K head sizes differ");
  } else {
    s.Hq = q[1], s.Hkv = k[1], s.Sq = q[2], s.Skv = k[2], s.D = q[3], s.Dv = v[3];
    if (k[3] != s.D || v[1] != s.Hkv) KILN_THROW(InvalidModel, n.label() << ": Q/K/V head sizes or counts differ");
  }
  if (k[0] != s.B || v[0] != s.B || v[s.is3d ? 1 : 2] != s.Skv)
    KILN_THROW(InvalidModel, n.label() << ": Q, K and V batch or K/V sequence lengths differ");
  if (s.Hkv <= 0 || s.Hq % s.Hkv != 0)
    KILN_THROW(InvalidModel, n.label() << ": q heads " << s.Hq << " are not a multiple of kv heads " << s.Hkv);
  if ((pk == nullptr) != (pv == nullptr))
    KILN_THROW(InvalidModel, n.label() << ": past_key and past_value must be given together");
  if (pk) {
    if (pk->size() != 4 || pv->size() != 4 || (*pk)[0] != s.B || (*pk)[1] != s.Hkv || (*pk)[3] != s.D ||
        (*pv)[0] != s.B || (*pv)[1] != s.Hkv || (*pv)[3] != s.Dv || (*pk)[2] != (*pv)[2])
      KILN_THROW(InvalidModel, n.label() << ": past_key " << shape_str(*pk) << " / past_value " << shape_str(*pv)
                                         << " do not match K and V");
    s.P = (*pk)[2];
  }
  s.T = s.P + s.Skv;
  return s;
}

// dst [B, H, T, Dh] = past [B, H, P, Dh] ++ src along the sequence; src is [B, S, H * Dh] (3-D) or [B, H, S, Dh].
template <typename E>
__global__ void assemble_kv_kernel(const E* __restrict__ past, const E* __restrict__ src, E* __restrict__ dst,
                                   int64_t H, int64_t T, int64_t P, int64_t Dh, bool src3d, int64_t total) {
  const int64_t S = T - P;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t e = idx % Dh;
    const int64_t t = (idx / Dh) % T;
    const int64_t bh = idx / (Dh * T);
    if (t < P) {
      dst[idx] = past[(bh * P + t) * Dh + e];
    } else {
      const int64_t b = bh / H, h = bh % H, s = t - P;
      dst[idx] = src3d ? src[((b * S + s) * H + h) * Dh + e] : src[(bh * S + s) * Dh + e];
    }
  }
}

// [B, S, H * Dh] <-> [B, H, S, Dh] (to_bhsd: dst is the 4-D layout).
template <typename E>
__global__ void bshd_kernel(const E* __restrict__ src, E* __restrict__ dst, int64_t S, int64_t H, int64_t Dh,
                            bool to_bhsd, int64_t total) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t e = idx % Dh;
    int64_t r = idx / Dh;
    if (to_bhsd) {  // idx walks [B, H, S, Dh]
      const int64_t s = r % S, bh = r / S;
      dst[idx] = src[(((bh / H) * S + s) * H + bh % H) * Dh + e];
    } else {  // idx walks [B, S, H, Dh]
      const int64_t h = r % H, bs = r / H;
      dst[idx] = src[(((bs / S) * H + h) * S + bs % S) * Dh + e];
    }
  }
}

struct SoftmaxParams {
  int64_t Hq, Sq, T, P;
  int64_t mstride[4];
  int64_t mlast;
  int mask_kind;  // 0 none, 1 bool, 2 float (the input type)
  const void* mask;
  const int64_t* nonpad;  // [B] or nullptr
  bool causal;
  int64_t left, right;
  double softcap;
  int mode;
};

template <typename A>
__device__ inline A block_reduce(A v, bool is_max, A* shared) {
  for (int o = 16; o > 0; o /= 2) {
    const A other = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? (other > v ? other : v) : v + other;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? shared[lane] : (is_max ? -INFINITY : A(0));
    for (int o = 16; o > 0; o /= 2) {
      const A other = __shfl_xor_sync(0xffffffffu, v, o);
      v = is_max ? (other > v ? other : v) : v + other;
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

template <typename A, typename T>
__device__ inline A ld(T v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return static_cast<A>(to_f(v));
}
template <typename T, typename A>
__device__ inline T st(A v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return from_f<T>(static_cast<float>(v));
}

// One block per query row (b, h, i): S holds scale * q.k (type A); writes the probabilities to Pr (type T, may
// alias S when T == A) and the requested qk_matmul_output to QK (nullptr: not requested).
template <typename T, typename A>
__global__ void attn_softmax_kernel(SoftmaxParams p, A* S, T* Pr, T* QK) {
  __shared__ A shared[32];
  const int64_t row = blockIdx.x;
  const int64_t i = row % p.Sq, h = (row / p.Sq) % p.Hq, b = row / (p.Sq * p.Hq);
  A* s_row = S + row * p.T;
  T* p_row = Pr + row * p.T;
  T* qk_row = QK ? QK + row * p.T : nullptr;
  const int64_t np = p.nonpad ? p.nonpad[b] : -1;
  const int64_t offset = p.P > 0 ? p.P : (p.nonpad ? np - p.Sq : 0);
  const A ninf = -INFINITY;
  A mx = ninf;
  int any = 0;
  for (int64_t j = threadIdx.x; j < p.T; j += blockDim.x) {
    A s = s_row[j];
    if (qk_row && p.mode == 0) qk_row[j] = st<T>(s);
    if (p.softcap > 0) s = static_cast<A>(p.softcap) * tanh(s / static_cast<A>(p.softcap));
    if (qk_row && p.mode == 1) qk_row[j] = st<T>(s);
    A bj = 0;
    if (p.mask_kind) {
      if (j >= p.mlast) {
        bj = ninf;
      } else {
        const int64_t off = b * p.mstride[0] + h * p.mstride[1] + i * p.mstride[2] + j * p.mstride[3];
        bj = p.mask_kind == 1 ? (static_cast<const uint8_t*>(p.mask)[off] ? A(0) : ninf)
                              : ld<A>(static_cast<const T*>(p.mask)[off]);
      }
    }
    const int64_t diff = i + offset - j;
    if (p.causal && diff < 0) bj = ninf;
    if ((p.left >= 0 && diff > p.left) || (p.right >= 0 && -diff > p.right)) bj = ninf;
    if (p.nonpad && j >= np) bj = ninf;
    const A v = s + bj;
    if (qk_row && p.mode == 2) qk_row[j] = st<T>(v);
    any |= bj != ninf;
    mx = v > mx ? v : mx;
    s_row[j] = v;
  }
  mx = block_reduce<A>(mx, true, shared);
  any = __syncthreads_or(any);
  A sum = 0;
  for (int64_t j = threadIdx.x; j < p.T; j += blockDim.x) {
    const A v = s_row[j];
    if (any && v != ninf) sum += exp(v - mx);
  }
  sum = block_reduce<A>(sum, false, shared);
  for (int64_t j = threadIdx.x; j < p.T; j += blockDim.x) {
    const A v = s_row[j];
    const A pr = any && v != ninf && sum > 0 ? exp(v - mx) / sum : A(0);
    if (qk_row && p.mode == 3) qk_row[j] = st<T>(pr);
    p_row[j] = st<T>(pr);
  }
}

template <typename F>
void dispatch_attn(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}, float{}); return;
    case DType::Float16: f(__half{}, float{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}, float{}); return;
    case DType::Float64: f(double{}, double{}); return;
    default: break;
  }
  KILN_THROW(Unsupported, "CUDA Attention: dtype " << dtype_name(dt));
}

constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Workspace pieces for one call (bytes, each 256-aligned; 0 when not needed).
struct AttnWorkspace {
  size_t q = 0, k = 0, v = 0, scores = 0, probs = 0, y = 0, gemm = 0;
  size_t total() const { return q + k + v + scores + probs + y + gemm; }
};
AttnWorkspace attn_workspace(const AttnShape& s, DType dt, bool present_k, bool present_v) {
  const size_t es = dtype_size(dt), sc = dt == DType::Float64 ? 8 : 4;
  const size_t rows = static_cast<size_t>(s.B * s.Hq * s.Sq);
  AttnWorkspace w;
  if (s.is3d) w.q = align_up(rows * s.D * es), w.y = align_up(rows * s.Dv * es);
  const bool direct_kv = !s.is3d && s.P == 0;  // K / V usable as they are
  if (!present_k && !direct_kv) w.k = align_up(static_cast<size_t>(s.B * s.Hkv * s.T * s.D) * es);
  if (!present_v && !direct_kv) w.v = align_up(static_cast<size_t>(s.B * s.Hkv * s.T * s.Dv) * es);
  w.scores = align_up(rows * s.T * sc);
  if (dt == DType::Float16 || dt == DType::BFloat16) w.probs = align_up(rows * s.T * es);
  w.gemm = lt_workspace_bytes(static_cast<int64_t>(rows * std::max<int64_t>(s.T, s.Dv)));
  return w;
}

bool has_output(const ir::Node& n, size_t i) { return i < n.outputs.size() && !n.outputs[i].empty(); }

void run_attention(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  auto input = [&](size_t i) -> const DTensor* {
    return i < args.in.size() && args.in[i] && args.in[i]->data ? args.in[i] : nullptr;
  };
  if (!input(0) || !input(1) || !input(2)) KILN_THROW(InvalidModel, n.label() << ": needs Q, K and V");
  const DTensor &Q = *input(0), &K = *input(1), &V = *input(2);
  const DTensor* mask = input(3);
  const DTensor* pk = input(4);
  const DTensor* pv = input(5);
  const DTensor* nonpad = n.opset >= 24 ? input(6) : nullptr;
  const DType dt = Q.dtype;
  const AttnShape s = attn_shape(n, Q.shape, K.shape, V.shape, pk ? &pk->shape : nullptr, pv ? &pv->shape : nullptr);
  if (nonpad && pk) KILN_THROW(InvalidModel, n.label() << ": nonpad_kv_seqlen cannot be combined with past_key");
  if (nonpad && (nonpad->dtype != DType::Int64 || nonpad->numel() != s.B))
    KILN_THROW(InvalidModel, n.label() << ": nonpad_kv_seqlen must be int64 [" << s.B << "], got "
                                       << shape_str(nonpad->shape));
  DTensor* Y = &args.out[0];
  DTensor* present_k = args.out.size() > 1 && args.out[1].data ? &args.out[1] : nullptr;
  DTensor* present_v = args.out.size() > 2 && args.out[2].data ? &args.out[2] : nullptr;
  DTensor* qk_out = args.out.size() > 3 && args.out[3].data ? &args.out[3] : nullptr;
  const AttnWorkspace w = attn_workspace(s, dt, present_k, present_v);
  if (!ctx.workspace || ctx.workspace_size < w.total())
    KILN_THROW(InvalidState, n.label() << ": workspace of " << ctx.workspace_size << " bytes, Attention needs "
                                       << w.total());
  char* ws = static_cast<char*>(ctx.workspace);
  auto take = [&](size_t bytes) -> void* {
    void* p = bytes ? ws : nullptr;
    ws += bytes;
    return p;
  };
  void* q_ws = take(w.q);
  void* k_ws = take(w.k);
  void* v_ws = take(w.v);
  void* scores = take(w.scores);
  void* probs = take(w.probs);
  void* y_ws = take(w.y);
  void* gemm_ws = take(w.gemm);
  const int64_t group = s.Hq / s.Hkv;

  // Q, K, V in [B, H, S, D].
  const void* qc = Q.data;
  if (s.is3d && Q.numel() > 0) {
    const int64_t total = Q.numel();
    dispatch_bytes(dt, [&](auto tag) {
      using E = decltype(tag);
      bshd_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(Q.as<const E>(), static_cast<E*>(q_ws), s.Sq, s.Hq,
                                                                 s.D, true, total);
    });
    KILN_CUDA_LAUNCH_CHECK("attention Q layout");
    qc = q_ws;
  }
  auto assemble = [&](const DTensor& src, const DTensor* past, DTensor* present, void* scratch, int64_t Dh) {
    const bool direct = !s.is3d && s.P == 0;
    void* dst = present ? present->data : (direct ? nullptr : scratch);
    if (!dst) return static_cast<const void*>(src.data);
    const int64_t total = s.B * s.Hkv * s.T * Dh;
    if (total == 0) return static_cast<const void*>(dst);
    dispatch_bytes(dt, [&](auto tag) {
      using E = decltype(tag);
      assemble_kv_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(
          past ? past->as<const E>() : nullptr, src.as<const E>(), static_cast<E*>(dst), s.Hkv, s.T, s.P, Dh, s.is3d,
          total);
    });
    KILN_CUDA_LAUNCH_CHECK("attention K/V layout");
    return static_cast<const void*>(dst);
  };
  const void* kc = assemble(K, pk, present_k, k_ws, s.D);
  const void* vc = assemble(V, pv, present_v, v_ws, s.Dv);
  const int64_t rows = s.B * s.Hq * s.Sq;
  if (rows == 0) return;

  // scores = scale * Q K^T, query heads of one kv head folded into the rows.
  const double scale = n.has_attr("scale") ? n.attr_float("scale", 1.f) : 1.0 / std::sqrt(static_cast<double>(s.D));
  const DType sc_t = dt == DType::Float64 ? DType::Float64 : DType::Float32;
  LtGemm g1;
  g1.ab = dt, g1.d = sc_t, g1.trans_b = true;
  g1.m = group * s.Sq, g1.n = s.T, g1.k = s.D, g1.batch = s.B * s.Hkv;
  g1.a = qc, g1.lda = s.D, g1.stride_a = group * s.Sq * s.D;
  g1.b = kc, g1.ldb = s.D, g1.stride_b = s.T * s.D;
  g1.dptr = scores, g1.ldd = s.T, g1.stride_d = group * s.Sq * s.T;
  g1.alpha = scale;
  if (s.T > 0) {
    if (s.D > 0) run_gemm(ctx, g1, gemm_ws, w.gemm);
    else KILN_CUDA_CHECK(cudaMemsetAsync(scores, 0, static_cast<size_t>(rows * s.T) * dtype_size(sc_t), ctx.stream));
  }

  // Softmax with softcap, masks and the qk output.
  SoftmaxParams sp{};
  sp.Hq = s.Hq, sp.Sq = s.Sq, sp.T = s.T, sp.P = s.P;
  if (mask) {
    const Shape& ms = mask->shape;
    if (ms.empty() || ms.size() > 4)
      KILN_THROW(InvalidModel, n.label() << ": attn_mask must be 1-D to 4-D, got " << shape_str(ms));
    if (mask->dtype != DType::Bool && mask->dtype != dt)
      KILN_THROW(InvalidModel, n.label() << ": attn_mask must be bool or " << dtype_name(dt));
    const int64_t target[4] = {s.B, s.Hq, s.Sq, s.T};
    int64_t stride = 1;
    for (size_t i = ms.size(); i-- > 0;) {
      const size_t ax = 4 - ms.size() + i;
      const bool last = ax == 3;
      if (last ? ms[i] > s.T : (ms[i] != 1 && ms[i] != target[ax]))
        KILN_THROW(InvalidModel, n.label() << ": attn_mask " << shape_str(ms) << " does not broadcast to [" << s.B
                                           << "," << s.Hq << "," << s.Sq << "," << s.T << "]");
      sp.mstride[ax] = ms[i] == 1 && !last ? 0 : stride;
      stride *= ms[i];
    }
    sp.mlast = ms.back();
    sp.mask_kind = mask->dtype == DType::Bool ? 1 : 2;
    sp.mask = mask->data;
  }
  sp.nonpad = nonpad ? nonpad->as<const int64_t>() : nullptr;
  sp.causal = n.attr_int("is_causal", 0) != 0;
  sp.left = n.opset >= 25 ? n.attr_int("left_window_size", -1) : -1;
  sp.right = n.opset >= 25 ? n.attr_int("right_window_size", -1) : -1;
  sp.softcap = n.attr_float("softcap", 0.f);
  sp.mode = static_cast<int>(n.attr_int("qk_matmul_output_mode", 0));
  if (sp.mode < 0 || sp.mode > 3)
    KILN_THROW(InvalidModel, n.label() << ": qk_matmul_output_mode must be 0..3, got " << sp.mode);
  void* pr = probs ? probs : scores;  // float32 / float64: probabilities overwrite the scores
  if (s.T > 0) {
    dispatch_attn(dt, [&](auto t, auto a) {
      using T = decltype(t);
      using A = decltype(a);
      const int block = s.T >= 256 ? 256 : (s.T >= 64 ? 128 : 32);
      attn_softmax_kernel<T, A><<<static_cast<unsigned>(rows), block, 0, ctx.stream>>>(
          sp, static_cast<A*>(scores), static_cast<T*>(pr), qk_out ? qk_out->as<T>() : nullptr);
    });
    KILN_CUDA_LAUNCH_CHECK("attention softmax");
  }

  // Y = P V (into Y for 4-D, else [B, Hq, Sq, Dv] in the workspace, then to [B, Sq, Hq * Dv]).
  if (s.Dv == 0) return;
  void* yc = s.is3d ? y_ws : Y->data;
  LtGemm g2;
  g2.ab = g2.d = dt;
  g2.m = group * s.Sq, g2.n = s.Dv, g2.k = s.T, g2.batch = s.B * s.Hkv;
  g2.a = pr, g2.lda = s.T, g2.stride_a = group * s.Sq * s.T;
  g2.b = vc, g2.ldb = s.Dv, g2.stride_b = s.T * s.Dv;
  g2.dptr = yc, g2.ldd = s.Dv, g2.stride_d = group * s.Sq * s.Dv;
  g2.alpha = 1.0;
  run_gemm(ctx, g2, gemm_ws, w.gemm);
  if (s.is3d) {
    const int64_t total = rows * s.Dv;
    dispatch_bytes(dt, [&](auto tag) {
      using E = decltype(tag);
      bshd_kernel<E><<<grid_for(total), kBlock, 0, ctx.stream>>>(static_cast<const E*>(yc), Y->as<E>(), s.Sq, s.Hq,
                                                                 s.Dv, false, total);
    });
    KILN_CUDA_LAUNCH_CHECK("attention Y layout");
  }
}

size_t attention_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in,
                           const std::vector<ir::ValueType>&) {
  auto shape = [&](size_t i) -> const ir::ValueType* {
    return i < in.size() && n.has_input(i) && in[i].is_static() ? &in[i] : nullptr;
  };
  if (!shape(0) || !shape(1) || !shape(2)) return size_t(256) << 20;
  try {
    Shape pk, pv;
    if (shape(4)) pk = shape(4)->static_shape();
    if (shape(5)) pv = shape(5)->static_shape();
    const AttnShape s = attn_shape(n, shape(0)->static_shape(), shape(1)->static_shape(), shape(2)->static_shape(),
                                   shape(4) ? &pk : nullptr, shape(5) ? &pv : nullptr);
    return attn_workspace(s, in[0].dtype, has_output(n, 1), has_output(n, 2)).total();
  } catch (const Error&) {
    return size_t(256) << 20;
  }
}

bool supports_attention(const ir::Node&, const std::vector<ir::ValueType>& in) {
  if (in.empty()) return false;
  const DType dt = in[0].dtype;
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64;
}

}  // namespace

void register_attention_kernels() {
  register_cuda_tactic("", "Attention", CudaTactic{"cuda", supports_attention, run_attention, attention_workspace});
}

}  // namespace kiln::runtime::cuda
