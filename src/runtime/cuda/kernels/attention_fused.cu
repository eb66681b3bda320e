// CUDA kernels of kiln.Attention (ops/kiln_attention.h; made by the fuse_attention pass; gemm family, registered by
// register_gemm_kernels). One launch per node, scores and probabilities never leave the chip:
//   tensor-core kernel (float16 / bfloat16; head sizes D, Dv <= 128, multiples of 8; 16-byte aligned operands):
//     FlashAttention-2 style. A block of 4 warps takes 64 query rows of one (batch, head); each warp 16 rows. Q is
//     staged through shared memory into registers once; K and V tiles of 64 keys stream through shared memory
//     (cp.async, zero-filled past the sequence / head size). S = Q K^T by mma.sync m16n8k16 (float accumulators),
//     scale, mask and causal applied in registers, online softmax in float (running max and sum per row), P rounded
//     to the operand type and O += P V by mma.sync again (V fragments by ldmatrix.trans). O = acc / sum at the end.
//   simple kernel (float32, and any shape the first does not take; Dv <= 256): one warp per query row, 32 keys at a
//     time (a lane per key for the dot product), the same online softmax, float math throughout.
// Both read Q / K / V / O in any of the three layouts through (batch, head, row) strides, so a token-major operand
// needs no Transpose. A row whose every score is -inf gives 0 with nan_to_zero, else NaN (0 / 0), as the graph's
// Softmax and IsNaN / Where guard do.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "ops/kiln_attention.h"
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"

