// The CPU-engine conv epilogue fusion (docs/passes.md, "fuse_conv_activation"): Conv [+ Add(Z)] [+ Relu | Clip]
// -> kiln.FusedConv. What fuses and what must not, the fused graph against the unfused one (bit-exact: the fused
// node's reference kernel runs the same reference kernels), every CPU tactic of kiln.FusedConv against that
// reference (Z, each activation, NaN handling), and the builder wiring (CPU engines only, the switch).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "cpu_tactics_test_util.h"
#include "epi_test_util.h"
#include "fuse_test_util.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "ops/fused_ops.h"
#include "runtime/engine_impl.h"

namespace kiln::test_fuse {
namespace {

namespace fo = ops::fused_ops;

ir::Graph conv_fuse(const ir::Graph& g, const TensorMap& feeds, bool expect_change = true) {
  return run_and_check(g, feeds, [](ir::Graph& x) { return passes::fuse_conv_activation(x); }, expect_change);
}

const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes)
    if (n.op_type == op) return &n;
  return nullptr;
}

// x [2, 4, 9, 9] -> Conv(W [6, 4, 3, 3], B [6], pad 1) = y [2, 6, 9, 9]; z [2, 6, 9, 9] is a second input.
struct ConvGraph {
  GraphBuilder b;
  TensorMap feeds;
  std::string x, z, y;
  explicit ConvGraph(DType dt = DType::Float32, int64_t group = 1) {
    feeds["x"] = random_tensor(dt, {2, 4, 9, 9}, 1);
    feeds["z"] = random_tensor(dt, {2, 6, 9, 9}, 2);
    x = b.input("x", dt, {2, 4, 9, 9});
    z = b.input("z", dt, {2, 6, 9, 9});
    const std::string w = b.constant("w", random_tensor(dt, {6, 4 / group, 3, 3}, 3, -0.5f, 0.5f));
    const std::string bias = b.constant("bias", random_tensor(dt, {6}, 4));
    std::map<std::string, ir::Attr> a{{"pads", std::vector<int64_t>{1, 1, 1, 1}}};
    if (group > 1) a["group"] = group;
    y = b.node("Conv", {x, w, bias}, a, 11);
  }
};

TEST(FuseConvActivation, ChainsBecomeOneNode) {
  struct Case {
    std::string name;
    bool add, z_first;
    std::string act;  // "", "Relu", "Clip6", "Clip13", "Clip13min"
    std::string want;
  };
  const std::vector<Case> cases = {
      {"relu", false, false, "Relu", "relu"},          {"add", true, false, "", "none"},
      {"add relu", true, false, "Relu", "relu"},       {"z + conv, relu", true, true, "Relu", "relu"},
      {"clip-6", false, false, "Clip6", "clip"},       {"clip-13", false, false, "Clip13", "clip"},
      {"add clip-13 min only", true, false, "Clip13min", "clip"}};
  for (DType dt : {DType::Float32, DType::Float16}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + " " + dtype_name(dt));
      ConvGraph cg(dt);
      std::string v = cg.y;
      if (c.add) v = c.z_first ? cg.b.node("Add", {cg.z, v}) : cg.b.node("Add", {v, cg.z});
      if (c.act == "Relu") v = cg.b.node("Relu", {v});
      if (c.act == "Clip6") v = cg.b.node("Clip", {v}, {{"min", 0.0f}, {"max", 6.0f}}, 6);
      if (c.act == "Clip13" || c.act == "Clip13min") {
        const std::string lo = cg.b.constant("lo", scalar(dt, -0.5f));
        std::vector<std::string> ins = {v, lo};
        if (c.act == "Clip13") ins.push_back(cg.b.constant("hi", scalar(dt, 1.5f)));
        v = cg.b.node("Clip", ins, {}, 13);
      }
      cg.b.output(v);
      const ir::Graph f = conv_fuse(cg.b.typed(), cg.feeds);
      ASSERT_EQ(f.nodes.size(), 1u);
      const ir::Node& n = f.nodes[0];
      EXPECT_EQ(n.domain, fo::kDomain);
      EXPECT_EQ(n.op_type, fo::kFusedConv);
      EXPECT_EQ(n.name, "Conv_0") << "the fused node keeps the conv's name";
      EXPECT_EQ(n.attr_string("activation", ""), c.want);
      EXPECT_EQ(n.inputs.size(), c.add ? 4u : 3u);
      if (c.act == "Clip6") {
        EXPECT_EQ(n.attr_float("clip_min", 1), 0.0f);
        EXPECT_EQ(n.attr_float("clip_max", 1), 6.0f);
      }
      if (c.act == "Clip13min") {
        EXPECT_EQ(n.attr_float("clip_min", 1), -0.5f);
        EXPECT_TRUE(std::isinf(n.attr_float("clip_max", 1)));
      }
    }
  }
}

