// The second run of every op test on CUDA (test_ops_util.h, run_op): the comparison it applies must catch a wrong
// device result. These parts run without a GPU; the last test runs only where a CUDA device exists.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <limits>

#include "kiln/device.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

TEST(OpsCudaCheck, ToleranceRowFollowsTheDtype) {
  EXPECT_EQ(cuda_check_tolerance(DType::Float32).str(), tolerance_for("fp32").str());
  EXPECT_EQ(cuda_check_tolerance(DType::Float64).str(), tolerance_for("fp32").str());
  EXPECT_EQ(cuda_check_tolerance(DType::Float16).str(), tolerance_for("fp16").str());
  EXPECT_EQ(cuda_check_tolerance(DType::BFloat16).str(), tolerance_for("bf16").str());
  EXPECT_EQ(cuda_check_tolerance(DType::Int64).metric, Metric::Exact);
  EXPECT_EQ(cuda_check_tolerance(DType::Bool).metric, Metric::Exact);
}

TEST(OpsCudaCheck, EqualAndNearOutputsPass) {
  const TensorMap ref = {{"y0", f32({4}, {1.0f, -2.0f, 3.5f, 0.25f})}, {"y1", i64({2}, {7, -3})}};
  // Within rtol 1e-4: passes; equal integers pass.
  const TensorMap got = {{"y0", f32({4}, {1.00005f, -2.0f, 3.5f, 0.25f})}, {"y1", i64({2}, {7, -3})}};
  expect_outputs_match("Test on CUDA", {"y0", "y1"}, got, ref);
  // float16 by relative L2 (1e-2): one value off by 0.5 % passes.
  const TensorMap ref16 = {{"y0", f16({3}, {1.0f, 2.0f, 4.0f})}};
  const TensorMap got16 = {{"y0", f16({3}, {1.0f, 2.0f, 4.02f})}};
  expect_outputs_match("Test on CUDA", {"y0"}, got16, ref16);
  // NaN where the reference has NaN passes.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_outputs_match("Test on CUDA", {"y0"}, {{"y0", f32({2}, {nan, 1.0f})}}, {{"y0", f32({2}, {nan, 1.0f})}});
}

TEST(OpsCudaCheck, WrongOutputsFail) {
  const TensorMap ref = {{"y0", f32({3}, {1.0f, -2.0f, 3.0f})}};
  // A float32 value off by 1e-3 (outside rtol 1e-4 / atol 1e-5).
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("Relu-14 on CUDA", {"y0"}, {{"y0", f32({3}, {1.0f, -2.001f, 3.0f})}}, ref),
      "Relu-14 on CUDA: output y0 differs");
  // An integer off by one.
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("ArgMax on CUDA", {"y0"}, {{"y0", i64({2}, {1, 3})}}, {{"y0", i64({2}, {1, 2})}}),
      "exact comparison");
  // bool outputs are exact too.
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("Less on CUDA", {"y0"}, {{"y0", boolean({2}, {1, 1})}}, {{"y0", boolean({2}, {1, 0})}}),
      "exact comparison");
  // NaN moved to another position.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("Div on CUDA", {"y0"}, {{"y0", f32({2}, {1.0f, nan})}}, {{"y0", f32({2}, {nan, 1.0f})}}),
      "non-finite");
  // float16 beyond relative L2 1e-2.
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("Mul on CUDA", {"y0"}, {{"y0", f16({2}, {1.0f, 2.2f})}}, {{"y0", f16({2}, {1.0f, 2.0f})}}),
      "relative L2");
  // Wrong dtype or shape, and a missing output.
  EXPECT_NONFATAL_FAILURE(expect_outputs_match("Cast on CUDA", {"y0"}, {{"y0", f16({3}, {1.0f, -2.0f, 3.0f})}}, ref),
                          "type mismatch");
  EXPECT_NONFATAL_FAILURE(
      expect_outputs_match("Reshape on CUDA", {"y0"}, {{"y0", f32({1, 3}, {1.0f, -2.0f, 3.0f})}}, ref),
      "type mismatch");
  EXPECT_NONFATAL_FAILURE(expect_outputs_match("Split on CUDA", {"y0"}, {}, ref), "output y0 is missing");
}

// On a GPU host: a one-node graph through the CUDA executor equals the reference (Add: exact in float32).
TEST(OpsCudaCheck, DeviceRunMatchesReference) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  if (!KILN_TEST_OPS_ON_CUDA) GTEST_SKIP() << "this build has no CUDA executor (run_graph_cuda)";
  if (!cuda_op_check_enabled()) GTEST_SKIP() << "KILN_TEST_CUDA=0";
  ir::Graph g = make_graph("Add", 14, {rand_f32({4, 33}, 1), rand_f32({33}, 2)}, {}, 1);
  ir::infer_types(g);
  const TensorMap feeds = {{"x0", rand_f32({4, 33}, 1)}, {"x1", rand_f32({33}, 2)}};
  const TensorMap ref = runtime::cpu::run_graph_reference(g, feeds);
  expect_cuda_matches_reference("Add-14", g, feeds, ref);
}

}  // namespace
}  // namespace kiln::test_ops
