// FP16 / BF16 engines from the autocast pass (docs/precision.md): accuracy against ONNX Runtime float32 within the
// tolerance table's relative-L2 rows, the low type really running (node dtypes, outputs differ from float32), the
// GEMM/conv FLOP share in the low type, float16 overflow inside LayerNorm / Softmax reductions avoided, the keep-list,
// low-precision I/O and the Cast cleanup pass. Models: tests/models/gen_e2e_models.py and gen_autocast_models.py.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "ir/op_registry.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_executor.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {
const std::string kE2E = std::string(KILN_TEST_MODELS) + "/e2e";
const std::string kAC = std::string(KILN_TEST_MODELS) + "/autocast";
const std::string kDemo = std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx";

const char* low_name(Precision p) { return p == Precision::FP16 ? "float16" : "bfloat16"; }

Profile batch_profile(Shape rest, int64_t mn, int64_t opt, int64_t mx) {
  Shape a{mn}, b{opt}, c{mx};
  for (int64_t d : rest) a.push_back(d), b.push_back(d), c.push_back(d);
  return Profile().add_input_shape("input", a, b, c);
}

Engine build(const std::string& model, Precision p, std::vector<Profile> profiles = {},
             std::vector<std::string> keep = {}, bool keep_io = true) {
  BuildConfig cfg;
  cfg.precision = p;
  cfg.profiles = std::move(profiles);
  cfg.keep_fp32 = std::move(keep);
  cfg.keep_io_types = keep_io;
  return build_engine(Model::load(model), cfg);
}

std::string node_dtype(const Engine& e, const std::string& name) {
  for (const auto& n : e.nodes())
    if (n.name == name) return n.dtype;
  return "<no node " + name + ">";
}

// Share of GEMM/conv FLOPs (profile 0 opt shapes) whose node computes in float16/bfloat16.
double low_gemm_share(const Engine& e) {
  int64_t all = 0, low = 0;
  for (const auto& n : e.nodes()) {
    if (!n.gemm_like) continue;
    EXPECT_GT(n.flops, 0) << n.name;
    all += n.flops;
    if (n.dtype == "float16" || n.dtype == "bfloat16") low += n.flops;
  }
  return all ? double(low) / double(all) : 0.0;
}

double stddev(const Tensor& t) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.at_double(i), s2 += t.at_double(i) * t.at_double(i);
  double m = s / double(t.numel());
  return std::sqrt(std::max(0.0, s2 / double(t.numel()) - m * m));
}

// Runs the case's input through `ctx` and compares each output with ONNX Runtime's float32 result; returns the
// outputs. Prints the measured relative L2 errors.
TensorMap expect_close(ExecutionContext& ctx, const std::string& tag, const std::string& case_dir,
                       const std::string& input, const std::vector<std::string>& outputs, const std::string& prec) {
  TensorMap out = ctx.run({{input, load_npy(case_dir + "/" + input + ".npy")}});
  for (const auto& o : outputs) {
    Tensor ref = load_npy(case_dir + "/" + o + ".npy");
    Comparison c = compare(out.at(o), ref, tolerance_for(prec));
    EXPECT_TRUE(c.passed) << tag << " " << prec << " output " << o << ": " << c.reason;
    std::cout << "[autocast] " << tag << " " << prec << " " << o << ": rel L2 " << c.rel_l2 << " (bound "
              << tolerance_for(prec).bound << ")\n";
  }
  return out;
}

struct RealModel {
  std::string tag, model, case_dir;
  std::vector<Profile> profiles;
};

std::vector<RealModel> real_models() {
  return {{"demo", kDemo, kE2E + "/demo/batch3", {batch_profile({3, 64, 64}, 1, 3, 4)}},
          {"resnet", kE2E + "/resnet/model.onnx", kE2E + "/resnet/batch2", {batch_profile({3, 32, 32}, 2, 2, 2)}}};
}
}  // namespace

