// The layout_nhwc pass and kiln.Conv / kiln.Pool (docs/passes.md, "layout_nhwc"): which nodes go channels-last,
// where the transposes go (only at region boundaries), which conv epilogues fold, fp32 graphs untouched, the
// rewritten graph run by the reference kernels against the original one (the same reference kernels: bit-exact
// except for the reductions), and in the builder: CUDA fp16 / bf16 engines only, KILN_LAYOUT_NHWC=0, plans with
// kiln.Conv surviving save / load, the real-architecture CNNs rewritten and still matching ONNX Runtime.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "fuse_test_util.h"
#include "real_arch_test_util.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "ops/nhwc.h"
#include "runtime/engine_impl.h"

namespace kiln::test_fuse {
namespace {

using namespace real_arch_test;

using ir::Attr;
Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

size_t count_kiln(const ir::Graph& g, const std::string& op) {
  size_t k = 0;
  for (const auto& n : g.nodes) k += n.domain == "kiln" && n.op_type == op;
  return k;
}
size_t count_onnx(const ir::Graph& g, const std::string& op) {
  size_t k = 0;
  for (const auto& n : g.nodes) k += n.domain.empty() && n.op_type == op;
  return k;
}
const ir::Node* producer(const ir::Graph& g, const std::string& v) {
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == v) return &n;
  return nullptr;
}

Tensor weights(DType dt, const Shape& s, uint32_t seed) { return random_tensor(dt, s, seed, -0.4f, 0.4f); }

// Runs the pass on a copy of g (expecting `changed`), then both graphs with the reference kernels on `feeds`:
// outputs named in `exact` must be bit-equal, every output within the dtype's tolerance.
ir::Graph relayout_and_check(const ir::Graph& g, const TensorMap& feeds, bool changed,
                             const std::set<std::string>& exact = {}) {
  ir::Graph f = g;
  EXPECT_EQ(passes::layout_nhwc(f), changed);
  passes::eliminate_dead_code(f);
  ir::infer_types(f);
  const TensorMap want = runtime::cpu::run_graph_reference(g, feeds);
  const TensorMap got = runtime::cpu::run_graph_reference(f, feeds);
  for (const auto& o : g.outputs) {
    SCOPED_TRACE("output " + o);
    EXPECT_EQ(f.type_of(o)->str(), g.type_of(o)->str()) << "graph outputs keep their NCHW types";
    EXPECT_TRUE(got.count(o));
    if (!got.count(o)) continue;
    const Tensor& w = want.at(o);
    if (exact.count(o)) {
      EXPECT_TRUE(bit_equal(got.at(o), w));
    } else {
      const Comparison c = compare(got.at(o), w, tolerance_for(w.dtype() == DType::Float32 ? "fp32" : "fp16"));
      EXPECT_TRUE(c.passed) << c.reason;
      EXPECT_LT(c.rel_l2, 2e-3);
    }
  }
  return f;
}

// A ResNet-like stem and block in dtype dt: x -> Conv+bias -> Relu (also an output) -> MaxPool -> Conv -> Relu ->
// Conv 1x1 -> Add(pooled) -> Relu -> GlobalAveragePool -> Flatten -> output.
struct Block {
  GraphBuilder b;
  TensorMap feeds;
  std::string relu1, block_out, head;
};
Block resnet_block(DType dt) {
  Block k;
  GraphBuilder& b = k.b;
  const std::string x = b.input("x", dt, {2, 3, 12, 12});
  k.feeds["x"] = random_tensor(dt, {2, 3, 12, 12}, 1, -1, 1);
  const std::string c1 = b.node("Conv", {x, b.constant("w1", weights(dt, {8, 3, 3, 3}, 2)),
                                         b.constant("b1", weights(dt, {8}, 3))},
                                {{"pads", ints({1, 1, 1, 1})}});
  k.relu1 = b.node("Relu", {c1});
  const std::string mp = b.node("MaxPool", {k.relu1},
                                {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}});
  const std::string c2 = b.node("Conv", {mp, b.constant("w2", weights(dt, {8, 8, 3, 3}, 4))}, {{"pads", ints({1, 1, 1, 1})}});
  const std::string r2 = b.node("Relu", {c2});
  const std::string c3 = b.node("Conv", {r2, b.constant("w3", weights(dt, {8, 8, 1, 1}, 5)),
                                         b.constant("b3", weights(dt, {8}, 6))});
  k.block_out = b.node("Relu", {b.node("Add", {c3, mp})});
  k.head = b.node("Flatten", {b.node("GlobalAveragePool", {k.block_out})});
  b.output(k.relu1);
  b.output(k.head);
  return k;
}