namespace kiln::runtime::cuda {
namespace {

namespace ka = ops::kattn;

constexpr float kLog2e = 1.4426950408889634f;

enum MaskKind : int { kMaskNone = 0, kMaskF32, kMaskF16, kMaskBF16, kMaskBool };

struct AttnArgs {
  const void* q;
  const void* k;
  const void* v;
  const void* mask;
  void* o;
  int B, H, Sq, Sk, D, Dv;
  // Element offset of row s of head (b, h): b * sb + h * sh + s * sr.
  int64_t q_sb, q_sh, q_sr, k_sb, k_sh, k_sr, v_sb, v_sh, v_sr, o_sb, o_sh, o_sr;
  int64_t m_s[4];  // mask strides over [B, H, Sq, Sk] (0 where it broadcasts)
  int mask_kind;
  float mask_true, mask_false;
  float scale;
  int score_round;  // 0: none, 1: to float16, 2: to bfloat16 (after the mask bias)
  int causal, nan_to_zero;
};

__device__ __forceinline__ float mask_bias(const AttnArgs& a, int b, int h, int i, int j) {
  const int64_t off = b * a.m_s[0] + h * a.m_s[1] + i * a.m_s[2] + j * a.m_s[3];
  switch (a.mask_kind) {
    case kMaskF32: return static_cast<const float*>(a.mask)[off];
    case kMaskF16: return __half2float(static_cast<const __half*>(a.mask)[off]);
    case kMaskBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(a.mask)[off]);
    case kMaskBool: return static_cast<const uint8_t*>(a.mask)[off] ? a.mask_true : a.mask_false;
    default: return 0.0f;
  }
}

// The score of (query i, key j) from the raw dot product: scale, then the mask bias (a float add, as the graph's),
// rounded to score_dtype where the graph added the mask in a low type, then causal; -inf past the key length.
__device__ __forceinline__ float score(const AttnArgs& a, float dot, int b, int h, int i, int j) {
  if (j >= a.Sk || (a.causal && j > i)) return -INFINITY;
  float s = dot * a.scale;
  if (a.mask_kind != kMaskNone && i < a.Sq) {
    s += mask_bias(a, b, h, i, j);
    if (a.score_round == 1) s = __half2float(__float2half_rn(s));
    else if (a.score_round == 2) s = __bfloat162float(__float2bfloat16_rn(s));
  }
  return s;
}

// The final value of one output element: acc / l, or (every score -inf: l == 0) 0 with nan_to_zero, else NaN.
__device__ __forceinline__ float finish(const AttnArgs& a, float acc, float l) {
  if (l > 0.0f) return acc / l;
  return a.nan_to_zero ? 0.0f : __int_as_float(0x7fc00000);
}

// ---- simple kernel: one warp per query row ------------------------------------------------------------------------
constexpr int kSimpleWarps = 4;
constexpr int kSimpleMaxDvPerLane = 8;  // Dv <= 256

template <typename T>
__global__ void __launch_bounds__(kSimpleWarps * 32) attn_simple_kernel(AttnArgs a) {
  extern __shared__ float q_smem[];  // [kSimpleWarps][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int i = blockIdx.y * kSimpleWarps + warp;
  if (i >= a.Sq) return;  // no block-wide barrier below
  const T* q = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh + i * a.q_sr;
  const T* k = static_cast<const T*>(a.k) + b * a.k_sb + h * a.k_sh;
  const T* v = static_cast<const T*>(a.v) + b * a.v_sb + h * a.v_sh;
  float* qs = q_smem + warp * a.D;
  for (int d = lane; d < a.D; d += 32) qs[d] = to_f(q[d]);
  __syncwarp();
  float m = -INFINITY, l = 0.0f, acc[kSimpleMaxDvPerLane];
#pragma unroll
  for (int e = 0; e < kSimpleMaxDvPerLane; ++e) acc[e] = 0.0f;
  for (int j0 = 0; j0 < a.Sk; j0 += 32) {
    const int j = j0 + lane;
    float dot = 0.0f;
    if (j < a.Sk) {
      const T* kj = k + j * a.k_sr;
      for (int d = 0; d < a.D; ++d) dot += qs[d] * to_f(kj[d]);
    }
    const float s = score(a, dot, b, h, i, j);
    float tmax = s;
#pragma unroll
    for (int o = 16; o > 0; o /= 2) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
    const float m_new = fmaxf(m, tmax);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = exp2f((m - m_use) * kLog2e);
    const float p = exp2f((s - m_use) * kLog2e);
    float psum = p;
#pragma unroll
    for (int o = 16; o > 0; o /= 2) psum += __shfl_xor_sync(0xffffffffu, psum, o);
    l = l * alpha + psum;
    m = m_new;
#pragma unroll
    for (int e = 0; e < kSimpleMaxDvPerLane; ++e) acc[e] *= alpha;
    const int nj = min(32, a.Sk - j0);
    for (int jj = 0; jj < nj; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const T* vj = v + (j0 + jj) * a.v_sr;
#pragma unroll
      for (int e = 0; e < kSimpleMaxDvPerLane; ++e) {
        const int d = lane + 32 * e;
        if (d < a.Dv) acc[e] += pj * to_f(vj[d]);
      }
    }
  }
  T* o = static_cast<T*>(a.o) + b * a.o_sb + h * a.o_sh + i * a.o_sr;
#pragma unroll
  for (int e = 0; e < kSimpleMaxDvPerLane; ++e) {
    const int d = lane + 32 * e;
    if (d < a.Dv) o[d] = from_f<T>(finish(a, acc[e], l));
  }
}

// ---- tensor-core kernel --------------------------------------------------------------------------------------------
constexpr int kWarps = 4;
constexpr int kBr = 16 * kWarps;  // query rows per block
constexpr int kBc = 64;           // keys per tile

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a packed pair of T (the low half is the first).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float x, float y);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float x, float y) {
  __half2 v = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Loads rows [r0, r0 + kBc) x columns [0, DP) of one head into sm ([kBc][DP + 8]): 16-byte cp.async where the row
// is inside [0, S) and the chunk inside [0, cols), zeros elsewhere.
template <typename T, int DP>
__device__ __forceinline__ void load_tile(T* sm, const T* g, int64_t row_stride, int r0, int S, int cols) {
  constexpr int kLd = DP + 8, kChunks = DP / 8;
  for (int c = threadIdx.x; c < kBc * kChunks; c += kWarps * 32) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    T* dst = sm + r * kLd + col;
    if (r0 + r < S && col < cols) cp_async16(dst, g + (r0 + r) * row_stride + col);
    else *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
  }
}

