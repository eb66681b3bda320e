// CUDA elementwise kernels (src/runtime/cuda/kernels/elementwise*.cu) against the reference kernels: unary math,
// Clip, Cast / CastLike, Identity, Dropout, and which nodes get a CUDA tactic. Binary, variadic and Where are in
// test_cuda_elementwise_binary.cpp. Device tests skip without a CUDA device; the registry tests run everywhere.
#if KILN_WITH_CUDA
#include <limits>

#include "cuda_ew_test_util.h"
#include "ir/dtype_codes.h"

namespace kiln::test_cuda_ew {
namespace {

// Sizes below one vector, odd, and a 4-D shape whose element count is not a multiple of any vector width.
const std::vector<Shape> kUnaryShapes = {{7}, {1001}, {2, 3, 67}, {2, 1, 5, 129}};

struct UnaryCase {
  const char* op;
  int64_t opset;
  std::vector<DType> types;
  Range range;
  Attrs attrs;
};

std::vector<UnaryCase> unary_cases() {
  const Range wide{-4, 4};
  const Range pos{0.05, 5};
  const std::vector<DType> signed_num = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                                         DType::Int64,   DType::Int32,   DType::Int16,    DType::Int8};
  std::vector<DType> num = signed_num;
  num.push_back(DType::UInt8);
  return {
      {"Relu", 14, signed_num, wide, {}},
      {"Neg", 13, signed_num, wide, {}},
      {"Abs", 13, num, wide, {}},
      {"Sign", 13, num, wide, {}},
      {"Not", 1, {DType::Bool}, {}, {}},
      {"Sqrt", 13, kFloatTypes, pos, {}},
      {"Exp", 13, kFloatTypes, wide, {}},
      {"Log", 13, kFloatTypes, pos, {}},
      {"Tanh", 13, kFloatTypes, wide, {}},
      {"Erf", 13, kFloatTypes, wide, {}},
      {"Sigmoid", 13, kFloatTypes, {-12, 12}, {}},
      {"Ceil", 13, kFloatTypes, wide, {}},
      {"Floor", 13, kFloatTypes, wide, {}},
      {"Cos", 22, kFloatTypes, wide, {}},
      {"Sin", 22, kFloatTypes, wide, {}},
      {"Reciprocal", 13, kFloatTypes, pos, {}},
      {"Softplus", 22, kFloatTypes, {-30, 30}, {}},
      {"Mish", 22, kFloatTypes, wide, {}},
      {"HardSwish", 22, kFloatTypes, {-5, 5}, {}},
      {"LeakyRelu", 16, kFloatTypes, wide, {}},
      {"LeakyRelu", 16, kFloatTypes, wide, {{"alpha", 0.3f}}},
      {"Elu", 22, kFloatTypes, wide, {{"alpha", 0.7f}}},
      {"HardSigmoid", 22, kFloatTypes, {-6, 6}, {}},
      {"HardSigmoid", 22, kFloatTypes, {-6, 6}, {{"alpha", 0.1f}, {"beta", 0.4f}}},
      {"Gelu", 20, kFloatTypes, wide, {}},
      {"Gelu", 20, kFloatTypes, wide, {{"approximate", std::string("tanh")}}},
  };
}

TEST(CudaElementwise, UnaryOpsEveryDtypeAndShape) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 1;
  for (const UnaryCase& c : unary_cases())
    for (DType dt : c.types)
      for (const Shape& s : kUnaryShapes) check_op(c.op, c.opset, {rand_tensor(dt, s, seed++, c.range)}, c.attrs);
}

TEST(CudaElementwise, UnaryMisalignedBuffersTakeTheScalarPath) {
  KILN_REQUIRE_CUDA();
  for (DType dt : {DType::Float32, DType::Float16, DType::Float64, DType::Int8})
    check_op("Relu", 14, {rand_tensor(dt, {3, 41}, 7)}, {}, 1, true);
  check_op("Not", 1, {rand_tensor(DType::Bool, {100}, 8)}, {}, 1, true);
  check_op("Exp", 13, {rand_tensor(DType::BFloat16, {2, 50}, 9)}, {}, 1, true);
}