// (a) + (b): the bundled demo CNN and the e2e ResNet, FP16 and BF16.
TEST(Autocast, RealModelsMatchOnnxRuntimeAndRunInTheLowType) {
  for (const RealModel& m : real_models()) {
    Engine fp32 = build(m.model, Precision::FP32, m.profiles);
    ExecutionContext c32 = fp32.create_context();
    TensorMap ref32 = c32.run({{"input", load_npy(m.case_dir + "/input.npy")}});
    for (Precision p : {Precision::FP16, Precision::BF16}) {
      SCOPED_TRACE(m.tag + " " + precision_name(p));
      Engine e = build(m.model, p, m.profiles);
      EXPECT_EQ(e.precision(), precision_name(p));
      EXPECT_EQ(e.inputs()[0].dtype, DType::Float32);  // keep_io_types
      for (const auto& o : e.outputs()) EXPECT_EQ(o.dtype, DType::Float32) << o.name;
      int gemm = 0;
      for (const auto& n : e.nodes()) {
        if (n.op == "Conv" || n.op == "FusedConv" || n.op == "Gemm") {
          EXPECT_EQ(n.dtype, low_name(p)) << n.name;
          ++gemm;
        }
        if (n.op == "Softmax") {
          EXPECT_EQ(n.dtype, "float32") << n.name;
        }
      }
      EXPECT_GE(gemm, 10);
      const double share = low_gemm_share(e);
      std::cout << "[autocast] " << m.tag << " " << precision_name(p) << ": GEMM/conv FLOPs in " << low_name(p) << ": "
                << 100.0 * share << "%\n";
      EXPECT_GE(share, 0.95);

      ExecutionContext ctx = e.create_context();
      TensorMap out = expect_close(ctx, m.tag, m.case_dir, "input", {"logits", "probs"}, precision_name(p));
      // The low type really ran: outputs differ from the FP32 engine's, but not by much.
      for (const auto& [name, t] : out) {
        EXPECT_FALSE(t.bit_equal(ref32.at(name))) << name;
        EXPECT_GT(compare(t, ref32.at(name), tolerance_for("fp16")).rel_l2, 1e-6) << name;
      }
      EXPECT_GT(stddev(out.at("logits")), 1e-2);
      TensorMap other = ctx.run({{"input", load_npy(m.case_dir + "/input.npy").clone()}});
      Tensor shifted = load_npy(m.case_dir + "/input.npy").clone();
      for (int64_t i = 0; i < shifted.numel(); ++i) shifted.mutable_as<float>()[i] *= 0.5f;
      TensorMap changed = ctx.run({{"input", shifted}});
      EXPECT_TRUE(other.at("logits").bit_equal(out.at("logits")));
      EXPECT_FALSE(changed.at("logits").bit_equal(out.at("logits")));
    }
  }
}

TEST(Autocast, LowPrecisionPlanSurvivesSaveLoad) {
  Engine e = build(kDemo, Precision::FP16, {batch_profile({3, 64, 64}, 1, 3, 4)});
  std::string path = (fs::temp_directory_path() / "kiln_autocast_fp16.kiln").string();
  e.save(path);
  Engine loaded = Engine::load(path);
  fs::remove(path);
  EXPECT_EQ(loaded.precision(), "fp16");
  EXPECT_LT(loaded.weights_bytes(), build(kDemo, Precision::FP32, {batch_profile({3, 64, 64}, 1, 3, 4)})
                                        .weights_bytes() * 6 / 10);  // weights stored as float16
  TensorMap in{{"input", load_npy(kE2E + "/demo/batch3/input.npy")}};
  ExecutionContext a = e.create_context(), b = loaded.create_context();
  TensorMap o1 = a.run(in), o2 = b.run(in);
  for (const auto& [k, t] : o1) EXPECT_TRUE(t.bit_equal(o2.at(k))) << k;
  auto n1 = e.nodes(), n2 = loaded.nodes();
  ASSERT_EQ(n1.size(), n2.size());
  for (size_t i = 0; i < n1.size(); ++i) {
    EXPECT_EQ(n1[i].dtype, n2[i].dtype) << n1[i].name;
    EXPECT_EQ(n1[i].flops, n2[i].flops) << n1[i].name;
  }
}

// FLOPs are exact for GEMM-shaped nodes at profile 0's opt shapes, and the same at every precision.
TEST(Autocast, FlopsOfKnownNodes) {
  Engine e16 = build(kDemo, Precision::FP16, {batch_profile({3, 64, 64}, 1, 2, 4)});
  Engine e32 = build(kDemo, Precision::FP32, {batch_profile({3, 64, 64}, 1, 2, 4)});
  int64_t conv0 = -1, gemm = -1, t16 = 0, t32 = 0;
  for (const auto& n : e16.nodes()) {
    EXPECT_GE(n.flops, 0) << n.name;
    if (n.name == "conv_2") conv0 = n.flops;
    if (n.op == "Gemm") gemm = n.flops;
    if (n.gemm_like) t16 += n.flops;
  }
  for (const auto& n : e32.nodes()) t32 += n.gemm_like ? n.flops : 0;
  EXPECT_EQ(conv0, 2 * 2 * 16 * 64 * 64 * (3 * 3 * 3));  // 2 x N x Cout x H x W x (Cin x 3 x 3)
  EXPECT_EQ(gemm, 2 * 2 * 10 * 32);                      // 2 x N x classes x features
  EXPECT_EQ(t16, t32);
}

