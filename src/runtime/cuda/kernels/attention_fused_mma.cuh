// The tensor-core kernel of kiln.Attention (float16 / bfloat16; head sizes D, Dv <= 128, multiples of 8; 16-byte
// aligned operands), FlashAttention-2 style. Included by attention_fused.cu only.
//
// A block is WQ x WK warps: WQ groups of 16 query rows of one (batch, head), and WK warps per group that split each
// key tile (KW keys each). Two shapes (MmaCfg below): "rows=64" (4 x 1 warps, 64-key tiles) for grids that fill the
// GPU, "rows=16" (1 x 4 warps, 128-key tiles) for small ones (BERT at batch 1: 12 heads x 8 blocks instead of 12 x 2).
// Q is staged through shared memory into registers once (ldmatrix); K and V tiles stream through a two-stage
// cp.async pipeline (tile t + 1 loads while tile t is computed; zero-filled past the sequence / head size).
// S = Q K^T by mma.sync m16n8k16 (float accumulators, K fragments by ldmatrix), the scale (times log2 e), mask and
// causal applied in registers, online softmax in base 2 (running max and sum per row), P rounded to the operand type
// and O += P V by mma.sync again (V fragments by ldmatrix.trans). The mask is a template parameter and its values are
// read two keys at a time (when contiguous along keys) before the S products, so the loads overlap them. At the end
// the WK warps of a row group merge their (max, sum, O) partials through shared memory; O goes out in 16-byte stores.
#pragma once
#include <atomic>

#include "runtime/cuda/kernels/attention_fused.cuh"

namespace kiln::runtime::cuda {
namespace {

template <int WQ_, int WK_, int KW_>
struct MmaCfg {
  static constexpr int WQ = WQ_, WK = WK_, KW = KW_;
  static constexpr int kRows = 16 * WQ, kTile = WK * KW, kThreads = WQ * WK * 32;
};
using CfgRows64 = MmaCfg<4, 1, 64>;
using CfgRows16 = MmaCfg<1, 4, 32>;

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
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 2^x in one MUFU instruction (2^-inf = 0).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
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

// Loads rows [r0, r0 + ROWS) x columns [0, DP) of one head into sm ([ROWS][DP + 8]): 16-byte cp.async where the
// row is inside [0, S) and the chunk inside [0, cols), zeros elsewhere. Each thread keeps one column chunk and steps
// over rows (one 64-bit address computation per call).
template <typename T, int DP, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows(T* sm, const T* g, int64_t row_stride, int r0, int S, int cols) {
  constexpr int kLd = DP + 8, kChunks = DP / 8, kStep = THREADS / kChunks;
  static_assert(THREADS % kChunks == 0, "a thread's chunk column is fixed");
  const int rf = threadIdx.x / kChunks, col = (threadIdx.x % kChunks) * 8;
  const T* src = g + (r0 + rf) * row_stride + col;
  T* dst = sm + rf * kLd + col;
  const bool col_ok = col < cols;
#pragma unroll
  for (int p = 0; p < (ROWS + kStep - 1) / kStep; ++p) {
    const int r = rf + p * kStep;
    if (ROWS % kStep != 0 && r >= ROWS) break;
    if (col_ok && r0 + r < S) cp_async16(dst + p * kStep * kLd, src + p * kStep * row_stride);
    else *reinterpret_cast<uint4*>(dst + p * kStep * kLd) = make_uint4(0, 0, 0, 0);
  }
}

// Mask values of two adjacent keys (j, j + 1) of one query row, as raw bits (the loads are issued before the S
// products and decoded after them). Pair loads where the mask is contiguous along keys, else one element at a time.
template <int MK>
struct MaskRaw {
  using type = uint32_t;  // bool: two bytes; float16 / bfloat16: two halves
};
template <>
struct MaskRaw<kMaskF32> {
  using type = float2;
};

template <int MK>
__device__ __forceinline__ typename MaskRaw<MK>::type mask_load(const AttnArgs& a, int64_t row_off, int j) {
  const bool v0 = j < a.Sk, v1 = j + 1 < a.Sk;
  const int64_t s3 = a.m_s[3];
  if constexpr (MK == kMaskF32) {
    const float* m = static_cast<const float*>(a.mask) + row_off;
    if (a.mask_pairs && v1) return *reinterpret_cast<const float2*>(m + j);
    return make_float2(v0 ? m[j * s3] : 0.0f, v1 ? m[(j + 1) * s3] : 0.0f);
  } else if constexpr (MK == kMaskBool) {
    const uint8_t* m = static_cast<const uint8_t*>(a.mask) + row_off;
    if (a.mask_pairs && v1) return *reinterpret_cast<const uint16_t*>(m + j);
    return (v0 ? uint32_t(m[j * s3]) : 0u) | (v1 ? uint32_t(m[(j + 1) * s3]) << 8 : 0u);
  } else {
    const uint16_t* m = static_cast<const uint16_t*>(a.mask) + row_off;
    if (a.mask_pairs && v1) return *reinterpret_cast<const uint32_t*>(m + j);
    return (v0 ? uint32_t(m[j * s3]) : 0u) | (v1 ? uint32_t(m[(j + 1) * s3]) << 16 : 0u);
  }
}

// The pair at key j where the caller knows that pair loads apply and j + 1 < Sk (no checks).
template <int MK>
__device__ __forceinline__ typename MaskRaw<MK>::type mask_load_pair(const AttnArgs& a, int64_t off) {
  if constexpr (MK == kMaskF32) return *reinterpret_cast<const float2*>(static_cast<const float*>(a.mask) + off);
  else if constexpr (MK == kMaskBool) return *reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(a.mask) + off);
  else return *reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(a.mask) + off);
}

