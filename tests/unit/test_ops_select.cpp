// TopK and NonZero: the generated cases ("topk_*": opsets 1 / 10 / 11 / 24, largest / smallest, axis, ties, int64,
// K at run time; "nonzero_*": float, bool, int) against onnxruntime 1.23.2 (TopK-24 against the onnx reference
// evaluator), tie order and NaN by hand, the data-dependent shapes at inference, and bad input.
#include <limits>

#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_select_cpp {

TEST(OpsSelect, GeneratedCasesMatchOnnxRuntime) {
  test_ops3::check_ops3_family("topk_", 9);
  test_ops3::check_ops3_family("nonzero_", 3);
}

TEST(OpsSelect, TopKTiesTakeTheLowerIndexAndNanIsLargest) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto out = run_op("TopK", 11, {f32({6}, {2, nan, 5, 2, 5, -1}), Const(i64({1}, {4}))}, {}, 2);
  EXPECT_TRUE(std::isnan(out[0].at_double(0)));
  expect_values(out[1], {1, 2, 4, 0});
  auto small = run_op("TopK", 11, {f32({6}, {2, nan, 5, 2, 5, -1}), Const(i64({1}, {3}))}, {{"largest", int64_t(0)}}, 2);
  expect_values(small[0], {-1, 2, 2});
  expect_values(small[1], {5, 0, 3});
}

TEST(OpsSelect, NonZeroOfAScalarAndItsShapeAtInference) {
  Tensor y = run1("NonZero", 13, {f32({}, {2.5f})});
  EXPECT_EQ(y.shape(), (Shape{1, 1}));
  EXPECT_EQ(run1("NonZero", 13, {f32({}, {0.f})}).shape(), (Shape{1, 0}));
  EXPECT_EQ(infer_op("NonZero", 13, {TV(DType::Bool, {S("n"), D(3), D(2)})})[0].str(), "int64[3,?]");
  // K known: static; K at run time: the axis dim is unknown.
  auto k = infer_op("TopK", 11, {TV(DType::Float32, {S("b"), D(7)}), TConst(i64({1}, {3}))}, {}, 2);
  EXPECT_EQ(k[0].str(), "float32[b,3]");
  EXPECT_EQ(k[1].str(), "int64[b,3]");
  auto d = infer_op("TopK", 11, {TV(DType::Float32, {S("b"), D(7)}), TV(DType::Int64, {D(1)})}, {{"axis", int64_t(0)}}, 2);
  EXPECT_EQ(d[0].str(), "float32[?,7]");
}

TEST(OpsSelect, BadInputsAreTypedErrors) {
  const Tensor x = rand_f32({2, 5}, 1);
  EXPECT_EQ(error_code_of([&] { run_op("TopK", 11, {x, Const(i64({1}, {6}))}, {}, 2); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run_op("TopK", 11, {x, i64({1}, {6})}, {}, 2); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run_op("TopK", 11, {x, Const(i32({1}, {2}))}, {}, 2); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run_op("TopK", 11, {x, Const(i64({1}, {2}))}, {{"axis", int64_t(2)}}, 2); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run_op("TopK", 11, {boolean({2}, {1, 0}), Const(i64({1}, {1}))}, {}, 2); }),
            ErrorCode::Unsupported);
}

}  // namespace test_ops_select_cpp
}  // namespace kiln::test_ops
