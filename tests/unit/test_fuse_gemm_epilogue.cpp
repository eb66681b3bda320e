// The CUDA-engine fusions around GEMMs and LayerNorm (docs/passes.md): fuse_gemm_epilogue (MatMul + bias [+ Relu /
// Gelu] -> kiln.FusedMatMul) and fuse_add_layernorm (Add -> LayerNormalization -> kiln.AddLayerNormalization): what
// fuses and what must not, the fused nodes' reference kernels against the unfused graph (bit-exact: they run the same
// reference kernels), autocast's low_precision_norms rule (docs/precision.md) on the float16-overflow models, and
// the builder wiring (CUDA engines only, switches). No GPU needed; test_cuda_fused_gemm.cpp runs the CUDA kernels.
#include <gtest/gtest.h>

#include <cstdlib>

#include "epi_test_util.h"
#include "fuse_test_util.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "ops/fused_ops.h"
#include "runtime/engine_impl.h"

namespace kiln::test_fuse {
namespace {

namespace fo = ops::fused_ops;

ir::Graph gemm_fuse(const ir::Graph& g, const TensorMap& feeds, bool expect_change = true) {
  return run_and_check(g, feeds, [](ir::Graph& x) { return passes::fuse_gemm_epilogue(x); }, expect_change);
}
ir::Graph ln_fuse(const ir::Graph& g, const TensorMap& feeds, bool expect_change = true) {
  return run_and_check(g, feeds, [](ir::Graph& x) { return passes::fuse_add_layernorm(x); }, expect_change);
}

const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes)
    if (n.op_type == op) return &n;
  return nullptr;
}

// x [2, 5, 16] -> MatMul(W [16, 24]) -> Add(bias) [-> activation]. bias_first writes Add(bias, y).
struct Chain {
  GraphBuilder b;
  TensorMap feeds;
  std::string y;
  Chain(DType dt, const Shape& bias_shape = {24}, bool bias_first = false) {
    feeds["x"] = random_tensor(dt, {2, 5, 16}, 1);
    const std::string x = b.input("x", dt, {2, 5, 16});
    const std::string w = b.constant("w", random_tensor(dt, {16, 24}, 2, -0.5f, 0.5f));
    const std::string bias = b.constant("bias", random_tensor(dt, bias_shape, 3));
    const std::string m = b.node("MatMul", {x, w});
    y = bias_first ? b.node("Add", {bias, m}) : b.node("Add", {m, bias});
  }
};

TEST(FuseGemmEpilogue, BiasAndActivationsBecomeOneNode) {
  struct Case {
    DType dt;
    std::string act_op, approximate, want;
  };
  const std::vector<Case> cases = {
      {DType::Float32, "", "", "none"},          {DType::Float16, "Relu", "", "relu"},
      {DType::Float32, "Gelu", "tanh", "gelu_tanh"}, {DType::Float16, "Gelu", "none", "gelu"},
      {DType::BFloat16, "Gelu", "none", "gelu"},  {DType::BFloat16, "Relu", "", "relu"}};
  for (const Case& c : cases) {
    for (bool bias_first : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(c.dt)) + " " + c.want + (bias_first ? " Add(bias, y)" : ""));
      Chain ch(c.dt, {24}, bias_first);
      std::string out = ch.y;
      if (c.act_op == "Gelu") out = ch.b.node("Gelu", {ch.y}, {{"approximate", c.approximate}});
      else if (!c.act_op.empty()) out = ch.b.node(c.act_op, {ch.y});
      ch.b.output(out);
      const ir::Graph f = gemm_fuse(ch.b.typed(), ch.feeds);
      ASSERT_EQ(f.nodes.size(), 1u);
      EXPECT_EQ(f.nodes[0].op_type, fo::kFusedMatMul);
      EXPECT_EQ(f.nodes[0].domain, "kiln");
      EXPECT_EQ(f.nodes[0].attr_string("activation", "?"), c.want);
      EXPECT_EQ(f.nodes[0].inputs, (std::vector<std::string>{"x", "w", "bias"}));
    }
  }
}