template <typename T, int DP>
__global__ void __launch_bounds__(kWarps * 32) attn_mma_kernel(AttnArgs a) {
  constexpr int kLd = DP + 8;       // padded row (halves): conflict-free fragment loads
  constexpr int kKs = DP / 16;      // k-steps of Q K^T
  constexpr int kNt = kBc / 8;      // score tiles (n = 8) per key tile
  constexpr int kDt = DP / 8;       // output tiles (n = 8)
  __shared__ __align__(16) T ks[kBc * kLd];
  __shared__ __align__(16) T vs[kBc * kLd];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int q0 = blockIdx.y * kBr;
  const T* qg = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh;
  const T* kg = static_cast<const T*>(a.k) + b * a.k_sb + h * a.k_sh;
  const T* vg = static_cast<const T*>(a.v) + b * a.v_sb + h * a.v_sh;

  // Q tile through ks into registers (A fragments of m16n8k16, rows 16 * warp + g and + 8).
  load_tile<T, DP>(ks, qg, a.q_sr, q0, a.Sq, a.D);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[kKs][4];
  {
    const T* r0 = ks + (16 * warp + g) * kLd + 2 * t;
    const T* r1 = r0 + 8 * kLd;
#pragma unroll
    for (int kk = 0; kk < kKs; ++kk) {
      qf[kk][0] = *reinterpret_cast<const uint32_t*>(r0 + 16 * kk);
      qf[kk][1] = *reinterpret_cast<const uint32_t*>(r1 + 16 * kk);
      qf[kk][2] = *reinterpret_cast<const uint32_t*>(r0 + 16 * kk + 8);
      qf[kk][3] = *reinterpret_cast<const uint32_t*>(r1 + 16 * kk + 8);
    }
  }
  const int i0 = q0 + 16 * warp + g, i1 = i0 + 8;  // this thread's two query rows
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float acc[kDt][4];
#pragma unroll
  for (int dt = 0; dt < kDt; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
  const int kv_end = a.causal ? min(a.Sk, q0 + kBr) : a.Sk;  // causal: later keys are masked for every row here

  for (int kv0 = 0; kv0 < kv_end; kv0 += kBc) {
    __syncthreads();  // every warp is done with the previous tiles (and with Q in ks)
    load_tile<T, DP>(ks, kg, a.k_sr, kv0, a.Sk, a.D);
    cp_async_commit();
    load_tile<T, DP>(vs, vg, a.v_sr, kv0, a.Sk, a.Dv);
    cp_async_commit();
    cp_async_wait<1>();  // K is in
    __syncthreads();

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[kNt][4];
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      const T* kr = ks + (nt * 8 + g) * kLd + 2 * t;
#pragma unroll
      for (int kk = 0; kk < kKs; ++kk)
        mma16816<T>(s[nt], qf[kk], *reinterpret_cast<const uint32_t*>(kr + 16 * kk),
                    *reinterpret_cast<const uint32_t*>(kr + 16 * kk + 8));
    }
    // Scale, mask, causal; the tile's row maxima (rows i0: elements 0, 1; i1: 2, 3; quad-reduced).
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = kv0 + nt * 8 + 2 * t + (e & 1);
        const int r = e / 2;
        s[nt][e] = score(a, s[nt][e], b, h, r ? i1 : i0, j);
        tmax[r] = fmaxf(tmax[r], s[nt][e]);
      }
    float m_use[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
      const float m_new = fmaxf(m[r], tmax[r]);
      m_use[r] = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f((m[r] - m_use[r]) * kLog2e);
      m[r] = m_new;
      l[r] *= alpha;
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt) acc[dt][2 * r] *= alpha, acc[dt][2 * r + 1] *= alpha;
    }
    // P = exp(S - max) (per-thread partial sums; the quad's are added at the end).
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        s[nt][e] = exp2f((s[nt][e] - m_use[r]) * kLog2e);
        l[r] += s[nt][e];
      }

    cp_async_wait<0>();  // V is in
    __syncthreads();
    // O += P V: P from the score registers (two n-tiles form one A fragment), V by ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const int mat = lane / 8, rr = lane % 8;
      const T* vrow = vs + (16 * kk + rr + (mat & 1) * 8) * kLd + (mat >> 1) * 8;
#pragma unroll
      for (int dt = 0; dt < kDt; dt += 2) {
        uint32_t b0, b1, b2, b3;
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                     : "r"(smem_addr(vrow + dt * 8)));
        mma16816<T>(acc[dt], pa, b0, b1);
        mma16816<T>(acc[dt + 1], pa, b2, b3);
      }
    }
  }

  // Row sums across the quad, then O = acc / l.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  T* og = static_cast<T*>(a.o) + b * a.o_sb + h * a.o_sh;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = r ? i1 : i0;
    if (i >= a.Sq) continue;
    T* orow = og + i * a.o_sr;
