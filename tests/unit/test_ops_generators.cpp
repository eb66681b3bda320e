// Constant, ConstantOfShape, Range.
#include <cmath>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;

TEST(OpsGenerators, ConstantAttributeKinds) {
  Tensor v = f32({2, 2}, {1, 2, 3, 4});
  Tensor y = run1("Constant", 13, {}, {{"value", v}});
  EXPECT_TRUE(y.bit_equal(v));
  expect_tensor(run1("Constant", 13, {}, {{"value_float", 2.5f}}), DType::Float32, {}, {2.5});
  expect_tensor(run1("Constant", 13, {}, {{"value_floats", std::vector<float>{1.5f, -2.f}}}), DType::Float32, {2},
                {1.5, -2});
  Tensor i = run1("Constant", 13, {}, {{"value_int", int64_t(7)}});
  EXPECT_EQ(i.dtype(), DType::Int64);
  EXPECT_EQ(i.shape(), Shape{});
  EXPECT_EQ(ints(i), (Ints{7}));
  Tensor is = run1("Constant", 12, {}, {{"value_ints", Ints{3, -1}}});
  EXPECT_EQ(is.dtype(), DType::Int64);
  EXPECT_EQ(ints(is), (Ints{3, -1}));
  // An empty list attribute of either list kind.
  EXPECT_EQ(run1("Constant", 13, {}, {{"value_ints", std::vector<float>{}}}).shape(), (Shape{0}));
  Tensor b = run1("Constant", 9, {}, {{"value", boolean({2}, {1, 0})}});
  EXPECT_EQ(b.dtype(), DType::Bool);
  auto t = infer_op("Constant", 13, {}, {{"value", f16({3, 1}, {1, 2, 3})}})[0];
  EXPECT_EQ(type_str(t), "float16[3,1]");
}

TEST(OpsGenerators, ConstantBadAttributes) {
  EXPECT_EQ(error_code_of([] { run1("Constant", 13, {}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Constant", 13, {}, {{"value_int", int64_t(1)}, {"value_float", 1.f}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Constant", 13, {}, {{"value_string", std::string("x")}}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] { run1("Constant", 13, {}, {{"value_ints", std::vector<float>{1.f}}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Constant", 13, {f32({1}, {1})}, {{"value_int", int64_t(1)}}); }),
            ErrorCode::InvalidModel);
}

TEST(OpsGenerators, ConstantOfShape) {
  expect_tensor(run1("ConstantOfShape", 9, {i64({2}, {2, 3})}), DType::Float32, {2, 3}, {0, 0, 0, 0, 0, 0});
  Tensor y = run1("ConstantOfShape", 20, {Const(i64({1}, {3}))}, {{"value", i64({1}, {7})}});
  EXPECT_EQ(y.dtype(), DType::Int64);
  EXPECT_EQ(ints(y), (Ints{7, 7, 7}));
  Tensor h = run1("ConstantOfShape", 9, {i64({2}, {1, 2})}, {{"value", f16({1}, {0.5f})}});
  EXPECT_EQ(h.dtype(), DType::Float16);
  expect_values(h, {0.5, 0.5}, 0, 0);
  Tensor s = run1("ConstantOfShape", 9, {i64({0}, {})}, {{"value", f32({1}, {4})}});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.at_double(0), 4);
  EXPECT_EQ(run1("ConstantOfShape", 9, {i64({2}, {0, 5})}).numel(), 0);
  auto t = infer_op("ConstantOfShape", 9, {TV(DType::Int64, {D(3)})}, {{"value", boolean({1}, {1})}})[0];
  EXPECT_EQ(type_str(t), "bool[?,?,?]");
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {i64({1}, {-1})}); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {Const(i64({1}, {-1}))}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {i32({1}, {2})}); }), ErrorCode::InvalidModel);
  // Sizes whose byte count overflows are refused before allocating.
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {i64({1}, {int64_t(1) << 62})}); }), ErrorCode::OutOfMemory);
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {i64({2}, {int64_t(1) << 62, 8})}); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([] { run1("ConstantOfShape", 9, {i64({1}, {2})}, {{"value", f32({2}, {1, 2})}}); }),
            ErrorCode::InvalidModel);
}

TEST(OpsGenerators, Range) {
  EXPECT_EQ(ints(run1("Range", 11, {i64({}, {1}), i64({}, {10}), i64({}, {3})})), (Ints{1, 4, 7}));
  EXPECT_EQ(ints(run1("Range", 11, {i32({}, {10}), i32({}, {4}), i32({}, {-2})})), (Ints{10, 8, 6}));
  EXPECT_EQ(run1("Range", 11, {i64({}, {5}), i64({}, {1}), i64({}, {1})}).shape(), (Shape{0}));
  Tensor f = run1("Range", 11, {f32({}, {0.5f}), f32({}, {2.f}), f32({}, {0.4f})});
  expect_tensor(f, DType::Float32, {4}, {0.5, 0.9, 1.3, 1.7});
  expect_tensor(run1("Range", 11, {f64({}, {1}), f64({}, {-1}), f64({}, {-0.5})}), DType::Float64, {4},
                {1, 0.5, 0, -0.5});
  Tensor c = run1("Range", 11, {Const(i64({}, {0})), Const(i64({}, {6})), Const(i64({}, {2}))});
  EXPECT_EQ(ints(c), (Ints{0, 2, 4}));
  EXPECT_EQ(type_str(infer_op("Range", 11, {TConst(i64({}, {0})), TConst(i64({}, {6})), TConst(i64({}, {4}))})[0]),
            "int64[2]");
  EXPECT_EQ(type_str(infer_op("Range", 11, {TConst(i64({}, {0})), TV(DType::Int64, {}), TConst(i64({}, {1}))})[0]),
            "int64[?]");
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {i64({}, {0}), i64({}, {5}), i64({}, {0})}); }),
            ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {i64({}, {0}), i32({}, {5}), i64({}, {1})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {i64({2}, {0, 1}), i64({}, {5}), i64({}, {1})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {boolean({}, {0}), boolean({}, {1}), boolean({}, {1})}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {i64({}, {0}), i64({}, {int64_t(1) << 62}), i64({}, {1})}); }),
            ErrorCode::InvalidArgument);
}

TEST(OpsGenerators, RangeOneElementInputsAndHalfTypes) {
  // One-element 1-D inputs act as scalars (onnxruntime does; AffineGrid's function body feeds int64[?] from Split).
  EXPECT_EQ(ints(run1("Range", 11, {i64({1}, {1}), i64({1}, {10}), i64({1}, {3})})), (Ints{1, 4, 7}));
  EXPECT_EQ(type_str(infer_op("Range", 11, {TV(DType::Int64, {U()}), TV(DType::Int64, {U()}), TV(DType::Int64, {D(1)})})[0]),
            "int64[?]");
  // float16 / bfloat16 from Range-27; refused below it.
  expect_tensor(run1("Range", 27, {f16({}, {1}), f16({}, {2}), f16({}, {0.25f})}), DType::Float16, {4}, {1, 1.25, 1.5, 1.75});
  expect_tensor(run1("Range", 27, {bf16({}, {0}), bf16({}, {-3}), bf16({}, {-1})}), DType::BFloat16, {3}, {0, -1, -2});
  EXPECT_EQ(error_code_of([] { run1("Range", 11, {f16({}, {1}), f16({}, {2}), f16({}, {1})}); }), ErrorCode::InvalidModel);
}

}  // namespace
}  // namespace kiln::test_ops
