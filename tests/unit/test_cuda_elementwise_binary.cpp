// CUDA elementwise binary ops, variadic Sum / Mean / Max / Min and Where against the reference kernels, over every
// broadcast pattern the kernels tell apart: same shape (vector path), scalar, trailing row (per lane and vector
// loads), per-channel (uniform per vector and per lane), outer product, general strides, and misaligned buffers.
// Device tests skip without a CUDA device.
#if KILN_WITH_CUDA
#include <limits>

#include "cuda_ew_test_util.h"

namespace kiln::test_cuda_ew {
namespace {

struct Pair {
  Shape a, b;
};
// Every path of the broadcast planner (elementwise.cu plan_operands / plan_vectors).
const std::vector<Pair> kPairs = {
    {{1001}, {1001}},            // same shape, odd size: vectors + tail
    {{2, 3, 64}, {2, 3, 64}},    // same shape, whole vectors
    {{3, 5, 67}, {}},            // scalar (rank 0)
    {{1}, {4, 9}},               // scalar on the left
    {{4, 33}, {33}},             // trailing row, lanes read one by one
    {{4, 64}, {64}},             // trailing row, vector loads
    {{2, 3, 8, 8}, {3, 1, 1}},   // per channel, one value per vector
    {{2, 3, 5, 7}, {3, 1, 1}},   // per channel, per lane
    {{5, 1}, {1, 7}},            // outer product (both operands broadcast)
    {{2, 1, 4, 3}, {1, 5, 4, 1}},  // general strides
    {{5, 1, 7}, {4, 1}},         // rank mismatch, both broadcast
    {{3}, {2, 3}},               // row on the left
    {{1, 1, 1}, {1, 1}},         // all ones
    {{0, 3}, {3}},               // empty
};

struct BinCase {
  const char* op;
  int64_t opset;
  std::vector<DType> types;
  Range ra, rb;
  Attrs attrs;
};

std::vector<DType> numeric() {
  std::vector<DType> v = kFloatTypes;
  v.insert(v.end(), kIntTypes.begin(), kIntTypes.end());
  return v;
}

std::vector<BinCase> binary_cases() {
  const Range any{};
  const Range divisor{0.25, 3, 1, 9, true};
  const Range signed_divisor{-3, 3, -9, 9, true};
  const std::vector<DType> prelu = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                                    DType::Int64,   DType::Int32};
  std::vector<DType> all = numeric();
  all.push_back(DType::Bool);
  return {
      {"Add", 14, numeric(), any, any, {}},
      {"Sub", 14, numeric(), any, any, {}},
      {"Mul", 14, numeric(), any, any, {}},
      {"Div", 14, numeric(), any, divisor, {}},
      {"Div", 14, numeric(), any, signed_divisor, {}},
      {"Mod", 13, numeric(), any, signed_divisor, {{"fmod", int64_t(1)}}},
      {"Mod", 13, kIntTypes, any, signed_divisor, {}},
      {"Mod", 28, kFloatTypes, any, signed_divisor, {}},
      {"Equal", 19, all, {-2, 2, -2, 2}, {-2, 2, -2, 2}, {}},
      {"Less", 13, numeric(), any, any, {}},
      {"Greater", 13, numeric(), any, any, {}},
      {"GreaterOrEqual", 16, numeric(), {-2, 2, -3, 3}, {-2, 2, -3, 3}, {}},
      {"LessOrEqual", 16, numeric(), {-2, 2, -3, 3}, {-2, 2, -3, 3}, {}},
      {"And", 7, {DType::Bool}, any, any, {}},
      {"Or", 7, {DType::Bool}, any, any, {}},
      {"Xor", 7, {DType::Bool}, any, any, {}},
  };
}

TEST(CudaElementwise, BinaryOpsEveryDtypeAndBroadcast) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 1;
  for (const BinCase& c : binary_cases())
    for (DType dt : c.types)
      for (const Pair& p : kPairs) {
        // Equal on floats: draw from a few values so that equal pairs occur.
        Tensor a = rand_tensor(dt, p.a, seed++, c.ra), b = rand_tensor(dt, p.b, seed++, c.rb);
        if (std::string(c.op) == "Equal" && dtype_is_float(dt)) {
          std::vector<double> va, vb;
          for (int64_t i = 0; i < a.numel(); ++i) va.push_back(std::round(a.at_double(i)));
          for (int64_t i = 0; i < b.numel(); ++i) vb.push_back(std::round(b.at_double(i)));
          a = make_tensor(dt, p.a, va);
          b = make_tensor(dt, p.b, vb);
        }
        check_op(c.op, c.opset, {a, b}, c.attrs);
      }
}