// (c): float16 overflow inside the normalization's reduction (squares ~1e6) or softmax's exp (e^18): the sensitive
// ops stay float32 and the answer matches ONNX Runtime's float32 result within the float16 bound.
TEST(Autocast, Fp16OverflowInsideLayerNormAndSoftmaxIsAvoided) {
  struct Case {
    std::string model;
    std::vector<std::string> fp32_nodes;
  };
  std::vector<Case> cases = {{"ln_decomposed", {"mean", "center", "square", "variance", "std", "normalize"}},
                             {"layernorm", {"layernorm"}},
                             {"softmax", {"softmax"}},
                             {"softmax_decomposed", {"exp", "sum", "normalize"}}};
  for (const Case& c : cases) {
    const std::string dir = kAC + "/" + c.model;
    const std::string out2 = c.model.rfind("ln", 0) == 0 || c.model == "layernorm" ? "normed" : "probs";
    for (Precision p : {Precision::FP16, Precision::BF16}) {
      SCOPED_TRACE(c.model + " " + precision_name(p));
      Engine e = build(dir + "/model.onnx", p);
      for (const auto& n : c.fp32_nodes) EXPECT_EQ(node_dtype(e, n), "float32") << n;
      EXPECT_EQ(node_dtype(e, "mm1"), low_name(p));
      EXPECT_EQ(node_dtype(e, "mm2"), low_name(p));
      ExecutionContext ctx = e.create_context();
      expect_close(ctx, c.model, dir + "/case", "x", {"y", out2}, precision_name(p));
    }
  }
}

// Why those ops stay float32: the same graphs with every op in float16 overflow (Inf/NaN or far off).
TEST(Autocast, WithoutTheFp32OpsFloat16Overflows) {
  for (const std::string name : {"ln_decomposed", "softmax_decomposed"}) {
    Model model = Model::load(kAC + "/" + name + "/model.onnx");
    TensorMap in{{"x", load_npy(kAC + "/" + name + "/case/x.npy")}};
    const std::string out = name == "ln_decomposed" ? "normed" : "probs";
    Tensor ref = load_npy(kAC + "/" + name + "/case/" + out + ".npy");
    for (bool keep : {false, true}) {
      ir::Graph g = model.impl()->m.graph;
      passes::AutocastOptions o;
      o.low = DType::Float16;
      o.keep_sensitive_ops = keep;
      EXPECT_TRUE(passes::autocast(g, o));
      ir::infer_types(g);
      Comparison c = compare(runtime::cpu::run_graph_reference(g, in).at(out), ref, tolerance_for("fp16"));
      EXPECT_EQ(c.passed, keep) << name << " keep_sensitive_ops=" << keep << ": " << c.reason << " rel L2 "
                                << c.rel_l2;
    }
  }
}

// (d): the keep-list by op type and by node name.
TEST(Autocast, KeepListByOpTypeAndNodeName) {
  const std::vector<Profile> prof = {batch_profile({3, 64, 64}, 1, 3, 4)};
  Engine by_type = build(kDemo, Precision::FP16, prof, {"Gemm"});
  EXPECT_EQ(node_dtype(by_type, "fc_96"), "float32");
  EXPECT_EQ(node_dtype(by_type, "conv_2"), "float16");
  Engine by_name = build(kDemo, Precision::FP16, prof, {"conv_2", "MaxPool"});
  EXPECT_EQ(node_dtype(by_name, "conv_2"), "float32");
  EXPECT_EQ(node_dtype(by_name, "maxpool_9"), "float32");
  EXPECT_EQ(node_dtype(by_name, "conv_11"), "float16");
  EXPECT_EQ(node_dtype(by_name, "fc_96"), "float16");
  Engine all_conv = build(kDemo, Precision::BF16, prof, {"Conv", "Gemm"});
  for (const auto& n : all_conv.nodes())
    if (n.gemm_like) {
      EXPECT_EQ(n.dtype, "float32") << n.name;
    }
  EXPECT_EQ(low_gemm_share(all_conv), 0.0);
  for (Engine* e : {&by_type, &by_name, &all_conv}) {
    ExecutionContext ctx = e->create_context();
    expect_close(ctx, "demo keep-list", kE2E + "/demo/batch3", "input", {"logits", "probs"}, e->precision());
  }
  // An entry that matches nothing only warns; an empty one is refused.
  EXPECT_NO_THROW(build(kDemo, Precision::FP16, prof, {"NoSuchOp"}));
  try {
    build(kDemo, Precision::FP16, prof, {""});
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::InvalidArgument);
  }
}