// The bias of element e (0: key j, 1: key j + 1) of a pair.
template <int MK>
__device__ __forceinline__ float mask_decode(const AttnArgs& a, typename MaskRaw<MK>::type raw, int e) {
  if constexpr (MK == kMaskF32) {
    return e ? raw.y : raw.x;
  } else if constexpr (MK == kMaskBool) {
    return raw & (0xffu << (8 * e)) ? a.mask_true : a.mask_false;
  } else if constexpr (MK == kMaskF16) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(raw >> (16 * e))));
  } else {
    return __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(raw >> (16 * e))));
  }
}

// One tile's scores in base-2 units, in place: scale (times log2 e), the mask bias (rounded to score_dtype with
// ROUND), -inf for causal and past the keys unless the tile is FULL (no such key in it); tmax gets the per-row maxima (this thread's).
template <int MK, bool ROUND, bool FULL, int kNt>
__device__ __forceinline__ void scores_base2(const AttnArgs& a, float (&s)[kNt][4],
                                             const typename MaskRaw<MK>::type (&mr)[kNt][2], int j0,
                                             int i0, int i1, float (&tmax)[2]) {
  const float sl2 = a.scale * kLog2e;
#pragma unroll
  for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e / 2;
      float x;
      if constexpr (MK == kMaskNone) {
        x = s[nt][e] * sl2;
      } else if constexpr (ROUND) {
        x = s[nt][e] * a.scale + mask_decode<MK>(a, mr[nt][r], e & 1);
        x = a.score_round == 1 ? __half2float(__float2half_rn(x)) : __bfloat162float(__float2bfloat16_rn(x));
        x *= kLog2e;
      } else if constexpr (MK == kMaskBool) {
        x = fmaf(s[nt][e], sl2, mr[nt][r] & (0xffu << (8 * (e & 1))) ? a.mask_true_l2 : a.mask_false_l2);
      } else {
        x = fmaf(s[nt][e], sl2, mask_decode<MK>(a, mr[nt][r], e & 1) * kLog2e);
      }
      if constexpr (!FULL) {
        const int j = j0 + nt * 8 + (e & 1);
        if (j >= a.Sk || (a.causal && j > (r ? i1 : i0))) x = -INFINITY;
      }
      s[nt][e] = x;
      tmax[r] = fmaxf(tmax[r], x);
    }
}

template <typename T, int DP, class C>
constexpr size_t mma_stage_bytes() {
  return size_t(2) * C::kTile * (DP + 8) * sizeof(T);  // K and V
}
template <typename T, int DP, class C>
constexpr size_t mma_reduce_bytes() {
  return C::WK == 1 ? 0 : size_t(C::WK) * C::kRows * ((DP + 4) + 2) * sizeof(float);
}
// Dynamic shared memory of one block: Q, then `stages` K / V stages (the WK > 1 merge reuses them).
template <typename T, int DP, class C>
size_t mma_smem_bytes(int stages) {
  const size_t q = size_t(C::kRows) * (DP + 8) * sizeof(T);
  return q + std::max(stages * mma_stage_bytes<T, DP, C>(), mma_reduce_bytes<T, DP, C>());
}

