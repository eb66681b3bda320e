// Pooling ops against hand-computed windows.
#include <cmath>

#include "test_ops_util.h"

namespace kiln::test_ops {
namespace {

using Ints = std::vector<int64_t>;

// 4x4 plane with distinct maxima per 2x2 block.
const std::vector<float> kPlane = {1, 5, 2, 0, 3, 4, 8, 7, 9, 6, 1, 2, 0, 3, 5, 4};

Tensor two_planes() {
  std::vector<float> v = kPlane;
  for (float e : kPlane) v.push_back(e + 100);
  return f32({1, 2, 4, 4}, v);
}

TEST(OpsPool, MaxPoolWithIndices) {
  auto out = run_op("MaxPool", 12, {two_planes()},
                    {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, 2);
  expect_tensor(out[0], DType::Float32, {1, 2, 2, 2}, {5, 8, 9, 5, 105, 108, 109, 105});
  EXPECT_EQ(out[1].dtype(), DType::Int64);
  EXPECT_EQ(ints(out[1]), (Ints{1, 6, 8, 14, 17, 22, 24, 30}));
  // storage_order 1: column-major spatial index (h + w * H), plus the plane offset.
  auto col = run_op("MaxPool", 12, {two_planes()},
                    {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"storage_order", int64_t(1)}}, 2);
  EXPECT_EQ(ints(col[1]), (Ints{4, 9, 2, 11, 20, 25, 18, 27}));
  // Without the Indices output.
  expect_values(run1("MaxPool", 12, {two_planes()}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}),
                {5, 8, 9, 5, 105, 108, 109, 105});
}

TEST(OpsPool, MaxPoolDilationsAndPads) {
  Tensor x = f32({1, 1, 4, 4}, kPlane);
  expect_tensor(run1("MaxPool", 12, {x}, {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 2}}}), DType::Float32,
                {1, 1, 2, 2}, {9, 6, 8, 7});
  // 3x3, stride 1, pad 1: padding never wins even for all-negative inputs.
  std::vector<float> neg;
  for (float e : kPlane) neg.push_back(-e - 1);
  Tensor y = run1("MaxPool", 12, {f32({1, 1, 4, 4}, neg)}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  // Corner (0,0) sees rows 0-1, cols 0-1: max(-2,-6,-4,-5) = -2.
  EXPECT_EQ(y.at_double(0), -2);
  // Centre (1,1) sees rows 0-2, cols 0-2: min of {1,5,2,3,4,8,9,6,1} is 1 -> -2.
  EXPECT_EQ(y.at_double(5), -2);
  // (3,3) sees rows 2-3, cols 2-3: {1,2,5,4} -> -2.
  EXPECT_EQ(y.at_double(15), -2);
  // (0,3) sees rows 0-1, cols 2-3: {2,0,8,7} -> -1.
  EXPECT_EQ(y.at_double(3), -1);
}