TEST(Autocast, LowPrecisionIo) {
  for (Precision p : {Precision::FP16, Precision::BF16}) {
    Engine e = build(kDemo, p, {batch_profile({3, 64, 64}, 1, 3, 4)}, {}, /*keep_io=*/false);
    const DType low = p == Precision::FP16 ? DType::Float16 : DType::BFloat16;
    EXPECT_EQ(e.inputs()[0].dtype, low);
    for (const auto& o : e.outputs()) EXPECT_EQ(o.dtype, low) << o.name;
    ExecutionContext ctx = e.create_context();
    Tensor x32 = load_npy(kE2E + "/demo/batch3/input.npy");
    try {
      ctx.run({{"input", x32}});
      FAIL() << "float32 input accepted";
    } catch (const Error& err) {
      EXPECT_EQ(err.code(), ErrorCode::InvalidArgument);
    }
    // The Cast kernel converts the test data both ways.
    auto cast = [](const Tensor& t, DType to) {
      ir::Node n;
      n.name = "cast";
      n.op_type = "Cast";
      n.opset = 19;
      n.inputs = {"x"};
      n.outputs = {"y"};
      n.attrs["to"] = int64_t(to == DType::Float32 ? 1 : to == DType::Float16 ? 10 : 16);
      std::vector<Tensor> out(1);
      ir::OpRegistry::instance().find("", "Cast", 19)->reference(n, {&t}, out);
      return out[0];
    };
    TensorMap out = ctx.run({{"input", cast(x32, low)}});
    for (const std::string o : {"logits", "probs"}) {
      ASSERT_EQ(out.at(o).dtype(), low);
      Comparison c = compare(cast(out.at(o), DType::Float32), load_npy(kE2E + "/demo/batch3/" + o + ".npy"),
                             tolerance_for(precision_name(p)));
      EXPECT_TRUE(c.passed) << precision_name(p) << " " << o << ": " << c.reason;
    }
  }
}

TEST(Autocast, Fp32BuildIsUntouched) {
  Engine e = build(kDemo, Precision::FP32, {batch_profile({3, 64, 64}, 1, 3, 4)}, {"Conv"});
  EXPECT_EQ(e.precision(), "fp32");
  for (const auto& n : e.nodes()) {
    EXPECT_NE(n.op, "Cast") << n.name;
    if (n.gemm_like) {
      EXPECT_EQ(n.dtype, "float32");
    }
  }
}

// The Cast cleanup pass: exact widenings feeding a Cast are skipped, identities removed, lossy pairs kept.
TEST(Autocast, CastCleanupRemovesOnlyExactPairs) {
  ir::register_all_ops();
  auto cast = [](const std::string& in, const std::string& out, int64_t to) {
    ir::Node n;
    n.name = out;
    n.op_type = "Cast";
    n.opset = 19;
    n.inputs = {in};
    n.outputs = {out};
    n.attrs["to"] = to;
    return n;
  };
  ir::Graph g;
  g.inputs = {"h", "f"};
  g.types["h"] = ir::ValueType::of(DType::Float16, {4});
  g.types["f"] = ir::ValueType::of(DType::Float32, {4});
  ir::Node relu;
  relu.name = "relu";
  relu.op_type = "Relu";
  relu.opset = 14;
  relu.inputs = {"h16"};
  relu.outputs = {"y"};
  g.nodes = {cast("h", "h32", 1), cast("h32", "h16", 10), relu, cast("f", "f16", 10), cast("f16", "f32", 1)};
  g.outputs = {"y", "f32"};
  ir::infer_types(g);
  TensorMap in{{"h", Tensor(DType::Float16, {4})}, {"f", Tensor(DType::Float32, {4})}};
  in["f"].mutable_as<float>()[0] = 1.0001f;  // not representable in float16
  TensorMap before = runtime::cpu::run_graph_reference(g, in);
  EXPECT_TRUE(passes::remove_redundant_casts(g));
  EXPECT_TRUE(passes::eliminate_dead_code(g));
  ir::infer_types(g);
  ASSERT_EQ(g.nodes.size(), 3u);  // relu reads h; the lossy f -> f16 -> f32 pair stays
  EXPECT_EQ(g.nodes[0].op_type, "Relu");
  EXPECT_EQ(g.nodes[0].inputs[0], "h");
  TensorMap after = runtime::cpu::run_graph_reference(g, in);
  for (const auto& [k, t] : before) EXPECT_TRUE(t.bit_equal(after.at(k))) << k;
  EXPECT_FALSE(passes::remove_redundant_casts(g));
}
