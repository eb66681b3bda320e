// Gemm and MatMul against a plain double-precision matrix product written here.
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

// C[m,n] = sum_k A[m,k] B[k,n] for row-major data at the given offsets.
std::vector<double> mm(const Tensor& a, int64_t a_off, const Tensor& b, int64_t b_off, int64_t M, int64_t K, int64_t N,
                       bool ta = false, bool tb = false) {
  std::vector<double> y;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += a.at_double(a_off + (ta ? k * M + i : i * K + k)) * b.at_double(b_off + (tb ? j * K + k : k * N + j));
      y.push_back(s);
    }
  return y;
}

TEST(OpsGemm, AlphaBetaTransposesAndBroadcastC) {
  Tensor a = rand_f32({3, 4}, 1), b = rand_f32({4, 5}, 2);
  auto ab = mm(a, 0, b, 0, 3, 4, 5);
  Tensor c5 = rand_f32({5}, 3);
  std::vector<double> want;
  for (size_t i = 0; i < ab.size(); ++i) want.push_back(0.5 * ab[i] + 2.0 * c5.at_double(static_cast<int64_t>(i % 5)));
  expect_tensor(run1("Gemm", 13, {a, b, c5}, {{"alpha", 0.5f}, {"beta", 2.f}}), DType::Float32, {3, 5}, want);
  // C of shape [3,1] and scalar C.
  Tensor c31 = rand_f32({3, 1}, 4);
  want.clear();
  for (size_t i = 0; i < ab.size(); ++i) want.push_back(ab[i] + c31.at_double(static_cast<int64_t>(i / 5)));
  expect_values(run1("Gemm", 11, {a, b, Const(c31)}), want);
  want.clear();
  for (double v : ab) want.push_back(v - 1.0);
  expect_values(run1("Gemm", 11, {a, b, f32({}, {-1.f})}), want);
  // No C (opset >= 11).
  expect_values(run1("Gemm", 11, {a, b}), ab);
  // transA / transB.
  Tensor at = rand_f32({4, 3}, 5), bt = rand_f32({5, 4}, 6);
  expect_tensor(run1("Gemm", 13, {at, bt}, {{"transA", int64_t(1)}, {"transB", int64_t(1)}}), DType::Float32, {3, 5},
                mm(at, 0, bt, 0, 3, 4, 5, true, true));
  expect_values(run1("Gemm", 13, {a, bt}, {{"transB", int64_t(1)}}), mm(a, 0, bt, 0, 3, 4, 5, false, true));
}

TEST(OpsGemm, OtherDtypes) {
  Tensor ai = i32({2, 2}, {1, 2, 3, 4}), bi = i32({2, 2}, {5, 6, 7, 8});
  Tensor yi = run1("Gemm", 13, {ai, bi, i32({2}, {100, 200})});
  EXPECT_EQ(yi.dtype(), DType::Int32);
  EXPECT_EQ(ints(yi), (std::vector<int64_t>{119, 222, 143, 250}));
  Tensor yh = run1("Gemm", 13, {f16({1, 2}, {0.5f, 0.25f}), f16({2, 1}, {2.f, 4.f})});
  EXPECT_EQ(yh.dtype(), DType::Float16);
  expect_values(yh, {2.0}, 0, 0);
  Tensor yd = run1("Gemm", 13, {f64({1, 2}, {1e-10, 1.0}), f64({2, 1}, {1.0, 1.0})}, {{"alpha", 2.f}});
  expect_values(yd, {2.0 + 2e-10}, 0, 1e-15);
}

TEST(OpsGemm, InferenceAndBadInputs) {
  auto t = infer_op("Gemm", 13, {TV(DType::Float32, {S("N"), D(2048)}), TV(DType::Float32, {D(1000), D(2048)}),
                                 TV(DType::Float32, {D(1000)})},
                    {{"transB", int64_t(1)}})[0];
  EXPECT_EQ(type_str(t), "float32[N,1000]");
  Tensor a = rand_f32({3, 4}, 1), b = rand_f32({4, 5}, 2);
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 13, {a, a}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 13, {a, b, rand_f32({4}, 3)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 9, {a, b}); }), ErrorCode::InvalidModel);  // C required before 11
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 13, {rand_f32({3, 4, 1}, 1), b}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 13, {a, f64({4, 1}, {1, 2, 3, 4})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Gemm", 13, {boolean({1, 1}, {1}), boolean({1, 1}, {1})}); }),
            ErrorCode::Unsupported);
}

