// CUDA Attention kernel (src/runtime/cuda/kernels/attention.cu) against the CPU reference, in float32, float16,
// bfloat16 and float64: 3-D and 4-D inputs, grouped-query heads, past key / value with present outputs, bool and
// float masks (broadcast, short last dim, fully masked rows), causal, softcap, scale, the four qk_matmul_output
// modes, nonpad_kv_seqlen (opset 24) and windows (opset 25). Skips without a CUDA device.
#if KILN_WITH_CUDA
#include <limits>

#include "cuda_op_test_util.h"

namespace kiln {
namespace {

using ir::Attr;
using test_cuda::check_cuda_op;
using test_cuda::precision_of;
using test_cuda::rand_tensor;
using test_ops::Attrs;
using test_ops::In;
using test_ops::Omit;

const DType kTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};

// Float mask of dtype dt with -inf at every 5th element (and a finite bias elsewhere).
Tensor float_mask(DType dt, Shape s, uint32_t seed) {
  Tensor r = rand_tensor(DType::Float32, s, seed);
  std::vector<float> v(static_cast<size_t>(r.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 5 == 3 ? -std::numeric_limits<float>::infinity() : r.as<float>()[i];
  if (dt == DType::Float16) return test_ops::f16(s, v);
  if (dt == DType::BFloat16) return test_ops::bf16(s, v);
  if (dt == DType::Float64) return test_ops::f64(s, std::vector<double>(v.begin(), v.end()));
  return test_ops::f32(s, v);
}
// Bool mask: true (attend) except every 3rd element; row `dead_row` (of the flattened leading dims) all false.
Tensor bool_mask(Shape s, int64_t dead_row) {
  const int64_t last = s.back();
  std::vector<uint8_t> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<int64_t>(i) / last == dead_row ? 0 : (i % 3 != 1);
  return test_ops::boolean(s, v);
}

void check(const std::vector<In>& in, const Attrs& at, size_t n_out, int64_t opset, DType dt, const std::string& what) {
  check_cuda_op("Attention", opset, in, at, n_out, "cuda", precision_of(dt), false,
                std::string(dtype_name(dt)) + " " + what);
}

TEST(CudaAttention, TacticIsRegistered) {
  ir::Graph g = test_ops::make_graph("Attention", 23,
                                     {rand_tensor(DType::Float16, {1, 2, 3, 4}, 1), rand_tensor(DType::Float16, {1, 2, 3, 4}, 2),
                                      rand_tensor(DType::Float16, {1, 2, 3, 4}, 3)},
                                     {}, 1);
  EXPECT_EQ(test_cuda::tactic_names(g), (std::vector<std::string>{"cuda"}));
}

TEST(CudaAttention, FourDimensionalAndModes) {
  KILN_SKIP_WITHOUT_CUDA();
  uint32_t seed = 1;
  for (DType dt : kTypes) {
    const Tensor q = rand_tensor(dt, {2, 3, 5, 8}, seed), k = rand_tensor(dt, {2, 3, 7, 8}, seed + 1),
                 v = rand_tensor(dt, {2, 3, 7, 6}, seed + 2);
    check({q, k, v}, {}, 1, 23, dt, "4-D plain");
    for (int64_t mode = 0; mode < 4; ++mode)
      check({q, k, v, float_mask(dt, {5, 7}, seed + 3)},
            {{"qk_matmul_output_mode", Attr{mode}}, {"softcap", Attr{2.0f}}, {"scale", Attr{0.7f}}}, 4, 23, dt,
            "4-D float mask, softcap, mode " + std::to_string(mode));
    seed += 4;
  }
}

TEST(CudaAttention, GroupedQueryCausalAndThreeDimensional) {
  KILN_SKIP_WITHOUT_CUDA();
  uint32_t seed = 50;
  for (DType dt : kTypes) {
    check({rand_tensor(dt, {1, 6, 4, 8}, seed), rand_tensor(dt, {1, 2, 9, 8}, seed + 1),
           rand_tensor(dt, {1, 2, 9, 8}, seed + 2)},
          {{"is_causal", Attr{int64_t(1)}}}, 1, 23, dt, "GQA causal");
    // 3-D [B, S, H * D], 4 query heads over 2 kv heads, float mask [Sq, T], all outputs.
    const Attrs heads = {{"q_num_heads", Attr{int64_t(4)}}, {"kv_num_heads", Attr{int64_t(2)}}};
    check({rand_tensor(dt, {2, 5, 32}, seed + 3), rand_tensor(dt, {2, 6, 16}, seed + 4),
           rand_tensor(dt, {2, 6, 8}, seed + 5), float_mask(dt, {5, 6}, seed + 6)},
          heads, 4, 23, dt, "3-D GQA float mask");
    check({rand_tensor(dt, {2, 5, 32}, seed + 3), rand_tensor(dt, {2, 6, 16}, seed + 4),
           rand_tensor(dt, {2, 6, 8}, seed + 5)},
          heads, 1, 23, dt, "3-D Y only");
    seed += 7;
  }
}

TEST(CudaAttention, PastKeyValueAndBoolMasks) {
  KILN_SKIP_WITHOUT_CUDA();
  uint32_t seed = 100;
  for (DType dt : kTypes) {
    const Tensor q = rand_tensor(dt, {2, 2, 3, 4}, seed), k = rand_tensor(dt, {2, 2, 3, 4}, seed + 1),
                 v = rand_tensor(dt, {2, 2, 3, 5}, seed + 2), pk = rand_tensor(dt, {2, 2, 6, 4}, seed + 3),
                 pv = rand_tensor(dt, {2, 2, 6, 5}, seed + 4);
    check({q, k, v, Omit(), pk, pv}, {{"is_causal", Attr{int64_t(1)}}}, 3, 23, dt, "past + causal, present outputs");
    check({q, k, v, Omit(), pk, pv}, {}, 1, 23, dt, "past, Y only");
    // Bool mask [B, 1, Sq, 7] (T = 9: the last two keys are masked by the short last dim), one dead row.
    check({q, k, v, bool_mask({2, 1, 3, 7}, 4), pk, pv}, {{"qk_matmul_output_mode", Attr{int64_t(3)}}}, 4, 23, dt,
          "short bool mask with a fully masked row");
    // Rank-1 mask over the keys.
    check({q, k, v, bool_mask({9}, -1), pk, pv}, {}, 1, 23, dt, "rank-1 bool mask");
    seed += 5;
  }
}

TEST(CudaAttention, NonpadLengthsWindowsAndLongRows) {
  KILN_SKIP_WITHOUT_CUDA();
  uint32_t seed = 200;
  for (DType dt : kTypes) {
    const Tensor q = rand_tensor(dt, {2, 2, 3, 8}, seed), k = rand_tensor(dt, {2, 2, 10, 8}, seed + 1),
                 v = rand_tensor(dt, {2, 2, 10, 8}, seed + 2);
    check({q, k, v, Omit(), Omit(), Omit(), test_ops::i64({2}, {7, 10})}, {{"is_causal", Attr{int64_t(1)}}}, 1, 24,
          dt, "nonpad_kv_seqlen causal");
    check({q, k, v}, {{"left_window_size", Attr{int64_t(2)}}, {"right_window_size", Attr{int64_t(1)}}}, 1, 25, dt,
          "left/right windows");
    // 300 keys: several passes of a 256-thread block per row.
    check({rand_tensor(dt, {1, 2, 4, 16}, seed + 3), rand_tensor(dt, {1, 2, 300, 16}, seed + 4),
           rand_tensor(dt, {1, 2, 300, 16}, seed + 5)},
          {}, 4, 23, dt, "300 keys");
    seed += 6;
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
