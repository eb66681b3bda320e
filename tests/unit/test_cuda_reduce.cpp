// CUDA reduce family against the CPU reference: Reduce* (every dtype each takes, row / strided / generic / split
// paths, axes as attribute and as input, keepdims, noop_with_empty_axes, empty reductions) and Softmax /
// LogSoftmax (both axis semantics, short / long / uncached rows, non-last axes). Skips without a CUDA device.
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

struct RedCase {
  Shape shape;
  std::vector<int64_t> axes;  // empty: all
  int64_t keepdims;
};

const std::vector<RedCase>& red_cases() {
  static const std::vector<RedCase> c = {
      {{3, 37}, {1}, 1},           // rows, not a multiple of the pack size
      {{5, 64}, {-1}, 0},          // rows, 16-byte packs
      {{4, 6, 10}, {0}, 1},        // leading axis: strided
      {{4, 6, 10}, {0, 2}, 0},     // two separate reduced blocks: generic
      {{2, 3, 4, 5}, {1, 2}, 1},   // middle block
      {{7, 9}, {}, 1},             // everything
      {{1, 1, 5}, {0, 1}, 0},      // only size-1 dims reduced
      {{3, 70001}, {1}, 0},        // long rows, few of them: split over blocks
      {{40000, 3}, {0}, 1},        // long strided reduction, few outputs: split
      {{3, 0, 4}, {1}, 1},         // empty reduction: the identity
  };
  return c;
}

// Values for op/dtype: products stay near 1, everything else in [-1, 1) (integers in [-10, 10]).
Tensor red_input(const std::string& op, DType dt, const Shape& s, uint32_t seed) {
  if (op != "ReduceProd") return rand_of(dt, s, seed);
  Tensor f = test_ops::rand_f32(s, seed);
  std::vector<float> v(static_cast<size_t>(f.numel()));
  for (int64_t i = 0; i < f.numel(); ++i)
    v[static_cast<size_t>(i)] = dtype_is_float(dt) ? 1.0f + 0.25f * static_cast<float>(f.at_double(i))
                                                  : static_cast<float>(f.at_double(i)) * 0.3f;
  return test_cured::as_dtype(test_ops::f32(s, v), dt);
}

void check_reduce(const std::string& op, int64_t opset, bool axes_input, const std::vector<DType>& dtypes) {
  uint32_t seed = 1;
  for (DType dt : dtypes)
    for (const RedCase& c : red_cases()) {
      const int64_t count = [&] {
        int64_t k = 1;
        for (size_t d = 0; d < c.shape.size(); ++d) {
          bool red = c.axes.empty();
          for (int64_t a : c.axes) red |= (a < 0 ? a + static_cast<int64_t>(c.shape.size()) : a) == int64_t(d);
          if (red) k *= c.shape[d];
        }
        return k;
      }();
      if (op == "ReduceProd" && count > 40) continue;  // products of many values over/underflow
      if ((op == "ReduceSumSquare" || op == "ReduceL2") && dt == DType::Float16 && count > 30000) continue;
      SCOPED_TRACE(op + " opset " + std::to_string(opset) + " " + dtype_name(dt) + " " + shape_str(c.shape));
      std::vector<In> in = {red_input(op, dt, c.shape, seed++)};
      Attrs at = {{"keepdims", c.keepdims}};
      if (axes_input) {
        if (!c.axes.empty()) in.push_back(Const(i64({static_cast<int64_t>(c.axes.size())}, c.axes)));
      } else if (!c.axes.empty()) {
        at["axes"] = c.axes;
      }
      check_op(op, opset, in, at);
    }
}

const std::vector<DType> kSumTypes = {DType::Float32, DType::Float16, DType::BFloat16,
                                      DType::Float64, DType::Int64,   DType::Int32};
const std::vector<DType> kMaxTypes = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                                      DType::Int32,   DType::Int8,    DType::UInt8};

TEST(CudaReduce, SumAxesAttributeAndInput) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  check_reduce("ReduceSum", 11, false, kSumTypes);
  check_reduce("ReduceSum", 13, true, kSumTypes);
}