TEST(CudaElementwise, UnarySpecialValues) {
  KILN_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {nan, inf, -inf, 0.0, -0.0, 1e-30, -1e-30, 80, -80, 1e4, -1e4, 0.5, -0.5};
  const Shape s = {static_cast<int64_t>(v.size())};
  const std::pair<const char*, int64_t> ops[] = {{"Relu", 14},     {"Sigmoid", 13},     {"Softplus", 22},
                                                 {"Mish", 22},     {"HardSwish", 22},   {"HardSigmoid", 22},
                                                 {"Abs", 13},      {"Sign", 13},        {"Tanh", 13},
                                                 {"Elu", 22},      {"Gelu", 20},        {"Exp", 13}};
  for (const auto& op : ops)
    for (DType dt : {DType::Float32, DType::Float16}) check_op(op.first, op.second, {make_tensor(dt, s, v)});
  for (DType dt : {DType::Int32, DType::Int8, DType::Int64})  // INT_MIN: Neg and Abs wrap like the reference
    for (const char* op : {"Neg", "Abs", "Sign", "Relu"}) {
      const double lo = dt == DType::Int8 ? -128 : dt == DType::Int32 ? -2147483648.0 : -9223372036854775808.0;
      check_op(op, std::string(op) == "Relu" ? 14 : 13, {make_tensor(dt, {4}, {lo, -1, 0, 5})});
    }
}

TEST(CudaElementwise, IsNaNAndIsInf) {
  KILN_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {nan, inf, -inf, 0.0, -0.0, 1e30, -1e30, 0.5, nan, -inf, 3, inf, -2};
  const Shape s = {static_cast<int64_t>(v.size())};
  for (DType dt : kFloatTypes) {
    const Tensor x = make_tensor(dt, s, v);
    check_op("IsNaN", 20, {x});
    check_op("IsInf", 20, {x});
    check_op("IsInf", 20, {x}, {{"detect_negative", int64_t{0}}});
    check_op("IsInf", 20, {x}, {{"detect_positive", int64_t{0}}});
  }
  check_op("IsNaN", 13, {rand_tensor(DType::Float32, {2, 1, 5, 129}, 11, {-4, 4})});
}

TEST(CudaElementwise, ClipAttributesAndInputs) {
  KILN_REQUIRE_CUDA();
  const Shape s = {3, 67};
  uint32_t seed = 100;
  // Opset 6: attributes (integers are float-saturated, like the reference).
  for (DType dt : kFloatTypes)
    check_op("Clip", 6, {rand_tensor(dt, s, seed++)}, {{"min", -0.5f}, {"max", 0.75f}});
  check_op("Clip", 6, {rand_tensor(DType::Float32, s, seed++)}, {{"max", 0.1f}});
  // Opset 13: scalar inputs, as constants (host copies exist) and as run-time values (read on the device).
  const std::vector<DType> num = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                                  DType::Int32,   DType::Int16,   DType::Int8,     DType::UInt8};
  for (DType dt : num) {
    const Tensor x = rand_tensor(dt, s, seed++);
    const Tensor lo = make_tensor(dt, {}, {dtype_is_float(dt) ? -0.5 : dt == DType::UInt8 ? 20.0 : -30.0});
    const Tensor hi = make_tensor(dt, {}, {dtype_is_float(dt) ? 1.25 : 60.0});
    check_op("Clip", 13, {x, test_ops::Const(lo), test_ops::Const(hi)});
    check_op("Clip", 13, {x, lo, hi});
    check_op("Clip", 13, {x, test_ops::Omit(), hi});
    check_op("Clip", 13, {x, lo});
    check_op("Clip", 13, {x});
  }
  // min > max gives max everywhere.
  check_op("Clip", 13, {rand_tensor(DType::Float32, s, seed++), make_tensor(DType::Float32, {}, {1.0}),
                        make_tensor(DType::Float32, {}, {-1.0})});
}

TEST(CudaElementwise, CastEveryDtypePair) {
  KILN_REQUIRE_CUDA();
  // Fractions, negatives, values past every integer range (saturation), NaN and infinities.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> fv = {nan, inf, -inf, 0.0, -0.0, 0.5, -0.5, 1.5, -1.75, 127.6, -128.9, 255.5, 300.25, -300.25,
                            40000.5, -40000.5, 3e9, -3e9, 1e19, -1e19, 65504, 70000, 1e-8, 2.0};
  const Tensor fr = rand_tensor(DType::Float64, {977}, 5, {-1000, 1000});
  for (int64_t i = 0; i < fr.numel(); ++i) fv.push_back(fr.at_double(i));
  const Shape fs = {static_cast<int64_t>(fv.size())};
  for (DType from : kAllTypes) {
    Tensor x;
    if (dtype_is_float(from)) x = make_tensor(from, fs, fv);
    else if (from == DType::Bool) x = rand_tensor(from, {1001}, 6);
    else x = rand_tensor(from, {1001}, 7, {0, 0, from == DType::UInt8 ? 0 : -30000, 30000});
    for (DType to : kAllTypes) {
      check_op("Cast", 21, {x}, {{"to", ir::dtype_to_onnx_code(to)}});
      check_op("CastLike", 21, {x, make_tensor(to, {1}, {1})});
    }
  }
  // Integer extremes.
  check_op("Cast", 21,
           {make_tensor(DType::Int64, {4}, {-9223372036854775808.0, 9223372036854775807.0, -1, 1 << 20})},
           {{"to", ir::dtype_to_onnx_code(DType::Float16)}});
  check_op("Cast", 21, {rand_tensor(DType::Float32, {3, 5, 7}, 8, {-200, 200})},
           {{"to", ir::dtype_to_onnx_code(DType::Int8)}}, 1, true);
}