TEST(CudaElementwise, BinaryMisalignedAndConstantOperands) {
  KILN_REQUIRE_CUDA();
  for (DType dt : {DType::Float32, DType::Float16, DType::Int64, DType::UInt8}) {
    check_op("Add", 14, {rand_tensor(dt, {4, 64}, 1), rand_tensor(dt, {4, 64}, 2)}, {}, 1, true);
    check_op("Mul", 14, {rand_tensor(dt, {4, 64}, 3), rand_tensor(dt, {64}, 4)}, {}, 1, true);
    check_op("Greater", 13, {rand_tensor(dt, {2, 3, 8, 8}, 5), rand_tensor(dt, {3, 1, 1}, 6)}, {}, 1, true);
  }
  // A bias as a constant (initializer) input.
  check_op("Add", 14, {rand_tensor(DType::Float16, {8, 128}, 7), test_ops::Const(rand_tensor(DType::Float16, {128}, 8))});
}

TEST(CudaElementwise, IntegerArithmeticWrapsAndTruncates) {
  KILN_REQUIRE_CUDA();
  const Tensor a = make_tensor(DType::Int8, {6}, {127, -128, -7, 7, -128, 100});
  const Tensor b = make_tensor(DType::Int8, {6}, {1, -1, 2, -2, -1, 100});
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) check_op(op, 14, {a, b});
  check_op("Mod", 13, {a, b});
  check_op("Mod", 13, {a, b}, {{"fmod", int64_t(1)}});
  const Tensor big = make_tensor(DType::Int64, {3}, {-9223372036854775808.0, 9.2e18, -5});
  check_op("Div", 14, {big, make_tensor(DType::Int64, {3}, {-1, 3, 2})});
  check_op("Mul", 14, {big, make_tensor(DType::Int64, {3}, {2, 2, -3})});
}

TEST(CudaElementwise, PowBaseAndExponentDtypes) {
  KILN_REQUIRE_CUDA();
  const Range base{0.1, 3, -5, 5}, exp{-2, 2, 0, 5};
  uint32_t seed = 50;
  const std::vector<DType> bases = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                                    DType::Int64,   DType::Int32};
  for (DType bt : bases) {
    for (DType et : {bt, DType::Float32, DType::Int64, DType::Int32, DType::Int8, DType::UInt8}) {
      check_op("Pow", 15, {rand_tensor(bt, {3, 67}, seed++, base), rand_tensor(et, {3, 67}, seed++, exp)});
      check_op("Pow", 15, {rand_tensor(bt, {3, 67}, seed++, base), rand_tensor(et, {67}, seed++, exp)});
    }
    check_op("Pow", 15, {rand_tensor(bt, {1001}, seed++, base), make_tensor(bt, {}, {2})});  // x * x
    check_op("Pow", 15, {rand_tensor(bt, {1001}, seed++, base), make_tensor(DType::Float32, {}, {0.5})});
    check_op("Pow", 15, {rand_tensor(bt, {1001}, seed++, base), make_tensor(DType::Int64, {}, {3})});
  }
  // Negative bases and exponents, zero to a negative power, integer results near 2^53.
  check_op("Pow", 15, {make_tensor(DType::Float32, {4}, {-2, -2, 0, 4}), make_tensor(DType::Float32, {4}, {3, 0.5, -1, -0.5})});
  check_op("Pow", 15, {make_tensor(DType::Int64, {6}, {-2, 3, 0, 2, 7, -1}),
                       make_tensor(DType::Int64, {6}, {3, -1, -2, 62, 18, 7})});
  check_op("Pow", 15, {make_tensor(DType::Int32, {3}, {2, 10, -3}), make_tensor(DType::Int32, {3}, {31, 10, 21})});
}

TEST(CudaElementwise, PReluSlopeBroadcast) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 70;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32}) {
    check_op("PRelu", 16, {rand_tensor(dt, {2, 3, 5, 7}, seed++), rand_tensor(dt, {3, 1, 1}, seed++)});
    check_op("PRelu", 16, {rand_tensor(dt, {4, 64}, seed++), rand_tensor(dt, {64}, seed++)});
    check_op("PRelu", 16, {rand_tensor(dt, {1001}, seed++), rand_tensor(dt, {1}, seed++)});
    check_op("PRelu", 16, {rand_tensor(dt, {3, 67}, seed++), rand_tensor(dt, {3, 67}, seed++)});
  }
  check_op("PRelu", 9, {rand_tensor(DType::Float32, {2, 4, 9}, seed++), rand_tensor(DType::Float32, {4, 1}, seed++)});
}

