// Elementwise unary / binary / ternary ops against hand-computed or std:: expected values.
#include <cmath>
#include <limits>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

double round_half(double v) { return util::half_to_float(util::float_to_half(static_cast<float>(v))); }
double round_bf16(double v) { return util::bf16_to_float(util::float_to_bf16(static_cast<float>(v))); }

TEST(OpsUnary, ReluFloatAndInt) {
  expect_tensor(run1("Relu", 13, {f32({2, 2}, {-1.5f, 0.f, 2.f, -0.f})}), DType::Float32, {2, 2}, {0, 0, 2, 0});
  Tensor r = run1("Relu", 14, {i32({3}, {-3, 0, 7})});
  EXPECT_EQ(r.dtype(), DType::Int32);
  EXPECT_EQ(ints(r), (std::vector<int64_t>{0, 0, 7}));
}

TEST(OpsUnary, MathFunctionsMatchStd) {
  Tensor x = rand_f32({3, 5}, 1);
  std::vector<float> pos;
  for (double v : values(x)) pos.push_back(static_cast<float>(std::abs(v) + 0.1));
  Tensor p = f32({3, 5}, pos);
  struct Case {
    const char* op;
    const Tensor& in;
    double (*fn)(double);
  };
  const Case cases[] = {
      {"Sqrt", p, [](double v) { return std::sqrt(v); }},
      {"Log", p, [](double v) { return std::log(v); }},
      {"Exp", x, [](double v) { return std::exp(v); }},
      {"Tanh", x, [](double v) { return std::tanh(v); }},
      {"Erf", x, [](double v) { return std::erf(v); }},
      {"Sigmoid", x, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
      {"Neg", x, [](double v) { return -v; }},
      {"Abs", x, [](double v) { return std::abs(v); }},
  };
  for (const auto& c : cases) {
    Tensor y = run1(c.op, 13, {c.in});
    std::vector<double> want;
    for (double v : values(c.in)) want.push_back(c.fn(v));
    SCOPED_TRACE(c.op);
    expect_tensor(y, DType::Float32, {3, 5}, want);
  }
}

TEST(OpsUnary, SigmoidIsStableForLargeInputs) {
  Tensor y = run1("Sigmoid", 13, {f32({4}, {-100.f, -30.f, 30.f, 100.f})});
  for (double v : values(y)) EXPECT_FALSE(std::isnan(v));
  expect_values(y, {0, 1.0 / (1.0 + std::exp(30.0)), 1, 1}, 1e-12, 1e-6);
}

TEST(OpsUnary, HalfAndBFloat16RoundBack) {
  std::vector<float> v = {-2.f, -0.5f, 0.25f, 1.f, 3.f};
  Tensor yh = run1("Exp", 13, {f16({5}, v)});
  Tensor yb = run1("Tanh", 13, {bf16({5}, v)});
  Tensor yd = run1("Exp", 13, {f64({5}, {-2, -0.5, 0.25, 1, 3})});
  std::vector<double> wh, wb, wd;
  for (float e : v) {
    wh.push_back(round_half(std::exp(round_half(e))));
    wb.push_back(round_bf16(std::tanh(round_bf16(e))));
    wd.push_back(std::exp(static_cast<double>(e)));
  }
  expect_tensor(yh, DType::Float16, {5}, wh, 0, 0);
  expect_tensor(yb, DType::BFloat16, {5}, wb, 0, 0);
  expect_tensor(yd, DType::Float64, {5}, wd, 0, 1e-15);
}

TEST(OpsUnary, IntegerNegAbsWrap) {
  const int64_t mn = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(ints(run1("Neg", 13, {i64({3}, {mn, -5, 4})})), (std::vector<int64_t>{mn, 5, -4}));
  Tensor a = run1("Abs", 13, {i8({3}, {-128, -7, 9})});
  EXPECT_EQ(a.dtype(), DType::Int8);
  EXPECT_EQ(ints(a), (std::vector<int64_t>{-128, 7, 9}));
  EXPECT_EQ(ints(run1("Abs", 13, {u8({2}, {200, 3})})), (std::vector<int64_t>{200, 3}));
}

TEST(OpsUnary, LeakyReluAlpha) {
  Tensor x = f32({4}, {-2.f, -0.5f, 0.f, 3.f});
  expect_values(run1("LeakyRelu", 16, {x}), {-0.02, -0.005, 0, 3});
  expect_values(run1("LeakyRelu", 6, {x}, {{"alpha", 0.5f}}), {-1, -0.25, 0, 3});
}

TEST(OpsUnary, ClipAttributeFormBeforeOpset11) {
  Tensor x = f32({5}, {-3.f, -1.f, 0.f, 2.f, 9.f});
  expect_values(run1("Clip", 6, {x}, {{"min", -1.5f}, {"max", 2.5f}}), {-1.5, -1, 0, 2, 2.5});
  expect_values(run1("Clip", 6, {x}, {{"max", 0.f}}), {-3, -1, 0, 0, 0});
}

TEST(OpsUnary, ClipInputFormFromOpset11) {
  Tensor x = f32({5}, {-3.f, -1.f, 0.f, 2.f, 9.f});
  expect_values(run1("Clip", 11, {x, f32({}, {-1.f}), f32({}, {1.f})}), {-1, -1, 0, 1, 1});
  expect_values(run1("Clip", 13, {x, Omit(), Const(f32({}, {0.5f}))}), {-3, -1, 0, 0.5, 0.5});
  expect_values(run1("Clip", 13, {x, f32({}, {0.f})}), {0, 0, 0, 2, 9});
  expect_values(run1("Clip", 13, {x}), {-3, -1, 0, 2, 9});
  // min > max: everything becomes max.
  expect_values(run1("Clip", 13, {x, f32({}, {2.f}), f32({}, {1.f})}), {1, 1, 1, 1, 1});
  // NaN propagates; integers clip exactly.
  Tensor n = run1("Clip", 13, {f32({2}, {std::nanf(""), 5.f}), f32({}, {0.f}), f32({}, {1.f})});
  EXPECT_TRUE(std::isnan(n.at_double(0)));
  EXPECT_EQ(ints(run1("Clip", 13, {i32({3}, {-9, 4, 99}), i32({}, {0}), i32({}, {10})})),
            (std::vector<int64_t>{0, 4, 10}));
  EXPECT_EQ(error_code_of([&] { run1("Clip", 13, {x, f32({2}, {0.f, 1.f})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Clip", 13, {x, i32({}, {0})}); }), ErrorCode::InvalidModel);
}

TEST(OpsUnary, CastBetweenDtypes) {
  Tensor x = f32({5}, {-2.7f, -0.5f, 0.f, 1.9f, 300.f});
  EXPECT_EQ(ints(run1("Cast", 13, {x}, {{"to", int64_t(6)}})), (std::vector<int64_t>{-2, 0, 0, 1, 300}));
  Tensor b = run1("Cast", 13, {x}, {{"to", int64_t(9)}});
  EXPECT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(ints(b), (std::vector<int64_t>{1, 1, 0, 1, 1}));
  Tensor h = run1("Cast", 13, {f32({2}, {0.1f, 65504.f})}, {{"to", int64_t(10)}});
  EXPECT_EQ(h.dtype(), DType::Float16);
  expect_values(h, {round_half(0.1), 65504});
  Tensor bf = run1("Cast", 13, {f32({1}, {1.00390625f})}, {{"to", int64_t(16)}});
  expect_values(bf, {1.0}, 0, 0);  // ties to even
  Tensor back = run1("Cast", 13, {h}, {{"to", int64_t(1)}});
  expect_tensor(back, DType::Float32, {2}, {round_half(0.1), 65504}, 0, 0);
  const int64_t big = (int64_t(1) << 53) + 1;
  Tensor i = run1("Cast", 13, {i64({2}, {big, -3})}, {{"to", int64_t(6)}});
  EXPECT_EQ(ints(i), (std::vector<int64_t>{static_cast<int32_t>(big), -3}));
  EXPECT_EQ(ints(run1("Cast", 13, {boolean({2}, {1, 0})}, {{"to", int64_t(7)}})), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(ints(run1("Cast", 13, {f32({2}, {1000.f, -1000.f})}, {{"to", int64_t(3)}})),
            (std::vector<int64_t>{127, -128}));  // saturates instead of UB
  Tensor same = f32({1}, {4.f});
  EXPECT_TRUE(run1("Cast", 13, {same}, {{"to", int64_t(1)}}).bit_equal(same));
  EXPECT_EQ(error_code_of([&] { run1("Cast", 13, {x}, {{"to", int64_t(8)}}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { run1("Cast", 13, {x}, {{"to", int64_t(99)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Cast", 13, {x}); }), ErrorCode::InvalidModel);
}

TEST(OpsUnary, InferenceKeepsSymbols) {
  auto t = infer_op("Relu", 14, {TV(DType::Float32, {S("batch"), D(3), U()})})[0];
  EXPECT_EQ(type_str(t), "float32[batch,3,?]");
  auto c = infer_op("Cast", 13, {TV(DType::Float16, {S("n")})}, {{"to", int64_t(1)}})[0];
  EXPECT_EQ(type_str(c), "float32[n]");
  auto u = infer_op("Exp", 13, {TUnknownRank(DType::Float32)})[0];
  EXPECT_FALSE(u.has_rank);
}

TEST(OpsUnary, BadInputs) {
  EXPECT_EQ(error_code_of([] { run1("Sqrt", 13, {i32({1}, {4})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] { run1("Relu", 14, {boolean({1}, {1})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] { run1("Relu", 14, {f32({1}, {1.f}), f32({1}, {1.f})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("Relu", 14, {}); }), ErrorCode::InvalidModel);
}

// ---- binary -----------------------------------------------------------------------------------------

TEST(OpsBinary, AddBroadcasting) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor(run1("Add", 14, {a, f32({3}, {10, 20, 30})}), DType::Float32, {2, 3}, {11, 22, 33, 14, 25, 36});
  expect_tensor(run1("Add", 14, {a, f32({}, {0.5f})}), DType::Float32, {2, 3}, {1.5, 2.5, 3.5, 4.5, 5.5, 6.5});
  // [2,1,3] + [4,1] -> [2,4,3]
  Tensor b = f32({4, 1}, {100, 200, 300, 400});
  Tensor y = run1("Add", 14, {a.reshaped({2, 1, 3}), b});
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 3; ++k)
        EXPECT_EQ(y.at_double((i * 4 + j) * 3 + k), a.at_double(i * 3 + k) + b.at_double(j));
  // Constant second operand, same result.
  expect_values(run1("Add", 7, {a, Const(f32({2, 1}, {1, 2}))}), {2, 3, 4, 6, 7, 8});
  // Zero-size broadcast.
  EXPECT_EQ(run1("Add", 14, {f32({0, 3}, {}), f32({1, 3}, {1, 2, 3})}).shape(), (Shape{0, 3}));
}

TEST(OpsBinary, SubMulDivFloat) {
  Tensor a = f32({2, 2}, {1, -2, 3, 8});
  Tensor b = f32({2}, {2, -4});
  expect_values(run1("Sub", 14, {a, b}), {-1, 2, 1, 12});
  expect_values(run1("Mul", 14, {a, b}), {2, 8, 6, -32});
  expect_values(run1("Div", 14, {a, b}), {0.5, 0.5, 1.5, -2});
  Tensor inf = run1("Div", 14, {f32({1}, {1.f}), f32({1}, {0.f})});
  EXPECT_EQ(inf.at_double(0), kInf);
}

TEST(OpsBinary, IntegerArithmetic) {
  EXPECT_EQ(ints(run1("Div", 14, {i64({4}, {-7, 7, 9, -9}), i64({4}, {2, 2, -4, -4})})),
            (std::vector<int64_t>{-3, 3, -2, 2}));
  EXPECT_EQ(ints(run1("Sub", 14, {i32({2}, {5, -3}), i32({1}, {10})})), (std::vector<int64_t>{-5, -13}));
  const int32_t mx = std::numeric_limits<int32_t>::max();
  EXPECT_EQ(ints(run1("Add", 14, {i32({1}, {mx}), i32({1}, {1})})),
            (std::vector<int64_t>{std::numeric_limits<int32_t>::min()}));
  EXPECT_EQ(ints(run1("Mul", 14, {u8({2}, {16, 3}), u8({2}, {17, 5})})), (std::vector<int64_t>{16, 15}));
  const int64_t mn = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(ints(run1("Div", 14, {i64({1}, {mn}), i64({1}, {-1})})), (std::vector<int64_t>{mn}));
  EXPECT_EQ(error_code_of([] { run1("Div", 14, {i32({2}, {1, 2}), i32({2}, {1, 0})}); }),
            ErrorCode::InvalidArgument);
}

TEST(OpsBinary, HalfAndBFloat16) {
  Tensor y = run1("Mul", 14, {f16({3}, {0.1f, 3.f, -2.f}), f16({1}, {0.3f})});
  EXPECT_EQ(y.dtype(), DType::Float16);
  std::vector<double> want;
  for (float v : {0.1f, 3.f, -2.f}) want.push_back(round_half(round_half(v) * round_half(0.3)));
  expect_values(y, want, 0, 0);
  Tensor z = run1("Add", 14, {bf16({2}, {1.f, 256.f}), bf16({2}, {0.00390625f, 1.f})});
  EXPECT_EQ(z.dtype(), DType::BFloat16);
  expect_values(z, {1.0, 256.0}, 0, 0);  // bf16 has 8 significant bits
  Tensor f = run1("Sub", 14, {f64({1}, {1e-20}), f64({1}, {1.0})});
  expect_values(f, {1e-20 - 1.0}, 0, 0);
}

TEST(OpsBinary, PowMixedTypes) {
  expect_values(run1("Pow", 15, {f32({3}, {2, 4, 9}), f32({1}, {0.5f})}), {std::sqrt(2.0), 2, 3});
  expect_values(run1("Pow", 15, {f32({3}, {2, -3, 5}), i64({3}, {3, 2, 0})}), {8, 9, 1});
  Tensor ip = run1("Pow", 15, {i64({3}, {2, 3, -2}), i64({1}, {3})});
  EXPECT_EQ(ip.dtype(), DType::Int64);
  EXPECT_EQ(ints(ip), (std::vector<int64_t>{8, 27, -8}));
  Tensor hp = run1("Pow", 13, {f16({2}, {1.5f, 2.f}), f32({1}, {2.f})});
  EXPECT_EQ(hp.dtype(), DType::Float16);
  expect_values(hp, {2.25, 4}, 0, 0);
  EXPECT_EQ(error_code_of([] { run1("Pow", 15, {i8({1}, {2}), i8({1}, {2})}); }), ErrorCode::Unsupported);
}

TEST(OpsBinary, Comparisons) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({3}, {2, 2, 7});
  Tensor lt = run1("Less", 13, {a, b});
  EXPECT_EQ(lt.dtype(), DType::Bool);
  EXPECT_EQ(ints(lt), (std::vector<int64_t>{1, 0, 1, 0, 0, 1}));
  EXPECT_EQ(ints(run1("Greater", 13, {a, b})), (std::vector<int64_t>{0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(ints(run1("Equal", 13, {a, b})), (std::vector<int64_t>{0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(ints(run1("Equal", 11, {i64({3}, {1, 2, 3}), i64({}, {2})})), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(ints(run1("Equal", 13, {boolean({2}, {1, 0}), boolean({2}, {1, 1})})), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(ints(run1("Greater", 13, {f16({2}, {1.f, -1.f}), f16({2}, {0.5f, 0.5f})})), (std::vector<int64_t>{1, 0}));
  Tensor nan = f32({1}, {std::nanf("")});
  EXPECT_EQ(ints(run1("Equal", 13, {nan, nan})), (std::vector<int64_t>{0}));
  EXPECT_EQ(error_code_of([] { run1("Less", 13, {boolean({1}, {1}), boolean({1}, {0})}); }), ErrorCode::Unsupported);
}

TEST(OpsBinary, WhereThreeWayBroadcast) {
  Tensor c = boolean({2, 1}, {1, 0});
  Tensor x = f32({1, 3}, {1, 2, 3});
  Tensor y = f32({}, {-1});
  expect_tensor(run1("Where", 16, {c, x, y}), DType::Float32, {2, 3}, {1, 2, 3, -1, -1, -1});
  Tensor wi = run1("Where", 9, {boolean({3}, {0, 1, 0}), i64({3}, {1, 2, 3}), i64({3}, {7, 8, 9})});
  EXPECT_EQ(ints(wi), (std::vector<int64_t>{7, 2, 9}));
  Tensor wh = run1("Where", 16, {boolean({2}, {1, 0}), f16({2}, {0.5f, 1.f}), f16({1}, {2.f})});
  EXPECT_EQ(wh.dtype(), DType::Float16);
  expect_values(wh, {0.5, 2}, 0, 0);
  EXPECT_EQ(error_code_of([&] { run1("Where", 16, {x, x, y}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Where", 16, {c, x, i64({}, {1})}); }), ErrorCode::InvalidModel);
}

TEST(OpsBinary, InferenceWithSymbols) {
  auto t = infer_op("Add", 14, {TV(DType::Float32, {S("batch"), D(1), D(3)}), TV(DType::Float32, {D(4), D(1)})})[0];
  EXPECT_EQ(type_str(t), "float32[batch,4,3]");
  auto same = infer_op("Mul", 14, {TV(DType::Float32, {S("b"), S("s")}), TV(DType::Float32, {S("b"), D(1)})})[0];
  EXPECT_EQ(type_str(same), "float32[b,s]");
  auto diff = infer_op("Sub", 14, {TV(DType::Float32, {S("a")}), TV(DType::Float32, {S("b")})})[0];
  EXPECT_EQ(type_str(diff), "float32[?]");
  auto cmp = infer_op("Less", 13, {TV(DType::Int64, {S("n")}), TV(DType::Int64, {})})[0];
  EXPECT_EQ(type_str(cmp), "bool[n]");
  EXPECT_FALSE(infer_op("Add", 14, {TUnknownRank(DType::Float32), TV(DType::Float32, {D(2)})})[0].has_rank);
  auto w = infer_op("Where", 16, {TV(DType::Bool, {S("n"), D(1)}), TV(DType::Int32, {D(5)}), TV(DType::Int32, {})})[0];
  EXPECT_EQ(type_str(w), "int32[n,5]");
}

TEST(OpsBinary, BadInputs) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(error_code_of([&] { run1("Add", 14, {a, f32({2}, {1, 2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Add", 14, {a, f64({1}, {1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Add", 14, {a}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Mul", 14, {boolean({1}, {1}), boolean({1}, {1})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([] {
              infer_op("Add", 14, {TV(DType::Float32, {D(2), D(3)}), TV(DType::Float32, {D(4)})});
            }),
            ErrorCode::InvalidModel);
}

}  // namespace
}  // namespace kiln::test_ops
