// Shared by the two kernels of kiln.Attention (attention_fused.cu, attention_fused_mma.cuh): the launch arguments,
// the mask kinds and the per-score semantics (scale, mask bias, score rounding, causal, the fully-masked guard).
// Included by attention_fused.cu only.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/kiln_attention.h"
#include "runtime/cuda/kernels/common.cuh"

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
  int mask_pairs;  // 1: the mask is contiguous along keys with even strides and an aligned base (pair loads)
  float mask_true, mask_false;
  float mask_true_l2, mask_false_l2;  // the same times log2 e (the tensor-core kernel's base-2 scores)
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

}  // namespace
}  // namespace kiln::runtime::cuda