TEST(LayoutNhwc, ResidualBlockTransposesOnlyAtTheBoundaries) {
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    Block k = resnet_block(dt);
    const ir::Graph f = relayout_and_check(k.b.typed(), k.feeds, true, {k.relu1});
    EXPECT_EQ(count_kiln(f, "Conv"), 3u);
    EXPECT_EQ(count_kiln(f, "Pool"), 1u);
    EXPECT_EQ(count_onnx(f, "Conv"), 0u);
    EXPECT_EQ(count_onnx(f, "Relu"), 0u) << "every Relu folded into its conv";
    EXPECT_EQ(count_onnx(f, "Add"), 0u) << "the residual Add folded into the block's last conv";
    EXPECT_EQ(count_onnx(f, "GlobalAveragePool"), 0u);
    EXPECT_EQ(count_onnx(f, "ReduceMean"), 1u);
    // One entry (x, transposed and padded to 8 channels by one kiln.ToNhwc), one exit transpose (relu1 is a graph
    // output), the head leaves through a Reshape (1 x 1).
    EXPECT_EQ(count_onnx(f, "Transpose"), 1u);
    EXPECT_EQ(count_onnx(f, "Reshape"), 1u);
    EXPECT_EQ(count_onnx(f, "Pad"), 0u);
    ASSERT_EQ(count_kiln(f, "ToNhwc"), 1u) << "the 3-channel stem reads its input padded to 8 channels";
    for (const auto& n : f.nodes)
      if (ops::nhwc::is_to_nhwc(n)) {
        EXPECT_EQ(n.inputs, std::vector<std::string>{"x"});
        EXPECT_EQ(n.attr_int("channels", 0), 8);
        EXPECT_EQ(f.type_of(n.outputs[0])->str(), ir::ValueType::of(dt, {2, 12, 12, 8}).str());
      }
    const ir::Node* exit1 = producer(f, k.relu1);
    ASSERT_TRUE(exit1);
    EXPECT_EQ(exit1->op_type, "Transpose");
    EXPECT_EQ(exit1->attr_ints("perm", {}), (std::vector<int64_t>{0, 3, 1, 2}));
    for (const auto& n : f.nodes) {
      if (!ops::nhwc::is_conv(n)) continue;
      EXPECT_EQ(n.attr_string("activation", ""), "Relu") << n.name;
      EXPECT_EQ(n.attr_string("layout", ""), "NHWC");
      ASSERT_GE(n.inputs.size(), 3u);
      EXPECT_TRUE(f.is_constant(n.inputs[2])) << n.name << ": a bias (zeros where the Conv had none)";
      const Shape ws = f.initializers.at(n.inputs[1]).shape();
      EXPECT_EQ(ws[3], f.type_of(n.inputs[0])->dims[3].value) << "KRSC weights: C / group last";
    }
    size_t with_residual = 0;
    for (const auto& n : f.nodes) with_residual += ops::nhwc::is_conv(n) && n.has_input(3);
    EXPECT_EQ(with_residual, 1u);
  }
}

