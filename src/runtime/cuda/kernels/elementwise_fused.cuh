// The interpreter of kiln.FusedElementwise's accumulator code (ops/fused_elementwise.h), host and device: the CUDA
// kernel (elementwise_fused.cu) runs it per vector of V elements, and tests/cuda/fused_ew_check.cu runs the same code
// on the host against the reference kernels. All values are float; each formula is the CPU reference's
// (src/ops/elementwise_*.cpp) in float, so float32 programs match the unfused float32 nodes up to the math
// library's last bits, and float16 / bfloat16 programs round only at Casts and at the output.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

#include <cstdint>

#include "ops/fused_elementwise.h"

namespace kiln::runtime::cuda::fused_ew {

namespace fz = kiln::ops::fused;

#define KILN_FZ_HD __host__ __device__ __forceinline__
// The header also compiles as plain C++ (tests run the interpreter on the host), where `#pragma unroll` is unknown.
#if defined(__CUDACC__)
#define KILN_FZ_UNROLL _Pragma("unroll")
#else
#define KILN_FZ_UNROLL
#endif

// std::max / std::min argument order (NaN handling as in the reference).
KILN_FZ_HD float smax(float a, float b) { return a < b ? b : a; }
KILN_FZ_HD float smin(float a, float b) { return b < a ? b : a; }
KILN_FZ_HD float sigmoid(float v) {
  if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
  const float e = expf(v);
  return e / (1.0f + e);
}
KILN_FZ_HD float softplus(float v) { return v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v)); }
// Pow: x * x for the common exponent 2 (exact, as the reference's double pow rounded to float), powf otherwise.
KILN_FZ_HD float power(float a, float b) { return b == 2.0f ? a * a : powf(a, b); }
// Max / Min propagate NaN (variadic.cpp).
KILN_FZ_HD float nan_max(float a, float b) { return (a != a || b != b) ? a + b : (b > a ? b : a); }
KILN_FZ_HD float nan_min(float a, float b) { return (a != a || b != b) ? a + b : (b < a ? b : a); }
KILN_FZ_HD float hard_sigmoid(float v, float alpha, float beta) {
  const float y = alpha * v + beta;
  // The reference's std::min(1, NaN) is 1; said explicitly because ptxas turns a [0, 1] clamp into a saturating FFMA,
  // which gives 0 for NaN.
  if (y != y) return 1.0f;
  return smax(0.0f, smin(1.0f, y));
}

// Evaluates `code` (n instructions) on V lanes; fetch(k, b) fills b with node input k's values for these lanes.
static_assert(fz::kMaxSaved == 3, "eval() keeps three saved registers");

