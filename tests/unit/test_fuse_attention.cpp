// The fuse_attention pass and kiln.Attention's reference (docs/passes.md): graphs written the way the dynamo and
// TorchScript exporters write scaled-dot-product attention (head splits, sqrt-split scale, float / bool masks with
// fully masked rows, the IsNaN / Where guard, autocast's Casts, dynamic batch) fuse into one node whose reference
// output matches the unfused graph's; each guard of the pattern leaves a graph that differs unfused.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "attention_test_util.h"
#include "builder/profiles.h"
#include "kiln/compare.h"
#include "ops/common.h"

namespace kiln::test_attn {
namespace {

namespace ka = ops::kattn;

std::vector<double> values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.at_double(i);
  return v;
}

// got against want: NaN in the same places, the rest within the tolerance row. Returns the NaN count.
size_t expect_close(const Tensor& got, const Tensor& want, const char* row, const std::string& what) {
  EXPECT_EQ(got.shape(), want.shape()) << what;
  EXPECT_EQ(got.dtype(), want.dtype()) << what;
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) return 0;
  const std::vector<double> a = values(got), b = values(want);
  size_t nans = 0, bad = 0;
  Tensor ga(DType::Float32, got.shape()), wa(DType::Float32, want.shape());
  for (size_t i = 0; i < a.size(); ++i) {
    const bool na = std::isnan(a[i]), nb = std::isnan(b[i]);
    bad += na != nb;
    nans += nb;
    ga.mutable_as<float>()[i] = na ? 0.0f : static_cast<float>(a[i]);
    wa.mutable_as<float>()[i] = nb ? 0.0f : static_cast<float>(b[i]);
  }
  EXPECT_EQ(bad, 0u) << what << ": NaN in different places";
  const Comparison c = compare(ga, wa, tolerance_for(row));
  EXPECT_TRUE(c.passed) << what << ": " << c.reason << " (max abs " << c.max_abs << ", rel L2 " << c.rel_l2 << ")";
  return nans;
}

const char* row(DType dt) { return dt == DType::Float32 ? "fp32" : dt == DType::Float16 ? "fp16" : "bf16"; }

// Runs the pass (and DCE) on a copy of g; checks it made `expect` kiln.Attention nodes and that the graph still
// computes what g does (reference kernels). Returns the fused graph.
ir::Graph fuse_and_check(const ir::Graph& g, const TensorMap& feeds, size_t expect, DType dt = DType::Float32,
                         const std::vector<passes::ValueShapes>& samples = {}, size_t* nans = nullptr) {
  ir::Graph f = g;
  ir::infer_types(f);
  EXPECT_EQ(passes::fuse_attention(f, samples), expect > 0);
  passes::eliminate_dead_code(f);
  ir::infer_types(f);
  EXPECT_EQ(count_attention(f), expect);
  const TensorMap want = runtime::cpu::run_graph_reference(g, feeds);
  const TensorMap got = runtime::cpu::run_graph_reference(f, feeds);
  for (const auto& o : g.outputs) {
    const size_t n = expect_close(got.at(o), want.at(o), row(dt), o);
    if (nans) *nans += n;
    const ir::ValueType* t = f.type_of(o);
    if (g.type_of(o) && g.type_of(o)->is_static()) {
      EXPECT_TRUE(t && t->is_static() && t->static_shape() == want.at(o).shape()) << o;
    }
  }
  return f;
}

size_t count(const ir::Graph& g, const std::string& op) { return test_fuse::count_op(g, op); }

