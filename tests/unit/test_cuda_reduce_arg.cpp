// CUDA ArgMax / ArgMin, CumSum and TopK against the CPU reference: every dtype each takes, contiguous and strided
// axes, keepdims, select_last_index with ties, exclusive / reverse, largest / smallest, K from the input, long axes
// (TopK in tiles). Skips without a CUDA device.
#if KILN_WITH_CUDA
#include "cuda_red_test_util.h"

namespace kiln {
namespace {

using test_cured::check_op;
using test_cured::rand_of;
using test_ops::Attrs;
using test_ops::Const;
using test_ops::i64;
using test_ops::In;

const std::vector<DType> kNumeric = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                                     DType::Int32,   DType::Int16,   DType::Int8,     DType::UInt8};

TEST(CudaArg, ArgMaxArgMinEveryType) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  struct C {
    Shape x;
    int64_t axis;
  };
  const std::vector<C> cases = {{{5, 37}, -1}, {{3, 4, 6}, 1}, {{6, 3}, 0}, {{2, 5000}, 1}, {{4, 1}, 1}};
  uint32_t seed = 1;
  for (const char* op : {"ArgMax", "ArgMin"})
    for (DType dt : kNumeric)
      for (const C& c : cases)
        for (int64_t keep : {0, 1})
          for (int64_t last : {0, 1}) {
            SCOPED_TRACE(std::string(op) + " " + dtype_name(dt) + " " + shape_str(c.x) + " axis " +
                         std::to_string(c.axis) + " last " + std::to_string(last));
            // Integers in [-3, 3]: many ties, so select_last_index matters.
            check_op(op, 13, {rand_of(dt, c.x, seed++, 3.0)},
                     {{"axis", c.axis}, {"keepdims", keep}, {"select_last_index", last}});
          }
}

TEST(CudaArg, ArgMaxFirstNaNWins) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  std::vector<float> v(3 * 100, 0.25f);
  v[10] = std::nanf(""), v[20] = std::nanf("");  // row 0: two NaNs
  v[100 + 50] = 7.0f;                            // row 1: a clear max
  v[200 + 99] = std::nanf("");                   // row 2: NaN last
  for (const char* op : {"ArgMax", "ArgMin"})
    for (int64_t last : {0, 1})
      check_op(op, 13, {test_ops::f32({3, 100}, v)}, {{"axis", int64_t(1)}, {"select_last_index", last}});
}

TEST(CudaArg, CumSum) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  struct C {
    Shape x;
    int64_t axis;
  };
  const std::vector<C> cases = {{{3, 10}, 1}, {{2, 3000}, -1}, {{4, 5, 6}, 1}, {{7, 3}, 0}, {{1, 1}, 0}};
  uint32_t seed = 30;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32})
    for (const C& c : cases)
      for (int64_t exclusive : {0, 1})
        for (int64_t reverse : {0, 1}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x) + " axis " + std::to_string(c.axis) +
                       " exclusive " + std::to_string(exclusive) + " reverse " + std::to_string(reverse));
          check_op("CumSum", 14, {rand_of(dt, c.x, seed++), Const(i64({}, {c.axis}))},
                   {{"exclusive", exclusive}, {"reverse", reverse}});
        }
  // Axis as a one-element 1-D int32 tensor computed at run time (read back from the device), opset 11.
  check_op("CumSum", 11, {rand_of(DType::Float32, {3, 4}, 5), In(test_ops::i32({1}, {-1}))});
}

TEST(CudaArg, TopK) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  struct C {
    Shape x;
    int64_t axis, k;
  };
  const std::vector<C> cases = {{{4, 37}, -1, 5},  {{3, 8, 5}, 1, 8},    {{2, 4096}, 1, 100},
                                {{2, 10000}, 1, 17}, {{2, 9000, 2}, 1, 2000}, {{3, 6}, 0, 0}};
  uint32_t seed = 60;
  for (DType dt : kNumeric)
    for (const C& c : cases)
      for (int64_t largest : {0, 1}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x) + " k " + std::to_string(c.k) + " largest " +
                     std::to_string(largest));
        // Integers in [-5, 5]: ties broken by the lower index.
        check_op("TopK", 11, {rand_of(dt, c.x, seed++, 5.0), Const(i64({1}, {c.k}))},
                 {{"axis", c.axis}, {"largest", largest}, {"sorted", int64_t(1)}}, 2);
      }
  // Opset 1: k as an attribute; values only.
  check_op("TopK", 1, {rand_of(DType::Float32, {3, 20}, 9)}, {{"k", int64_t(4)}}, 1);
}

TEST(CudaArg, TopKNaNIsLargest) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  std::vector<float> v = {1.f, std::nanf(""), 3.f, -2.f, std::nanf(""), 3.f, 0.f, 5.f};
  for (int64_t largest : {0, 1})
    check_op("TopK", 11, {test_ops::f32({1, 8}, v), Const(i64({1}, {8}))}, {{"largest", largest}}, 2);
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