// An erf Gelu is fused only into float16 / bfloat16 MatMuls (cuBLASLt's GELU is the tanh form); in float32 the
// bias still fuses and the Gelu stays.
TEST(FuseGemmEpilogue, ErfGeluStaysSeparateInFloat32) {
  Chain ch(DType::Float32);
  ch.b.output(ch.b.node("Gelu", {ch.y}, {{"approximate", std::string("none")}}));
  const ir::Graph f = gemm_fuse(ch.b.typed(), ch.feeds);
  ASSERT_EQ(f.nodes.size(), 2u);
  EXPECT_EQ(f.nodes[0].attr_string("activation", "?"), "none");
  EXPECT_EQ(f.nodes[1].op_type, "Gelu");
}

TEST(FuseGemmEpilogue, BiasShapedOneOneN) {
  Chain ch(DType::Float16, {1, 1, 24});
  ch.b.output(ch.y);
  const ir::Graph f = gemm_fuse(ch.b.typed(), ch.feeds);
  ASSERT_EQ(f.nodes.size(), 1u);
  EXPECT_EQ(f.nodes[0].op_type, fo::kFusedMatMul);
}

TEST(FuseGemmEpilogue, NegativeGuards) {
  const DType dt = DType::Float16;
  {  // bias is a graph input, not a constant
    GraphBuilder b;
    const std::string x = b.input("x", dt, {2, 5, 16}), bias = b.input("bias", dt, {24});
    const std::string m = b.node("MatMul", {x, b.constant("w", random_tensor(dt, {16, 24}, 2))});
    b.output(b.node("Add", {m, bias}));
    gemm_fuse(b.typed(), {{"x", random_tensor(dt, {2, 5, 16}, 1)}, {"bias", random_tensor(dt, {24}, 3)}}, false);
  }
  {  // B is a graph input
    GraphBuilder b;
    const std::string x = b.input("x", dt, {2, 5, 16}), w = b.input("w", dt, {16, 24});
    b.output(b.node("Add", {b.node("MatMul", {x, w}), b.constant("bias", random_tensor(dt, {24}, 3))}));
    gemm_fuse(b.typed(), {{"x", random_tensor(dt, {2, 5, 16}, 1)}, {"w", random_tensor(dt, {16, 24}, 2)}}, false);
  }
  {  // bias on another axis: [5, 1] broadcasts over rows, not columns
    Chain ch(dt, {5, 1});
    ch.b.output(ch.y);
    gemm_fuse(ch.b.typed(), ch.feeds, false);
  }
  {  // a full [5, 24] addend is not a bias
    Chain ch(dt, {5, 24});
    ch.b.output(ch.y);
    gemm_fuse(ch.b.typed(), ch.feeds, false);
  }
  {  // the MatMul output has a second reader
    GraphBuilder b;
    const std::string x = b.input("x", dt, {2, 5, 16});
    const std::string m = b.node("MatMul", {x, b.constant("w", random_tensor(dt, {16, 24}, 2))});
    b.output(b.node("Add", {m, b.constant("bias", random_tensor(dt, {24}, 3))}));
    b.output(b.node("Relu", {m}));
    gemm_fuse(b.typed(), {{"x", random_tensor(dt, {2, 5, 16}, 1)}}, false);
  }
  {  // the MatMul output is a graph output
    Chain ch(dt);
    ch.b.output(ch.y);
    ch.b.output(ch.b.g.nodes[0].outputs[0]);
    gemm_fuse(ch.b.typed(), ch.feeds, false);
  }
}

// The biased value read twice (or a graph output): the bias fuses, the activation does not.
TEST(FuseGemmEpilogue, ActivationNotFusedWhenTheSumIsReadElsewhere) {
  Chain ch(DType::Float16);
  ch.b.output(ch.b.node("Relu", {ch.y}));
  ch.b.output(ch.b.node("Neg", {ch.y}));
  const ir::Graph f = gemm_fuse(ch.b.typed(), ch.feeds);
  ASSERT_NE(find_op(f, fo::kFusedMatMul), nullptr);
  EXPECT_EQ(find_op(f, fo::kFusedMatMul)->attr_string("activation", "?"), "none");
  EXPECT_NE(find_op(f, "Relu"), nullptr);
}