TEST(LayoutNhwc, Fp32GraphsAndAsymmetricPadsAreUntouched) {
  Block k = resnet_block(DType::Float32);
  relayout_and_check(k.b.typed(), k.feeds, false);
  // float16, but the only conv has pads cuDNN cannot take symmetrically.
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float16, {1, 4, 9, 9});
  b.output(b.node("Relu", {b.node("Conv", {x, b.constant("w", weights(DType::Float16, {4, 4, 3, 3}, 1))},
                                   {{"pads", ints({0, 0, 2, 2})}})}));
  relayout_and_check(b.typed(), {{"x", random_tensor(DType::Float16, {1, 4, 9, 9}, 2)}}, false);
}

TEST(LayoutNhwc, RegionBoundariesAroundOtherOps) {
  // conv -> BatchNormalization (not folded here: a boundary) -> conv; a Softmax reads a region value; the two
  // branches meet in an Add whose other operand comes from outside (an entry transpose of it, no exit).
  const DType dt = DType::Float16;
  GraphBuilder b;
  const std::string x = b.input("x", dt, {2, 4, 6, 6});
  const std::string y = b.input("y", dt, {2, 4, 6, 6});
  const std::string c1 = b.node("Conv", {x, b.constant("w1", weights(dt, {4, 4, 3, 3}, 1))}, {{"pads", ints({1, 1, 1, 1})}});
  const std::string bn = b.node("BatchNormalization", {c1, b.constant("s", weights(dt, {4}, 2)),
                                                       b.constant("o", weights(dt, {4}, 3)),
                                                       b.constant("m", weights(dt, {4}, 4)),
                                                       b.constant("v", random_tensor(dt, {4}, 5, 0.5f, 1.5f))});
  const std::string c2 = b.node("Conv", {bn, b.constant("w2", weights(dt, {4, 4, 1, 1}, 6))});
  const std::string scaled = b.node("Mul", {c2, b.constant("chan", weights(dt, {4, 1, 1}, 7))});
  const std::string sum = b.node("Add", {scaled, y});
  b.output(b.node("Softmax", {sum}, {{"axis", int64_t(1)}}));
  const TensorMap feeds = {{"x", random_tensor(dt, {2, 4, 6, 6}, 8, -1, 1)}, {"y", random_tensor(dt, {2, 4, 6, 6}, 9)}};
  const ir::Graph f = relayout_and_check(b.typed(), feeds, true);
  EXPECT_EQ(count_kiln(f, "Conv"), 2u);
  EXPECT_EQ(count_onnx(f, "BatchNormalization"), 1u);
  // Entries: x, bn (after the boundary), y; exits: c1 (read by BatchNormalization), sum (read by Softmax). Both
  // convs have 4 input channels: x and bn enter padded to 8 through kiln.ToNhwc, y through a Transpose.
  size_t to_nhwc = 0, to_nchw = 0;
  for (const auto& n : f.nodes) {
    if (n.op_type != "Transpose") continue;
    (n.attr_ints("perm", {}) == std::vector<int64_t>{0, 2, 3, 1} ? to_nhwc : to_nchw)++;
  }
  EXPECT_EQ(to_nhwc, 1u);
  EXPECT_EQ(count_kiln(f, "ToNhwc"), 2u);
  EXPECT_EQ(to_nchw, 2u);
  // The per-channel constant was re-laid to [1, 1, 1, C]; the Mul stays a Mul (no conv epilogue form for it).
  for (const auto& n : f.nodes)
    if (n.op_type == "Mul") {
      EXPECT_EQ(f.initializers.at(n.inputs[1]).shape(), (Shape{1, 1, 1, 4}));
    }
}

