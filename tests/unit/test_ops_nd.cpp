// GatherND and ScatterND: the generated cases ("gathernd_*": opsets 11 / 12 / 13, full and partial index tuples,
// negative indices, batch_dims 1 and 2, int64 data; "scatternd_*": reduction none / add / mul (16) / max / min
// (18), int64) against onnxruntime 1.23.2, duplicate updates by hand, inference and bad input.
#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_nd_cpp {

TEST(OpsNd, GeneratedCasesMatchOnnxRuntime) {
  test_ops3::check_ops3_family("gathernd_", 5);
  test_ops3::check_ops3_family("scatternd_", 7);
}

TEST(OpsNd, ScatterNdAddAccumulatesDuplicates) {
  Tensor y = run1("ScatterND", 16, {f32({4}, {1, 2, 3, 4}), Const(i64({3, 1}, {1, 3, 1})), f32({3}, {10, 20, 30})},
                  {{"reduction", std::string("add")}});
  expect_values(y, {1, 42, 3, 24});
  Tensor m = run1("ScatterND", 18, {f32({4}, {1, 2, 3, 4}), Const(i64({2, 1}, {-1, 0})), f32({2}, {-5, 7})},
                  {{"reduction", std::string("max")}});
  expect_values(m, {7, 2, 3, 4});
}

TEST(OpsNd, Inference) {
  auto g = infer_op("GatherND", 13, {TV(DType::Float32, {S("b"), D(3), D(4)}), TV(DType::Int64, {S("b"), D(5), D(1)})},
                    {{"batch_dims", int64_t(1)}});
  EXPECT_EQ(g[0].str(), "float32[b,5,4]");
  auto u = infer_op("GatherND", 13, {TV(DType::Float32, {D(2), D(3)}), TV(DType::Int64, {D(5), U()})});
  EXPECT_FALSE(u[0].has_rank);  // the rank depends on the tuple length
  auto s = infer_op("ScatterND", 16, {TV(DType::Int64, {S("n"), D(3)}), TV(DType::Int64, {D(2), D(1)}),
                                      TV(DType::Int64, {D(2), D(3)})});
  EXPECT_EQ(s[0].str(), "int64[n,3]");
}

TEST(OpsNd, BadInputsAreTypedErrors) {
  const Tensor d = rand_f32({3, 2}, 1);
  EXPECT_EQ(error_code_of([&] { run1("GatherND", 13, {d, i64({1, 2}, {3, 0})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run1("GatherND", 13, {d, i64({1, 3}, {0, 0, 0})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("GatherND", 13, {d, i32({1, 1}, {0})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] {
              run1("ScatterND", 16, {d, i64({1, 1}, {0}), rand_f32({1, 2}, 2)}, {{"reduction", std::string("max")}});
            }),
            ErrorCode::InvalidModel);  // max arrives at opset 18
  EXPECT_EQ(error_code_of([&] { run1("ScatterND", 13, {d, i64({1, 1}, {0}), rand_f32({1, 3}, 2)}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ScatterND", 13, {d, i64({1, 1}, {-4}), rand_f32({1, 2}, 2)}); }),
            ErrorCode::InvalidArgument);
}

}  // namespace test_ops_nd_cpp
}  // namespace kiln::test_ops
