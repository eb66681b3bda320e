// CUDA Resize against the reference kernel: nearest (every nearest_mode x coordinate transform, exact, every
// numeric dtype), linear and cubic (every transform, exclude_outside, cubic_coeff_a, antialias, tf_crop_and_resize
// with extrapolation, axes and keep_aspect_ratio_policy, 3-D), scales or sizes, opsets 11 / 13 / 18 / 19.
// Skipped without a CUDA device.
#if KILN_WITH_CUDA
#include "cuda_move_test_util.h"

namespace kiln::cuda_move_test {
namespace test_cuda_resize_cpp {

using test_ops::Const;
using test_ops::f32;
using test_ops::i64;
using test_ops::Omit;
using Ints = std::vector<int64_t>;

const std::vector<std::string> kCoords = {"half_pixel",         "pytorch_half_pixel", "align_corners",
                                          "asymmetric",         "tf_half_pixel_for_nn", "half_pixel_symmetric"};

Attrs attrs(const std::string& mode, const std::string& coord) {
  return {{"mode", mode}, {"coordinate_transformation_mode", coord}};
}

Options tolerant() {
  Options o;
  o.exact = false;
  return o;
}

TEST(CudaResize, NearestEveryRoundingAndTransformIsExact) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float32, {1, 2, 5, 7}, 1);
  const std::vector<std::vector<float>> scales = {{1, 1, 2, 2}, {1, 1, 0.5f, 0.5f}, {1, 1, 1.5f, 0.6f}, {1, 1, 3, 1.7f}};
  for (const std::string& coord : kCoords)
    for (const char* round : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
      Attrs a = attrs("nearest", coord);
      a["nearest_mode"] = std::string(round);
      for (const auto& s : scales) check_op("Resize", 19, {x, Omit(), Const(f32({4}, s))}, a);
      check_op("Resize", 19, {x, Omit(), Omit(), Const(i64({4}, {1, 2, 9, 4}))}, a);
    }
}

TEST(CudaResize, NearestEveryNumericDtype) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 10;
  for (DType dt : all_types()) {
    if (dt == DType::Bool) continue;
    const Tensor x = rand_tensor(dt, {2, 3, 4, 6}, seed++);
    check_op("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 2, 2}))}, attrs("nearest", "asymmetric"));
    check_op("Resize", 11, {x, Const(f32({0}, {})), Const(f32({0}, {})), Const(i64({4}, {2, 3, 3, 11}))},
             attrs("nearest", "half_pixel"));
  }
  // Every axis resized, batch and channels included.
  check_op("Resize", 13, {rand_tensor(DType::UInt8, {2, 3, 4, 4}, 30), Omit(), Const(f32({4}, {2, 0.5f, 1.5f, 1}))},
           attrs("nearest", "half_pixel"));
}

TEST(CudaResize, LinearAndCubicEveryTransform) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float32, {1, 3, 6, 5}, 40);
  for (const char* mode : {"linear", "cubic"})
    for (const std::string& coord : kCoords) {
      const Attrs a = attrs(mode, coord);
      check_op("Resize", 19, {x, Omit(), Const(f32({4}, {1, 1, 2, 2}))}, a, 1, tolerant());
      check_op("Resize", 19, {x, Omit(), Const(f32({4}, {1, 1, 0.5f, 0.7f}))}, a, 1, tolerant());
      check_op("Resize", 19, {x, Omit(), Omit(), Const(i64({4}, {1, 3, 1, 13}))}, a, 1, tolerant());
    }
}