// Four 4-warp blocks per SM (128 registers) where that costs no spills: head sizes <= 64 without a float32 mask.
template <int DP, class C, int MK>
constexpr int mma_min_blocks() {
  return DP <= 64 && MK != kMaskF32 && C::kThreads == 128 ? 4 : 1;
}

template <typename T, int DP, class C, int MK>
__global__ void __launch_bounds__(C::kThreads, mma_min_blocks<DP, C, MK>()) attn_mma_kernel(AttnArgs a) {
  constexpr int kLd = DP + 8;    // padded row (halves): conflict-free ldmatrix
  constexpr int kKs = DP / 16;   // k-steps of Q K^T
  constexpr int kNt = C::KW / 8; // score tiles (n = 8) per warp and key tile
  constexpr int kDt = DP / 8;    // output tiles (n = 8)
  constexpr int KW = C::KW, kRows = C::kRows, kTile = C::kTile;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* stage0 = qs + kRows * kLd;
  constexpr int kStage = 2 * kTile * kLd;  // elements of one stage: K then V

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wq = warp % C::WQ, wk = warp / C::WQ;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int q0 = blockIdx.y * kRows, q0w = q0 + 16 * wq;
  const T* qg = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh;
  const T* kg = static_cast<const T*>(a.k) + b * a.k_sb + h * a.k_sh;
  const T* vg = static_cast<const T*>(a.v) + b * a.v_sb + h * a.v_sh;
  const int kv_end = a.causal ? min(a.Sk, q0 + kRows) : a.Sk;  // causal: later keys are masked for every row here
  const int ntiles = (kv_end + kTile - 1) / kTile;
  const int i0 = q0w + g, i1 = i0 + 8;  // this thread's two query rows

  int64_t mrow[2] = {0, 0};
  if constexpr (MK != kMaskNone) {
    // Rows past Sq (computed, never stored) read row Sq - 1's mask: no row checks in the loop.
    const int64_t base = b * a.m_s[0] + h * a.m_s[1];
    mrow[0] = base + min(i0, a.Sq - 1) * a.m_s[2];
    mrow[1] = base + min(i1, a.Sq - 1) * a.m_s[2];
  }

  load_rows<T, DP, kRows, C::kThreads>(qs, qg, a.q_sr, q0, a.Sq, a.D);
  cp_async_commit();
  load_rows<T, DP, kTile, C::kThreads>(stage0, kg, a.k_sr, 0, a.Sk, a.D);
  load_rows<T, DP, kTile, C::kThreads>(stage0 + kTile * kLd, vg, a.v_sr, 0, a.Sk, a.Dv);
  cp_async_commit();

  uint32_t qf[kKs][4];
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m in base-2 units
  float acc[kDt][4];
#pragma unroll
  for (int dt = 0; dt < kDt; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;

  for (int tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) {
      T* nx = stage0 + ((tile + 1) & 1) * kStage;
      load_rows<T, DP, kTile, C::kThreads>(nx, kg, a.k_sr, (tile + 1) * kTile, a.Sk, a.D);
      load_rows<T, DP, kTile, C::kThreads>(nx + kTile * kLd, vg, a.v_sr, (tile + 1) * kTile, a.Sk, a.Dv);
    }
    cp_async_commit();
    const int kj0 = tile * kTile + wk * KW;  // this warp's first key
    const bool live = kj0 < a.Sk && (!a.causal || kj0 <= q0w + 15);
    // The mask values of this warp's keys, loaded while the K / V tile is still on its way.
    [[maybe_unused]] typename MaskRaw<MK>::type mr[kNt][2] = {};
    if constexpr (MK != kMaskNone) {
      if (live && a.mask_pairs && kj0 + KW <= a.Sk) {  // every pair of the warp's keys is inside: no checks
#pragma unroll
        for (int nt = 0; nt < kNt; ++nt) {
          const int j = kj0 + nt * 8 + 2 * t;
          mr[nt][0] = mask_load_pair<MK>(a, mrow[0] + j);
          mr[nt][1] = mask_load_pair<MK>(a, mrow[1] + j);
        }
      } else if (live) {
#pragma unroll
        for (int nt = 0; nt < kNt; ++nt) {
          const int j = kj0 + nt * 8 + 2 * t;
          mr[nt][0] = mask_load<MK>(a, mrow[0], j);
          mr[nt][1] = mask_load<MK>(a, mrow[1], j);
        }
      }
    }
    cp_async_wait<1>();  // Q and tile `tile` are in
    __syncthreads();
    if (tile == 0) {
      const T* qr = qs + (16 * wq + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd + (lane >> 4) * 8;
#pragma unroll
      for (int kk = 0; kk < kKs; ++kk) ldsm_x4(qf[kk], qr + 16 * kk);
    }
    if (live) {
      const T* ks = stage0 + (tile & 1) * kStage + (wk * KW) * kLd;
      const T* vs = ks + kTile * kLd;
      // S = Q K^T for this warp's 16 rows and KW keys.
      float s[kNt][4];
#pragma unroll
      for (int nt = 0; nt < kNt; ++nt) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        const T* kr = ks + (nt * 8 + (lane & 7)) * kLd + (lane >> 3) * 8;
#pragma unroll
        for (int kk = 0; kk < kKs; kk += 2) {
          uint32_t kf[4];
          ldsm_x4(kf, kr + 16 * kk);
          mma16816<T>(s[nt], qf[kk], kf[0], kf[1]);
          mma16816<T>(s[nt], qf[kk + 1], kf[2], kf[3]);
        }
      }
      // Scores in base-2 units: scale, mask (rounded to score_dtype where asked), causal, -inf past the keys.
      const bool full = kj0 + KW <= a.Sk && (!a.causal || kj0 + KW - 1 <= q0w);
      float tmax[2] = {-INFINITY, -INFINITY};
      const int j0 = kj0 + 2 * t;
      if (MK != kMaskNone && a.score_round) {
        if (full) scores_base2<MK, true, true>(a, s, mr, j0, i0, i1, tmax);
        else scores_base2<MK, true, false>(a, s, mr, j0, i0, i1, tmax);
      } else {
        if (full) scores_base2<MK, false, true>(a, s, mr, j0, i0, i1, tmax);
        else scores_base2<MK, false, false>(a, s, mr, j0, i0, i1, tmax);
      }
      float m_use[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
        const float m_new = fmaxf(m[r], tmax[r]);
        m_use[r] = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = ex2(m[r] - m_use[r]);
        m[r] = m_new;
        l[r] *= alpha;
#pragma unroll
        for (int dt = 0; dt < kDt; ++dt) acc[dt][2 * r] *= alpha, acc[dt][2 * r + 1] *= alpha;
      }
      // P = 2^(S - max) (per-thread partial sums; the quad's are added at the end), then O += P V: P from the score
      // registers (two n-tiles form one A fragment), V by ldmatrix.trans.
#pragma unroll
      for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[nt][e] = ex2(s[nt][e] - m_use[e / 2]);
          l[e / 2] += s[nt][e];
        }
#pragma unroll
      for (int kk = 0; kk < KW / 16; ++kk) {
        uint32_t pa[4];
        pa[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
        pa[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
        pa[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        pa[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        const T* vrow = vs + (16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd + (lane >> 4) * 8;
#pragma unroll
        for (int dt = 0; dt < kDt; dt += 2) {
          uint32_t vf[4];
          ldsm_x4_trans(vf, vrow + dt * 8);
          mma16816<T>(acc[dt], pa, vf[0], vf[1]);
          mma16816<T>(acc[dt + 1], pa, vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled (and before the merge reuses it)
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  T* og = static_cast<T*>(a.o) + b * a.o_sb + h * a.o_sh;
  if constexpr (C::WK == 1) {
    // O = acc / l into this warp's rows of the Q buffer (only this warp read them), then 16-byte stores.
    T* os = qs + (16 * wq) * kLd;
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt)
        *reinterpret_cast<uint32_t*>(os + (g + 8 * r) * kLd + dt * 8 + 2 * t) =
            pack2<T>(finish(a, acc[dt][2 * r], l[r]), finish(a, acc[dt][2 * r + 1], l[r]));
    __syncwarp();
#pragma unroll
    for (int c = lane; c < 16 * kDt; c += 32) {
      const int row = c / kDt, col = (c % kDt) * 8, i = q0w + row;
      if (i < a.Sq && col < a.Dv)
        *reinterpret_cast<uint4*>(og + i * a.o_sr + col) = *reinterpret_cast<const uint4*>(os + row * kLd + col);
    }
  } else {
    // Merge the WK partials of each row: M = max m_w, L = sum l_w 2^(m_w - M), O = sum acc_w 2^(m_w - M) / L.
    constexpr int kRl = DP + 4;
    float* racc = reinterpret_cast<float*>(stage0);  // [WK][kRows][kRl]
    float* rml = racc + C::WK * kRows * kRl;         // [WK][kRows][2]
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = wk * kRows + 16 * wq + g + 8 * r;
      if (t == 0) rml[2 * row] = m[r], rml[2 * row + 1] = l[r];
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt)
        *reinterpret_cast<float2*>(racc + row * kRl + dt * 8 + 2 * t) = make_float2(acc[dt][2 * r], acc[dt][2 * r + 1]);
    }
    __syncthreads();
    for (int c = threadIdx.x; c < kRows * kDt; c += C::kThreads) {
      const int row = c / kDt, col = (c % kDt) * 8, i = q0 + row;
      if (i >= a.Sq || col >= a.Dv) continue;
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < C::WK; ++w) mx = fmaxf(mx, rml[2 * (w * kRows + row)]);
      float L = 0.0f, o[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
      for (int w = 0; w < C::WK; ++w) {
        const float mw = rml[2 * (w * kRows + row)];
        if (mw == -INFINITY) continue;
        const float f = exp2f(mw - mx);
        L += f * rml[2 * (w * kRows + row) + 1];
        const float* src = racc + (w * kRows + row) * kRl + col;
        const float4 x0 = *reinterpret_cast<const float4*>(src), x1 = *reinterpret_cast<const float4*>(src + 4);
        o[0] += f * x0.x, o[1] += f * x0.y, o[2] += f * x0.z, o[3] += f * x0.w;
        o[4] += f * x1.x, o[5] += f * x1.y, o[6] += f * x1.z, o[7] += f * x1.w;
      }
      uint4 out;
      out.x = pack2<T>(finish(a, o[0], L), finish(a, o[1], L));
      out.y = pack2<T>(finish(a, o[2], L), finish(a, o[3], L));
      out.z = pack2<T>(finish(a, o[4], L), finish(a, o[5], L));
      out.w = pack2<T>(finish(a, o[6], L), finish(a, o[7], L));
      *reinterpret_cast<uint4*>(og + i * a.o_sr + col) = out;
    }
  }
}

// Launches one instantiation; its dynamic shared memory limit is raised once per device.
template <typename T, int DP, class C, int MK>
void launch_mma_kind(const AttnArgs& a, size_t smem, int device, cudaStream_t stream) {
  static std::atomic<uint64_t> opted{0};
  const uint64_t bit = uint64_t(1) << (device & 63);
  if (!(opted.load(std::memory_order_relaxed) & bit)) {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(attn_mma_kernel<T, DP, C, MK>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(mma_smem_bytes<T, DP, C>(2))));
    opted.fetch_or(bit);
  }
  const dim3 grid(static_cast<unsigned>(a.B * a.H), static_cast<unsigned>((a.Sq + C::kRows - 1) / C::kRows));
  attn_mma_kernel<T, DP, C, MK><<<grid, C::kThreads, smem, stream>>>(a);
}

// Launches the tensor-core kernel for one block shape: the mask kind as a template argument, two K / V stages when
// some block has more than one key tile.
template <typename T, int DP, class C>
void launch_mma(const AttnArgs& a, int device, cudaStream_t stream) {
  const int q_end = (a.Sq + C::kRows - 1) / C::kRows * C::kRows;
  const int kv_end = a.causal ? std::min(a.Sk, q_end) : a.Sk;
  const size_t smem = mma_smem_bytes<T, DP, C>(kv_end > C::kTile ? 2 : 1);
  switch (a.mask_kind) {
    case kMaskF32: launch_mma_kind<T, DP, C, kMaskF32>(a, smem, device, stream); break;
    case kMaskF16: launch_mma_kind<T, DP, C, kMaskF16>(a, smem, device, stream); break;
    case kMaskBF16: launch_mma_kind<T, DP, C, kMaskBF16>(a, smem, device, stream); break;
    case kMaskBool: launch_mma_kind<T, DP, C, kMaskBool>(a, smem, device, stream); break;
    default: launch_mma_kind<T, DP, C, kMaskNone>(a, smem, device, stream); break;
  }
}

}  // namespace
}  // namespace kiln::runtime::cuda