TEST(FuseAttention, DynamoFloatMaskFoldsHeadSplitsAndScale) {
  Spec s;
  Built b = build_sdpa(s);
  size_t nans = 0;
  const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1, s.dt, {}, &nans);
  EXPECT_GT(nans, 0u) << "the fully masked row is NaN without the guard, fused or not";
  const ir::Node* n = attention_node(f);
  ASSERT_TRUE(n);
  const ka::Params p = ka::decode(*n);
  EXPECT_EQ(p.q, ka::Layout::BSD);
  EXPECT_EQ(p.k, ka::Layout::BSD);
  EXPECT_EQ(p.v, ka::Layout::BSD);
  EXPECT_EQ(p.out, ka::Layout::BSD);
  EXPECT_EQ(p.num_heads, s.H);
  EXPECT_EQ(p.mask, ka::MaskMode::Add);
  EXPECT_FALSE(p.nan_to_zero);
  EXPECT_NEAR(p.scale, 1.0 / std::sqrt(static_cast<double>(s.D)), 1e-6);
  EXPECT_EQ(count(f, "Transpose"), 0u) << "every head Transpose folds away";
  EXPECT_EQ(count(f, "Softmax"), 0u);
  EXPECT_EQ(n->outputs[0], b.out) << "the fused node writes the Reshape's output";
}

TEST(FuseAttention, BoolMaskWhereAndNanGuard) {
  for (DType dt : {DType::Float32, DType::Float16}) {
    SCOPED_TRACE(dtype_name(dt));
    Spec s;
    s.dt = dt;
    s.mask = MaskKind::Bool;
    s.guard = true;
    Built b = build_sdpa(s);
    const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1, dt);
    const ka::Params p = ka::decode(*attention_node(f));
    EXPECT_EQ(p.mask, ka::MaskMode::Bool);
    EXPECT_TRUE(p.nan_to_zero);
    EXPECT_EQ(p.mask_true, 0.0f);
    EXPECT_EQ(p.mask_false, dt == DType::Float32 ? -3.4028234663852886e38f : -65504.0f);
    EXPECT_EQ(count(f, "Where"), 0u);
    EXPECT_EQ(count(f, "IsNaN"), 0u);
    EXPECT_EQ(attention_node(f)->inputs[3], "mask") << "the bool mask is read as it is";
  }
}

// A float mask of -inf with the guard: the fully masked rows are zeros, in the graph and in the fused node.
TEST(FuseAttention, GuardTurnsFullyMaskedRowsIntoZeros) {
  Spec s;
  s.guard = true;
  Built b = build_sdpa(s);
  size_t nans = 0;
  const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1, s.dt, {}, &nans);
  EXPECT_EQ(nans, 0u);
  EXPECT_TRUE(ka::decode(*attention_node(f)).nan_to_zero);
  const Tensor o = runtime::cpu::run_graph_reference(f, b.feeds).at(b.out);  // [B, Sq, E]; batch 0 row 1 masked
  for (int64_t e = 0; e < s.E(); ++e) EXPECT_EQ(o.at_double(1 * s.E() + e), 0.0) << e;
}

TEST(FuseAttention, TorchScriptFormAndBroadcastMask) {
  Spec s;
  s.form = Form::TorchScript;
  s.mask_full = false;  // [B, 1, 1, Sk]
  s.H = 3, s.D = 8, s.Sq = s.Sk = 5;
  Built b = build_sdpa(s);
  const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1);
  const ka::Params p = ka::decode(*attention_node(f));
  EXPECT_EQ(p.k, ka::Layout::BSD) << "Transpose(perm 0,2,3,1) of the split K";
  EXPECT_NEAR(p.scale, 1.0 / std::sqrt(8.0), 1e-7) << "Div of the scores by sqrt(D)";
  EXPECT_EQ(count(f, "Transpose"), 0u);
}

TEST(FuseAttention, CrossAttentionAndLowPrecisionGraphs) {
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (Form form : {Form::Dynamo, Form::TorchScript}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (form == Form::Dynamo ? " dynamo" : " torchscript"));
      Spec s;
      s.dt = dt, s.form = form, s.Sq = 5, s.Sk = 9, s.H = 2, s.D = 8;
      Built b = build_sdpa(s);
      fuse_and_check(b.b.typed(), b.feeds, 1, dt);
    }
}

TEST(FuseAttention, Plain4DOperandsStayHeadSplit) {
  Spec s;
  s.form = Form::Plain4D;
  s.mask = MaskKind::None;
  Built b = build_sdpa(s);
  const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1);
  const ka::Params p = ka::decode(*attention_node(f));
  EXPECT_EQ(p.q, ka::Layout::BHSD);
  EXPECT_EQ(p.k, ka::Layout::BHSD);
  EXPECT_EQ(p.out, ka::Layout::BHSD);
  EXPECT_EQ(p.mask, ka::MaskMode::None);
  EXPECT_EQ(f.nodes.size(), 1u);
}

