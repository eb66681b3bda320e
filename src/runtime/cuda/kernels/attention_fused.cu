// CUDA kernels of kiln.Attention (ops/kiln_attention.h; made by the fuse_attention pass; gemm family, registered by
// register_gemm_kernels). One launch per node, scores and probabilities never leave the chip:
//   tensor-core kernel (float16 / bfloat16; head sizes D, Dv <= 128, multiples of 8; 16-byte aligned operands):
//     FlashAttention-2 style, attention_fused_mma.cuh. Block shape per launch: "rows=64" (4 warps x 16 query rows,
//     64-key tiles) where B * H * ceil(Sq / 64) blocks fill the SMs, else "rows=16" (4 warps splitting 128-key tiles,
//     partials merged in shared memory); the tactic variant "cuda#rows=16" / "cuda#rows=64" pins one.
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
#include "runtime/cuda/kernels/attention_fused.cuh"
#include "runtime/cuda/kernels/attention_fused_mma.cuh"
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"
#include "runtime/cuda/tactic_variant.h"

namespace kiln::runtime::cuda {
namespace {

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
    // Pair loads (two keys at once) where keys are contiguous and every pair starts aligned.
    const int64_t es = static_cast<int64_t>(dtype_size(m->dtype));
    a.mask_pairs = a.m_s[3] == 1 && a.m_s[0] % 2 == 0 && a.m_s[1] % 2 == 0 && a.m_s[2] % 2 == 0 &&
                   reinterpret_cast<uintptr_t>(m->data) % (2 * es) == 0;
  }
  a.mask_true = p.mask_true, a.mask_false = p.mask_false;
  a.mask_true_l2 = p.mask_true * kLog2e, a.mask_false_l2 = p.mask_false * kLog2e;
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

// Query rows per block of the tensor-core kernel: the tactic's variant ("cuda#rows=16" / "cuda#rows=64"), else 64
// where B * H * ceil(Sq / 64) blocks fill the SMs and 16 (keys split over the block's 4 warps) where they do not.
int mma_rows(const ir::Node& n, const ka::Dims& d, const KernelContext& ctx) {
  const std::string_view v = tactic_variant(n.tactic);
  if (v == "rows=16") return 16;
  if (v == "rows=64") return 64;
  const int64_t sms = ctx.props ? ctx.props->multiProcessorCount : 132;
  return d.B * d.H * ((d.Sq + 63) / 64) >= sms ? 64 : 16;
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
    const int rows = mma_rows(n, d, ctx);
    auto go = [&](auto tag) {
      using T = decltype(tag);
      if (rows == 16) {
        if (bucket == 32) launch_mma<T, 32, CfgRows16>(a, ctx.device, ctx.stream);
        else if (bucket == 64) launch_mma<T, 64, CfgRows16>(a, ctx.device, ctx.stream);
        else launch_mma<T, 128, CfgRows16>(a, ctx.device, ctx.stream);
      } else {
        if (bucket == 32) launch_mma<T, 32, CfgRows64>(a, ctx.device, ctx.stream);
        else if (bucket == 64) launch_mma<T, 64, CfgRows64>(a, ctx.device, ctx.stream);
        else launch_mma<T, 128, CfgRows64>(a, ctx.device, ctx.stream);
      }
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