template <int V, class Fetch>
KILN_FZ_HD void eval(const fz::FusedInst* code, int n, const Fetch& fetch, float (&acc)[V]) {
  float r0[V], r1[V], r2[V];  // fz::kMaxSaved registers
KILN_FZ_UNROLL
  for (int k = 0; k < V; ++k) acc[k] = r0[k] = r1[k] = r2[k] = 0.0f;
  for (int s = 0; s < n; ++s) {
    const fz::FusedInst in = code[s];
    float b[V];
    if (in.src == fz::kSrcInput) {
      fetch(in.idx, b);
    } else if (in.src == fz::kSrcSaved) {
KILN_FZ_UNROLL
      for (int k = 0; k < V; ++k) b[k] = in.idx == 0 ? r0[k] : in.idx == 1 ? r1[k] : r2[k];
    } else {
KILN_FZ_UNROLL
      for (int k = 0; k < V; ++k) b[k] = in.imm;
    }
    const float alpha = in.imm, beta = in.imm2;
    // One case per op, each with its lane loop inside (the op is uniform across the grid).
#define KILN_FZ_LANES(expr)        \
  KILN_FZ_UNROLL for (int k = 0; k < V; ++k) { \
    const float x = acc[k];        \
    const float y = b[k];          \
    (void)x;                       \
    (void)y;                       \
    acc[k] = (expr);               \
  }                                \
  break;
    switch (in.op) {
      case fz::kOpLoad: KILN_FZ_LANES(y)
      case fz::kOpSave:
KILN_FZ_UNROLL
        for (int k = 0; k < V; ++k) {
          if (in.aux == 0) r0[k] = acc[k];
          else if (in.aux == 1) r1[k] = acc[k];
          else r2[k] = acc[k];
        }
        break;
      case fz::kOpWhere:
      case fz::kOpRWhere: {
        float c[V];
        fetch(in.aux, c);
        const bool keep = in.op == fz::kOpWhere;
KILN_FZ_UNROLL
        for (int k = 0; k < V; ++k) acc[k] = ((c[k] != 0.0f) == keep) ? acc[k] : b[k];
        break;
      }
      case fz::kOpAdd: KILN_FZ_LANES(x + y)
      case fz::kOpSub: KILN_FZ_LANES(x - y)
      case fz::kOpRSub: KILN_FZ_LANES(y - x)
      case fz::kOpMul: KILN_FZ_LANES(x * y)
      case fz::kOpDiv: KILN_FZ_LANES(x / y)
      case fz::kOpRDiv: KILN_FZ_LANES(y / x)
      case fz::kOpPow: KILN_FZ_LANES(power(x, y))
      case fz::kOpRPow: KILN_FZ_LANES(power(y, x))
      case fz::kOpMax: KILN_FZ_LANES(nan_max(x, y))
      case fz::kOpMin: KILN_FZ_LANES(nan_min(x, y))
      case fz::kOpPRelu: KILN_FZ_LANES(x < 0.0f ? y * x : x)
      case fz::kOpRPRelu: KILN_FZ_LANES(y < 0.0f ? x * y : y)
      case fz::kOpClipLo: KILN_FZ_LANES(x < y ? y : x)
      case fz::kOpClipHi: KILN_FZ_LANES(x > y ? y : x)
      case fz::kOpRelu: KILN_FZ_LANES(x > 0.0f ? x : 0.0f)
      case fz::kOpSigmoid: KILN_FZ_LANES(sigmoid(x))
      case fz::kOpTanh: KILN_FZ_LANES(tanhf(x))
      case fz::kOpErf: KILN_FZ_LANES(erff(x))
      case fz::kOpExp: KILN_FZ_LANES(expf(x))
      case fz::kOpLog: KILN_FZ_LANES(logf(x))
      case fz::kOpSqrt: KILN_FZ_LANES(sqrtf(x))
      case fz::kOpNeg: KILN_FZ_LANES(-x)
      case fz::kOpAbs: KILN_FZ_LANES(x < 0.0f ? -x : x)
      case fz::kOpReciprocal: KILN_FZ_LANES(1.0f / x)
      case fz::kOpGelu: KILN_FZ_LANES(0.5f * x * (1.0f + erff(x * 0.7071067811865476f)))
      case fz::kOpGeluTanh:
        KILN_FZ_LANES(0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))))
      case fz::kOpHardSwish: KILN_FZ_LANES(x * smax(0.0f, smin(1.0f, x / 6.0f + 0.5f)))
      case fz::kOpHardSigmoid: KILN_FZ_LANES(hard_sigmoid(x, alpha, beta))
      case fz::kOpLeakyRelu: KILN_FZ_LANES(x < 0.0f ? alpha * x : x)
      case fz::kOpElu: KILN_FZ_LANES(x < 0.0f ? alpha * (expf(x) - 1.0f) : x)
      case fz::kOpSoftplus: KILN_FZ_LANES(softplus(x))
      case fz::kOpMish: KILN_FZ_LANES(x * tanhf(softplus(x)))
      case fz::kOpCeil: KILN_FZ_LANES(ceilf(x))
      case fz::kOpFloor: KILN_FZ_LANES(floorf(x))
      case fz::kOpSign: KILN_FZ_LANES(x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x)
      case fz::kOpRoundF16: KILN_FZ_LANES(__half2float(__float2half_rn(x)))
      case fz::kOpRoundBF16: KILN_FZ_LANES(__bfloat162float(__float2bfloat16_rn(x)))
      default: break;
    }
#undef KILN_FZ_LANES
  }
}

}  // namespace kiln::runtime::cuda::fused_ew
