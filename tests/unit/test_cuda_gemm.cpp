// CUDA MatMul / Gemm kernels (src/runtime/cuda/kernels/gemm.cu) against the CPU reference: tactic "cublaslt"
// (float32 with TF32 off and on, float16, bfloat16, float64) and tactic "cuda" (kiln's own kernel, every type
// including int32 / int64). Skips without a CUDA device; the tactic-registration tests run everywhere.
#if KILN_WITH_CUDA
#include <iterator>

#include "cuda_op_test_util.h"

namespace kiln {
namespace {

using test_cuda::check_cuda_op;
using test_cuda::precision_of;
using test_cuda::rand_tensor;
using test_ops::Attrs;
using test_ops::In;
using ir::Attr;

const DType kLtTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};
const DType kAllTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int32, DType::Int64};

struct MatMulCase {
  Shape a, b;
};
// Plain, batch folded into M, 1-D operands, broadcast batches (stride 0, and mixed dims that need one call per
// outer index), sizes that are not multiples of any vector width, and K = 0.
const MatMulCase kMatMulCases[] = {
    {{5, 7}, {7, 3}},         {{17, 33}, {33, 9}},         {{2, 3, 5, 7}, {7, 9}},    {{7}, {7, 3}},
    {{2, 5, 7}, {7}},         {{7}, {7}},                  {{3, 1, 4, 5}, {2, 5, 6}}, {{1, 4, 5}, {3, 5, 6}},
    {{2, 3, 4, 5}, {2, 1, 5, 6}}, {{4, 5}, {3, 5, 6}},     {{2, 1, 3, 8, 16}, {1, 4, 1, 16, 8}},
    {{3, 0}, {0, 4}},         {{64, 48}, {48, 40}}};

void run_matmul_cases(const std::string& tactic, const DType* types, size_t ntypes) {
  uint32_t seed = 1;
  for (size_t ti = 0; ti < ntypes; ++ti)
    for (const MatMulCase& c : kMatMulCases) {
      const DType dt = types[ti];
      const std::string what = std::string(dtype_name(dt)) + " " + shape_str(c.a) + " x " + shape_str(c.b);
      check_cuda_op("MatMul", 13, {rand_tensor(dt, c.a, seed), rand_tensor(dt, c.b, seed + 1)}, {}, 1, tactic,
                    precision_of(dt), false, what);
      seed += 2;
    }
}

TEST(CudaGemm, TacticsAreRegistered) {
  ir::Graph f = test_ops::make_graph("MatMul", 13, {test_ops::rand_f32({2, 3}, 1), test_ops::rand_f32({3, 4}, 2)}, {}, 1);
  EXPECT_EQ(test_cuda::tactic_names(f), (std::vector<std::string>{"cublaslt", "cuda"}));
  ir::Graph i = test_ops::make_graph("MatMul", 13, {rand_tensor(DType::Int64, {2, 3}, 1), rand_tensor(DType::Int64, {3, 4}, 2)}, {}, 1);
  EXPECT_EQ(test_cuda::tactic_names(i), (std::vector<std::string>{"cuda"}));
  ir::Graph gh = test_ops::make_graph("Gemm", 13, {rand_tensor(DType::Float16, {2, 3}, 1), rand_tensor(DType::Float16, {3, 4}, 2)}, {}, 1);
  EXPECT_EQ(test_cuda::tactic_names(gh), (std::vector<std::string>{"cublaslt", "cuda"}));
  ir::Graph gi = test_ops::make_graph("Gemm", 13, {rand_tensor(DType::Int32, {2, 3}, 1), rand_tensor(DType::Int32, {3, 4}, 2)}, {}, 1);
  EXPECT_EQ(test_cuda::tactic_names(gi), (std::vector<std::string>{"cuda"}));
}

TEST(CudaGemm, MatMulCublasLt) {
  KILN_SKIP_WITHOUT_CUDA();
  run_matmul_cases("cublaslt", kLtTypes, std::size(kLtTypes));
}

TEST(CudaGemm, MatMulOwnKernel) {
  KILN_SKIP_WITHOUT_CUDA();
  run_matmul_cases("cuda", kAllTypes, std::size(kAllTypes));
}

TEST(CudaGemm, MatMulTf32) {
  KILN_SKIP_WITHOUT_CUDA();
  check_cuda_op("MatMul", 13, {rand_tensor(DType::Float32, {4, 96, 256}, 3), rand_tensor(DType::Float32, {256, 80}, 4)},
                {}, 1, "cublaslt", "tf32", true, "tf32 folded");
  check_cuda_op("MatMul", 13, {rand_tensor(DType::Float32, {2, 3, 33, 64}, 5), rand_tensor(DType::Float32, {2, 3, 64, 31}, 6)},
                {}, 1, "cublaslt", "tf32", true, "tf32 batched");
}