TEST(OpsMatMul, TwoDimensionalAndBatchBroadcast) {
  Tensor a = rand_f32({3, 4}, 10), b = rand_f32({4, 2}, 11);
  expect_tensor(run1("MatMul", 13, {a, b}), DType::Float32, {3, 2}, mm(a, 0, b, 0, 3, 4, 2));
  // [2,1,3,4] x [5,4,2] -> [2,5,3,2]
  Tensor ba = rand_f32({2, 1, 3, 4}, 12), bb = rand_f32({5, 4, 2}, 13);
  Tensor y = run1("MatMul", 13, {ba, bb});
  ASSERT_EQ(y.shape(), (Shape{2, 5, 3, 2}));
  std::vector<double> want;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      auto part = mm(ba, i * 12, bb, j * 8, 3, 4, 2);
      want.insert(want.end(), part.begin(), part.end());
    }
  expect_values(y, want);
  // Weights shared across the batch (typical linear layer): [2,3,4] x [4,2].
  Tensor y2 = run1("MatMul", 13, {ba.reshaped({2, 3, 4}), Const(b)});
  want.clear();
  for (int64_t i = 0; i < 2; ++i) {
    auto part = mm(ba, i * 12, b, 0, 3, 4, 2);
    want.insert(want.end(), part.begin(), part.end());
  }
  expect_tensor(y2, DType::Float32, {2, 3, 2}, want);
}

TEST(OpsMatMul, OneDimensionalOperands) {
  Tensor v = f32({3}, {1, 2, 3});
  Tensor m = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  expect_tensor(run1("MatMul", 13, {v, m}), DType::Float32, {2}, {22, 28});
  expect_tensor(run1("MatMul", 13, {f32({2, 3}, {1, 0, 1, 0, 1, 0}), v}), DType::Float32, {2}, {4, 2});
  expect_tensor(run1("MatMul", 13, {v, v}), DType::Float32, {}, {14});
  // [3] x [2,3,2] -> [2,2]
  Tensor bm = f32({2, 3, 2}, {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6});
  expect_tensor(run1("MatMul", 13, {v, bm}), DType::Float32, {2, 2}, {22, 28, -22, -28});
  // [2,2,3] x [3] -> [2,2]
  expect_tensor(run1("MatMul", 13, {bm.reshaped({2, 2, 3}), v}), DType::Float32, {2, 2}, {14, 32, -14, -32});
}

TEST(OpsMatMul, OtherDtypes) {
  Tensor yi = run1("MatMul", 13, {i64({1, 2}, {3, -4}), i64({2, 1}, {5, 6})});
  EXPECT_EQ(yi.dtype(), DType::Int64);
  EXPECT_EQ(ints(yi), (std::vector<int64_t>{-9}));
  Tensor yh = run1("MatMul", 13, {f16({1, 3}, {0.1f, 0.2f, 0.3f}), f16({3, 1}, {1.f, 1.f, 1.f})});
  EXPECT_EQ(yh.dtype(), DType::Float16);
  double s = 0;
  for (float e : {0.1f, 0.2f, 0.3f}) s += util::half_to_float(util::float_to_half(e));
  expect_values(yh, {util::half_to_float(util::float_to_half(static_cast<float>(s)))}, 0, 0);
  Tensor yb = run1("MatMul", 13, {bf16({1, 2}, {1.f, 2.f}), bf16({2, 1}, {3.f, 4.f})});
  EXPECT_EQ(yb.dtype(), DType::BFloat16);
  expect_values(yb, {11}, 0, 0);
}

TEST(OpsMatMul, InferenceAndBadInputs) {
  auto t = infer_op("MatMul", 13, {TV(DType::Float32, {S("B"), S("S"), D(768)}), TV(DType::Float32, {D(768), D(3072)})})[0];
  EXPECT_EQ(type_str(t), "float32[B,S,3072]");
  auto q = infer_op("MatMul", 13, {TV(DType::Float32, {S("B"), D(12), S("S"), D(64)}),
                                   TV(DType::Float32, {S("B"), D(12), D(64), S("S")})})[0];
  EXPECT_EQ(type_str(q), "float32[B,12,S,S]");
  auto v = infer_op("MatMul", 13, {TV(DType::Float32, {D(4)}), TV(DType::Float32, {U(), D(4), D(2)})})[0];
  EXPECT_EQ(type_str(v), "float32[?,2]");
  EXPECT_EQ(error_code_of([] { run1("MatMul", 13, {rand_f32({2, 3}, 1), rand_f32({2, 3}, 2)}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("MatMul", 13, {rand_f32({2, 2, 3}, 1), rand_f32({3, 3, 1}, 2)}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("MatMul", 13, {f32({}, {1}), rand_f32({1, 1}, 2)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { run1("MatMul", 13, {rand_f32({2, 2}, 1), i64({2, 2}, {1, 2, 3, 4})}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([] { infer_op("MatMul", 13, {TV(DType::Float32, {D(2), D(3)}), TV(DType::Float32, {D(4), U()})}); }),
            ErrorCode::InvalidModel);
}

}  // namespace
}  // namespace kiln::test_ops