// The reference kernel of kiln.Conv against Conv (+ Add + Relu) over geometries: bit-exact.
TEST(LayoutNhwc, ConvGeometriesMatchTheOriginalExactly) {
  struct Case {
    const char* name;
    Shape x, w;
    std::map<std::string, Attr> attrs;
  };
  const std::vector<Case> cases = {
      {"pads 1", {2, 5, 7, 8}, {6, 5, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}},
      {"stride 2 dilation 2", {1, 4, 11, 10}, {4, 4, 3, 3},
       {{"strides", ints({2, 2})}, {"dilations", ints({2, 2})}, {"pads", ints({2, 2, 2, 2})}}},
      {"group 2 stride 2 (unused end pad)", {2, 6, 9, 9}, {4, 3, 3, 3},
       {{"group", int64_t(2)}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 2, 2})}}},
      {"depthwise", {1, 8, 6, 7}, {8, 1, 3, 3}, {{"group", int64_t(8)}, {"pads", ints({1, 1, 1, 1})}}},
      {"SAME_UPPER", {1, 3, 8, 8}, {4, 3, 3, 3}, {{"auto_pad", std::string("SAME_UPPER")}}},
      {"7x7 stride 2", {1, 3, 16, 16}, {4, 3, 7, 7}, {{"strides", ints({2, 2})}, {"pads", ints({3, 3, 3, 3})}}},
  };
  uint32_t seed = 50;
  for (DType dt : {DType::Float16, DType::BFloat16})
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + c.name);
      GraphBuilder b;
      const std::string x = b.input("x", dt, c.x);
      const std::string conv = b.node("Conv", {x, b.constant("w", weights(dt, c.w, seed++)),
                                               b.constant("b", weights(dt, {c.w[0]}, seed++))}, c.attrs);
      const ir::Graph typed = b.typed();
      const Shape ys = typed.type_of(conv)->static_shape();
      const std::string z = b.input("z", dt, ys);
      b.output(b.node("Relu", {b.node("Add", {z, conv})}));
      const TensorMap feeds = {{"x", random_tensor(dt, c.x, seed++, -1, 1)}, {"z", random_tensor(dt, ys, seed++)}};
      const ir::Graph f = relayout_and_check(b.typed(), feeds, true, {b.g.outputs[0]});
      ASSERT_EQ(count_kiln(f, "Conv"), 1u);
      EXPECT_EQ(count_kiln(f, "ToNhwc"), c.x[1] < 8 && !c.attrs.count("group") ? 1u : 0u) << "channel padding";
      EXPECT_EQ(count_onnx(f, "Pad"), 0u) << "the entry pads: no Pad node";
      EXPECT_EQ(count_onnx(f, "Transpose"), c.x[1] < 8 && !c.attrs.count("group") ? 2u : 3u)
          << "entries of x (unless padded) and z, the exit";
      for (const auto& n : f.nodes)
        if (ops::nhwc::is_conv(n)) {
          EXPECT_TRUE(n.has_input(3)) << "Add(z, conv) folds with the conv as either operand";
          EXPECT_EQ(n.attr_string("activation", ""), "Relu");
        }
    }
}

// A narrow conv that reads a region value (not an outside one) gets a Pad node; the stems still enter through
// kiln.ToNhwc, one for the two convs reading x; KILN_NHWC_PAD_CHANNELS=4 pads all to 4.
TEST(LayoutNhwc, NarrowConvInsideTheRegionReadsAPad) {
  for (const char* pad : {"8", "4"}) {
    SCOPED_TRACE(std::string("pad to ") + pad);
    ASSERT_EQ(setenv("KILN_NHWC_PAD_CHANNELS", pad, 1), 0);
    const DType dt = DType::Float16;
    GraphBuilder b;
    const std::string x = b.input("x", dt, {2, 3, 9, 9});
    const std::string c1 = b.node("Conv", {x, b.constant("w1", weights(dt, {2, 3, 3, 3}, 1))}, {{"pads", ints({1, 1, 1, 1})}});
    const std::string r = b.node("Relu", {c1});
    const std::string c2 = b.node("Conv", {r, b.constant("w2", weights(dt, {8, 2, 3, 3}, 2))}, {{"pads", ints({1, 1, 1, 1})}});
    const std::string c3 = b.node("Conv", {x, b.constant("w3", weights(dt, {4, 3, 1, 1}, 4))});
    b.output(c2);
    b.output(c3);
    const ir::Graph f = relayout_and_check(b.typed(), {{"x", random_tensor(dt, {2, 3, 9, 9}, 3, -1, 1)}}, true,
                                           {c2, c3});
    unsetenv("KILN_NHWC_PAD_CHANNELS");
    EXPECT_EQ(count_kiln(f, "ToNhwc"), 1u) << "one padded entry of x for both stems";
    EXPECT_EQ(count_onnx(f, "Pad"), 1u) << "the second conv's 2 channels padded inside the region";
    EXPECT_EQ(count_kiln(f, "Conv"), 3u);
    for (const auto& n : f.nodes)
      if (ops::nhwc::is_conv(n)) {
        EXPECT_EQ(f.type_of(n.inputs[0])->dims[3].value, std::atoi(pad)) << n.name;
      }
  }
}