#pragma unroll
    for (int dt = 0; dt < kDt; ++dt) {
      const int d = dt * 8 + 2 * t;
      if (d >= a.Dv) continue;
      *reinterpret_cast<uint32_t*>(orow + d) =
          pack2<T>(finish(a, acc[dt][2 * r], l[r]), finish(a, acc[dt][2 * r + 1], l[r]));
    }
  }
}

// ---- host side ------------------------------------------------------------------------------------------------------
// Strides of operand `which` (0 Q, 1 K, 2 V, 3 O) over batch, head and row, and the element offset of its first row.
int64_t set_strides(const ka::Params& p, int which, const ka::Dims& d, int64_t& sb, int64_t& sh, int64_t& sr) {
  const ka::RowAddr o = ka::operand_addr(p, which, 0, 0, d);
  sb = ka::operand_addr(p, which, 1, 0, d).base - o.base;
  sh = ka::operand_addr(p, which, 0, 1, d).base - o.base;
  sr = o.row_stride;
  return o.base;
}

AttnArgs make_args(const ir::Node& n, const ka::Params& p, const ka::Dims& d, const KernelArgs& args) {
  AttnArgs a{};
  const size_t es = dtype_size(args.in[0]->dtype);
  const int64_t limit = int64_t(1) << 31;
  if (d.B * d.H >= limit || d.Sq >= limit || d.Sk >= limit)
    KILN_THROW(Unsupported, n.label() << ": sizes beyond the kernel's 32-bit indices");
  a.B = static_cast<int>(d.B), a.H = static_cast<int>(d.H), a.Sq = static_cast<int>(d.Sq);
  a.Sk = static_cast<int>(d.Sk), a.D = static_cast<int>(d.D), a.Dv = static_cast<int>(d.Dv);
  // Q, K and V start at their first row (for packed Q / K / V: their third of the shared value's last axis).
  auto at = [es](const void* base, int64_t off) { return static_cast<const char*>(base) + off * static_cast<int64_t>(es); };
  a.q = at(args.in[0]->data, set_strides(p, 0, d, a.q_sb, a.q_sh, a.q_sr));
  a.k = at(args.in[1]->data, set_strides(p, 1, d, a.k_sb, a.k_sh, a.k_sr));
  a.v = at(args.in[2]->data, set_strides(p, 2, d, a.v_sb, a.v_sh, a.v_sr));
  a.o = args.out[0].data;
  set_strides(p, 3, d, a.o_sb, a.o_sh, a.o_sr);
  a.mask_kind = kMaskNone;
  if (p.mask != ka::MaskMode::None) {
    const DTensor* m = args.in.size() > 3 ? args.in[3] : nullptr;
    if (!m) KILN_THROW(InvalidModel, n.label() << ": mask_mode " << ka::mask_mode_name(p.mask) << " needs a mask");
    ka::mask_strides(n, m->shape, d, a.m_s);
    a.mask = m->data;
    switch (m->dtype) {
      case DType::Float32: a.mask_kind = kMaskF32; break;
      case DType::Float16: a.mask_kind = kMaskF16; break;
      case DType::BFloat16: a.mask_kind = kMaskBF16; break;
      case DType::Bool: a.mask_kind = kMaskBool; break;
      default: KILN_THROW(Unsupported, n.label() << ": mask dtype " << dtype_name(m->dtype));
    }
  }
  a.mask_true = p.mask_true, a.mask_false = p.mask_false;
  a.scale = p.scale;
  a.score_round = p.score_dtype == DType::Float16 ? 1 : p.score_dtype == DType::BFloat16 ? 2 : 0;
  a.causal = p.causal, a.nan_to_zero = p.nan_to_zero;
  return a;
}

