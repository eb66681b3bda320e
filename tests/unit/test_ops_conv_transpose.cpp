// ConvTranspose: the generated cases (tests/models/gen_ops3_models.py, "ct_*": 1-D/2-D/3-D, group / depthwise,
// strides, dilations, pads, output_padding, output_shape, auto_pad SAME_UPPER / SAME_LOWER / VALID, kernel_shape,
// opsets 10 / 11 / 22) against onnxruntime 1.23.2, a hand-computed case, inference and bad input.
#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_conv_transpose_cpp {

using Ints = std::vector<int64_t>;

TEST(OpsConvTranspose, GeneratedCasesMatchOnnxRuntime) { test_ops3::check_ops3_family("ct_", 15); }

TEST(OpsConvTranspose, HandComputedStrideTwo) {
  // x = [1, 2, 3], w = [[1, 10]] (C=1, M/group=2 output channels), stride 2: each input scatters w to 2i, 2i+1.
  Tensor y = run1("ConvTranspose", 11, {f32({1, 1, 3}, {1, 2, 3}), Const(f32({1, 2, 2}, {1, 10, -1, 4}))},
                  {{"strides", Ints{2}}});
  expect_tensor(y, DType::Float32, {1, 2, 6}, {1, 10, 2, 20, 3, 30, -1, 4, -2, 8, -3, 12});
  // pads crop the full output [0, 7) (kernel 3, stride 2, in 2 -> 5) at both ends.
  Tensor p = run1("ConvTranspose", 11, {f32({1, 1, 2}, {1, -2}), Const(f32({1, 1, 3}, {1, 2, 3}))},
                  {{"strides", Ints{2}}, {"pads", Ints{1, 1}}});
  expect_tensor(p, DType::Float32, {1, 1, 3}, {2, 3 - 2, -4});
}

TEST(OpsConvTranspose, OutputShapeLargerThanFullPutsTheExtraAtTheEnd) {
  // kernel 1, stride 1, in 2 -> full 2; output_shape 3 gives total padding -1: begin = -1 - floor(-1 / 2) = 0,
  // end = floor(-1 / 2) = -1, so the extra (zero) column is appended at the end (the ONNX reference and onnxruntime).
  Tensor y = run1("ConvTranspose", 11, {f32({1, 1, 2}, {1, 2}), Const(f32({1, 1, 1}, {5}))},
                  {{"output_shape", Ints{3}}});
  expect_tensor(y, DType::Float32, {1, 1, 3}, {5, 10, 0});
}

TEST(OpsConvTranspose, InferenceKeepsSymbolsAndComputesSpatialDims) {
  auto t = infer_op("ConvTranspose", 11,
                    {TV(DType::Float32, {S("n"), D(4), D(5), U()}), TConst(rand_f32({4, 3, 3, 3}, 1))},
                    {{"group", int64_t(2)}, {"strides", Ints{2, 2}}, {"output_padding", Ints{1, 0}}});
  EXPECT_EQ(t[0].str(), "float32[n,6,12,?]");
  auto s = infer_op("ConvTranspose", 11, {TV(DType::Float32, {D(1), D(2), U(), U()}), TConst(rand_f32({2, 1, 3, 3}, 2))},
                    {{"output_shape", Ints{9, 7}}});
  EXPECT_EQ(s[0].str(), "float32[1,1,9,7]");
}

TEST(OpsConvTranspose, BadInputsAreTypedErrors) {
  const Tensor x = rand_f32({1, 4, 3, 3}, 3), w = rand_f32({4, 2, 3, 3}, 4);
  // Bias length differs from the output channels (2 x group 1).
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {x, Const(w), Const(rand_f32({3}, 5))}); }),
            ErrorCode::InvalidModel);
  // Channels not divisible by group; weights for another channel count.
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {x, Const(w)}, {{"group", int64_t(3)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {x, Const(rand_f32({3, 2, 3, 3}, 6))}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {x, Const(w)}, {{"auto_pad", std::string("SAME")}}); }),
            ErrorCode::InvalidModel);
  // Pads larger than the full output; integer input.
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {x, Const(w)}, {{"pads", Ints{3, 3, 3, 3}}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ConvTranspose", 11, {i64({1, 1, 2}, {1, 2}), Const(i64({1, 1, 1}, {1}))}); }),
            ErrorCode::Unsupported);
}

}  // namespace test_ops_conv_transpose_cpp
}  // namespace kiln::test_ops
