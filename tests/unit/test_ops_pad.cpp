// Pad: the generated cases ("pad_*": opsets 2 / 11 / 13 / 18 / 19, constant / reflect / edge / wrap, negative pads,
// axes, pads as a runtime input, int64 and bool data) against onnxruntime 1.23.2 (one case, pads longer than the
// axis, against the onnx reference evaluator: onnxruntime reads uninitialized memory there), hand-checked
// crop-then-pad semantics, inference and bad input.
#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_pad_cpp {

using Ints = std::vector<int64_t>;

TEST(OpsPad, GeneratedCasesMatchOnnxRuntime) { test_ops3::check_ops3_family("pad_", 14); }

TEST(OpsPad, NegativePadsCropBeforeTheModePads) {
  const Tensor x = f32({5}, {1, 2, 3, 4, 5});
  // Crop 2 at the end, reflect 3 at the start of the cropped [1, 2, 3]: np.pad([1, 2, 3], (3, 0), 'reflect').
  expect_values(run1("Pad", 13, {x, Const(i64({2}, {3, -2}))}, {{"mode", std::string("reflect")}}), {2, 3, 2, 1, 2, 3});
  expect_values(run1("Pad", 19, {x, Const(i64({2}, {-1, 3}))}, {{"mode", std::string("wrap")}}), {2, 3, 4, 5, 2, 3, 4});
  expect_values(run1("Pad", 13, {x, Const(i64({2}, {-2, 2}))}, {{"mode", std::string("edge")}}), {3, 4, 5, 5, 5});
}

TEST(OpsPad, InferenceWithSymbolsAndRuntimePads) {
  auto t = infer_op("Pad", 18, {TV(DType::Float32, {S("n"), D(3), D(4)}), TConst(i64({2}, {1, 2})), TOmit(),
                                TConst(i64({1}, {-1}))});
  EXPECT_EQ(t[0].str(), "float32[n,3,7]");
  auto d = infer_op("Pad", 13, {TV(DType::Float32, {S("n"), D(3)}), TV(DType::Int64, {D(4)})});
  EXPECT_EQ(d[0].str(), "float32[?,?]");
}

TEST(OpsPad, BadInputsAreTypedErrors) {
  const Tensor x = rand_f32({2, 3}, 1);
  EXPECT_EQ(error_code_of([&] { run1("Pad", 18, {x, Const(i64({4}, {1, 1, 1, 1}))}, {{"mode", std::string("wrap")}}); }),
            ErrorCode::InvalidModel);  // wrap arrives at opset 19
  EXPECT_EQ(error_code_of([&] { run1("Pad", 13, {x, Const(i64({2}, {1, 1}))}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Pad", 13, {x, i64({4}, {0, -4, 0, 0})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run1("Pad", 13, {x, Const(i64({4}, {0, 1, 0, 1})), Const(f64({}, {1.0}))}); }),
            ErrorCode::InvalidModel);  // constant_value of another dtype
  EXPECT_EQ(error_code_of([&] {
              run1("Pad", 13, {x, i64({4}, {0, -3, 0, 2})}, {{"mode", std::string("edge")}});
            }),
            ErrorCode::InvalidArgument);  // edge-padding an axis cropped to nothing
  const int64_t huge = int64_t(1) << 62;
  EXPECT_EQ(error_code_of([&] { run1("Pad", 13, {x, i64({4}, {0, huge, 0, huge})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run1("Pad", 13, {x, Const(i64({4}, {0, huge, 0, huge}))}); }), ErrorCode::InvalidModel);
}

}  // namespace test_ops_pad_cpp
}  // namespace kiln::test_ops