TEST(LayoutNhwc, SqueezeExciteScaleAndPoolHeadsStayInside) {
  // EfficientNet's squeeze-excite: x * Sigmoid(Conv(ReduceMean(x, [2, 3], keepdims))): the [N, C, 1, 1] scale
  // broadcasts against x in NHWC as in NCHW; AveragePool and a keepdims = 0 ReduceMean head.
  const DType dt = DType::Float16;
  GraphBuilder b;
  const std::string x = b.input("x", dt, {2, 8, 6, 6});
  const std::string c = b.node("Conv", {x, b.constant("w", weights(dt, {8, 8, 1, 1}, 1))});
  const std::string act = b.node("Mul", {c, b.node("Sigmoid", {c})});
  const std::string se = b.node("ReduceMean", {act}, {{"axes", ints({2, 3})}, {"keepdims", int64_t(1)}}, 13);
  const std::string scale = b.node("Sigmoid", {b.node("Conv", {se, b.constant("ws", weights(dt, {8, 8, 1, 1}, 2))})});
  const std::string y = b.node("Mul", {act, scale});
  const std::string ap = b.node("AveragePool", {y}, {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})},
                                                     {"pads", ints({1, 1, 1, 1})}, {"count_include_pad", int64_t(1)}});
  b.output(b.node("ReduceMean", {ap, b.constant("axes", Tensor::from_vector<int64_t>(DType::Int64, {2}, {-1, -2}))},
                  {{"keepdims", int64_t(0)}}, 18));
  const ir::Graph f = relayout_and_check(b.typed(), {{"x", random_tensor(dt, {2, 8, 6, 6}, 3, -1, 1)}}, true);
  EXPECT_EQ(count_kiln(f, "Conv"), 2u);
  EXPECT_EQ(count_kiln(f, "Pool"), 1u);
  EXPECT_EQ(count_onnx(f, "Transpose"), 1u) << "one entry; the keepdims = 0 head is [N, C] in either layout";
  EXPECT_EQ(count_onnx(f, "Reshape"), 0u);
}