TEST(FuseConvActivation, WhatMustNotFuse) {
  {  // The conv output is also a graph output.
    ConvGraph cg;
    cg.b.output(cg.b.node("Relu", {cg.y}));
    cg.b.output(cg.y);
    conv_fuse(cg.b.typed(), cg.feeds, false);
  }
  {  // The conv output has two readers.
    ConvGraph cg;
    cg.b.output(cg.b.node("Relu", {cg.y}));
    cg.b.output(cg.b.node("Sigmoid", {cg.y}));
    conv_fuse(cg.b.typed(), cg.feeds, false);
  }
  {  // Add that broadcasts (a per-channel bias): not Z; nothing else to fuse.
    ConvGraph cg;
    const std::string c = cg.b.constant("c", random_tensor(DType::Float32, {6, 1, 1}, 9));
    cg.b.output(cg.b.node("Add", {cg.y, c}));
    conv_fuse(cg.b.typed(), cg.feeds, false);
  }
  {  // Clip with a bound computed at run time.
    ConvGraph cg;
    GraphBuilder& b = cg.b;
    const std::string lo = b.input("lo", DType::Float32, {});
    cg.feeds["lo"] = scalar(DType::Float32, 0.25f);
    b.output(b.node("Clip", {cg.y, lo}, {}, 13));
    conv_fuse(b.typed(), cg.feeds, false);
  }
  {  // Add(y, y): Z would be the conv output itself.
    ConvGraph cg;
    cg.b.output(cg.b.node("Add", {cg.y, cg.y}));
    conv_fuse(cg.b.typed(), cg.feeds, false);
  }
  {  // Add's sum read twice: the Add fuses (Z), the Relu after it does not.
    ConvGraph cg;
    const std::string s = cg.b.node("Add", {cg.y, cg.z});
    cg.b.output(cg.b.node("Relu", {s}));
    cg.b.output(s);
    const ir::Graph f = conv_fuse(cg.b.typed(), cg.feeds);
    ASSERT_NE(find_op(f, fo::kFusedConv), nullptr);
    EXPECT_EQ(find_op(f, fo::kFusedConv)->attr_string("activation", ""), "none");
    EXPECT_NE(find_op(f, "Relu"), nullptr);
  }
}

// Every CPU tactic of kiln.FusedConv against its reference kernel: Z and each activation, a depthwise conv (the flat
// and the row kernels), and a larger one for the threads; NaN through relu becomes 0, through clip stays NaN.
TEST(FuseConvActivation, CpuTacticsMatchTheReference) {
  using namespace test_ops;
  using namespace test_ops::cpu_tactics_test;
  const float inf = std::numeric_limits<float>::infinity();
  struct Act {
    std::string name;
    float lo, hi;
  };
  const std::vector<Act> acts = {{"none", 0, 0}, {"relu", 0, 0}, {"clip", 0.0f, 6.0f}, {"clip", -inf, 0.25f}};
  for_thread_counts([&](int) {
    for (DType dt : {DType::Float32, DType::Float16}) {
      for (const Act& act : acts) {
        SCOPED_TRACE(act.name + " " + dtype_name(dt));
        Attrs a{{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"activation", act.name}};
        if (act.name == "clip") a["clip_min"] = act.lo, a["clip_max"] = act.hi;
        // Dense: im2col_blas and direct; with Z and without.
        check_tactics_in("kiln", fo::kFusedConv, 1,
                         {rand_of(dt, {2, 5, 11, 13}, 1), Const(rand_of(dt, {7, 5, 3, 3}, 2)),
                          Const(rand_of(dt, {7}, 3)), rand_of(dt, {2, 7, 11, 13}, 4)},
                         a, {"im2col_blas", "direct"});
        check_tactics_in("kiln", fo::kFusedConv, 1,
                         {rand_of(dt, {1, 16, 40, 40}, 5), Const(rand_of(dt, {24, 16, 3, 3}, 6))}, a,
                         {"im2col_blas", "direct"});
        // Depthwise: the flat kernel (8x8) and the row kernel (wide map), with Z.
        Attrs d = a;
        d["group"] = int64_t{6};
        check_tactics_in("kiln", fo::kFusedConv, 1,
                         {rand_of(dt, {3, 6, 8, 8}, 7), Const(rand_of(dt, {6, 1, 3, 3}, 8)),
                          Const(rand_of(dt, {6}, 9)), rand_of(dt, {3, 6, 8, 8}, 10)},
                         d, {"direct_dw", "im2col_blas"});
        check_tactics_in("kiln", fo::kFusedConv, 1,
                         {rand_of(dt, {2, 6, 5, 300}, 11), Const(rand_of(dt, {6, 1, 3, 3}, 12)), In(Tensor()),
                          rand_of(dt, {2, 6, 5, 300}, 13)},
                         d, {"direct_dw", "im2col_blas"});
      }
    }
  });
}