// Autocast's graph (float16, Softmax and the mask Add kept in float32 with Casts around them) still fuses.
TEST(FuseAttention, AfterAutocast) {
  for (bool guard : {false, true}) {
    Spec s;
    s.mask = guard ? MaskKind::Bool : MaskKind::Float;
    s.guard = guard;
    Built b = build_sdpa(s);
    ir::Graph g = b.b.typed();
    passes::AutocastOptions o;
    o.low = DType::Float16;
    ASSERT_TRUE(passes::autocast(g, o));
    passes::remove_redundant_casts(g);
    passes::eliminate_dead_code(g);
    ir::infer_types(g);
    ASSERT_GT(count(g, "Cast"), 0u);
    if (getenv("KILN_ATTN_DUMP"))
      for (const auto& n : g.nodes) {
        std::cout << n.op_type << "(";
        for (const auto& i : n.inputs) std::cout << i << ":" << (g.type_of(i) ? g.type_of(i)->str() : std::string("init")) << " ";
        std::cout << ") -> " << n.outputs[0] << "\n";
      }
    const ir::Graph f = fuse_and_check(g, b.feeds, 1, DType::Float16);
    const ir::Node* n = attention_node(f);
    ASSERT_TRUE(n);
    EXPECT_EQ(f.type_of(n->inputs[0])->dtype, DType::Float16);
    EXPECT_EQ(count(f, "Softmax"), 0u);
  }
}

// Dynamic batch: the Reshapes' shapes are known only in the builder's samples; without them nothing fuses.
TEST(FuseAttention, DynamicBatchNeedsShapeSamples) {
  Spec s;
  Built b = build_sdpa(s);
  ir::Graph g = b.b.g;
  g.types["x"].dims[0] = Dim{-1, "batch"};
  g.types["mask"].dims[0] = Dim{-1, "batch"};
  for (auto& [name, t] : g.initializers)
    if (t.dtype() == DType::Int64 && t.numel() >= 3) t.mutable_as<int64_t>()[0] = -1;  // reshape targets: -1 batch
  ir::infer_types(g);
  fuse_and_check(g, b.feeds, 0);
  Profile prof;
  prof.add_input_shape("x", {1, s.Sq, s.E()}, {2, s.Sq, s.E()}, {4, s.Sq, s.E()});
  prof.add_input_shape("mask", {1, 1, s.Sq, s.Sk}, {2, 1, s.Sq, s.Sk}, {4, 1, s.Sq, s.Sk});
  const auto samples = builder::profile_value_shapes(g, {prof});
  ASSERT_EQ(samples.size(), 3u);
  fuse_and_check(g, b.feeds, 1, DType::Float32, samples);
}

// ---- what must not fuse (or must fuse without folding) --------------------------------------------------------
TEST(FuseAttentionGuards, SoftmaxOverAnotherAxis) {
  Spec s;
  s.form = Form::Plain4D;
  Built b = build_sdpa(s);
  for (auto& n : b.b.g.nodes)
    if (n.op_type == "Softmax") n.attrs["axis"] = int64_t{2};
  fuse_and_check(b.b.typed(), b.feeds, 0);
}

TEST(FuseAttentionGuards, ProbabilitiesReadElsewhere) {
  Spec s;
  Built b = build_sdpa(s);
  for (const auto& n : b.b.g.nodes)
    if (n.op_type == "Softmax") b.b.output(n.outputs[0]);
  fuse_and_check(b.b.typed(), b.feeds, 0);
}

TEST(FuseAttentionGuards, GuardMustWriteZeroAndKeepP) {
  for (int variant = 0; variant < 2; ++variant) {
    Spec s;
    s.guard = true;
    Built b = build_sdpa(s);
    for (auto& n : b.b.g.nodes)
      if (n.op_type == "Where" && n.inputs[1] == "pzero") {
        if (variant == 0) n.inputs[1] = b.b.constant("half", scalar(s.dt, 0.5f));  // Where(IsNaN(P), 0.5, P)
        else std::swap(n.inputs[1], n.inputs[2]);                                 // Where(IsNaN(P), P, 0)
      }
    fuse_and_check(b.b.typed(), b.feeds, 0);
  }
}

