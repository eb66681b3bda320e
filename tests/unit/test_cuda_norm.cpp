// CUDA norm family against the CPU reference: BatchNormalization, LayerNormalization (axis, broadcast scale,
// Mean / InvStdDev outputs in float32 and bfloat16), RMSNormalization, GroupNormalization (opset 18 and 21) and
// InstanceNormalization, in every float type, with short / long / register-overflowing rows and shapes that are not
// a multiple of the 16-byte pack. Skips without a CUDA device.
#if KILN_WITH_CUDA
#include "cuda_red_test_util.h"

namespace kiln {
namespace {

using test_cured::as_dtype;
using test_cured::check_op;
using test_cured::rand_of;
using test_ops::Attrs;
using test_ops::In;
using test_ops::Omit;

const std::vector<DType> kFloats = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};

// Random values in [lo, hi).
Tensor rand_range(DType dt, const Shape& s, uint32_t seed, float lo, float hi) {
  Tensor f = test_ops::rand_f32(s, seed);
  std::vector<float> v(static_cast<size_t>(f.numel()));
  for (int64_t i = 0; i < f.numel(); ++i)
    v[static_cast<size_t>(i)] = lo + (hi - lo) * 0.5f * (1.0f + static_cast<float>(f.at_double(i)));
  return as_dtype(test_ops::f32(s, v), dt);
}

TEST(CudaNorm, BatchNormalization) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{2, 3, 5, 7}, {2, 4, 8, 8}, {3, 5}, {2, 3, 4, 4, 4}, {1, 16, 1, 1}};
  uint32_t seed = 1;
  for (int64_t opset : {9, 15})
    for (DType dt : kFloats)
      for (const Shape& s : shapes) {
        SCOPED_TRACE("opset " + std::to_string(opset) + " " + dtype_name(dt) + " " + shape_str(s));
        const Shape c = {s[1]};
        // Opset 15 lets the statistics have their own dtype: float32 with a low-precision X.
        const DType pdt = opset >= 15 && dt != DType::Float64 ? DType::Float32 : dt;
        check_op("BatchNormalization", opset,
                 {rand_of(dt, s, seed++), rand_range(pdt, c, seed++, 0.5f, 2.0f), rand_of(pdt, c, seed++),
                  rand_of(pdt, c, seed++), rand_range(pdt, c, seed++, 0.2f, 1.5f)},
                 {{"epsilon", 1e-3f}});
      }
}

struct LnCase {
  Shape x;
  int64_t axis;
  Shape scale;  // empty: X's dims from axis on
  bool bias;
};

TEST(CudaNorm, LayerNormalization) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const std::vector<LnCase> cases = {
      {{4, 64}, -1, {}, true},       // packs, a few threads a row
      {{3, 10}, -1, {}, true},       // not a multiple of the pack
      {{2, 3, 4, 5}, 1, {}, true},   // rows of 60 over three dims
      {{2, 3, 4, 5}, 1, {4, 5}, false},  // scale broadcast over dim 1
      {{2, 5000}, -1, {}, true},     // a block a row
      {{2, 40000}, -1, {}, true},    // too long for registers
      {{5, 1}, -1, {}, true},        // rows of one
      {{33, 4096}, -1, {}, true},    // the microbenchmark's rows: 8 packs a thread, two or four warps a row
      {{3, 17, 768}, -1, {}, false}, // BERT-base rows, several rows a block, no bias
  };
  uint32_t seed = 1;
  for (DType dt : kFloats)
    for (const LnCase& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x) + " axis " + std::to_string(c.axis));
      Shape ps = c.scale;
      if (ps.empty()) {
        const int64_t a = c.axis < 0 ? c.axis + static_cast<int64_t>(c.x.size()) : c.axis;
        ps.assign(c.x.begin() + a, c.x.end());
      }
      std::vector<In> in = {rand_range(dt, c.x, seed++, -2.0f, 3.0f), rand_range(dt, ps, seed++, 0.5f, 1.5f)};
      if (c.bias) in.push_back(rand_of(dt, ps, seed++));
      check_op("LayerNormalization", 17, in, {{"axis", c.axis}, {"epsilon", 1e-4f}}, 3);
    }
}

TEST(CudaNorm, LayerNormalizationStatisticsOutputs) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const Tensor x = rand_range(DType::Float16, {6, 48}, 3, -1.0f, 2.0f);
  const Tensor s = rand_of(DType::Float16, {48}, 4), b = rand_of(DType::Float16, {48}, 5);
  check_op("LayerNormalization", 17, {x, s, b}, {{"stash_type", int64_t(16)}}, 3);  // bfloat16 statistics
  check_op("LayerNormalization", 17, {x, s, b}, {}, 3, {1});                         // only InvStdDev
  check_op("LayerNormalization", 17, {x, s, Omit()}, {}, 1);                         // no bias, Y only
}

TEST(CudaNorm, RMSNormalization) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{4, 64}, -1}, {{3, 10}, -1}, {{2, 3, 4, 5}, 2}, {{2, 6000}, -1}, {{2, 40000}, -1}};
  uint32_t seed = 50;
  for (DType dt : kFloats)
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.first));
      const int64_t a = c.second < 0 ? c.second + static_cast<int64_t>(c.first.size()) : c.second;
      const Shape ps(c.first.begin() + a, c.first.end());
      check_op("RMSNormalization", 23, {rand_of(dt, c.first, seed++), rand_range(dt, ps, seed++, 0.5f, 1.5f)},
               {{"axis", c.second}});
    }
}

TEST(CudaNorm, GroupAndInstanceNormalization) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  struct G {
    Shape x;
    int64_t groups;
  };
  const std::vector<G> cases = {{{2, 6, 5, 4}, 3}, {{1, 32, 16, 16}, 8}, {{2, 4, 7}, 4}, {{1, 8, 64, 64}, 2}};
  uint32_t seed = 90;
  for (DType dt : kFloats)
    for (const G& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(c.x) + " groups " + std::to_string(c.groups));
      const Tensor x = rand_range(dt, c.x, seed++, -1.0f, 2.0f);
      const Shape per_group = {c.groups}, per_channel = {c.x[1]};
      check_op("GroupNormalization", 18,
               {x, rand_range(dt, per_group, seed++, 0.5f, 1.5f), rand_of(dt, per_group, seed++)},
               {{"num_groups", c.groups}, {"epsilon", 1e-3f}});
      check_op("GroupNormalization", 21,
               {x, rand_range(dt, per_channel, seed++, 0.5f, 1.5f), rand_of(dt, per_channel, seed++)},
               {{"num_groups", c.groups}});
      for (int64_t opset : {6, 22})
        check_op("InstanceNormalization", opset,
                 {x, rand_range(dt, per_channel, seed++, 0.5f, 1.5f), rand_of(dt, per_channel, seed++)});
    }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
