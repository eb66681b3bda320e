// Attention (opset 23; 24 nonpad_kv_seqlen; 25 sliding window): the generated cases ("att_*") against
// onnxruntime 1.23.2 where it follows the spec (4-D MHA, 3-D GQA, MQA, causal incl. cross and past, bool / float /
// broadcast masks, scale, past_key / past_value with present outputs, qk_matmul_output modes 0, 2, 3), and against
// the onnx reference evaluator where onnxruntime departs from it or lacks the version: softcap with a mask and
// modes 1 / 2 (onnxruntime masks before softcap), a fully masked row (zeros, not NaN), a mask shorter than the
// key length, opsets 24 and 25. Plus a hand-computed case, inference and bad input.
#include <cmath>

#include "ops3_case_util.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_attention_cpp {

TEST(OpsAttention, GeneratedCasesMatchOnnxRuntimeOrTheSpec) { test_ops3::check_ops3_family("att_", 17); }

TEST(OpsAttention, HandComputedSingleQuery) {
  // One head, head size 1, scale 1: scores q*k = [1, 2]; softmax = [1, e] / (1 + e); Y = p . v.
  const Tensor q = f32({1, 1, 1, 1}, {1}), k = f32({1, 1, 2, 1}, {1, 2}), v = f32({1, 1, 2, 1}, {10, -4});
  const double e = std::exp(1.0);
  auto out = run_op("Attention", 23, {q, k, v}, {{"scale", 1.0f}, {"qk_matmul_output_mode", int64_t(3)}}, 4);
  expect_values(out[0], {(10 - 4 * e) / (1 + e)});
  expect_values(out[3], {1 / (1 + e), e / (1 + e)});
  // Causal without a cache: the first query sees only key 0.
  auto causal = run_op("Attention", 23, {f32({1, 1, 2, 1}, {1, 1}), k, v}, {{"scale", 1.0f}, {"is_causal", int64_t(1)}});
  expect_values(causal[0], {10, (10 - 4 * e) / (1 + e)});
}

TEST(OpsAttention, RankOneMaskBroadcastsOverTheKeyAxis) {
  // bool[2] mask [false, true] broadcasts to [B, H, Sq, T]: key 0 is masked out, so Y = v[1] for every query.
  const Tensor q = f32({1, 1, 2, 1}, {1, 3}), k = f32({1, 1, 2, 1}, {1, 2}), v = f32({1, 1, 2, 1}, {10, -4});
  expect_values(run1("Attention", 23, {q, k, v, boolean({2}, {0, 1})}), {-4, -4});
}

TEST(OpsAttention, InferenceShapes) {
  const DType F = DType::Float32;
  auto t = infer_op("Attention", 23, {TV(F, {S("b"), D(5), D(32)}), TV(F, {S("b"), D(7), D(16)}), TV(F, {S("b"), D(7), D(8)})},
                    {{"q_num_heads", int64_t(4)}, {"kv_num_heads", int64_t(2)}}, 4);
  EXPECT_EQ(t[0].str(), "float32[b,5,16]");
  EXPECT_EQ(t[3].str(), "float32[b,4,5,7]");
  auto p = infer_op("Attention", 23, {TV(F, {D(1), D(4), D(3), D(8)}), TV(F, {D(1), D(2), D(3), D(8)}),
                                      TV(F, {D(1), D(2), D(3), D(6)}), TOmit(), TV(F, {D(1), D(2), S("past"), D(8)}),
                                      TV(F, {D(1), D(2), S("past"), D(6)})},
                    {}, 3);
  EXPECT_EQ(p[0].str(), "float32[1,4,3,6]");
  EXPECT_EQ(p[1].str(), "float32[1,2,?,8]");
}

TEST(OpsAttention, BadInputsAreTypedErrors) {
  const Tensor q3 = rand_f32({1, 2, 8}, 1), q4 = rand_f32({1, 3, 2, 4}, 2), k4 = rand_f32({1, 2, 2, 4}, 3);
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q3, q3, q3}); }), ErrorCode::InvalidModel);  // no head counts
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, k4, k4}); }), ErrorCode::InvalidModel);  // 3 % 2 heads
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, q4, rand_f32({1, 3, 2}, 4)}); }), ErrorCode::InvalidModel);
  const Tensor none = Tensor(DType::Float32, {1, 0, 2, 4});
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, none, none}); }), ErrorCode::InvalidModel);  // 0 kv heads
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, q4, q4, Omit(), rand_f32({1, 3, 1, 4}, 5)}); }),
            ErrorCode::InvalidModel);  // past_key without past_value
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, q4, q4, rand_f32({2, 2, 2}, 6)}); }),
            ErrorCode::InvalidModel);  // mask heads dim 2 vs 3 query heads
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, q4, q4, rand_f32({2, 5}, 7)}); }), ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] { run1("Attention", 23, {q4, q4, q4}, {{"qk_matmul_output_mode", int64_t(4)}}); }),
            ErrorCode::InvalidModel);
  EXPECT_EQ(error_code_of([&] {
              run1("Attention", 25, {q4, q4, q4}, {{"q_num_heads", int64_t(3)}, {"kv_num_heads", int64_t(3)}});
            }),
            ErrorCode::InvalidModel);  // head counts with 4-D inputs from opset 25
}

}  // namespace test_ops_attention_cpp
}  // namespace kiln::test_ops