// ---- Add + LayerNormalization -------------------------------------------------------------------------------------
struct LnGraph {
  GraphBuilder b;
  TensorMap feeds;
  std::string sum, y;
  explicit LnGraph(DType dt, const Shape& b_shape = {2, 5, 32}, bool with_bias = true) {
    feeds["a"] = random_tensor(dt, {2, 5, 32}, 1);
    feeds["b"] = random_tensor(dt, b_shape, 2);
    const std::string a = b.input("a", dt, {2, 5, 32}), r = b.input("b", dt, b_shape);
    std::vector<std::string> ins = {"", b.constant("scale", random_tensor(dt, {32}, 3))};
    if (with_bias) ins.push_back(b.constant("beta", random_tensor(dt, {32}, 4)));
    sum = b.node("Add", {a, r});
    ins[0] = sum;
    y = b.node("LayerNormalization", ins, {{"axis", int64_t(-1)}, {"epsilon", 1e-5f}}, 17);
  }
};

TEST(FuseAddLayerNorm, PairBecomesOneNode) {
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (with_bias ? " with B" : " no B"));
      LnGraph l(dt, {2, 5, 32}, with_bias);
      l.b.output(l.y);
      const ir::Graph f = ln_fuse(l.b.typed(), l.feeds);
      ASSERT_EQ(f.nodes.size(), 1u);
      EXPECT_EQ(f.nodes[0].op_type, fo::kAddLayerNorm);
      EXPECT_EQ(f.nodes[0].outputs.size(), 1u) << "the sum is read nowhere else";
      EXPECT_EQ(f.nodes[0].inputs.size(), with_bias ? 4u : 3u);
    }
}

TEST(FuseAddLayerNorm, SumReadElsewhereIsStillWritten) {
  for (bool as_output : {false, true}) {
    LnGraph l(DType::Float16);
    l.b.output(l.y);
    if (as_output) l.b.output(l.sum);
    else l.b.output(l.b.node("Add", {l.sum, l.y}));  // the residual stream goes on
    const ir::Graph f = ln_fuse(l.b.typed(), l.feeds);
    const ir::Node* n = find_op(f, fo::kAddLayerNorm);
    ASSERT_NE(n, nullptr);
    ASSERT_EQ(n->outputs.size(), 2u);
    EXPECT_EQ(n->outputs[1], l.sum);
  }
}

TEST(FuseAddLayerNorm, NegativeGuards) {
  {  // B broadcasts ([1, 5, 32] against [2, 5, 32]): not fused
    LnGraph l(DType::Float16, {1, 5, 32});
    l.b.output(l.y);
    ln_fuse(l.b.typed(), l.feeds, false);
  }
  {  // the LayerNorm's Mean output is read
    GraphBuilder b;
    const DType dt = DType::Float16;
    const std::string a = b.input("a", dt, {4, 32}), r = b.input("b", dt, {4, 32});
    const std::string s = b.node("Add", {a, r});
    ir::Node ln;
    ln.name = "ln";
    ln.op_type = "LayerNormalization";
    ln.opset = 17;
    ln.inputs = {s, b.constant("scale", random_tensor(dt, {32}, 3))};
    ln.outputs = {"y", "mean"};
    b.g.nodes.push_back(ln);
    b.output("y");
    b.output("mean");
    ln_fuse(b.typed(), {{"a", random_tensor(dt, {4, 32}, 1)}, {"b", random_tensor(dt, {4, 32}, 2)}}, false);
  }
  {  // scale is not a constant
    GraphBuilder b;
    const DType dt = DType::Float32;
    const std::string a = b.input("a", dt, {4, 32}), r = b.input("b", dt, {4, 32}), sc = b.input("scale", dt, {32});
    b.output(b.node("LayerNormalization", {b.node("Add", {a, r}), sc}, {}, 17));
    ln_fuse(b.typed(),
            {{"a", random_tensor(dt, {4, 32}, 1)}, {"b", random_tensor(dt, {4, 32}, 2)}, {"scale", random_tensor(dt, {32}, 3)}},
            false);
  }
}

// ---- autocast: LayerNorm / Softmax in the low type on CUDA engines ------------------------------------------------
const std::string kAC = std::string(KILN_TEST_MODELS) + "/autocast";

