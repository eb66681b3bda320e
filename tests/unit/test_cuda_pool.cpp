// CUDA pool family against the CPU reference: MaxPool (every dtype it takes, dilations, ceil_mode, auto_pad,
// storage_order and the Indices output), AveragePool (count_include_pad, ceil_mode, dilations), GlobalAveragePool
// and GlobalMaxPool, in 1-D, 2-D and 3-D. Skips without a CUDA device.
#if KILN_WITH_CUDA
#include "cuda_red_test_util.h"

namespace kiln {
namespace {

using test_cured::check_op;
using test_cured::rand_of;
using test_ops::Attrs;

using Ints = std::vector<int64_t>;

struct PoolCase {
  Shape x;
  Attrs attrs;
};

std::vector<PoolCase> window_cases(bool is_max) {
  std::vector<PoolCase> c = {
      {{2, 3, 9, 9}, {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}},
      {{2, 3, 10, 9}, {{"kernel_shape", Ints{3, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t(1)}}},
      {{1, 2, 11, 12}, {{"kernel_shape", Ints{2, 3}}, {"auto_pad", std::string("SAME_UPPER")}}},
      {{1, 2, 11, 12}, {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"auto_pad", std::string("SAME_LOWER")}}},
      {{2, 3, 20}, {{"kernel_shape", Ints{4}}, {"strides", Ints{3}}, {"pads", Ints{2, 1}}}},
      {{1, 2, 5, 6, 7}, {{"kernel_shape", Ints{2, 2, 3}}, {"strides", Ints{1, 2, 2}}, {"pads", Ints{0, 1, 1, 1, 0, 1}}}},
      {{2, 4, 13, 13}, {{"kernel_shape", Ints{3, 3}}, {"dilations", Ints{2, 2}}, {"pads", Ints{2, 2, 2, 2}}}},
  };
  for (PoolCase& pc : c)
    if (!is_max) pc.attrs["count_include_pad"] = int64_t(0);
  return c;
}

TEST(CudaPool, MaxPoolEveryTypeWithIndices) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  uint32_t seed = 1;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8, DType::UInt8})
    for (const PoolCase& c : window_cases(true)) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x));
      check_op("MaxPool", 12, {rand_of(dt, c.x, seed++)}, c.attrs, 2);
      check_op("MaxPool", 22, {rand_of(dt, c.x, seed++)}, c.attrs, 1);
    }
}

TEST(CudaPool, MaxPoolStorageOrderColumnMajor) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  Attrs a = {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"storage_order", int64_t(1)}};
  check_op("MaxPool", 8, {rand_of(DType::Float32, {2, 3, 6, 8}, 5)}, a, 2);
  a["pads"] = Ints{1, 0, 0, 1};
  check_op("MaxPool", 12, {rand_of(DType::Float16, {1, 2, 5, 7}, 6)}, a, 2);
}

TEST(CudaPool, AveragePool) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  uint32_t seed = 100;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64})
    for (PoolCase c : window_cases(false))
      for (int64_t include_pad : {0, 1}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x) + " count_include_pad " +
                     std::to_string(include_pad));
        c.attrs["count_include_pad"] = include_pad;
        // Dilations exist from opset 19.
        check_op("AveragePool", c.attrs.count("dilations") ? 19 : 11, {rand_of(dt, c.x, seed++)}, c.attrs);
      }
}

TEST(CudaPool, GlobalPools) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{2, 3, 7, 7}, {2, 3, 5}, {1, 2, 3, 4, 5}, {1, 64, 128, 128}, {4, 2048, 1, 1}};
  uint32_t seed = 200;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64})
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(s));
      check_op("GlobalAveragePool", 1, {rand_of(dt, s, seed++)});
      check_op("GlobalMaxPool", 1, {rand_of(dt, s, seed++)});
    }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