TEST(OpsPool, CeilModeAndAutoPad) {
  Tensor x6 = f32({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  Attrs a = {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}};
  expect_tensor(run1("MaxPool", 12, {x6}, a), DType::Float32, {1, 1, 2}, {3, 5});
  a["ceil_mode"] = int64_t(1);
  expect_tensor(run1("MaxPool", 12, {x6}, a), DType::Float32, {1, 1, 3}, {3, 5, 6});
  // ceil_mode must not create a window that starts in the end padding: in 5, k 2, s 2, pads 1+1 -> 3 (not 4).
  Tensor x5 = f32({1, 1, 5}, {1, 2, 3, 4, 5});
  expect_tensor(run1("MaxPool", 12, {x5}, {{"kernel_shape", Ints{2}}, {"strides", Ints{2}}, {"pads", Ints{1, 1}},
                                           {"ceil_mode", int64_t(1)}}),
                DType::Float32, {1, 1, 3}, {1, 3, 5});
  // SAME_UPPER: out = ceil(5 / 2) = 3, total pad = (3-1)*2 + 2 - 5 = 1, at the end.
  expect_tensor(run1("MaxPool", 12, {x5}, {{"kernel_shape", Ints{2}}, {"strides", Ints{2}},
                                           {"auto_pad", std::string("SAME_UPPER")}}),
                DType::Float32, {1, 1, 3}, {2, 4, 5});
  // SAME_LOWER: the pad goes first.
  expect_tensor(run1("MaxPool", 12, {x5}, {{"kernel_shape", Ints{2}}, {"strides", Ints{2}},
                                           {"auto_pad", std::string("SAME_LOWER")}}),
                DType::Float32, {1, 1, 3}, {1, 3, 5});
  expect_tensor(run1("MaxPool", 12, {x5}, {{"kernel_shape", Ints{2}}, {"strides", Ints{2}},
                                           {"auto_pad", std::string("VALID")}}),
                DType::Float32, {1, 1, 2}, {2, 4});
}

TEST(OpsPool, MaxPoolOtherDtypesAnd3D) {
  Tensor yi = run1("MaxPool", 12, {i8({1, 1, 4}, {-5, -3, 7, -128})}, {{"kernel_shape", Ints{2}}});
  EXPECT_EQ(yi.dtype(), DType::Int8);
  EXPECT_EQ(ints(yi), (Ints{-3, 7, 7}));
  EXPECT_EQ(ints(run1("MaxPool", 12, {u8({1, 1, 3}, {200, 3, 255})}, {{"kernel_shape", Ints{2}}})), (Ints{200, 255}));
  Tensor yh = run1("MaxPool", 12, {f16({1, 1, 3}, {0.1f, -2.f, 0.3f})}, {{"kernel_shape", Ints{2}}});
  EXPECT_EQ(yh.dtype(), DType::Float16);
  expect_values(yh, {util::half_to_float(util::float_to_half(0.1f)), util::half_to_float(util::float_to_half(0.3f))},
                0, 0);
  // 3-D: 2x2x2 window over a 2x2x3 volume of 0..11 -> max is the last corner of each window.
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  auto out = run_op("MaxPool", 12, {f32({1, 1, 2, 2, 3}, v)}, {{"kernel_shape", Ints{2, 2, 2}}}, 2);
  expect_tensor(out[0], DType::Float32, {1, 1, 1, 1, 2}, {10, 11});
  EXPECT_EQ(ints(out[1]), (Ints{10, 11}));
}

TEST(OpsPool, AveragePoolCountIncludePad) {
  Tensor x6 = f32({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  Attrs a = {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}, {"pads", Ints{1, 1}}};
  expect_tensor(run1("AveragePool", 11, {x6}, a), DType::Float32, {1, 1, 3}, {1.5, 3, 5});
  a["count_include_pad"] = int64_t(1);
  expect_tensor(run1("AveragePool", 11, {x6}, a), DType::Float32, {1, 1, 3}, {1, 3, 5});
  // ceil_mode adds a last window [5, 8): one real element, one pad, one overhang.
  a["ceil_mode"] = int64_t(1);
  expect_tensor(run1("AveragePool", 11, {x6}, a), DType::Float32, {1, 1, 4}, {1, 3, 5, 3});
  a["count_include_pad"] = int64_t(0);
  expect_tensor(run1("AveragePool", 11, {x6}, a), DType::Float32, {1, 1, 4}, {1.5, 3, 5, 6});
  // 2-D without pads.
  expect_tensor(run1("AveragePool", 11, {f32({1, 1, 4, 4}, kPlane)}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}),
                DType::Float32, {1, 1, 2, 2}, {13 / 4.0, 17 / 4.0, 18 / 4.0, 12 / 4.0});
  // Dilations from opset 19.
  expect_tensor(run1("AveragePool", 19, {x6}, {{"kernel_shape", Ints{2}}, {"dilations", Ints{3}}}), DType::Float32,
                {1, 1, 3}, {2.5, 3.5, 4.5});
  Tensor bh = run1("AveragePool", 11, {bf16({1, 1, 2}, {1.f, 2.f})}, {{"kernel_shape", Ints{2}}});
  EXPECT_EQ(bh.dtype(), DType::BFloat16);
  expect_values(bh, {1.5}, 0, 0);
}

TEST(OpsPool, GlobalPools) {
  Tensor x = two_planes();
  double s = 0, mx = -1e9;
  for (float e : kPlane) s += e, mx = std::max<double>(mx, e);
  expect_tensor(run1("GlobalAveragePool", 1, {x}), DType::Float32, {1, 2, 1, 1}, {s / 16, s / 16 + 100});
  expect_tensor(run1("GlobalMaxPool", 1, {x}), DType::Float32, {1, 2, 1, 1}, {mx, mx + 100});
  expect_tensor(run1("GlobalAveragePool", 1, {f64({2, 1, 3}, {1, 2, 6, -1, -2, -6})}), DType::Float64, {2, 1, 1},
                {3, -3});
  auto t = infer_op("GlobalAveragePool", 1, {TV(DType::Float16, {S("N"), D(2048), D(7), D(7)})})[0];
  EXPECT_EQ(type_str(t), "float16[N,2048,1,1]");
}

TEST(OpsPool, Inference) {
  auto t = infer_op("MaxPool", 12, {TV(DType::Float32, {S("N"), S("C"), D(112), U()})},
                    {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}, 2);
  EXPECT_EQ(type_str(t[0]), "float32[N,C,56,?]");
  EXPECT_EQ(type_str(t[1]), "int64[N,C,56,?]");
}

TEST(OpsPool, BadInputs) {
  Tensor x = f32({1, 1, 4, 4}, kPlane);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {x}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {x}, {{"kernel_shape", Ints{2}}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {f32({4, 4}, kPlane)}, {{"kernel_shape", Ints{2}}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {x}, {{"kernel_shape", Ints{2, 2}}, {"storage_order", int64_t(2)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {x}, {{"kernel_shape", Ints{5, 5}}}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("MaxPool", 12, {x}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{0, 1}}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("AveragePool", 11, {i32({1, 1, 2}, {1, 2})}, {{"kernel_shape", Ints{2}}}); }),
            ErrorCode::Unsupported);
  EXPECT_EQ(error_code_of([&] { run1("GlobalMaxPool", 1, {f32({2}, {1, 2})}); }), ErrorCode::InvalidModel);
}

}  // namespace
}  // namespace kiln::test_ops
