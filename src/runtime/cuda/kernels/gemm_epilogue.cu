// CUDA kernels: kiln.FusedMatMul (ops/fused_ops.h; made by the fuse_gemm_epilogue pass). Y = act(A[..., K] x B[K, N]
// + bias[N]) as one cuBLASLt matmul with the batch folded into M and the bias / activation in the epilogue
// (tactic "cublaslt": BIAS, RELU_BIAS or GELU_BIAS, float accumulation, one rounding to Y's dtype; its
// "cublaslt#<algo>" variants are listed and checked with the same epilogue, so tactic timing measures the fused
// call). cuBLASLt's GELU is the tanh approximation: float16 / bfloat16 "gelu_tanh" and "gelu" (erf) both use it (erf:
// within 4.7e-4 absolute of erf-GELU, inside the FP16 / BF16 bounds; docs/passes.md), while float32 GELU of either
// form takes the BIAS epilogue and then an exact GELU pass over Y (the FP32 bound is element-wise 1e-4). Tactic "cuda" (and the fallback when
// cuBLASLt has no algorithm): kiln's own GEMM kernel with the bias, then the exact activation in place.
#include <cmath>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"
#include "runtime/cuda/tactic_variant.h"

namespace kiln::runtime::cuda {
namespace {

enum Act : int { kActNone = 0, kActRelu = 1, kActGelu = 2, kActGeluTanh = 3 };

Act act_of(const ir::Node& n) {
  const std::string a = n.attr_string("activation", "none");
  if (a == "none") return kActNone;
  if (a == "relu") return kActRelu;
  if (a == "gelu") return kActGelu;
  if (a == "gelu_tanh") return kActGeluTanh;
  KILN_THROW(InvalidModel, n.label() << ": activation must be none, relu, gelu or gelu_tanh, got '" << a << "'");
}

template <typename T>
__global__ void activation_kernel(T* __restrict__ y, int64_t n, int act) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = to_f(y[i]);
    float r;
    if (act == kActRelu) r = x > 0.f ? x : 0.f;
    else if (act == kActGelu) r = 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    else r = 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    y[i] = from_f<T>(r);
  }
}

void apply_activation(const KernelContext& ctx, DTensor& y, Act act) {
  if (act == kActNone || y.numel() == 0) return;
  dispatch_float(y.dtype, [&](auto tag) {
    using T = decltype(tag);
    activation_kernel<T><<<grid_for(y.numel()), kBlock, 0, ctx.stream>>>(y.as<T>(), y.numel(), act);
  });
  KILN_CUDA_LAUNCH_CHECK("fused_matmul activation");
}

bool float_type(DType dt) { return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16; }

void run_fused_matmul(const KernelContext& ctx, KernelArgs& args, bool use_lt) {
  const ir::Node& n = args.node;
  if (args.in.size() < 2 || !args.in[0] || !args.in[1]) KILN_THROW(InvalidModel, n.label() << ": needs A and B");
  const DTensor& A = *args.in[0];
  const DTensor& B = *args.in[1];
  const DTensor* bias = args.in.size() > 2 && args.in[2] && args.in[2]->data ? args.in[2] : nullptr;
  DTensor& Y = args.out.at(0);
  const Act act = act_of(n);
  if (A.rank() < 1 || B.rank() != 2)
    KILN_THROW(InvalidModel, n.label() << ": A must have rank >= 1 and B be 2-D, got " << shape_str(A.shape) << " and "
                                       << shape_str(B.shape));
  const int64_t K = B.shape[0], N = B.shape[1];
  if (A.shape.back() != K)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: A " << shape_str(A.shape) << ", B "
                                       << shape_str(B.shape));
  if (B.dtype != A.dtype || Y.dtype != A.dtype || (bias && bias->dtype != A.dtype) || !float_type(A.dtype))
    KILN_THROW(InvalidModel, n.label() << ": A, B, bias and Y must share a float dtype");
  if (bias && bias->numel() != N)
    KILN_THROW(InvalidModel, n.label() << ": bias " << shape_str(bias->shape) << " must hold N = " << N << " values");
  const int64_t M = K > 0 ? A.numel() / K : Y.numel() / std::max<int64_t>(N, 1);
  if (Y.numel() != M * N)
    KILN_THROW(InvalidState, n.label() << ": output holds " << Y.numel() << " elements, want " << M << " x " << N);
  if (Y.numel() == 0) return;
  LtGemm g;
  g.ab = g.d = A.dtype;
  g.algo = tactic_variant(n.tactic);  // "cublaslt#<algo>": that algorithm (checked with this epilogue)
  g.m = M, g.n = N, g.k = K;
  g.a = A.data, g.lda = K;
  g.b = B.data, g.ldb = N;
  g.dptr = Y.data, g.ldd = N;
  g.bias = bias ? bias->data : nullptr;
  if (use_lt && K > 0 && lt_types_supported(A.dtype, A.dtype)) {
    // float32 GELU (either form) is not left to cuBLASLt's epilogue, whose tanh need not meet the FP32 bound: BIAS
    // epilogue, then the exact activation below. float16 / bfloat16 take GELU_BIAS (tanh form) for both forms.
    const bool lt_gelu = (act == kActGeluTanh || act == kActGelu) && A.dtype != DType::Float32;
    g.act = act == kActRelu ? kLtActRelu : lt_gelu ? kLtActGelu : kLtActNone;
    if (lt_gemm(ctx, g, ctx.workspace, ctx.workspace_size)) {
      if (g.act == kLtActNone) apply_activation(ctx, Y, act);
      return;
    }
    g.act = kLtActNone;
  }
  naive_gemm(ctx, g);
  apply_activation(ctx, Y, act);
}

size_t fused_matmul_workspace(const ir::Node&, const std::vector<ir::ValueType>& in,
                              const std::vector<ir::ValueType>& out) {
  if (in.empty() || !lt_types_supported(in[0].dtype, in[0].dtype)) return 0;
  if (out.empty() || !out[0].is_static()) return lt_workspace_bytes(-1);
  return lt_workspace_bytes(shape_numel(out[0].static_shape()));
}

bool supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  const std::string a = n.attr_string("activation", "none");
  return in.size() >= 2 && float_type(in[0].dtype) &&
         (a == "none" || a == "relu" || a == "gelu" || a == "gelu_tanh");
}

}  // namespace

void register_fused_matmul_kernels() {
  register_cuda_tactic("kiln", "FusedMatMul",
                       CudaTactic{"cublaslt", supports,
                                  [](const KernelContext& c, KernelArgs& a) { run_fused_matmul(c, a, true); },
                                  fused_matmul_workspace});
  register_cuda_tactic("kiln", "FusedMatMul",
                       CudaTactic{"cuda", supports,
                                  [](const KernelContext& c, KernelArgs& a) { run_fused_matmul(c, a, false); },
                                  nullptr});
}

}  // namespace kiln::runtime::cuda
