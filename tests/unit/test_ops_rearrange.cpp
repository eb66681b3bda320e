// DepthToSpace (DCR / CRD), SpaceToDepth and Trilu: the generated cases ("d2s_*", "s2d_*", "trilu_*") against
// onnxruntime 1.23.2 (int64 DepthToSpace against the onnx reference evaluator: onnxruntime lacks it), a
// hand-checked DCR / CRD difference, inference and bad input.
#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_rearrange_cpp {

TEST(OpsRearrange, GeneratedCasesMatchOnnxRuntime) {
  test_ops3::check_ops3_family("d2s_", 3);
  test_ops3::check_ops3_family("s2d_", 2);
  test_ops3::check_ops3_family("trilu_", 5);
}

TEST(OpsRearrange, DcrAndCrdOrderChannelsDifferently) {
  const Tensor x = iota_f32({1, 4, 1, 1});
  // DCR: channel c = (by * 2 + bx) * C' + c'; CRD: c = c' * 4 + by * 2 + bx (C' = 1: both are 0, 1, 2, 3).
  expect_values(run1("DepthToSpace", 11, {x}, {{"blocksize", int64_t(2)}}), {0, 1, 2, 3});
  const Tensor x2 = iota_f32({1, 8, 1, 1});
  expect_values(run1("DepthToSpace", 13, {x2}, {{"blocksize", int64_t(2)}}), {0, 2, 4, 6, 1, 3, 5, 7});
  expect_values(run1("DepthToSpace", 13, {x2}, {{"blocksize", int64_t(2)}, {"mode", std::string("CRD")}}),
                {0, 1, 2, 3, 4, 5, 6, 7});
  // SpaceToDepth inverts DCR.
  const Tensor img = iota_f32({1, 2, 4, 6});
  Tensor s = run1("SpaceToDepth", 13, {img}, {{"blocksize", int64_t(2)}});
  EXPECT_TRUE(run1("DepthToSpace", 13, {s}, {{"blocksize", int64_t(2)}}).bit_equal(img));
}

TEST(OpsRearrange, SpaceToDepthCrdFromOpset28) {
  // x [1, 2, 2, 2] (two channels of 2x2), blocksize 2: CRD puts channel 0's block first (c * 4 + by * 2 + bx),
  // DCR interleaves the channels ((by * 2 + bx) * 2 + c).
  const Tensor x = iota_f32({1, 2, 2, 2});
  const Attrs crd = {{"blocksize", int64_t(2)}, {"mode", std::string("CRD")}};
  expect_values(run1("SpaceToDepth", 28, {x}, crd), {0, 1, 2, 3, 4, 5, 6, 7});
  expect_values(run1("SpaceToDepth", 28, {x}, {{"blocksize", int64_t(2)}}), {0, 4, 1, 5, 2, 6, 3, 7});
  // SpaceToDepth-28 CRD inverts DepthToSpace CRD.
  const Tensor img = iota_f32({1, 2, 4, 6});
  Tensor s = run1("SpaceToDepth", 28, {img}, crd);
  EXPECT_TRUE(run1("DepthToSpace", 13, {s}, crd).bit_equal(img));
}

TEST(OpsRearrange, Inference) {
  auto t = infer_op("DepthToSpace", 13, {TV(DType::Float32, {S("n"), D(12), D(2), U()})}, {{"blocksize", int64_t(2)}});
  EXPECT_EQ(t[0].str(), "float32[n,3,4,?]");
  auto s = infer_op("SpaceToDepth", 13, {TV(DType::Int64, {S("n"), D(3), D(6), D(4)})}, {{"blocksize", int64_t(2)}});
  EXPECT_EQ(s[0].str(), "int64[n,12,3,2]");
  auto tr = infer_op("Trilu", 14, {TV(DType::Bool, {S("b"), D(3), D(3)})});
  EXPECT_EQ(tr[0].str(), "bool[b,3,3]");
}

TEST(OpsRearrange, BadInputsAreTypedErrors) {
  const Tensor x = rand_f32({1, 6, 2, 2}, 1);
  EXPECT_EQ(error_code_of([&] { run1("DepthToSpace", 13, {x}, {{"blocksize", int64_t(2)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("DepthToSpace", 13, {x}, {{"blocksize", int64_t(0)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("DepthToSpace", 13, {x}, {{"blocksize", int64_t(1)}, {"mode", std::string("XYZ")}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("SpaceToDepth", 13, {rand_f32({1, 1, 3, 4}, 2)}, {{"blocksize", int64_t(2)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Trilu", 14, {rand_f32({4}, 3)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Trilu", 14, {rand_f32({2, 2}, 3), Const(i32({}, {1}))}); }), ErrorCode::InvalidModel);
}

}  // namespace test_ops_rearrange_cpp
}  // namespace kiln::test_ops
