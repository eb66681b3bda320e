// Shape manipulation ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity, Shape, Expand.
#include <limits>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;

TEST(OpsShape, ReshapeZeroAndMinusOne) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor y = run1("Reshape", 14, {x, Const(i64({2}, {4, -1}))});
  EXPECT_EQ(y.shape(), (Shape{4, 6}));
  EXPECT_EQ(y.data(), x.data());  // a view, no copy
  EXPECT_EQ(run1("Reshape", 13, {x, i64({2}, {0, -1})}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Reshape", 5, {x, i64({4}, {0, 0, 2, 2})}).shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(run1("Reshape", 14, {x, i64({1}, {-1})}).shape(), (Shape{24}));
  EXPECT_EQ(values(run1("Reshape", 14, {x, i64({2}, {-1, 2})})), values(x));
  // allowzero=1: 0 is a literal zero-sized dim.
  Tensor e = f32({0, 3}, {});
  EXPECT_EQ(run1("Reshape", 14, {e, i64({2}, {3, 0})}, {{"allowzero", int64_t(1)}}).shape(), (Shape{3, 0}));
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {e, i64({2}, {3, 0})}); }), ErrorCode::InvalidModel);
  // allowzero is ignored before opset 14.
  EXPECT_EQ(run1("Reshape", 13, {x, i64({2}, {0, -1})}, {{"allowzero", int64_t(1)}}).shape(), (Shape{2, 12}));
}