TEST(CudaReduce, MeanProdL2SumSquare) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  for (const char* op : {"ReduceMean", "ReduceProd", "ReduceL2", "ReduceSumSquare"}) {
    check_reduce(op, 13, false, kSumTypes);
    check_reduce(op, 18, true, kSumTypes);
  }
}

TEST(CudaReduce, MaxMinEveryTypeIncludingBool) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  for (const char* op : {"ReduceMax", "ReduceMin"}) {
    check_reduce(op, 13, false, kMaxTypes);
    check_reduce(op, 20, true, {DType::Float32, DType::Bool});
  }
}

TEST(CudaReduce, MaxPropagatesNaN) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  std::vector<float> v(2 * 300, 0.5f);
  v[7] = std::nanf("");
  v[300 + 299] = std::nanf("");
  for (const char* op : {"ReduceMax", "ReduceMin"}) check_op(op, 13, {test_ops::f32({2, 300}, v)}, {{"axes", std::vector<int64_t>{1}}});
}

TEST(CudaReduce, NoopWithEmptyAxesAndRuntimeAxes) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const Tensor x = rand_of(DType::Float32, {3, 4, 5}, 7);
  // Empty axes: reduce everything, or pass the input through with noop_with_empty_axes.
  check_op("ReduceSum", 13, {x, Const(i64({0}, {}))}, {{"noop_with_empty_axes", int64_t(1)}});
  check_op("ReduceSum", 13, {x, Const(i64({0}, {}))}, {{"noop_with_empty_axes", int64_t(0)}});
  check_op("ReduceMean", 18, {x}, {{"noop_with_empty_axes", int64_t(1)}});
  // Axes computed at run time (not an initializer): read back from the device.
  check_op("ReduceMean", 18, {x, In(i64({2}, {0, -1}))}, {{"keepdims", int64_t(0)}});
}

// ---- Softmax / LogSoftmax ----------------------------------------------------------------------------------------
struct SoftCase {
  Shape shape;
  int64_t opset;
  int64_t axis;  // 99: attribute absent
};

TEST(CudaSoftmax, BothFormsEveryFloatType) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const std::vector<SoftCase> cases = {
      {{4, 10}, 13, -1},       // short rows, not a multiple of the pack size
      {{3, 5, 64}, 13, 99},    // default axis -1, packs, a few threads a row
      {{2, 3000}, 13, 1},      // a block a row
      {{2, 40000}, 13, -1},    // too long for registers: re-read
      {{33, 1}, 13, -1},       // rows of one
      {{2, 5, 6}, 13, 1},      // non-last axis: strided
      {{2, 5, 6}, 11, 1},      // opset < 13: coerced to 2-D at axis 1
      {{3, 4, 5}, 1, 99},      // opset < 13 default axis 1
      {{3, 4, 8}, 11, 0},      // whole tensor one row
  };
  uint32_t seed = 100;
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64})
      for (const SoftCase& c : cases) {
        SCOPED_TRACE(std::string(op) + " opset " + std::to_string(c.opset) + " " + dtype_name(dt) + " " +
                     shape_str(c.shape) + " axis " + std::to_string(c.axis));
        Tensor f = test_ops::rand_f32(c.shape, seed++);
        std::vector<float> v(static_cast<size_t>(f.numel()));
        for (int64_t i = 0; i < f.numel(); ++i) v[static_cast<size_t>(i)] = 6.0f * static_cast<float>(f.at_double(i));
        Attrs at;
        if (c.axis != 99) at["axis"] = c.axis;
        check_op(op, c.opset, {test_cured::as_dtype(test_ops::f32(c.shape, v), dt)}, at);
      }
}

TEST(CudaSoftmax, LargeValuesDoNotOverflowInHalf) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  // exp(60000) overflows anything; the max shift keeps float16 rows finite.
  std::vector<float> v = {60000.f, 59990.f, -60000.f, 0.f, 60000.f, 1.f, 2.f, 3.f};
  check_op("Softmax", 13, {test_ops::f16({1, 8}, v)});
  check_op("LogSoftmax", 13, {test_ops::f16({1, 8}, v)});
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
