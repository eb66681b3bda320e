// TEMPORARY (measurement only): the kernel before the attn2 rewrite, as tactic "cuda_v0", timed side by side.
#pragma once
#include "runtime/cuda/kernels/attention_fused.cuh"
namespace kiln::runtime::cuda {
namespace {
// ---- tensor-core kernel --------------------------------------------------------------------------------------------
constexpr int v0_kWarps = 4;
constexpr int v0_kBr = 16 * v0_kWarps;  // query rows per block
constexpr int v0_kBc = 64;           // keys per tile

__device__ __forceinline__ uint32_t v0_smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void v0_cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(v0_smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void v0_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void v0_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <typename T>
__device__ __forceinline__ void v0_mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void v0_mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void v0_mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a packed pair of T (the low half is the first).
template <typename T>
__device__ __forceinline__ uint32_t v0_pack2(float x, float y);
template <>
__device__ __forceinline__ uint32_t v0_pack2<__half>(float x, float y) {
  __half2 v = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t v0_pack2<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Loads rows [r0, r0 + v0_kBc) x columns [0, DP) of one head into sm ([v0_kBc][DP + 8]): 16-byte cp.async where the row
// is inside [0, S) and the chunk inside [0, cols), zeros elsewhere.
template <typename T, int DP>
__device__ __forceinline__ void v0_load_tile(T* sm, const T* g, int64_t row_stride, int r0, int S, int cols) {
  constexpr int kLd = DP + 8, kChunks = DP / 8;
  for (int c = threadIdx.x; c < v0_kBc * kChunks; c += v0_kWarps * 32) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    T* dst = sm + r * kLd + col;
    if (r0 + r < S && col < cols) v0_cp_async16(dst, g + (r0 + r) * row_stride + col);
    else *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
  }
}

template <typename T, int DP>
__global__ void __launch_bounds__(v0_kWarps * 32) v0_attn_mma_kernel(AttnArgs a) {
  constexpr int kLd = DP + 8;       // padded row (halves): conflict-free fragment loads
  constexpr int kKs = DP / 16;      // k-steps of Q K^T
  constexpr int kNt = v0_kBc / 8;      // score tiles (n = 8) per key tile
  constexpr int kDt = DP / 8;       // output tiles (n = 8)
  __shared__ __align__(16) T ks[v0_kBc * kLd];
  __shared__ __align__(16) T vs[v0_kBc * kLd];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int bh = blockIdx.x, b = bh / a.H, h = bh % a.H;
  const int q0 = blockIdx.y * v0_kBr;
  const T* qg = static_cast<const T*>(a.q) + b * a.q_sb + h * a.q_sh;
  const T* kg = static_cast<const T*>(a.k) + b * a.k_sb + h * a.k_sh;
  const T* vg = static_cast<const T*>(a.v) + b * a.v_sb + h * a.v_sh;

  // Q tile through ks into registers (A fragments of m16n8k16, rows 16 * warp + g and + 8).
  v0_load_tile<T, DP>(ks, qg, a.q_sr, q0, a.Sq, a.D);
  v0_cp_async_commit();
  v0_cp_async_wait<0>();
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
  const int kv_end = a.causal ? min(a.Sk, q0 + v0_kBr) : a.Sk;  // causal: later keys are masked for every row here

  for (int kv0 = 0; kv0 < kv_end; kv0 += v0_kBc) {
    __syncthreads();  // every warp is done with the previous tiles (and with Q in ks)
    v0_load_tile<T, DP>(ks, kg, a.k_sr, kv0, a.Sk, a.D);
    v0_cp_async_commit();
    v0_load_tile<T, DP>(vs, vg, a.v_sr, kv0, a.Sk, a.Dv);
    v0_cp_async_commit();
    v0_cp_async_wait<1>();  // K is in
    __syncthreads();

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[kNt][4];
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      const T* kr = ks + (nt * 8 + g) * kLd + 2 * t;
#pragma unroll
      for (int kk = 0; kk < kKs; ++kk)
        v0_mma16816<T>(s[nt], qf[kk], *reinterpret_cast<const uint32_t*>(kr + 16 * kk),
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

    v0_cp_async_wait<0>();  // V is in
    __syncthreads();
    // O += P V: P from the score registers (two n-tiles form one A fragment), V by ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < v0_kBc / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = v0_pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = v0_pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = v0_pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = v0_pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const int mat = lane / 8, rr = lane % 8;
      const T* vrow = vs + (16 * kk + rr + (mat & 1) * 8) * kLd + (mat >> 1) * 8;
#pragma unroll
      for (int dt = 0; dt < kDt; dt += 2) {
        uint32_t b0, b1, b2, b3;
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(b0), "=r"(b1), "=r"(b2), "=r"(b3)
                     : "r"(v0_smem_addr(vrow + dt * 8)));
        v0_mma16816<T>(acc[dt], pa, b0, b1);
        v0_mma16816<T>(acc[dt + 1], pa, b2, b3);
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
          v0_pack2<T>(finish(a, acc[dt][2 * r], l[r]), finish(a, acc[dt][2 * r + 1], l[r]));
    }
  }
}


template <typename T>
void v0_launch(const AttnArgs& a, int bucket, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(a.B * a.H), static_cast<unsigned>((a.Sq + v0_kBr - 1) / v0_kBr));
  if (bucket == 32) v0_attn_mma_kernel<T, 32><<<grid, v0_kWarps * 32, 0, s>>>(a);
  else if (bucket == 64) v0_attn_mma_kernel<T, 64><<<grid, v0_kWarps * 32, 0, s>>>(a);
  else v0_attn_mma_kernel<T, 128><<<grid, v0_kWarps * 32, 0, s>>>(a);
}
}  // namespace
}  // namespace kiln::runtime::cuda
