// IsNaN (9, 13, 20) and IsInf (10, 20): float16 / bfloat16 / float32 / float64 in, bool out (the sdpa attention
// that PyTorch's exporters write for GPT-2 masks NaN rows with Where(IsNaN(softmax), 0, softmax)).
#include <cmath>
#include <limits>

#include "test_ops_cases.h"

namespace kiln::test_ops {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

TEST(OpsIsNaNIsInf, IsNaNEveryFloatType) {
  const std::vector<float> v = {1.5f, kNaN, -kInf, kInf, 0.0f, -kNaN};
  const std::vector<int64_t> want = {0, 1, 0, 0, 0, 1};
  for (int64_t opset : {9, 13, 20}) {
    EXPECT_EQ(ints(run1("IsNaN", opset, {f32({2, 3}, v)})), want) << opset;
  }
  EXPECT_EQ(ints(run1("IsNaN", 20, {f16({6}, v)})), want);
  EXPECT_EQ(ints(run1("IsNaN", 20, {bf16({6}, v)})), want);
  std::vector<double> d(v.begin(), v.end());
  EXPECT_EQ(ints(run1("IsNaN", 13, {f64({6}, d)})), want);
  EXPECT_EQ(run1("IsNaN", 13, {f32({2, 3}, v)}).dtype(), DType::Bool);
}

TEST(OpsIsNaNIsInf, IsInfDetectsEachSignAsAsked) {
  const std::vector<float> v = {kInf, -kInf, kNaN, 3.0f, -65504.0f};
  EXPECT_EQ(ints(run1("IsInf", 10, {f32({5}, v)})), (std::vector<int64_t>{1, 1, 0, 0, 0}));
  EXPECT_EQ(ints(run1("IsInf", 20, {f32({5}, v)}, {{"detect_negative", int64_t(0)}})),
            (std::vector<int64_t>{1, 0, 0, 0, 0}));
  EXPECT_EQ(ints(run1("IsInf", 20, {f16({5}, v)}, {{"detect_positive", int64_t(0)}})),
            (std::vector<int64_t>{0, 1, 0, 0, 0}));
  EXPECT_EQ(ints(run1("IsInf", 20, {bf16({5}, v)})), (std::vector<int64_t>{1, 1, 0, 0, 0}));
}

TEST(OpsIsNaNIsInf, TypesAndRefusals) {
  EXPECT_EQ(type_str(infer_op("IsNaN", 20, {TV(DType::Float16, {S("B"), D(3)})})[0]), "bool[B,3]");
  EXPECT_EQ(type_str(infer_op("IsInf", 20, {TV(DType::Float32, {S("B"), D(4)})})[0]), "bool[B,4]");
  EXPECT_EQ(error_code_of([] { run1("IsNaN", 13, {i32({1}, {1})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] { run1("IsNaN", 8, {f32({1}, {1})}); }), ErrorCode::Unsupported);
}

}  // namespace
}  // namespace kiln::test_ops