TEST(FuseConvActivation, NanThroughReluAndClip) {
  using namespace test_ops;
  using namespace test_ops::cpu_tactics_test;
  for (const char* act : {"relu", "clip"}) {
    SCOPED_TRACE(act);
    Tensor x = rand_of(DType::Float32, {1, 2, 6, 6}, 1);
    Tensor z = rand_of(DType::Float32, {1, 3, 6, 6}, 2);
    z.mutable_as<float>()[7] = std::numeric_limits<float>::quiet_NaN();
    Attrs a{{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"activation", std::string(act)}, {"clip_min", -1.0f},
            {"clip_max", 1.0f}};
    ir::Graph g = make_graph(fo::kFusedConv, 1, {x, Const(rand_of(DType::Float32, {3, 2, 3, 3}, 3)), In(Tensor()), z},
                             a, 1);
    g.nodes[0].domain = fo::kDomain;
    ir::infer_types(g);
    for (const auto& t : runtime::cpu::tactics_for(g, g.nodes[0])) {
      SCOPED_TRACE(t.name);
      std::vector<Tensor> out(1);
      t.run(g.nodes[0], {&x, &g.initializers.at(g.nodes[0].inputs[1]), nullptr, &z}, out);
      const float v = out[0].as<float>()[7];
      if (std::string(act) == "relu") {
        EXPECT_EQ(v, 0.0f) << "Relu maps NaN to 0";
      } else {
        EXPECT_TRUE(std::isnan(v)) << "Clip keeps NaN";
      }
    }
  }
}

