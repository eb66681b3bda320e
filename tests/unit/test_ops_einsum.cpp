// Einsum: the generated cases ("einsum_*": matmul, batch matmul, implicit output, transpose, diagonal, trace,
// diagonal in 3-D, dot, outer, full sum, three operands, ellipsis with broadcasting, upper-case labels, int64)
// against onnxruntime 1.23.2; ellipses of different ranks (numpy broadcasting, which ONNX shape inference
// rejects) by hand; inference and bad equations.
#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_einsum_cpp {

Attrs eq(const std::string& e) { return {{"equation", e}}; }

TEST(OpsEinsum, GeneratedCasesMatchOnnxRuntime) { test_ops3::check_ops3_family("einsum_", 17); }

TEST(OpsEinsum, EllipsesOfDifferentRanksBroadcast) {
  const Tensor a = rand_f32({2, 3, 4}, 1), b = rand_f32({4, 5}, 2);
  Tensor y = run1("Einsum", 12, {a, b}, eq("...ij,...jk->...ik"));
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  std::vector<double> want;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) {
        double s = 0;
        for (int64_t j = 0; j < 4; ++j) s += a.at_double((n * 3 + i) * 4 + j) * b.at_double(j * 5 + k);
        want.push_back(s);
      }
  expect_values(y, want);
  // Implicit output: ellipsis dims first, then the letters used once, in ASCII order (upper case first).
  Tensor t = run1("Einsum", 12, {rand_f32({2, 3}, 3)}, eq("ba"));
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
}

TEST(OpsEinsum, Inference) {
  auto t = infer_op("Einsum", 12, {TV(DType::Float32, {S("b"), D(3), D(4)}), TV(DType::Float32, {S("b"), D(4), U()})},
                    eq("bij,bjk->bik"));
  EXPECT_EQ(t[0].str(), "float32[b,3,?]");
  auto u = infer_op("Einsum", 12, {TUnknownRank(DType::Float32), TV(DType::Float32, {D(4)})}, eq("...i,i->..."));
  EXPECT_FALSE(u[0].has_rank);
  auto r = infer_op("Einsum", 12, {TUnknownRank(DType::Float32)}, eq("ij->j"));
  EXPECT_EQ(r[0].str(), "float32[?]");
}

TEST(OpsEinsum, BadEquationsAreTypedErrors) {
  const Tensor a = rand_f32({2, 3}, 1), b = rand_f32({4, 5}, 2);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a, b}, eq("ij,jk->ik")); }), ErrorCode::InvalidModel);  // 3 vs 4
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("ij,jk->ik")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("ijk->i")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("i1->i")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("ij->k")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("ij->ii")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, eq("..i.->i")); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {a}, {}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Einsum", 12, {boolean({2}, {1, 0})}, eq("i->i")); }), ErrorCode::Unsupported);
}

}  // namespace test_ops_einsum_cpp
}  // namespace kiln::test_ops