TEST(FuseAttentionGuards, ScaleAfterTheMaskAndNarrowingCasts) {
  {  // Mul of (scores + mask): not a scale of the scores alone
    Spec s;
    Built b = build_sdpa(s);
    for (auto& n : b.b.g.nodes)
      if (n.op_type == "Softmax") {
        const std::string x = n.inputs[0];
        ir::Node mul;
        mul.name = "late_mul", mul.op_type = "Mul", mul.opset = 20;
        mul.inputs = {x, b.b.constant("late", scalar(s.dt, 0.5f))};
        mul.outputs = {"late_scaled"};
        n.inputs[0] = "late_scaled";
        b.b.g.nodes.insert(b.b.g.nodes.begin() + (&n - b.b.g.nodes.data()), mul);
        break;
      }
    fuse_and_check(b.b.typed(), b.feeds, 0);
  }
  {  // float32 scores rounded to float16 before the Softmax
    GraphBuilder gb;
    const std::string q = gb.input("q", DType::Float32, {1, 2, 4, 8}), k = gb.input("k", DType::Float32, {1, 2, 4, 8});
    const std::string v = gb.input("v", DType::Float32, {1, 2, 4, 8});
    const std::string sc = gb.node("MatMul", {q, gb.node("Transpose", {k}, {{"perm", ints({0, 1, 3, 2})}})});
    const std::string lo = gb.node("Cast", {sc}, {{"to", int64_t{10}}});
    const std::string p = gb.node("Cast", {gb.node("Softmax", {lo}, {{"axis", int64_t{-1}}})}, {{"to", int64_t{1}}});
    gb.output(gb.node("MatMul", {p, v}));
    fuse_and_check(gb.typed(), {{"q", random_tensor(DType::Float32, {1, 2, 4, 8}, 1)},
                                {"k", random_tensor(DType::Float32, {1, 2, 4, 8}, 2)},
                                {"v", random_tensor(DType::Float32, {1, 2, 4, 8}, 3)}},
                   0);
  }
}

TEST(FuseAttentionGuards, MaskThatBroadcastsTheScoresUp) {
  GraphBuilder gb;
  const std::string q = gb.input("q", DType::Float32, {2, 1, 4, 8}), k = gb.input("k", DType::Float32, {2, 1, 4, 8});
  const std::string v = gb.input("v", DType::Float32, {2, 1, 4, 8}), m = gb.input("m", DType::Float32, {2, 3, 4, 4});
  const std::string sc = gb.node("MatMul", {q, gb.node("Transpose", {k}, {{"perm", ints({0, 1, 3, 2})}})});
  const std::string p = gb.node("Softmax", {gb.node("Add", {sc, m})}, {{"axis", int64_t{-1}}});
  gb.output(gb.node("MatMul", {p, v}));
  fuse_and_check(gb.typed(), {{"q", random_tensor(DType::Float32, {2, 1, 4, 8}, 1)},
                              {"k", random_tensor(DType::Float32, {2, 1, 4, 8}, 2)},
                              {"v", random_tensor(DType::Float32, {2, 1, 4, 8}, 3)},
                              {"m", random_tensor(DType::Float32, {2, 3, 4, 4}, 4)}},
                 0);
}

TEST(FuseAttentionGuards, WrongKeyTransposeIsNotKT) {
  Spec s;
  s.H = 2, s.D = 4, s.Sk = s.Sq = 4;  // B * H == S * ... shapes that still multiply
  Built b = build_sdpa(s);
  for (auto& n : b.b.g.nodes)
    if (n.op_type == "Transpose" && n.attr_ints("perm", {}) == ints({0, 2, 1})) n.attrs["perm"] = ints({0, 1, 2});
  // Transpose(perm 0,1,2) is not a K^T: the graph computes something else and must stay as it is.
  fuse_and_check(b.b.typed(), b.feeds, 0);
}