TEST(OpsShape, ReshapeInference) {
  auto t = infer_op("Reshape", 14, {TV(DType::Float32, {S("N"), D(3), D(4)}), TConst(i64({2}, {0, -1}))})[0];
  EXPECT_EQ(type_str(t), "float32[N,12]");
  t = infer_op("Reshape", 14, {TV(DType::Float32, {S("N"), D(3), D(4)}), TConst(i64({2}, {-1, 12}))})[0];
  EXPECT_EQ(type_str(t), "float32[N,12]");
  t = infer_op("Reshape", 14, {TV(DType::Float32, {S("B"), S("S"), D(768)}), TConst(i64({4}, {0, 0, 12, 64}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,S,12,64]");
  t = infer_op("Reshape", 14, {TV(DType::Float32, {S("B"), S("S"), D(768)}), TConst(i64({3}, {0, -1, 64}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,?,64]");
  t = infer_op("Reshape", 14, {TV(DType::Float32, {S("N"), D(6)}), TV(DType::Int64, {D(3)})})[0];
  EXPECT_EQ(type_str(t), "float32[?,?,?]");
  EXPECT_FALSE(infer_op("Reshape", 14, {TV(DType::Float32, {D(6)}), TV(DType::Int64, {U()})})[0].has_rank);
}

TEST(OpsShape, ReshapeBadInputs) {
  Tensor x = iota_f32({2, 3});
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i64({2}, {-1, -1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i64({2}, {4, 2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i64({2}, {4, -1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i64({2}, {-2, 3})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i32({2}, {3, 2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Reshape", 14, {x, i64({3}, {0, 0, 0})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] {
              infer_op("Reshape", 14, {TV(DType::Float32, {D(2), D(3)}), TConst(i64({2}, {4, 2}))});
            }),
            ErrorCode::InvalidModel);
}

TEST(OpsShape, Flatten) {
  Tensor x = iota_f32({2, 3, 4});
  EXPECT_EQ(run1("Flatten", 13, {x}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Flatten", 13, {x}, {{"axis", int64_t(0)}}).shape(), (Shape{1, 24}));
  EXPECT_EQ(run1("Flatten", 13, {x}, {{"axis", int64_t(3)}}).shape(), (Shape{24, 1}));
  EXPECT_EQ(run1("Flatten", 13, {x}, {{"axis", int64_t(-1)}}).shape(), (Shape{6, 4}));
  EXPECT_EQ(run1("Flatten", 9, {x}, {{"axis", int64_t(2)}}).shape(), (Shape{6, 4}));
  auto t = infer_op("Flatten", 13, {TV(DType::Float32, {S("N"), D(512), D(1), D(1)})})[0];
  EXPECT_EQ(type_str(t), "float32[N,512]");
  t = infer_op("Flatten", 13, {TV(DType::Float32, {S("N"), D(2), U()})}, {{"axis", int64_t(2)}})[0];
  EXPECT_EQ(type_str(t), "float32[?,?]");
  EXPECT_EQ(error_code_of([&] { run1("Flatten", 13, {x}, {{"axis", int64_t(4)}}); }), ErrorCode::InvalidModel);
}

TEST(OpsShape, Transpose) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor y = run1("Transpose", 13, {x});
  ASSERT_EQ(y.shape(), (Shape{4, 3, 2}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.at_double((k * 3 + j) * 2 + i), x.at_double((i * 3 + j) * 4 + k));
  Tensor z = run1("Transpose", 13, {x}, {{"perm", Ints{0, 2, 1}}});
  ASSERT_EQ(z.shape(), (Shape{2, 4, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(z.at_double((i * 4 + k) * 3 + j), x.at_double((i * 3 + j) * 4 + k));
  EXPECT_EQ(ints(run1("Transpose", 13, {i64({2, 2}, {1, 2, 3, 4})})), (Ints{1, 3, 2, 4}));
  EXPECT_EQ(ints(run1("Transpose", 13, {boolean({1, 3}, {1, 0, 1})})), (Ints{1, 0, 1}));
  Tensor h = run1("Transpose", 13, {f16({2, 2}, {1, 2, 3, 4})}, {{"perm", Ints{1, 0}}});
  EXPECT_EQ(h.dtype(), DType::Float16);
  expect_values(h, {1, 3, 2, 4}, 0, 0);
  auto t = infer_op("Transpose", 13, {TV(DType::Float32, {S("B"), S("S"), D(12), D(64)})}, {{"perm", Ints{0, 2, 1, 3}}})[0];
  EXPECT_EQ(type_str(t), "float32[B,12,S,64]");
  EXPECT_EQ(error_code_of([&] { run1("Transpose", 13, {x}, {{"perm", Ints{0, 0, 1}}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Transpose", 13, {x}, {{"perm", Ints{1, 0}}}); }), ErrorCode::InvalidModel);
}

TEST(OpsShape, SqueezeAttributeAndInputForms) {
  Tensor x = iota_f32({1, 3, 1, 2});
  EXPECT_EQ(run1("Squeeze", 11, {x}, {{"axes", Ints{0}}}).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(run1("Squeeze", 11, {x}, {{"axes", Ints{-2}}}).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(run1("Squeeze", 11, {x}).shape(), (Shape{3, 2}));
  EXPECT_EQ(run1("Squeeze", 13, {x, Const(i64({2}, {0, 2}))}).shape(), (Shape{3, 2}));
  EXPECT_EQ(run1("Squeeze", 13, {x, i64({1}, {-4})}).shape(), (Shape{3, 1, 2}));
  Tensor all = run1("Squeeze", 13, {x});
  EXPECT_EQ(all.shape(), (Shape{3, 2}));
  EXPECT_EQ(all.data(), x.data());
  EXPECT_EQ(error_code_of([&] { run1("Squeeze", 13, {x, i64({1}, {1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Squeeze", 13, {x, i64({1}, {4})}); }), ErrorCode::InvalidModel);
  auto t = infer_op("Squeeze", 13, {TV(DType::Float32, {S("N"), D(1), D(5)}), TConst(i64({1}, {1}))})[0];
  EXPECT_EQ(type_str(t), "float32[N,5]");
  EXPECT_FALSE(infer_op("Squeeze", 13, {TV(DType::Float32, {S("N"), D(1)})})[0].has_rank);
  t = infer_op("Squeeze", 13, {TV(DType::Float32, {S("N"), D(1), D(5)}), TV(DType::Int64, {D(1)})})[0];
  EXPECT_EQ(type_str(t), "float32[?,?]");
}

TEST(OpsShape, UnsqueezeAttributeAndInputForms) {
  Tensor x = iota_f32({2, 3});
  EXPECT_EQ(run1("Unsqueeze", 11, {x}, {{"axes", Ints{0, 3}}}).shape(), (Shape{1, 2, 3, 1}));
  EXPECT_EQ(run1("Unsqueeze", 11, {x}, {{"axes", Ints{-1}}}).shape(), (Shape{2, 3, 1}));
  Tensor y = run1("Unsqueeze", 13, {x, Const(i64({2}, {1, -1}))});
  EXPECT_EQ(y.shape(), (Shape{2, 1, 3, 1}));
  EXPECT_EQ(y.data(), x.data());
  EXPECT_EQ(run1("Unsqueeze", 13, {f32({}, {5}), i64({1}, {0})}).shape(), (Shape{1}));
  EXPECT_EQ(error_code_of([&] { run1("Unsqueeze", 13, {x, i64({2}, {1, 1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Unsqueeze", 13, {x, i64({1}, {3})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Unsqueeze", 13, {x}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Unsqueeze", 11, {x}); }), ErrorCode::InvalidModel);
  auto t = infer_op("Unsqueeze", 13, {TV(DType::Int64, {S("B"), S("S")}), TConst(i64({2}, {1, 2}))})[0];
  EXPECT_EQ(type_str(t), "int64[B,1,1,S]");
  t = infer_op("Unsqueeze", 13, {TV(DType::Int64, {S("B")}), TV(DType::Int64, {D(2)})})[0];
  EXPECT_EQ(type_str(t), "int64[?,?,?]");
}

TEST(OpsShape, IdentityAndShape) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor id = run1("Identity", 16, {x});
  EXPECT_TRUE(id.bit_equal(x));
  EXPECT_EQ(ints(run1("Shape", 13, {x})), (Ints{2, 3, 4}));
  EXPECT_EQ(ints(run1("Shape", 15, {x}, {{"start", int64_t(1)}})), (Ints{3, 4}));
  EXPECT_EQ(ints(run1("Shape", 15, {x}, {{"end", int64_t(-1)}})), (Ints{2, 3}));
  EXPECT_EQ(ints(run1("Shape", 15, {x}, {{"start", int64_t(-10)}, {"end", int64_t(10)}})), (Ints{2, 3, 4}));
  EXPECT_EQ(run1("Shape", 15, {x}, {{"start", int64_t(2)}, {"end", int64_t(1)}}).shape(), (Shape{0}));
  EXPECT_EQ(ints(run1("Shape", 13, {x}, {{"start", int64_t(1)}})), (Ints{2, 3, 4}));  // start is opset 15
  Tensor s = run1("Shape", 13, {f32({}, {1})});
  EXPECT_EQ(s.dtype(), DType::Int64);
  EXPECT_EQ(s.shape(), (Shape{0}));
  auto t = infer_op("Shape", 15, {TV(DType::Float16, {S("B"), S("S"), D(8)})}, {{"start", int64_t(-2)}})[0];
  EXPECT_EQ(type_str(t), "int64[2]");
  EXPECT_EQ(type_str(infer_op("Shape", 15, {TUnknownRank(DType::Float32)})[0]), "int64[?]");
}

TEST(OpsShape, Expand) {
  Tensor x = f32({3, 1}, {1, 2, 3});
  Tensor y = run1("Expand", 13, {x, Const(i64({3}, {2, 1, 4}))});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.at_double(i), 1 + (i / 4) % 3);
  // Bidirectional: a shape of lower rank / with ones keeps the input dims.
  EXPECT_EQ(run1("Expand", 13, {x, i64({1}, {4})}).shape(), (Shape{3, 4}));
  EXPECT_EQ(run1("Expand", 8, {x, i64({2}, {1, 1})}).shape(), (Shape{3, 1}));
  EXPECT_EQ(ints(run1("Expand", 13, {boolean({1}, {1}), i64({2}, {2, 2})})), (Ints{1, 1, 1, 1}));
  EXPECT_EQ(error_code_of([&] { run1("Expand", 13, {x, i64({2}, {2, 2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Expand", 13, {x, i64({1}, {-1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Expand", 13, {f32({1}, {1}), i64({2}, {int64_t(1) << 61, 2})}); }),
            ErrorCode::OutOfMemory);
  auto t = infer_op("Expand", 13, {TV(DType::Float32, {S("N"), D(1)}), TConst(i64({3}, {2, 1, 5}))})[0];
  EXPECT_EQ(type_str(t), "float32[2,N,5]");
  t = infer_op("Expand", 13, {TV(DType::Float32, {S("N"), D(1)}), TV(DType::Int64, {D(3)})})[0];
  EXPECT_EQ(type_str(t), "float32[?,?,?]");
}

}  // namespace
}  // namespace kiln::test_ops
