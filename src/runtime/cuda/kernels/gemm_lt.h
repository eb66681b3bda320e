// GEMM building blocks of the gemm family, shared by MatMul / Gemm (gemm.cu), Einsum (einsum.cu) and Attention
// (attention.cu): a cuBLASLt call on row-major operands with a per-shape algorithm cache, and kiln's own batched
// GEMM kernel for the types cuBLASLt does not take (integers) and as the fallback when cuBLASLt offers no algorithm.
// Host declarations only (the .cu files hold the device code).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/cuda/kernel.h"

namespace kiln::runtime::cuda {

// Row-major strided-batched GEMM: for b < batch,
//   D[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] (+ bias, one value per column of D).
// op(A) is M x K (A stored [M, K] with row stride lda, or [K, M] when trans_a), op(B) is K x N (B stored [K, N], or
// [N, K] when trans_b). Batch strides are in elements; stride 0 repeats a matrix (broadcast; not for C / D).
struct LtGemm {
  DType ab = DType::Float32;  // type of A and B
  DType d = DType::Float32;   // type of C and D (Float32 with Float16 / BFloat16 inputs: float scores)
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  const void* c = nullptr;  // nullptr: no C term (beta ignored)
  int64_t ldc = 0, stride_c = 0;
  int64_t c_col = 1;  // naive_gemm only: column stride of C, 0 broadcasts a column (lt_gemm needs 1; ldc 0 repeats a row)
  void* dptr = nullptr;
  int64_t ldd = 0, stride_d = 0;
  double alpha = 1.0, beta = 0.0;
  const void* bias = nullptr;  // [n] of type d, added to every row (cuBLASLt BIAS epilogue)
  // lt_gemm only: activation applied last (after C and bias), in the cuBLASLt epilogue: kLtActRelu (RELU / RELU_BIAS)
  // or kLtActGelu (GELU / GELU_BIAS: cuBLASLt's GELU is the tanh approximation). naive_gemm refuses a non-zero act.
  int act = 0;
  // lt_gemm only: the variant of a "cublaslt#<hex>" tactic, the hex of the cublasLtMatmulAlgo_t to run (empty: the
  // heuristic's first algorithm). One that cuBLASLt refuses for this call falls back to the heuristic (one warning).
  std::string_view algo;
};

inline constexpr int kLtActNone = 0, kLtActRelu = 1, kLtActGelu = 2;

// Whether cuBLASLt takes these types (A/B -> C/D): F32->F32, F16->F16|F32, BF16->BF16|F32, F64->F64.
bool lt_types_supported(DType ab, DType d);
// Runs g with cuBLASLt on ctx.stream using at most ws_size bytes of ws. Returns false (nothing enqueued) when
// cuBLASLt has no algorithm for it; throws kiln::Error(Cuda) on a library error. Float32 uses TF32 tensor cores
// only when ctx.allow_tf32. The heuristic's first algorithm is cached per shape / alignment / workspace (thread-safe).
bool lt_gemm(const KernelContext& ctx, const LtGemm& g, void* ws, size_t ws_size);
// kiln's own kernel for g (bias included); one launch. Types: ab == d for Float32, Float16, BFloat16, Float64,
// Int32, Int64, and Float16 / BFloat16 -> Float32. Float accumulation (double for Float64, wrapping int64 for
// integers, whose result is `alpha * acc + beta * c` in double, saturated, unless alpha == beta == 1).
void naive_gemm(const KernelContext& ctx, const LtGemm& g);
// lt_gemm, or naive_gemm when cuBLASLt cannot run it.
void run_gemm(const KernelContext& ctx, const LtGemm& g, void* ws, size_t ws_size);
// Workspace to ask for a cuBLASLt GEMM producing `out_elems` elements (all batches): up to 32 MiB.
size_t lt_workspace_bytes(int64_t out_elems);

// The other ops of the family, registered by register_gemm_kernels().
void register_einsum_kernels();
void register_fused_matmul_kernels();  // kiln.FusedMatMul (gemm_epilogue.cu)
void register_attention_kernels();
void register_fused_attention_kernels();  // kiln.Attention (attention_fused.cu)

}  // namespace kiln::runtime::cuda