// Steps that are exact but not foldable stay outside the fused node: a per-channel factor on Q, a factor on V,
// an output Reshape to another layout, an output read twice.
TEST(FuseAttentionGuards, UnfoldableStepsStayOutsideButMeaningHolds) {
  Spec s;
  s.form = Form::Plain4D;
  Built b = build_sdpa(s);
  ir::Graph& g = b.b.g;
  for (auto& n : g.nodes) {
    if (n.op_type == "MatMul" && n.inputs[0] == "q") {
      ir::Node mul;
      mul.name = "chan", mul.op_type = "Mul", mul.opset = 20;
      mul.inputs = {"q", b.b.constant("per_d", random_tensor(DType::Float32, {s.D}, 5, 0.5f, 1.5f))};
      mul.outputs = {"q_chan"};
      n.inputs[0] = "q_chan";
      g.nodes.insert(g.nodes.begin(), mul);
      break;
    }
  }
  for (auto& n : g.nodes)
    if (n.op_type == "MatMul" && n.inputs[1] == "v") {
      ir::Node mul;
      mul.name = "vscale", mul.op_type = "Mul", mul.opset = 20;
      mul.inputs = {"v", b.b.constant("two", scalar(DType::Float32, 2.0f))};
      mul.outputs = {"v2"};
      n.inputs[1] = "v2";
      g.nodes.insert(g.nodes.begin(), mul);
      break;
    }
  const std::string o = g.outputs[0];
  g.outputs.push_back(b.b.node("Transpose", {o}, {{"perm", ints({0, 2, 1, 3})}}));  // O read twice
  const ir::Graph f = fuse_and_check(b.b.typed(), b.feeds, 1);
  const ir::Node* n = attention_node(f);
  EXPECT_EQ(n->inputs[0], "q_chan");
  EXPECT_EQ(n->inputs[2], "v2");
  EXPECT_EQ(ka::decode(*n).out, ka::Layout::BHSD);
}

// ---- the op itself ----------------------------------------------------------------------------------------------
TEST(KilnAttentionOp, LayoutsAgreeAndCausal) {
  // The same attention with Q / K / V / O in each layout gives the same numbers (and the causal flag masks j > i).
  const int64_t B = 2, H = 3, S = 5, D = 4;
  const Tensor q4 = random_tensor(DType::Float32, {B, H, S, D}, 1), k4 = random_tensor(DType::Float32, {B, H, S, D}, 2);
  const Tensor v4 = random_tensor(DType::Float32, {B, H, S, D}, 3);
  auto to_bshd = [&](const Tensor& t) {
    Tensor r(DType::Float32, {B, S, H, D});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t d = 0; d < D; ++d)
            r.mutable_as<float>()[((b * S + s) * H + h) * D + d] = t.as<float>()[((b * H + h) * S + s) * D + d];
    return r;
  };
  auto run = [&](ka::Layout l, ka::Layout out, bool causal) {
    ir::register_all_ops();
    ir::Node n;
    n.name = "attn", n.op_type = ka::kOpType, n.domain = ka::kDomain, n.opset = 1;
    ka::Params p;
    p.scale = 0.7f, p.num_heads = H, p.q = p.k = p.v = l, p.out = out, p.causal = causal;
    ka::encode(p, n);
    Tensor q = q4, k = k4, v = v4;
    if (l != ka::Layout::BHSD) q = to_bshd(q4), k = to_bshd(k4), v = to_bshd(v4);
    if (l == ka::Layout::BSD) q = q.reshaped({B, S, H * D}), k = k.reshaped({B, S, H * D}), v = v.reshaped({B, S, H * D});
    std::vector<Tensor> res(1);
    ir::OpRegistry::instance().find(ka::kDomain, ka::kOpType, 1)->reference(n, {&q, &k, &v}, res);
    return res[0];
  };
  for (bool causal : {false, true}) {
    const Tensor ref = run(ka::Layout::BHSD, ka::Layout::BHSD, causal);
    const Tensor b = run(ka::Layout::BSD, ka::Layout::BSHD, causal);
    const Tensor c = run(ka::Layout::BSHD, ka::Layout::BSD, causal).reshaped({B, S, H, D});
    const Tensor want = to_bshd(ref);
    expect_close(b, want, "fp32", "bsd in, bshd out");
    expect_close(c, want, "fp32", "bshd in, bsd out");
    if (causal) {  // row 0 attends key 0 only: O[b, h, 0] = V[b, h, 0]
      for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(ref.at_double(d), v4.at_double(d), 1e-6);
    }
  }
}