TEST(CudaElementwise, IdentityAndDropout) {
  KILN_REQUIRE_CUDA();
  for (DType dt : kAllTypes) check_op("Identity", 21, {rand_tensor(dt, {3, 33}, 11)});
  for (DType dt : kFloatTypes) {
    const Tensor x = rand_tensor(dt, {5, 17}, 12);
    check_op("Dropout", 7, {x}, {{"ratio", 0.3f}}, 2);  // mask in X's dtype
    check_op("Dropout", 13, {x}, {}, 2);                // bool mask
    check_op("Dropout", 13, {x, test_ops::Const(make_tensor(DType::Float32, {}, {0.4})),
                             test_ops::Const(make_tensor(DType::Bool, {}, {0}))},
             {}, 2);
    check_op("Dropout", 22, {x}, {}, 1);
  }
}

// ---- registry: which nodes get a CUDA tactic (no device needed) -----------------------------------------------------
TEST(CudaElementwiseRegistry, EveryOpHasACudaTacticForItsDtypes) {
  const Tensor f = rand_tensor(DType::Float32, {4}, 1);
  for (const UnaryCase& c : unary_cases())
    for (DType dt : c.types) EXPECT_TRUE(cuda_supports(c.op, c.opset, {rand_tensor(dt, {4}, 1)}, c.attrs)) << c.op;
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "GreaterOrEqual", "LessOrEqual",
                         "Pow", "PRelu"})
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32})
      EXPECT_TRUE(cuda_supports(op, 16, {rand_tensor(dt, {4}, 1), rand_tensor(dt, {4}, 2)})) << op;
  for (const char* op : {"And", "Or", "Xor"})
    EXPECT_TRUE(cuda_supports(op, 7, {rand_tensor(DType::Bool, {4}, 1), rand_tensor(DType::Bool, {1}, 2)})) << op;
  EXPECT_TRUE(cuda_supports("Mod", 13, {rand_tensor(DType::Int8, {4}, 1), rand_tensor(DType::Int8, {4}, 2)}));
  EXPECT_TRUE(cuda_supports("Pow", 15, {f, rand_tensor(DType::Int64, {1}, 2)}));
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) EXPECT_TRUE(cuda_supports(op, 13, {f, f, f})) << op;
  EXPECT_TRUE(cuda_supports("Max", 13, {rand_tensor(DType::UInt8, {4}, 1)}));
  EXPECT_TRUE(cuda_supports("Where", 16, {rand_tensor(DType::Bool, {4}, 1), f, f}));
  EXPECT_TRUE(cuda_supports("Clip", 13, {f, test_ops::Omit(), make_tensor(DType::Float32, {}, {1})}));
  for (const char* op : {"Cast", "Identity"})
    for (DType dt : kAllTypes)
      EXPECT_TRUE(cuda_supports(op, 21, {rand_tensor(dt, {4}, 1)}, {{"to", int64_t(1)}})) << op;
  EXPECT_TRUE(cuda_supports("Dropout", 13, {f}));
}

TEST(CudaElementwiseRegistry, UnhandledCasesHaveNoCudaTactic) {
  const Tensor f = rand_tensor(DType::Float32, {4}, 1);
  EXPECT_FALSE(cuda_supports("Relu", 14, {rand_tensor(DType::UInt8, {4}, 1)}));
  EXPECT_FALSE(cuda_supports("Exp", 13, {rand_tensor(DType::Int32, {4}, 1)}));
  EXPECT_FALSE(cuda_supports("Add", 14, {f, rand_tensor(DType::Float16, {4}, 1)}));  // mixed dtypes
  EXPECT_FALSE(cuda_supports("PRelu", 9, {rand_tensor(DType::Int32, {4}, 1), rand_tensor(DType::Int32, {4}, 1)}));
  EXPECT_FALSE(cuda_supports("Max", 8, {rand_tensor(DType::Int32, {4}, 1)}));  // integer Max from opset 12
  EXPECT_FALSE(cuda_supports("Sum", 13, std::vector<In>(17, In(f))));          // more than 16 inputs
  EXPECT_FALSE(cuda_supports("Add", 14, {rand_tensor(DType::Float32, Shape(9, 1), 1), f}));  // rank 9
  EXPECT_FALSE(cuda_supports("Gelu", 20, {f}, {{"approximate", std::string("fast")}}));
}

}  // namespace
}  // namespace kiln::test_cuda_ew
#endif  // KILN_WITH_CUDA
