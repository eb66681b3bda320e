// Resize: the generated cases ("resize_*": nearest with every nearest_mode, linear and cubic with every
// coordinate_transformation_mode incl. tf_crop_and_resize (roi, extrapolation_value), half_pixel_symmetric (19),
// tf_half_pixel_for_nn (11), cubic_coeff_a and exclude_outside, scales or sizes, opsets 11 / 13 / 18 / 19, axes,
// keep_aspect_ratio_policy, antialias (linear / cubic, down and up), 3-D (trilinear) and all-axes nearest, uint8,
// scales / sizes as runtime inputs) against onnxruntime 1.23.2 (linear over a non-spatial axis against the onnx
// reference evaluator: onnxruntime refuses it); hand-checked values; inference; bad input.
#include <limits>

#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_resize_cpp {

using Ints = std::vector<int64_t>;
Attrs mode(const std::string& m, const std::string& coord = "half_pixel") {
  return {{"mode", m}, {"coordinate_transformation_mode", coord}};
}

TEST(OpsResize, GeneratedCasesMatchOnnxRuntime) { test_ops3::check_ops3_family("resize_", 46); }

TEST(OpsResize, HandCheckedLinearAndNearest) {
  const Tensor x = f32({1, 1, 1, 2}, {1, 3});
  // align_corners, 2 -> 3: positions 0, 0.5, 1.
  expect_values(run1("Resize", 13, {x, Omit(), Omit(), Const(i64({4}, {1, 1, 1, 3}))}, mode("linear", "align_corners")),
                {1, 2, 3});
  // half_pixel, scale 2: x = (y + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (edges clamp).
  expect_values(run1("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 1, 2}))}, mode("linear")), {1, 1.5, 2.5, 3});
  // asymmetric nearest, floor vs ceil at x = 0.5.
  Attrs fl = mode("nearest", "asymmetric"), ce = fl;
  fl["nearest_mode"] = std::string("floor");
  ce["nearest_mode"] = std::string("ceil");
  expect_values(run1("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 1, 2}))}, fl), {1, 1, 3, 3});
  expect_values(run1("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 1, 2}))}, ce), {1, 3, 3, 3});
}

TEST(OpsResize, AlignCornersWithScalesUsesUnroundedResizedLength) {
  // 1 x 4, scale 0.6: out = floor(2.4) = 2, but length_resized = 2.4 in the transform (ONNX spec):
  // x = 1 * (4 - 1) / (2.4 - 1) = 2.142857 -> 1 + 2.142857 (linear), not 4 (the integer length would give x = 3).
  const Tensor x = f32({1, 1, 1, 4}, {1, 2, 3, 4});
  expect_values(run1("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 1, 0.6f}))}, mode("linear", "align_corners")),
                {1, 3.142857f}, 1e-5);
}

TEST(OpsResize, TfCropAndResizeExtrapolatesOutsideTheInputAndOnNanRoi) {
  const Tensor x = f32({1, 3}, {1, 2, 4});
  Attrs a = mode("linear", "tf_crop_and_resize");
  a["extrapolation_value"] = -7.f;
  // roi [-0.5, 1.5] on 3 -> 5: x = -1, 0, 1, 2, 3 -> the ends extrapolate.
  expect_values(run1("Resize", 13, {x, Const(f32({4}, {0, -0.5f, 1, 1.5f})), Omit(), Const(i64({2}, {1, 5}))}, a),
                {-7, 1, 2, 4, -7});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_values(run1("Resize", 13, {x, f32({4}, {0, nan, 1, 1}), Omit(), Const(i64({2}, {1, 2}))}, a), {-7, -7});
}

TEST(OpsResize, Inference) {
  auto s = infer_op("Resize", 13, {TV(DType::Float32, {S("n"), D(3), D(4), D(5)}), TOmit(), TConst(f32({4}, {1, 1, 1.5f, 0.5f}))},
                    mode("linear"));
  EXPECT_EQ(s[0].str(), "float32[n,3,6,2]");
  auto z = infer_op("Resize", 18, {TV(DType::Float32, {S("n"), D(3), D(4), D(6)}), TOmit(), TOmit(), TConst(i64({2}, {8, 8}))},
                    {{"axes", Ints{2, 3}}, {"keep_aspect_ratio_policy", std::string("not_larger")}});
  EXPECT_EQ(z[0].str(), "float32[n,3,5,8]");  // one scale, min(8/4, 8/6)
  auto d = infer_op("Resize", 13, {TV(DType::UInt8, {S("n"), D(3), D(4), D(5)}), TOmit(), TOmit(), TV(DType::Int64, {D(4)})});
  EXPECT_EQ(d[0].str(), "uint8[?,?,?,?]");
}

TEST(OpsResize, BadInputsAreTypedErrors) {
  const Tensor x = rand_f32({1, 1, 2, 2}, 1);
  const In sc = Const(f32({4}, {1, 1, 2, 2}));
  const In sz = Const(i64({4}, {1, 1, 4, 4}));
  EXPECT_EQ(error_code_of([&] { run1("Resize", 13, {x, Omit(), sc, sz}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Resize", 13, {x}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Resize", 13, {x, Omit(), Const(f32({2}, {2, 2}))}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, -2, 2}))}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Resize", 18, {x, Omit(), sc}, {{"antialias", int64_t(1)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Resize", 18, {x, Omit(), sc}, mode("linear", "half_pixel_symmetric")); }),
            ErrorCode::InvalidModel);  // arrives at opset 19
  EXPECT_EQ(error_code_of([&] { run1("Resize", 13, {i64({1, 2}, {1, 2}), Omit(), Const(f32({2}, {1, 2}))}, mode("linear")); }),
            ErrorCode::Unsupported);
}

}  // namespace test_ops_resize_cpp
}  // namespace kiln::test_ops