// The float16-overflow models of test_autocast.cpp (activations ~1e3 before a LayerNorm, logits ~18 before a
// Softmax): with low_precision_norms the LayerNorm / Softmax read and write float16 (no Casts around them) and the
// answer still matches ONNX Runtime's float32 result within the FP16 bound, because the reduction is in float.
TEST(AutocastLowPrecisionNorms, OverflowModelsStayWithinTheFp16Bound) {
  struct Case {
    std::string model, node, out2;
  };
  for (const Case& c : {Case{"layernorm", "layernorm", "normed"}, Case{"softmax", "softmax", "probs"}}) {
    for (DType low : {DType::Float16, DType::BFloat16}) {
      SCOPED_TRACE(c.model + " " + dtype_name(low));
      const std::string dir = kAC + "/" + c.model;
      Model model = Model::load(dir + "/model.onnx");
      ir::Graph g = model.impl()->m.graph;
      passes::AutocastOptions o;
      o.low = low;
      o.low_precision_norms = true;
      ASSERT_TRUE(passes::autocast(g, o));
      passes::remove_redundant_casts(g);
      passes::eliminate_dead_code(g);
      ir::infer_types(g);
      const ir::Node* n = nullptr;
      for (const auto& k : g.nodes)
        if (k.name == c.node) n = &k;
      ASSERT_NE(n, nullptr);
      EXPECT_EQ(g.type_of(n->outputs[0])->dtype, low) << "runs in the low type";
      EXPECT_EQ(g.type_of(n->inputs[0])->dtype, low);
      TensorMap in{{"x", load_npy(dir + "/case/x.npy")}};
      const TensorMap got = runtime::cpu::run_graph_reference(g, in);
      for (const std::string& o : {std::string("y"), c.out2}) {
        const Comparison cmp = compare(got.at(o), load_npy(dir + "/case/" + o + ".npy"),
                                       tolerance_for(low == DType::Float16 ? "fp16" : "bf16"));
        EXPECT_TRUE(cmp.passed) << o << ": " << cmp.reason << " rel L2 " << cmp.rel_l2;
      }
    }
  }
}

// A Softmax whose input was computed in float32 (here: after an Exp, a float32 op) stays float32.
TEST(AutocastLowPrecisionNorms, FollowsAFloat32Input) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {4, 16});
  const std::string m = b.node("MatMul", {x, b.constant("w", random_tensor(DType::Float32, {16, 16}, 1))});
  const std::string s1 = b.node("Softmax", {m}, {{"axis", int64_t(-1)}}, 13);
  const std::string e = b.node("Exp", {m}, {}, 13);
  const std::string s2 = b.node("Softmax", {e}, {{"axis", int64_t(-1)}}, 13);
  b.output(s1);
  b.output(s2);
  for (bool on : {false, true}) {
    ir::Graph g = b.typed();
    passes::AutocastOptions o;
    o.low_precision_norms = on;
    passes::autocast(g, o);
    ir::infer_types(g);
    DType t1 = DType::Float32, t2 = DType::Float32;
    for (const auto& n : g.nodes) {
      if (n.op_type != "Softmax") continue;
      (n.inputs[0].rfind(e, 0) == 0 ? t2 : t1) = g.type_of(n.outputs[0])->dtype;
    }
    EXPECT_EQ(t1, on ? DType::Float16 : DType::Float32) << "on=" << on;
    EXPECT_EQ(t2, DType::Float32) << "on=" << on;
  }
}

// ---- builder wiring -----------------------------------------------------------------------------------------------
#if KILN_WITH_CUDA
// The BERT-style block of epi_test_util.h, FP16 CUDA engine (built without a GPU: the heuristic tactics). Fused:
// 2 kiln.FusedMatMul, 1 kiln.AddLayerNormalization, no Cast (LayerNorms read and write float16).
ir::Graph block_graph() { return bert_block_graph(2, 8, 32, 64); }

std::map<std::string, size_t> op_counts(const Engine& e) {
  std::map<std::string, size_t> m;
  for (const auto& n : e.impl()->graph.nodes) ++m[n.op_type];
  return m;
}

