// Data movement ops: Concat, Gather, Slice.
#include <limits>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(OpsConcat, AxesAndDtypes) {
  Tensor a = f32({2, 2}, {1, 2, 3, 4}), b = f32({2, 1}, {5, 6}), c = f32({1, 2}, {7, 8});
  expect_tensor(run1("Concat", 13, {a, b}, {{"axis", int64_t(1)}}), DType::Float32, {2, 3}, {1, 2, 5, 3, 4, 6});
  expect_tensor(run1("Concat", 13, {a, Const(b), b}, {{"axis", int64_t(-1)}}), DType::Float32, {2, 4},
                {1, 2, 5, 5, 3, 4, 6, 6});
  expect_tensor(run1("Concat", 4, {a, c}, {{"axis", int64_t(0)}}), DType::Float32, {3, 2}, {1, 2, 3, 4, 7, 8});
  expect_tensor(run1("Concat", 13, {a}, {{"axis", int64_t(0)}}), DType::Float32, {2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(ints(run1("Concat", 13, {i64({2}, {1, 2}), i64({0}, {}), i64({1}, {3})}, {{"axis", int64_t(0)}})),
            (Ints{1, 2, 3}));
  Tensor h = run1("Concat", 13, {f16({1}, {0.5f}), f16({1}, {2.f})}, {{"axis", int64_t(0)}});
  EXPECT_EQ(h.dtype(), DType::Float16);
  expect_values(h, {0.5, 2}, 0, 0);
  // 3-D along the middle axis.
  Tensor x = iota_f32({2, 1, 2}), y = iota_f32({2, 2, 2});
  expect_tensor(run1("Concat", 13, {x, y}, {{"axis", int64_t(1)}}), DType::Float32, {2, 3, 2},
                {0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 6, 7});
}

TEST(OpsConcat, InferenceAndBadInputs) {
  auto t = infer_op("Concat", 13, {TV(DType::Float32, {S("B"), D(3), D(4)}), TV(DType::Float32, {U(), D(5), D(4)})},
                    {{"axis", int64_t(1)}})[0];
  EXPECT_EQ(type_str(t), "float32[B,8,4]");
  t = infer_op("Concat", 13, {TV(DType::Float32, {S("B"), S("S")}), TV(DType::Float32, {S("B"), D(1)})},
               {{"axis", int64_t(1)}})[0];
  EXPECT_EQ(type_str(t), "float32[B,?]");
  Tensor a = f32({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(error_code_of([&] { run1("Concat", 13, {a, f32({3, 1}, {1, 2, 3})}, {{"axis", int64_t(1)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Concat", 13, {a, f32({2}, {1, 2})}, {{"axis", int64_t(0)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Concat", 13, {a, i64({2, 2}, {1, 2, 3, 4})}, {{"axis", int64_t(0)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Concat", 13, {a, a}, {{"axis", int64_t(2)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Concat", 13, {a, a}); }), ErrorCode::InvalidModel);
}

TEST(OpsGather, AxesAndNegativeIndices) {
  Tensor data = iota_f32({3, 4});
  // axis 0 with 2-D indices -> [2, 2, 4]
  Tensor y = run1("Gather", 13, {data, Const(i64({2, 2}, {2, 0, -1, 1}))});
  ASSERT_EQ(y.shape(), (Shape{2, 2, 4}));
  expect_values(y, {8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7});
  // axis 1 with int32 indices -> [3, 2]
  expect_tensor(run1("Gather", 13, {data, i32({2}, {3, -4})}, {{"axis", int64_t(1)}}), DType::Float32, {3, 2},
                {3, 0, 7, 4, 11, 8});
  // negative axis, scalar index drops the axis
  expect_tensor(run1("Gather", 11, {data, i64({}, {-2})}, {{"axis", int64_t(-1)}}), DType::Float32, {3}, {2, 6, 10});
  // embedding-style lookup on int64 data
  EXPECT_EQ(ints(run1("Gather", 13, {i64({3, 2}, {10, 11, 20, 21, 30, 31}), i64({1, 3}, {2, 2, 0})})),
            (Ints{30, 31, 30, 31, 10, 11}));
  EXPECT_EQ(run1("Gather", 13, {data, i64({0}, {})}).shape(), (Shape{0, 4}));
}

TEST(OpsGather, InferenceAndBadInputs) {
  auto t = infer_op("Gather", 13, {TV(DType::Float32, {D(30522), D(768)}), TV(DType::Int64, {S("B"), S("S")})})[0];
  EXPECT_EQ(type_str(t), "float32[B,S,768]");
  t = infer_op("Gather", 13, {TV(DType::Int64, {D(3)}), TConst(i64({}, {0}))})[0];
  EXPECT_EQ(type_str(t), "int64[]");
  Tensor data = iota_f32({3, 4});
  EXPECT_EQ(error_code_of([&] { run1("Gather", 13, {data, i64({1}, {3})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run1("Gather", 13, {data, i64({1}, {-4})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] { run1("Gather", 13, {data, f32({1}, {0})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { run1("Gather", 13, {data, i64({1}, {0})}, {{"axis", int64_t(2)}}); }),
            ErrorCode::InvalidModel);
}

TEST(OpsSlice, AttributeFormBeforeOpset10) {
  Tensor x = iota_f32({3, 4});
  expect_tensor(run1("Slice", 1, {x}, {{"starts", Ints{1, 0}}, {"ends", Ints{3, 2}}}), DType::Float32, {2, 2},
                {4, 5, 8, 9});
  expect_tensor(run1("Slice", 9, {x}, {{"starts", Ints{-2}}, {"ends", Ints{1000}}, {"axes", Ints{1}}}), DType::Float32,
                {3, 2}, {2, 3, 6, 7, 10, 11});
  EXPECT_EQ(error_code_of([&] { run1("Slice", 9, {x}, {{"starts", Ints{0}}}); }), ErrorCode::InvalidModel);
}

TEST(OpsSlice, InputFormWithClampingAndSteps) {
  Tensor x = iota_f32({3, 4});
  // Negative starts / ends, axes.
  expect_tensor(run1("Slice", 13, {x, i64({1}, {-3}), i64({1}, {-1}), i64({1}, {1})}), DType::Float32, {3, 2},
                {1, 2, 5, 6, 9, 10});
  // INT64_MAX end clamps; default axes cover the leading dims.
  expect_tensor(run1("Slice", 13, {x, Const(i64({2}, {1, 1})), Const(i64({2}, {kMax, kMax}))}), DType::Float32,
                {2, 3}, {5, 6, 7, 9, 10, 11});
  // Steps of 2 and negative axes.
  expect_tensor(run1("Slice", 13, {x, i64({1}, {0}), i64({1}, {4}), i64({1}, {-1}), i64({1}, {2})}), DType::Float32,
                {3, 2}, {0, 2, 4, 6, 8, 10});
  // Reverse a dim: start -1, end INT64_MIN, step -1.
  expect_tensor(run1("Slice", 13, {x, i64({1}, {-1}), i64({1}, {kMin}), i64({1}, {0}), i64({1}, {-1})}),
                DType::Float32, {3, 4}, {8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3});
  // Negative step with clamped start: [3:0:-2] on axis 1 -> cols 3, 1.
  expect_tensor(run1("Slice", 13, {x, i64({1}, {100}), i64({1}, {0}), i64({1}, {1}), i64({1}, {-2})}),
                DType::Float32, {3, 2}, {3, 1, 7, 5, 11, 9});
  // Empty result when start >= end.
  EXPECT_EQ(run1("Slice", 13, {x, i64({1}, {2}), i64({1}, {1})}).shape(), (Shape{0, 4}));
  // int32 parameters, omitted axes with steps given.
  expect_tensor(run1("Slice", 11, {x, i32({2}, {0, 1}), i32({2}, {3, 4}), Omit(), i32({2}, {2, 2})}), DType::Float32,
                {2, 2}, {1, 3, 9, 11});
  // Other dtypes.
  EXPECT_EQ(ints(run1("Slice", 13, {i64({5}, {1, 2, 3, 4, 5}), i64({1}, {1}), i64({1}, {-1})})), (Ints{2, 3, 4}));
}

TEST(OpsSlice, InferenceAndBadInputs) {
  auto t = infer_op("Slice", 13,
                    {TV(DType::Float32, {S("B"), S("S"), D(768)}), TConst(i64({1}, {0})), TConst(i64({1}, {kMax})),
                     TConst(i64({1}, {1}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,S,768]");
  t = infer_op("Slice", 13,
               {TV(DType::Float32, {S("B"), S("S"), D(768)}), TConst(i64({1}, {0})), TConst(i64({1}, {1})),
                TConst(i64({1}, {1}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,?,768]");
  t = infer_op("Slice", 13,
               {TV(DType::Float32, {S("B"), D(10)}), TConst(i64({1}, {2})), TConst(i64({1}, {-2})),
                TConst(i64({1}, {-1}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,6]");
  // Non-constant starts with constant axes: only that axis becomes unknown.
  t = infer_op("Slice", 13,
               {TV(DType::Float32, {S("B"), D(10), D(4)}), TV(DType::Int64, {D(1)}), TV(DType::Int64, {D(1)}),
                TConst(i64({1}, {1}))})[0];
  EXPECT_EQ(type_str(t), "float32[B,?,4]");
  t = infer_op("Slice", 13, {TV(DType::Float32, {S("B"), D(10)}), TV(DType::Int64, {D(1)}), TV(DType::Int64, {D(1)})})[0];
  EXPECT_EQ(type_str(t), "float32[?,10]");
  Tensor x = iota_f32({3, 4});
  EXPECT_EQ(error_code_of([&] { run1("Slice", 13, {x, i64({1}, {0}), i64({1}, {2}), i64({1}, {0}), i64({1}, {0})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Slice", 13, {x, i64({2}, {0, 0}), i64({1}, {2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Slice", 13, {x, i64({2}, {0, 0}), i64({2}, {1, 1}), i64({2}, {1, -1})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Slice", 13, {x, i64({1}, {0}), i64({1}, {1}), i64({1}, {2})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Slice", 13, {x, f32({1}, {0}), f32({1}, {1})}); }), ErrorCode::Unsupported);
}

}  // namespace
}  // namespace kiln::test_ops