// Malformed kiln.FusedConv nodes are typed errors naming the node: an unknown activation, a Z of another shape or
// dtype; at type inference and in the reference kernel (the fast tactics hand such inputs to it).
TEST(FuseConvActivation, BadNodesAreInvalidModel) {
  using namespace test_ops;
  using namespace test_ops::cpu_tactics_test;
  auto expect_invalid = [](const std::vector<In>& ins, const Attrs& a, const std::string& what) {
    SCOPED_TRACE(what);
    ir::Graph g = make_graph(fo::kFusedConv, 1, ins, a, 1);
    g.nodes[0].domain = fo::kDomain;
    try {
      ir::infer_types(g);
      ADD_FAILURE() << "inference accepted it";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      EXPECT_NE(std::string(e.what()).find("n0"), std::string::npos) << e.what();
    }
    std::vector<const Tensor*> ptrs;
    for (const auto& i : ins) ptrs.push_back(i.t.empty() ? nullptr : &i.t);
    for (const auto& t : runtime::cpu::tactics_for(g, g.nodes[0])) {
      SCOPED_TRACE(t.name);
      std::vector<Tensor> out(1);
      try {
        t.run(g.nodes[0], ptrs, out);
        ADD_FAILURE() << "the kernel accepted it";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidModel) << e.what();
      }
    }
  };
  const Tensor x = rand_of(DType::Float32, {1, 2, 5, 5}, 1), w = rand_of(DType::Float32, {3, 2, 3, 3}, 2);
  const Attrs pads{{"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  Attrs gelu = pads;
  gelu["activation"] = std::string("gelu");
  expect_invalid({x, Const(w)}, gelu, "unknown activation");
  Attrs relu = pads;
  relu["activation"] = std::string("relu");
  expect_invalid({x, Const(w), In(Tensor()), rand_of(DType::Float32, {1, 3, 5, 4}, 3)}, relu, "Z of another shape");
  expect_invalid({x, Const(w), In(Tensor()), rand_of(DType::Float16, {1, 3, 5, 5}, 4)}, relu, "Z of another dtype");
}

// ---- builder wiring -----------------------------------------------------------------------------------------------
std::map<std::string, size_t> op_counts(const Engine& e) {
  std::map<std::string, size_t> m;
  for (const auto& n : e.impl()->graph.nodes) ++m[n.op_type];
  return m;
}

// A residual block: Conv -> Relu -> Conv -> Add(x) -> Relu, then a Conv whose output is the graph output.
ir::Graph block() {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {1, 4, 8, 8});
  std::map<std::string, ir::Attr> a{{"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  std::string v = b.node("Conv", {x, b.constant("w1", random_tensor(DType::Float32, {4, 4, 3, 3}, 1, -0.3f, 0.3f))}, a, 11);
  v = b.node("Relu", {v});
  v = b.node("Conv", {v, b.constant("w2", random_tensor(DType::Float32, {4, 4, 3, 3}, 2, -0.3f, 0.3f))}, a, 11);
  v = b.node("Add", {v, x});
  v = b.node("Relu", {v});
  b.output(b.node("Conv", {v, b.constant("w3", random_tensor(DType::Float32, {4, 4, 3, 3}, 3, -0.3f, 0.3f))}, a, 11));
  return b.typed();
}

Engine build_block(Target t, Precision p = Precision::FP32, bool off = false) {
  BuildConfig cfg;
  cfg.target = t;
  cfg.precision = p;
  if (off) {
    EXPECT_EQ(setenv("KILN_FUSE_CONV_ACTIVATION", "0", 1), 0);
  }
  Engine e = build_engine(as_model(block()), cfg);
  if (off) unsetenv("KILN_FUSE_CONV_ACTIVATION");
  return e;
}

TEST(FuseConvActivationBuild, CpuEnginesSwitchAndOutputs) {
  const TensorMap feeds{{"x", random_tensor(DType::Float32, {1, 4, 8, 8}, 7)}};
  const Tensor want = runtime::cpu::run_graph_reference(block(), feeds).at(block().outputs[0]);
  auto c = op_counts(build_block(Target::Cpu));
  EXPECT_EQ(c[fo::kFusedConv], 2u);
  EXPECT_EQ(c["Conv"], 1u) << "the last conv's output is the graph output: nothing after it";
  EXPECT_EQ(c["Relu"] + c["Add"], 0u);
  for (Precision p : {Precision::FP32, Precision::FP16}) {
    Engine e = build_block(Target::Cpu, p);
    EXPECT_EQ(op_counts(e)[fo::kFusedConv], 2u);
    ExecutionContext ctx = e.create_context();
    const Tensor got = ctx.run(feeds).at(block().outputs[0]);
    const Comparison cmp = compare(got, want, tolerance_for(p == Precision::FP32 ? "fp32" : "fp16"));
    EXPECT_TRUE(cmp.passed) << cmp.reason;
  }
  c = op_counts(build_block(Target::Cpu, Precision::FP32, true));
  EXPECT_EQ(c[fo::kFusedConv], 0u);
  EXPECT_EQ(c["Conv"], 3u);
#if KILN_WITH_CUDA
  EXPECT_EQ(setenv("KILN_CUDA_TACTIC_TIMING", "0", 1), 0);
  c = op_counts(build_block(Target::Cuda));
  unsetenv("KILN_CUDA_TACTIC_TIMING");
  EXPECT_EQ(c[fo::kFusedConv], 0u) << "CUDA engines are not fused by this pass";
#endif
}

}  // namespace
}  // namespace kiln::test_fuse
