// ReduceSum / ReduceMean: attribute vs input axes per opset, keepdims, noop_with_empty_axes.
#include <cmath>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;

// x[i][j][k] = i*100 + j*10 + k over [2, 3, 4].
Tensor cube() {
  std::vector<float> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) v.push_back(static_cast<float>(i * 100 + j * 10 + k));
  return f32({2, 3, 4}, v);
}

TEST(OpsReduce, SumAttributeFormBeforeOpset13) {
  Tensor x = cube();
  // Over axis 1, kept: sum_j (i*100 + j*10 + k) = 3*(i*100 + k) + 30.
  Tensor y = run1("ReduceSum", 11, {x}, {{"axes", Ints{1}}});
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) want.push_back(3 * (i * 100 + k) + 30);
  expect_tensor(y, DType::Float32, {2, 1, 4}, want);
  expect_tensor(run1("ReduceSum", 11, {x}, {{"axes", Ints{-1}}, {"keepdims", int64_t(0)}}), DType::Float32, {2, 3},
                {6, 46, 86, 406, 446, 486});
  double total = 0;
  for (double v : values(x)) total += v;
  expect_tensor(run1("ReduceSum", 1, {x}), DType::Float32, {1, 1, 1}, {total});
  expect_tensor(run1("ReduceSum", 11, {x}, {{"keepdims", int64_t(0)}}), DType::Float32, {}, {total});
  expect_tensor(run1("ReduceSum", 11, {x}, {{"axes", Ints{0, 2}}, {"keepdims", int64_t(0)}}), DType::Float32, {3},
                {412, 492, 572});
}

TEST(OpsReduce, SumInputFormFromOpset13) {
  Tensor x = cube();
  expect_tensor(run1("ReduceSum", 13, {x, Const(i64({1}, {-1}))}, {{"keepdims", int64_t(0)}}), DType::Float32, {2, 3},
                {6, 46, 86, 406, 446, 486});
  expect_tensor(run1("ReduceSum", 13, {x, i64({2}, {0, 2})}), DType::Float32, {1, 3, 1}, {412, 492, 572});
  // No axes: reduce everything, unless noop_with_empty_axes.
  Tensor all = run1("ReduceSum", 13, {x});
  EXPECT_EQ(all.shape(), (Shape{1, 1, 1}));
  Tensor noop = run1("ReduceSum", 13, {x}, {{"noop_with_empty_axes", int64_t(1)}});
  EXPECT_TRUE(noop.bit_equal(x));
  Tensor noop2 = run1("ReduceSum", 13, {x, i64({0}, {})}, {{"noop_with_empty_axes", int64_t(1)}});
  EXPECT_TRUE(noop2.bit_equal(x));
  EXPECT_EQ(run1("ReduceSum", 13, {x, i64({0}, {})}).shape(), (Shape{1, 1, 1}));
  // The axes attribute is not read from opset 13 on.
  EXPECT_EQ(run1("ReduceSum", 13, {x}, {{"axes", Ints{1}}}).shape(), (Shape{1, 1, 1}));
  // Integers accumulate exactly.
  EXPECT_EQ(ints(run1("ReduceSum", 13, {i64({2, 2}, {int64_t(1) << 60, 1, 2, 3}), i64({1}, {1})})),
            (Ints{(int64_t(1) << 60) + 1, 5}));
}

TEST(OpsReduce, MeanAttributeBefore18InputFrom18) {
  Tensor x = cube();
  std::vector<double> want = {1.5, 11.5, 21.5, 101.5, 111.5, 121.5};
  expect_tensor(run1("ReduceMean", 13, {x}, {{"axes", Ints{2}}, {"keepdims", int64_t(0)}}), DType::Float32, {2, 3}, want);
  expect_tensor(run1("ReduceMean", 18, {x, i64({1}, {2})}, {{"keepdims", int64_t(0)}}), DType::Float32, {2, 3}, want);
  expect_tensor(run1("ReduceMean", 11, {x}, {{"axes", Ints{0, 1, 2}}}), DType::Float32, {1, 1, 1}, {61.5});
  EXPECT_TRUE(run1("ReduceMean", 18, {x}, {{"noop_with_empty_axes", int64_t(1)}}).bit_equal(x));
  // Integer mean truncates.
  EXPECT_EQ(ints(run1("ReduceMean", 13, {i32({2, 2}, {1, 2, 3, 5})}, {{"axes", Ints{1}}})), (Ints{1, 4}));
  // Low precision: accumulate wide, round once.
  Tensor h = run1("ReduceMean", 13, {f16({4}, {0.1f, 0.2f, 0.3f, 0.4f})});
  EXPECT_EQ(h.dtype(), DType::Float16);
  double s = 0;
  for (float e : {0.1f, 0.2f, 0.3f, 0.4f}) s += util::half_to_float(util::float_to_half(e));
  expect_values(h, {util::half_to_float(util::float_to_half(static_cast<float>(s / 4)))}, 0, 0);
  Tensor b = run1("ReduceSum", 13, {bf16({3}, {1, 2, 4})});
  expect_values(b, {7}, 0, 0);
  // Empty reduction: sum 0, mean NaN.
  expect_values(run1("ReduceSum", 13, {f32({0, 2}, {}), i64({1}, {0})}), {0, 0});
  Tensor m = run1("ReduceMean", 13, {f32({0, 2}, {})}, {{"axes", Ints{0}}});
  EXPECT_TRUE(std::isnan(m.at_double(0)));
}

TEST(OpsReduce, InferenceAndBadInputs) {
  auto t = infer_op("ReduceMean", 13, {TV(DType::Float32, {S("B"), S("S"), D(768)})}, {{"axes", Ints{-1}}})[0];
  EXPECT_EQ(type_str(t), "float32[B,S,1]");
  t = infer_op("ReduceSum", 13, {TV(DType::Float32, {S("B"), D(4)}), TConst(i64({1}, {1}))}, {{"keepdims", int64_t(0)}})[0];
  EXPECT_EQ(type_str(t), "float32[B]");
  t = infer_op("ReduceSum", 13, {TV(DType::Float32, {S("B"), D(4)}), TV(DType::Int64, {D(1)})})[0];
  EXPECT_EQ(type_str(t), "float32[?,?]");
  t = infer_op("ReduceSum", 13, {TV(DType::Float32, {S("B"), D(4), D(2)}), TV(DType::Int64, {D(1)})},
               {{"keepdims", int64_t(0)}})[0];
  EXPECT_EQ(type_str(t), "float32[?,?]");
  Tensor x = cube();
  EXPECT_EQ(error_code_of([&] { run1("ReduceSum", 11, {x}, {{"axes", Ints{3}}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ReduceSum", 13, {x, i64({2}, {1, -2})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ReduceSum", 11, {x, i64({1}, {1})}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("ReduceMean", 13, {boolean({1}, {1})}); }), ErrorCode::Unsupported);
}

}  // namespace
}  // namespace kiln::test_ops