Engine build_block(Target t, const char* env_off = nullptr) {
  BuildConfig cfg;
  cfg.target = t;
  cfg.precision = Precision::FP16;
  cfg.keep_io_types = false;
  if (env_off) {
    EXPECT_EQ(setenv(env_off, "0", 1), 0);
  }
  EXPECT_EQ(setenv("KILN_CUDA_TACTIC_TIMING", "0", 1), 0);
  Engine e = build_engine(as_model(block_graph()), cfg);
  unsetenv("KILN_CUDA_TACTIC_TIMING");
  if (env_off) unsetenv(env_off);
  return e;
}

TEST(FuseGemmEpilogueBuild, BertBlockFp16CudaEngine) {
  const Engine e = build_block(Target::Cuda);
  auto c = op_counts(e);
  EXPECT_EQ(c[fo::kFusedMatMul], 2u);
  EXPECT_EQ(c[fo::kAddLayerNorm], 1u);
  EXPECT_EQ(c["LayerNormalization"], 1u);
  EXPECT_EQ(c["Cast"], 0u) << "LayerNorm reads and writes float16 on CUDA";
  EXPECT_EQ(c["MatMul"] + c["Add"] + c["Gelu"] + c[ops::fused::kOpType], 0u);
  EXPECT_EQ(e.impl()->graph.nodes.size(), 4u);
  for (const auto& n : e.impl()->graph.nodes)
    if (n.op_type == fo::kFusedMatMul) {
      EXPECT_EQ(n.tactic, "cublaslt") << n.name;
    }
  // FLOPs and the low-precision share count the fused GEMMs: 2 x 16 tokens x (32 x 64 + 64 x 32).
  int64_t gemm_flops = 0;
  for (const NodeInfo& n : e.nodes())
    if (n.op == fo::kFusedMatMul) {
      EXPECT_TRUE(n.gemm_like) << n.name;
      gemm_flops += n.flops;
    }
  EXPECT_EQ(gemm_flops, 2 * 16 * (32 * 64 + 64 * 32));
  // The fused engine, run by the reference kernels, against the float32 graph: FP16 bound.
  const ir::Graph g = block_graph();
  TensorMap feeds{{"x", random_tensor(DType::Float32, {2, 8, 32}, 11)}};
  const Tensor want = runtime::cpu::run_graph_reference(g, feeds).at(g.outputs[0]);
  TensorMap feeds16;
  Tensor x16(DType::Float16, {2, 8, 32});
  for (int64_t i = 0; i < x16.numel(); ++i)
    x16.mutable_as<uint16_t>()[i] = util::float_to_half(feeds.at("x").as<float>()[i]);
  feeds16["x"] = x16;
  const Tensor got16 = runtime::cpu::run_graph_reference(e.impl()->graph, feeds16).at(g.outputs[0]);
  ASSERT_EQ(got16.dtype(), DType::Float16);
  Tensor got(DType::Float32, got16.shape());
  for (int64_t i = 0; i < got.numel(); ++i) got.mutable_as<float>()[i] = util::half_to_float(got16.as<uint16_t>()[i]);
  const Comparison cmp = compare(got, want, tolerance_for("fp16"));
  EXPECT_TRUE(cmp.passed) << cmp.reason << " rel L2 " << cmp.rel_l2;
}

TEST(FuseGemmEpilogueBuild, SwitchesAndCpuEngines) {
  auto c = op_counts(build_block(Target::Cuda, "KILN_FUSE_GEMM_EPILOGUE"));
  EXPECT_EQ(c[fo::kFusedMatMul], 0u);
  EXPECT_EQ(c["MatMul"], 2u);
  EXPECT_EQ(c[fo::kAddLayerNorm], 1u);
  c = op_counts(build_block(Target::Cuda, "KILN_FUSE_ADD_LAYERNORM"));
  EXPECT_EQ(c[fo::kAddLayerNorm], 0u);
  EXPECT_EQ(c[fo::kFusedMatMul], 2u);
  c = op_counts(build_block(Target::Cuda, "KILN_LOW_PRECISION_NORMS"));
  EXPECT_GT(c["Cast"] + c[ops::fused::kOpType], 0u) << "float32 LayerNorms need their Casts back";
  c = op_counts(build_block(Target::Cpu));
  EXPECT_EQ(c[fo::kFusedMatMul] + c[fo::kAddLayerNorm], 0u) << "CPU engines are not fused";
  EXPECT_EQ(c["MatMul"], 2u);
}
#endif

}  // namespace
}  // namespace kiln::test_fuse