TEST(CudaResize, CubicOptionsAndAntialias) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float32, {2, 2, 9, 8}, 50);
  Attrs a = attrs("cubic", "half_pixel");
  a["cubic_coeff_a"] = -0.5f;
  a["exclude_outside"] = int64_t(1);
  check_op("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 1.7f, 2.3f}))}, a, 1, tolerant());
  check_op("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 0.4f, 0.8f}))}, a, 1, tolerant());
  for (const char* mode : {"linear", "cubic"}) {
    Attrs aa = attrs(mode, "half_pixel");
    aa["antialias"] = int64_t(1);
    check_op("Resize", 18, {x, Omit(), Const(f32({4}, {1, 1, 0.35f, 0.5f}))}, aa, 1, tolerant());  // down: wide taps
    check_op("Resize", 18, {x, Omit(), Const(f32({4}, {1, 1, 1.7f, 0.75f}))}, aa, 1, tolerant());
  }
}

TEST(CudaResize, TfCropAndResizeWithExtrapolation) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float32, {1, 2, 7, 6}, 60);
  for (const char* mode : {"nearest", "linear", "cubic"}) {
    Attrs a = attrs(mode, "tf_crop_and_resize");
    a["extrapolation_value"] = -3.f;
    Options o = tolerant();
    o.exact = std::string(mode) == "nearest";
    check_op("Resize", 13, {x, Const(f32({8}, {0, 0, -0.2f, 0.1f, 1, 1, 1.3f, 0.8f})), Omit(), Const(i64({4}, {1, 2, 5, 9}))}, a,
             1, o);
    // Roi over two axes (18: axes).
    Attrs b = a;
    b["axes"] = Ints{2, 3};
    check_op("Resize", 18, {x, Const(f32({4}, {0.25f, -0.5f, 0.75f, 1.5f})), Omit(), Const(i64({2}, {4, 10}))}, b, 1, o);
  }
}

TEST(CudaResize, AxesAndKeepAspectRatio) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float32, {1, 3, 4, 6}, 70);
  for (const char* policy : {"stretch", "not_larger", "not_smaller"}) {
    Attrs a = attrs("linear", "half_pixel");
    a["axes"] = Ints{2, 3};
    a["keep_aspect_ratio_policy"] = std::string(policy);
    check_op("Resize", 18, {x, Omit(), Omit(), Const(i64({2}, {8, 8}))}, a, 1, tolerant());
    a["mode"] = std::string("nearest");
    check_op("Resize", 18, {x, Omit(), Omit(), Const(i64({2}, {7, 5}))}, a);
  }
  Attrs one = attrs("linear", "align_corners");
  one["axes"] = Ints{-1};
  check_op("Resize", 18, {x, Omit(), Const(f32({1}, {2.5f}))}, one, 1, tolerant());
}

TEST(CudaResize, FloatDtypesAndThreeAxes) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 80;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64}) {
    const Tensor x = rand_tensor(dt, {1, 2, 5, 6}, seed++);
    check_op("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 2, 2}))}, attrs("linear", "half_pixel"), 1, tolerant());
    check_op("Resize", 13, {x, Omit(), Const(f32({4}, {1, 1, 0.6f, 1.5f}))}, attrs("cubic", "asymmetric"), 1, tolerant());
  }
  // Trilinear over D, H, W.
  check_op("Resize", 13, {rand_tensor(DType::Float32, {1, 2, 3, 4, 5}, 90), Omit(), Const(f32({5}, {1, 1, 2, 1.5f, 0.8f}))},
           attrs("linear", "pytorch_half_pixel"), 1, tolerant());
  // A larger image (several waves of blocks).
  check_op("Resize", 13, {rand_tensor(DType::Float16, {2, 8, 40, 56}, 91), Omit(), Const(f32({4}, {1, 1, 2, 2}))},
           attrs("linear", "half_pixel"), 1, tolerant());
}

TEST(CudaResize, ScalesFromARuntimeInput) {
  KILN_REQUIRE_CUDA();
  for (HostIn h : {HostIn::All, HostIn::None}) {
    Options o = tolerant();
    o.host = h;
    o.run_executor = h == HostIn::All;
    check_op("Resize", 13, {rand_tensor(DType::Float32, {1, 1, 4, 4}, 95), Omit(), f32({4}, {1, 1, 1.5f, 2})},
             attrs("linear", "half_pixel"), 1, o);
  }
}

}  // namespace test_cuda_resize_cpp
}  // namespace kiln::cuda_move_test
#endif  // KILN_WITH_CUDA