TEST(CudaGemm, MatMulIntegersWrapLikeTheCpu) {
  KILN_SKIP_WITHOUT_CUDA();
  // Products past 2^31 (int32) and sums past 2^63 (int64): both sides wrap.
  std::vector<int32_t> a32(12), b32(12);
  std::vector<int64_t> a64(12), b64(12);
  for (int i = 0; i < 12; ++i) {
    a32[i] = 100000 + 7919 * i, b32[i] = 30000 - 104729 * i;
    a64[i] = (int64_t(1) << 40) + 3 * i, b64[i] = (int64_t(1) << 30) - 11 * i;
  }
  const std::vector<Tensor> got32 = check_cuda_op("MatMul", 13, {test_ops::i32({3, 4}, a32), test_ops::i32({4, 3}, b32)},
                                                  {}, 1, "cuda", "exact", false, "int32 wrap");
  check_cuda_op("MatMul", 13, {test_ops::i64({3, 4}, a64), test_ops::i64({4, 3}, b64)}, {}, 1, "cuda", "exact", false,
                "int64 wrap");
  ASSERT_EQ(got32.size(), 1u);
}

struct GemmCase {
  bool ta, tb;
  float alpha, beta;
  Shape c;  // empty: no C; {0}: C omitted
  bool no_c = false;
};

void run_gemm_cases(const std::string& tactic, const DType* types, size_t ntypes) {
  const int64_t M = 13, N = 11, K = 17;
  const GemmCase cases[] = {
      {false, false, 1.f, 1.f, {}, true},  {true, false, 1.f, 1.f, {N}},     {false, true, 0.5f, 1.f, {1, N}},
      {true, true, 2.f, 0.5f, {M, N}},     {false, false, 1.f, 0.25f, {N}},  {false, true, 1.f, 2.f, {M, 1}},
      {true, false, -1.f, 1.f, {}},        {false, false, 1.f, 0.f, {M, N}}, {false, true, 1.5f, 1.f, {M, N}},
      {false, false, 1.f, 3.f, {1}},
  };
  uint32_t seed = 100;
  for (size_t ti = 0; ti < ntypes; ++ti)
    for (const GemmCase& c : cases) {
      const DType dt = types[ti];
      std::vector<In> in = {rand_tensor(dt, c.ta ? Shape{K, M} : Shape{M, K}, seed),
                            rand_tensor(dt, c.tb ? Shape{N, K} : Shape{K, N}, seed + 1)};
      if (!c.no_c) in.push_back(rand_tensor(dt, c.c, seed + 2));
      Attrs at = {{"transA", Attr{int64_t(c.ta)}}, {"transB", Attr{int64_t(c.tb)}}, {"alpha", Attr{c.alpha}},
                  {"beta", Attr{c.beta}}};
      const std::string what = std::string(dtype_name(dt)) + " tA=" + std::to_string(c.ta) + " tB=" +
                               std::to_string(c.tb) + " alpha=" + std::to_string(c.alpha) + " beta=" +
                               std::to_string(c.beta) + " C=" + (c.no_c ? std::string("none") : shape_str(c.c));
      check_cuda_op("Gemm", 13, in, at, 1, tactic, precision_of(dt), false, what);
      seed += 3;
    }
  // Opset 9 (C required) with a constant bias row: the usual Linear layer.
  for (size_t ti = 0; ti < ntypes; ++ti) {
    const DType dt = types[ti];
    check_cuda_op("Gemm", 9,
                  {rand_tensor(dt, {5, 64}, 7), test_ops::Const(rand_tensor(dt, {48, 64}, 8)),
                   test_ops::Const(rand_tensor(dt, {48}, 9))},
                  {{"transB", Attr{int64_t(1)}}}, 1, tactic, precision_of(dt), false,
                  std::string(dtype_name(dt)) + " linear");
  }
}

TEST(CudaGemm, GemmCublasLt) {
  KILN_SKIP_WITHOUT_CUDA();
  run_gemm_cases("cublaslt", kLtTypes, std::size(kLtTypes));
}

TEST(CudaGemm, GemmOwnKernel) {
  KILN_SKIP_WITHOUT_CUDA();
  run_gemm_cases("cuda", kAllTypes, std::size(kAllTypes));
}

TEST(CudaGemm, GemmTf32AndEmptyK) {
  KILN_SKIP_WITHOUT_CUDA();
  check_cuda_op("Gemm", 13,
                {rand_tensor(DType::Float32, {64, 200}, 1), rand_tensor(DType::Float32, {96, 200}, 2),
                 rand_tensor(DType::Float32, {96}, 3)},
                {{"transB", Attr{int64_t(1)}}}, 1, "cublaslt", "tf32", true, "tf32 linear");
  // K = 0: Y = beta * C.
  for (const char* tactic : {"cublaslt", "cuda"})
    check_cuda_op("Gemm", 13,
                  {rand_tensor(DType::Float32, {4, 0}, 1), rand_tensor(DType::Float32, {0, 5}, 2),
                   rand_tensor(DType::Float32, {4, 5}, 3)},
                  {{"beta", Attr{0.5f}}}, 1, tactic, "fp32", false, "K=0");
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