// The tensor-core kernel's head-size bucket for these sizes, or 0 when it does not apply.
int mma_head_bucket(DType dt, const ka::Dims& d, const AttnArgs& a) {
  if (dt != DType::Float16 && dt != DType::BFloat16) return 0;
  if (d.D % 8 || d.Dv % 8 || d.D > 128 || d.Dv > 128 || d.D == 0) return 0;
  for (const void* ptr : {a.q, a.k, a.v, static_cast<const void*>(a.o)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16) return 0;
  const int64_t need = std::max(d.D, d.Dv);
  return need <= 32 ? 32 : need <= 64 ? 64 : 128;
}

void launch(const KernelContext& ctx, KernelArgs& args, bool allow_mma) {
  const ir::Node& n = args.node;
  const ka::Params p = ka::decode(n);
  if (args.in.size() < 3 || !args.in[0] || !args.in[1] || !args.in[2])
    KILN_THROW(InvalidModel, n.label() << ": Q, K and V are required");
  const ka::Dims d = ka::dims(n, p, args.in[0]->shape, args.in[1]->shape, args.in[2]->shape);
  const DType dt = args.in[0]->dtype;
  if (d.B * d.H * d.Sq * d.Dv == 0) return;
  if (d.Sk == 0) {  // no keys: P V is an empty sum, as the graph's MatMul over zero keys gives
    KILN_CUDA_CHECK(cudaMemsetAsync(args.out[0].data, 0, args.out[0].nbytes(), ctx.stream));
    return;
  }
  const AttnArgs a = make_args(n, p, d, args);
  const int bucket = allow_mma ? mma_head_bucket(dt, d, a) : 0;
  if ((d.Sq + kSimpleWarps - 1) / kSimpleWarps > 65535)
    KILN_THROW(Unsupported, n.label() << ": query length " << d.Sq << " beyond the kernel's grid");
  if (bucket) {
    const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.Sq + kBr - 1) / kBr));
    auto go = [&](auto tag) {
      using T = decltype(tag);
      if (bucket == 32) attn_mma_kernel<T, 32><<<grid, kWarps * 32, 0, ctx.stream>>>(a);
      else if (bucket == 64) attn_mma_kernel<T, 64><<<grid, kWarps * 32, 0, ctx.stream>>>(a);
      else attn_mma_kernel<T, 128><<<grid, kWarps * 32, 0, ctx.stream>>>(a);
    };
    if (dt == DType::Float16) go(__half{});
    else go(__nv_bfloat16{});
    KILN_CUDA_LAUNCH_CHECK("fused attention (tensor cores)");
    return;
  }
  if (d.Dv > 32 * kSimpleMaxDvPerLane)
    KILN_THROW(Unsupported, n.label() << ": head size " << d.Dv << " > " << 32 * kSimpleMaxDvPerLane);
  const size_t smem = static_cast<size_t>(kSimpleWarps) * static_cast<size_t>(d.D) * sizeof(float);
  if (smem > 48 * 1024) KILN_THROW(Unsupported, n.label() << ": head size " << d.D << " too large");
  const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.Sq + kSimpleWarps - 1) / kSimpleWarps));
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    attn_simple_kernel<T><<<grid, kSimpleWarps * 32, smem, ctx.stream>>>(a);
  });
  KILN_CUDA_LAUNCH_CHECK("fused attention");
}

bool supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  if (in.size() < 3) return false;
  const DType dt = in[0].dtype;
  if (dt != DType::Float32 && dt != DType::Float16 && dt != DType::BFloat16) return false;
  try {
    const ka::Params p = ka::decode(n);
    if (in[2].has_rank && !in[2].dims.empty()) {
      const Dim& last = in[2].dims.back();
      const int64_t dv = p.v == ka::Layout::BSD && last.is_static() ? last.value / p.num_heads : last.value;
      if (last.is_static() && dv > 32 * kSimpleMaxDvPerLane) return false;
    }
    if (in[0].has_rank && !in[0].dims.empty()) {
      const Dim& last = in[0].dims.back();
      const int64_t dq = p.q == ka::Layout::BSD && last.is_static() ? last.value / p.num_heads : last.value;
      if (last.is_static() && dq * kSimpleWarps * 4 > 48 * 1024) return false;
    }
  } catch (const Error&) {
    return false;
  }
  return true;
}

}  // namespace

void register_fused_attention_kernels() {
  // "cuda": the tensor-core kernel where it applies, else the simple one; "cuda_simple": always the simple one.
  register_cuda_tactic(ka::kDomain, ka::kOpType,
                       CudaTactic{"cuda", supports, [](const KernelContext& c, KernelArgs& a) { launch(c, a, true); },
                                  nullptr});
  register_cuda_tactic(ka::kDomain, ka::kOpType,
                       CudaTactic{"cuda_simple", supports,
                                  [](const KernelContext& c, KernelArgs& a) { launch(c, a, false); }, nullptr});
}

}  // namespace kiln::runtime::cuda
