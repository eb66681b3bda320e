// BatchNormalization and Softmax against formulas evaluated here in double.
#include <cmath>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

Tensor positive(Shape s, uint32_t seed) {
  std::vector<float> v;
  for (double d : values(rand_f32(s, seed))) v.push_back(static_cast<float>(std::abs(d) + 0.2));
  return f32(std::move(s), v);
}

std::vector<double> bn_expected(const Tensor& x, const Tensor& sc, const Tensor& b, const Tensor& m, const Tensor& v,
                                double eps) {
  const int64_t C = x.shape()[1], inner = x.numel() / (x.shape()[0] * C);
  std::vector<double> out;
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t c = (i / inner) % C;
    out.push_back((x.at_double(i) - m.at_double(c)) / std::sqrt(v.at_double(c) + eps) * sc.at_double(c) + b.at_double(c));
  }
  return out;
}

TEST(OpsNorm, BatchNormalizationOpsets) {
  Tensor x = rand_f32({2, 3, 2, 2}, 1), sc = rand_f32({3}, 2), b = rand_f32({3}, 3), m = rand_f32({3}, 4);
  Tensor v = positive({3}, 5);
  for (int64_t opset : {7, 9, 14, 15}) {
    SCOPED_TRACE(opset);
    Tensor y = run1("BatchNormalization", opset, {x, Const(sc), Const(b), Const(m), Const(v)});
    expect_tensor(y, DType::Float32, x.shape(), bn_expected(x, sc, b, m, v, 1e-5));
  }
  Tensor y = run1("BatchNormalization", 15, {x, sc, b, m, v}, {{"epsilon", 0.5f}});
  expect_values(y, bn_expected(x, sc, b, m, v, 0.5));
  // Rank 2 (N, C) and rank 3.
  Tensor x2 = rand_f32({4, 3}, 6);
  expect_values(run1("BatchNormalization", 15, {x2, sc, b, m, v}), bn_expected(x2, sc, b, m, v, 1e-5));
  Tensor x3 = rand_f32({1, 3, 5}, 7);
  expect_values(run1("BatchNormalization", 15, {x3, sc, b, m, v}), bn_expected(x3, sc, b, m, v, 1e-5));
}

TEST(OpsNorm, BatchNormalizationHalfWithFloatStats) {
  // Opset 15 lets scale/B and mean/var have other float types than X.
  Tensor x = rand_f32({1, 2, 3}, 10);
  std::vector<float> xv;
  for (double d : values(x)) xv.push_back(static_cast<float>(d));
  Tensor xh = f16({1, 2, 3}, xv);
  Tensor sc = f32({2}, {1.5f, -0.5f}), b = f32({2}, {0.25f, 1.f}), m = f32({2}, {0.1f, -0.2f}), v = f32({2}, {0.5f, 2.f});
  Tensor y = run1("BatchNormalization", 15, {xh, sc, b, m, v});
  EXPECT_EQ(y.dtype(), DType::Float16);
  expect_values(y, bn_expected(xh, sc, b, m, v, 1e-5), 2e-3, 2e-3);
}