TEST(CudaElementwise, FloatSpecialValuesInBinaryOps) {
  KILN_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> va = {nan, 1, inf, -inf, 0, -0.0, 5, -5, 7.5, -7.5};
  const std::vector<double> vb = {1, nan, inf, 2, 0, 3, -3, 3, -2, 2};
  for (DType dt : {DType::Float32, DType::Float16}) {
    const Tensor a = make_tensor(dt, {10}, va), b = make_tensor(dt, {10}, vb);
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Equal", "Less", "GreaterOrEqual"}) check_op(op, 16, {a, b});
    check_op("Mod", 13, {a, b}, {{"fmod", int64_t(1)}});
    check_op("Mod", 28, {a, b});
    for (const char* op : {"Max", "Min"}) check_op(op, 13, {a, b});
  }
}

// ---- variadic -------------------------------------------------------------------------------------------------------
TEST(CudaElementwise, VariadicOpsBroadcastOverEveryInput) {
  KILN_REQUIRE_CUDA();
  const std::vector<std::vector<Shape>> shape_sets = {
      {{1001}},                                    // one input
      {{3, 67}, {3, 67}, {3, 67}},                 // same shapes
      {{2, 3, 4}, {3, 4}, {1}, {2, 1, 4}},         // broadcast mix
      {{4, 64}, {64}, {4, 1}, {}, {4, 64}},        // row, column, scalar
      {{2, 3, 8, 8}, {3, 1, 1}, {2, 3, 8, 8}},     // per channel
  };
  uint32_t seed = 200;
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    const bool ints = std::string(op) == "Max" || std::string(op) == "Min";
    std::vector<DType> types = kFloatTypes;
    if (ints) types.insert(types.end(), kIntTypes.begin(), kIntTypes.end());
    for (DType dt : types)
      for (const auto& shapes : shape_sets) {
        std::vector<In> in;
        for (const Shape& s : shapes) in.emplace_back(rand_tensor(dt, s, seed++));
        check_op(op, 13, in);
      }
  }
  // Sixteen inputs (the kernel's limit), and a misaligned run.
  std::vector<In> many;
  for (int i = 0; i < 16; ++i) many.emplace_back(rand_tensor(DType::Float32, i % 2 ? Shape{5, 33} : Shape{33}, seed++));
  check_op("Sum", 13, many);
  check_op("Mean", 13, many);
  check_op("Max", 13, {rand_tensor(DType::Float16, {3, 40}, seed++), rand_tensor(DType::Float16, {3, 40}, seed++)}, {},
           1, true);
  check_op("Max", 8, {rand_tensor(DType::Float32, {3, 5}, seed++), rand_tensor(DType::Float32, {5}, seed++)});
}

TEST(CudaElementwise, WhereEveryElementSizeAndBroadcast) {
  KILN_REQUIRE_CUDA();
  struct Triple {
    Shape c, x, y;
  };
  const std::vector<Triple> shapes = {
      {{1001}, {1001}, {1001}}, {{2, 3, 64}, {2, 3, 64}, {2, 3, 64}}, {{2, 1, 5}, {2, 4, 5}, {}},
      {{4, 33}, {33}, {4, 1}},  {{}, {3, 7}, {3, 7}},                  {{2, 3, 8, 8}, {3, 1, 1}, {2, 3, 8, 8}},
  };
  uint32_t seed = 300;
  for (DType dt : kAllTypes)
    for (const Triple& t : shapes)
      check_op("Where", 16, {rand_tensor(DType::Bool, t.c, seed++), rand_tensor(dt, t.x, seed++),
                             rand_tensor(dt, t.y, seed++)});
  check_op("Where", 16, {rand_tensor(DType::Bool, {3, 40}, seed++), rand_tensor(DType::Float32, {3, 40}, seed++),
                         rand_tensor(DType::Float32, {3, 40}, seed++)},
           {}, 1, true);
}

}  // namespace
}  // namespace kiln::test_cuda_ew
#endif  // KILN_WITH_CUDA