TEST(KilnAttentionOp, MalformedAttributesAndShapesAreRefused) {
  GraphBuilder gb;
  const std::string q = gb.input("q", DType::Float32, {1, 4, 6}), k = gb.input("k", DType::Float32, {1, 4, 6});
  const std::string v = gb.input("v", DType::Float32, {1, 4, 6});
  ir::Node n;
  n.name = "attn", n.op_type = ka::kOpType, n.domain = ka::kDomain, n.opset = 1;
  n.inputs = {q, k, v};
  n.outputs = {"o"};
  ka::Params p;
  p.q = p.k = p.v = p.out = ka::Layout::BSD;
  p.num_heads = 4;  // 6 is not divisible by 4
  ka::encode(p, n);
  gb.g.nodes.push_back(n);
  gb.output("o");
  EXPECT_THROW(gb.typed(), Error);
  gb.g.nodes[0].attrs["num_heads"] = int64_t{3};
  const ir::Graph ok = gb.typed();
  EXPECT_EQ(ok.type_of("o")->static_shape(), (Shape{1, 4, 6}));
  gb.g.nodes[0].attrs["q_layout"] = std::string("hsd");
  EXPECT_THROW(gb.typed(), Error);
  gb.g.nodes[0].attrs["q_layout"] = std::string("bsd");
  gb.g.nodes[0].attrs["mask_mode"] = std::string("add");  // no mask input
  EXPECT_THROW(gb.typed(), Error);
}

}  // namespace
}  // namespace kiln::test_attn

namespace kiln::test_attn {
namespace {

// constant_folding (c): Slice / Gather of a Shape whose selected dims are static fold even when the batch is not,
// so the TorchScript exporter's scale (Shape -> Slice(-1) -> Cast -> Sqrt -> ...) becomes a constant; a dynamic dim
// stays computed.
TEST(ConstantFoldingShapeParts, StaticDimsOfADynamicShapeFold) {
  GraphBuilder gb;
  gb.input("x", DType::Float32, {2, 3, 8});
  gb.g.types["x"].dims[0] = Dim{-1, "batch"};
  const std::string sh = gb.node("Shape", {"x"});
  const std::string last = gb.node("Slice", {sh, gb.constant("s0", i64_tensor({-1})), gb.constant("e0", i64_tensor({INT64_MAX}))});
  const std::string mid = gb.node("Gather", {sh, gb.constant("i1", i64_tensor({1}))}, {{"axis", int64_t{0}}});
  const std::string first = gb.node("Gather", {sh, gb.constant("i0", i64_tensor({0}))}, {{"axis", int64_t{0}}});
  const std::string f = gb.node("Sqrt", {gb.node("Cast", {last}, {{"to", int64_t{1}}})});
  gb.output(f);
  gb.output(mid);
  gb.output(first);
  ir::Graph g = gb.typed();
  ASSERT_TRUE(passes::fold_constants(g));
  passes::eliminate_dead_code(g);
  ASSERT_TRUE(g.initializers.count(f)) << "Sqrt(float(8)) is a constant";
  EXPECT_FLOAT_EQ(g.initializers.at(f).as<float>()[0], std::sqrt(8.0f));
  ASSERT_TRUE(g.initializers.count(mid));
  EXPECT_EQ(g.initializers.at(mid).as<int64_t>()[0], 3);
  EXPECT_FALSE(g.initializers.count(first)) << "the batch dim is not static";
  EXPECT_EQ(test_fuse::count_op(g, "Shape"), 1u);
}

}  // namespace
}  // namespace kiln::test_attn