TEST(OpsNorm, BatchNormalizationBadInputs) {
  Tensor x = rand_f32({2, 3, 2}, 1), p = positive({3}, 2);
  EXPECT_EQ(error_code_of([&] { run1("BatchNormalization", 15, {x, p, p, p, p}, {{"training_mode", int64_t(1)}}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { run_op("BatchNormalization", 15, {x, p, p, p, p}, {}, 3); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { run1("BatchNormalization", 15, {x, p, p, p, positive({4}, 3)}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("BatchNormalization", 15, {x, p, p, p}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("BatchNormalization", 7, {x, p, p, p, p}, {{"spatial", int64_t(0)}}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] {
              infer_op("BatchNormalization", 15,
                       {TV(DType::Float32, {S("N"), D(4)}), TConst(p), TConst(p), TConst(p), TConst(p)});
            }),
            ErrorCode::InvalidModel);
  auto t = infer_op("BatchNormalization", 15,
                    {TV(DType::Float32, {S("N"), D(3), S("H"), U()}), TConst(p), TConst(p), TConst(p), TConst(p)})[0];
  EXPECT_EQ(type_str(t), "float32[N,3,H,?]");
}

// Softmax over groups of `len` elements spaced `inner` apart.
std::vector<double> softmax_expected(const Tensor& x, int64_t outer, int64_t len, int64_t inner) {
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) sum += std::exp(x.at_double((o * len + k) * inner + i));
      for (int64_t k = 0; k < len; ++k) {
        int64_t idx = (o * len + k) * inner + i;
        out[static_cast<size_t>(idx)] = std::exp(x.at_double(idx)) / sum;
      }
    }
  return out;
}

TEST(OpsNorm, SoftmaxOpset13AlongAxis) {
  Tensor x = rand_f32({2, 3, 4}, 20);
  expect_values(run1("Softmax", 13, {x}), softmax_expected(x, 6, 4, 1));
  expect_values(run1("Softmax", 13, {x}, {{"axis", int64_t(1)}}), softmax_expected(x, 2, 3, 4));
  expect_values(run1("Softmax", 13, {x}, {{"axis", int64_t(-3)}}), softmax_expected(x, 1, 2, 12));
}

TEST(OpsNorm, SoftmaxBeforeOpset13CoercesTo2D) {
  Tensor x = rand_f32({2, 3, 4}, 21);
  // Default axis 1: [2, 12] rows.
  expect_values(run1("Softmax", 11, {x}), softmax_expected(x, 2, 12, 1));
  expect_values(run1("Softmax", 1, {x}, {{"axis", int64_t(2)}}), softmax_expected(x, 6, 4, 1));
  expect_values(run1("Softmax", 11, {x}, {{"axis", int64_t(0)}}), softmax_expected(x, 1, 24, 1));
  expect_values(run1("Softmax", 11, {x}, {{"axis", int64_t(-1)}}), softmax_expected(x, 6, 4, 1));
}

TEST(OpsNorm, SoftmaxStableAndLowPrecision) {
  Tensor y = run1("Softmax", 13, {f32({3}, {1000.f, 1001.f, 1002.f})});
  Tensor ref = f32({3}, {0.f, 1.f, 2.f});
  expect_values(y, softmax_expected(ref, 1, 3, 1));
  Tensor yh = run1("Softmax", 13, {f16({2, 2}, {0.5f, -0.5f, 2.f, 2.f})});
  EXPECT_EQ(yh.dtype(), DType::Float16);
  expect_values(yh, softmax_expected(f32({2, 2}, {0.5f, -0.5f, 2.f, 2.f}), 2, 2, 1), 1e-3, 1e-3);
  Tensor yb = run1("Softmax", 13, {bf16({2}, {1.f, 1.f})});
  expect_values(yb, {0.5, 0.5}, 0, 0);
  Tensor yd = run1("Softmax", 13, {f64({2}, {0.0, std::log(3.0)})});
  expect_values(yd, {0.25, 0.75}, 1e-15, 1e-14);
}

TEST(OpsNorm, SoftmaxBadInputs) {
  Tensor x = rand_f32({2, 3}, 22);
  EXPECT_EQ(error_code_of([&] { run1("Softmax", 13, {x}, {{"axis", int64_t(2)}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Softmax", 13, {i32({2}, {1, 2})}); }), ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { infer_op("Softmax", 11, {TV(DType::Float32, {D(2), D(3)})}, {{"axis", int64_t(-3)}}); }),
            ErrorCode::InvalidModel);
  auto t = infer_op("Softmax", 13, {TV(DType::Float32, {S("B"), D(12), S("S"), S("S")})})[0];
  EXPECT_EQ(type_str(t), "float32[B,12,S,S]");
}

}  // namespace
}  // namespace kiln::test_ops