TEST(LayoutNhwc, ConcatStaysInsideWithItsAxisRenumbered) {
  // Inception / DenseNet style: two conv branches concatenated on channels, then a conv; a second Concat on H
  // takes an outside value too (entry transpose).
  const DType dt = DType::Float16;
  GraphBuilder b;
  const std::string x = b.input("x", dt, {2, 8, 6, 6});
  const std::string y = b.input("y", dt, {2, 16, 3, 6});
  const std::string a = b.node("Relu", {b.node("Conv", {x, b.constant("wa", weights(dt, {8, 8, 1, 1}, 1))})});
  const std::string c = b.node("Conv", {x, b.constant("wb", weights(dt, {8, 8, 3, 3}, 2))}, {{"pads", ints({1, 1, 1, 1})}});
  const std::string cat = b.node("Concat", {a, c}, {{"axis", int64_t(1)}}, 13);
  const std::string d = b.node("Conv", {cat, b.constant("wc", weights(dt, {16, 16, 1, 1}, 3))});
  b.output(b.node("Concat", {d, y}, {{"axis", int64_t(-2)}}, 13));
  const TensorMap feeds = {{"x", random_tensor(dt, {2, 8, 6, 6}, 4, -1, 1)}, {"y", random_tensor(dt, {2, 16, 3, 6}, 5)}};
  const ir::Graph f = relayout_and_check(b.typed(), feeds, true, {b.g.outputs[0]});
  std::vector<int64_t> axes;
  for (const auto& n : f.nodes)
    if (n.op_type == "Concat") axes.push_back(n.attr_int("axis", 0));
  EXPECT_EQ(axes, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(count_onnx(f, "Transpose"), 3u) << "entries x and y, one exit";
}

// ---- in the builder -----------------------------------------------------------------------------------------------
#if KILN_WITH_CUDA


Engine build(const Model& m, Target t, Precision p, bool layout, BuildStats* stats = nullptr) {
  BuildConfig cfg;
  cfg.target = t;
  cfg.precision = p;
  cfg.profiles.push_back(batch_profile(m));
  cfg.stats = stats;
  if (!layout) {
    EXPECT_EQ(setenv("KILN_LAYOUT_NHWC", "0", 1), 0);
  }
  EXPECT_EQ(setenv("KILN_CUDA_TACTIC_TIMING", "0", 1), 0);  // the graph, not the kernels' speed
  Engine e = build_engine(m, cfg);
  unsetenv("KILN_CUDA_TACTIC_TIMING");
  if (!layout) unsetenv("KILN_LAYOUT_NHWC");
  return e;
}

TEST(LayoutNhwcBuild, CudaLowPrecisionEnginesOnlyAndTheSwitchTurnsItOff) {
  const Model m = Model::load(kModels + "/resnet18_torchscript.onnx");
  const Engine fp16 = build(m, Target::Cuda, Precision::FP16, true);
  const Engine off = build(m, Target::Cuda, Precision::FP16, false);
  const Engine fp32 = build(m, Target::Cuda, Precision::FP32, true);
  const Engine cpu = build(m, Target::Cpu, Precision::FP16, true);
  const ir::Graph& g = fp16.impl()->graph;
  EXPECT_EQ(count_kiln(g, "Conv"), 20u) << "every ResNet-18 conv";
  EXPECT_EQ(count_onnx(g, "Conv"), 0u);
  EXPECT_EQ(count_kiln(g, "Pool"), 1u);
  EXPECT_EQ(count_onnx(g, "Transpose"), 0u) << "the pooled head leaves through a Reshape";
  EXPECT_EQ(count_kiln(g, "ToNhwc"), 1u) << "one entry, transposing and padding the image";
  EXPECT_EQ(count_onnx(g, "Relu") + count_onnx(g, "Add"), 0u) << "every Relu and residual Add folded";
  EXPECT_EQ(count_onnx(g, "Pad"), 0u) << "the stem's 3 channels padded to 8 by the entry";
  for (const auto& n : g.nodes)
    if (ops::nhwc::is_conv(n)) {
      EXPECT_EQ(n.tactic, "cudnn") << n.name << ": the heuristic's choice without timing";
    }
  for (const Engine* e : {&off, &fp32, &cpu}) {
    EXPECT_EQ(count_kiln(e->impl()->graph, "Conv"), 0u);
    EXPECT_EQ(count_onnx(e->impl()->graph, "Transpose"), 0u);
  }
}

TEST(LayoutNhwcBuild, ChannelPaddingSwitch) {
  const Model m = Model::load(kModels + "/resnet18_torchscript.onnx");
  for (const char* v : {"0", "4", "8"}) {
    SCOPED_TRACE(std::string("KILN_NHWC_PAD_CHANNELS=") + v);
    ASSERT_EQ(setenv("KILN_NHWC_PAD_CHANNELS", v, 1), 0);
    const Engine e = build(m, Target::Cuda, Precision::FP16, true);
    unsetenv("KILN_NHWC_PAD_CHANNELS");
    const ir::Graph& g = e.impl()->graph;
    EXPECT_EQ(count_onnx(g, "Pad"), 0u);
    EXPECT_EQ(count_kiln(g, "Conv"), 20u);
    const int64_t to = std::atoi(v);
    EXPECT_EQ(count_kiln(g, "ToNhwc"), to ? 1u : 0u);
    EXPECT_EQ(count_onnx(g, "Transpose"), to ? 0u : 1u) << "unpadded: a plain entry transpose";
    for (const auto& n : g.nodes) {
      if (ops::nhwc::is_to_nhwc(n)) {
        EXPECT_EQ(n.attr_int("channels", 0), to);
      }
      if (ops::nhwc::is_conv(n) && n.inputs[0] == g.inputs[0]) ADD_FAILURE() << "the stem reads the NCHW input";
      if (ops::nhwc::is_conv(n) && g.initializers.at(n.inputs[1]).shape()[3] < 8) {
        EXPECT_EQ(g.initializers.at(n.inputs[1]).shape()[3], to ? to : 3) << "the stem's KRSC weights";
      }
    }
  }
}

TEST(LayoutNhwcBuild, PlanWithKilnConvRoundTrips) {
  const Model m = Model::load(kModels + "/mobilenet_v2_dynamo.onnx");
  const Engine e = build(m, Target::Cuda, Precision::BF16, true);
  ASSERT_GT(count_kiln(e.impl()->graph, "Conv"), 0u);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kiln_nhwc_" + std::to_string(::getpid()) + ".plan")).string();
  e.save(path);
  const Engine l = Engine::load(path);
  std::filesystem::remove(path);
  const ir::Graph& g0 = e.impl()->graph;
  const ir::Graph& g1 = l.impl()->graph;
  ASSERT_EQ(g0.nodes.size(), g1.nodes.size());
  for (size_t i = 0; i < g0.nodes.size(); ++i) {
    EXPECT_EQ(g1.nodes[i].domain, g0.nodes[i].domain);
    EXPECT_EQ(g1.nodes[i].op_type, g0.nodes[i].op_type);
    EXPECT_EQ(g1.nodes[i].inputs, g0.nodes[i].inputs);
    EXPECT_EQ(g1.nodes[i].tactic, g0.nodes[i].tactic);
    EXPECT_EQ(g1.nodes[i].attr_string("activation", "-"), g0.nodes[i].attr_string("activation", "-"));
  }
  for (const auto& [name, t] : g0.initializers) EXPECT_TRUE(bit_equal(g1.initializers.at(name), t)) << name;
}


// The rewritten CUDA-engine graphs of the CNNs, run by the reference kernels (no GPU needed), against ONNX Runtime.
TEST(LayoutNhwcBuild, RealCnnsStillMatchOnnxRuntime) {
  for (const char* tag : {"resnet18_torchscript", "mobilenet_v2_dynamo", "efficientnet_b0_torchscript"})
    for (Precision p : {Precision::FP16, Precision::BF16}) {
      const char* prec = p == Precision::FP16 ? "fp16" : "bf16";
      SCOPED_TRACE(std::string(tag) + " " + prec);
      const Model m = Model::load(kModels + "/" + tag + ".onnx");
      BuildStats on;
      const Engine e = build(m, Target::Cuda, p, true, &on);
      const ir::Graph& g = e.impl()->graph;
      EXPECT_NE(std::find(on.passes_changed.begin(), on.passes_changed.end(), "layout_nhwc"), on.passes_changed.end());
      EXPECT_EQ(count_onnx(g, "Conv"), 0u) << "every conv channels-last";
      expect_reference_run_matches(g, m, tag, prec, {"b3"});
    }
}
#endif

}  // namespace
}  // namespace kiln::test_fuse
