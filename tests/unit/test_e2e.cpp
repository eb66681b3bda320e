// End to end on the CPU: import -> build (passes) -> save -> load -> run, against ONNX Runtime's outputs
// (made at test time by tests/models/gen_e2e_models.py), plus the pass tests and the runtime's input checks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

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

Profile batch_profile(const std::string& name, Shape rest, int64_t mn, int64_t opt, int64_t mx) {
  Shape a{mn}, b{opt}, c{mx};
  for (int64_t d : rest) a.push_back(d), b.push_back(d), c.push_back(d);
  return Profile().add_input_shape(name, a, b, c);
}

double stddev(const Tensor& t) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.at_double(i), s2 += t.at_double(i) * t.at_double(i);
  double m = s / t.numel();
  return std::sqrt(std::max(0.0, s2 / t.numel() - m * m));
}

void expect_matches_ort(ExecutionContext& ctx, const std::string& case_dir, const std::string& input,
                        const std::vector<std::string>& outputs) {
  TensorMap in{{input, load_npy(case_dir + "/" + input + ".npy")}};
  TensorMap out = ctx.run(in);
  for (const auto& o : outputs) {
    Tensor ref = load_npy(case_dir + "/" + o + ".npy");
    ASSERT_TRUE(out.count(o)) << o;
    Comparison c = compare(out.at(o), ref, tolerance_for("fp32"));
    EXPECT_TRUE(c.passed) << case_dir << " output " << o << ": " << c.reason << " (max abs " << c.max_abs << ")";
  }
}

int count_op(const Engine& e, const std::string& op) {
  int n = 0;
  for (const auto& ni : e.nodes()) n += ni.op == op;
  return n;
}
}  // namespace

TEST(E2E, DemoModelMatchesOnnxRuntimeAndSurvivesSaveLoad) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  BuildConfig cfg;
  cfg.profiles.push_back(batch_profile("input", {3, 64, 64}, 1, 2, 4));
  Engine engine = build_engine(model, cfg);
  for (const auto& n : engine.nodes()) EXPECT_FALSE(n.tactic.empty()) << n.name;
  EXPECT_EQ(count_op(engine, "BatchNormalization"), 0) << "BN folding should remove every BN";

  ExecutionContext ctx = engine.create_context();
  expect_matches_ort(ctx, kE2E + "/demo/batch1", "input", {"logits", "probs"});
  expect_matches_ort(ctx, kE2E + "/demo/batch3", "input", {"logits", "probs"});

  // Output spread and input sensitivity: a dead network cannot pass.
  TensorMap a = ctx.run({{"input", load_npy(kE2E + "/demo/batch1/input.npy")}});
  TensorMap b = ctx.run({{"input", load_npy(kE2E + "/demo/batch3/input.npy").clone().reshaped({3, 3, 64, 64})}});
  EXPECT_GT(stddev(a.at("logits")), 1e-2);
  EXPECT_NE(a.at("logits").at_double(0), b.at("logits").at_double(0));

  // Build -> save -> load -> run is bit-identical.
  std::string path = (fs::temp_directory_path() / "kiln_e2e_demo.kiln").string();
  engine.save(path);
  Engine loaded = Engine::load(path);
  ExecutionContext ctx2 = loaded.create_context();
  TensorMap in{{"input", load_npy(kE2E + "/demo/batch3/input.npy")}};
  TensorMap o1 = ctx.run(in), o2 = ctx2.run(in);
  for (const auto& [k, t] : o1) EXPECT_TRUE(t.bit_equal(o2.at(k))) << k;
  EXPECT_EQ(loaded.nodes().size(), engine.nodes().size());
  fs::remove(path);
}

TEST(E2E, ResNetStaticShapeFoldsShapeSubgraph) {
  Model model = Model::load(kE2E + "/resnet/model.onnx");
  EXPECT_EQ(model.op_counts().at("Shape"), 1u);
  BuildConfig cfg;
  cfg.profiles.push_back(batch_profile("input", {3, 32, 32}, 2, 2, 2));
  Engine engine = build_engine(model, cfg);
  EXPECT_EQ(count_op(engine, "Shape"), 0);
  EXPECT_EQ(count_op(engine, "Gather"), 0);
  EXPECT_EQ(count_op(engine, "Concat"), 0);
  EXPECT_EQ(count_op(engine, "BatchNormalization"), 0);
  ExecutionContext ctx = engine.create_context();
  expect_matches_ort(ctx, kE2E + "/resnet/batch2", "input", {"logits", "probs"});
}

TEST(E2E, ProfileSelectionIsFirstMatchAndOutOfProfileNamesEverything) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  BuildConfig cfg;
  cfg.profiles.push_back(batch_profile("input", {3, 64, 64}, 1, 1, 2));
  cfg.profiles.push_back(batch_profile("input", {3, 64, 64}, 2, 3, 4));
  ExecutionContext ctx = build_engine(model, cfg).create_context();
  ctx.run({{"input", Tensor(DType::Float32, {2, 3, 64, 64})}});
  EXPECT_EQ(ctx.last_profile(), 0);
  ctx.run({{"input", Tensor(DType::Float32, {3, 3, 64, 64})}});
  EXPECT_EQ(ctx.last_profile(), 1);
  try {
    ctx.run({{"input", Tensor(DType::Float32, {5, 3, 64, 64})}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ShapeOutOfProfile);
    std::string m = e.what();
    EXPECT_NE(m.find("'input'"), std::string::npos) << m;
    EXPECT_NE(m.find("[5,3,64,64]"), std::string::npos) << m;
    EXPECT_NE(m.find("max [2,3,64,64]"), std::string::npos) << m;
    EXPECT_NE(m.find("max [4,3,64,64]"), std::string::npos) << m;
  }
}

TEST(E2E, BadInputsAreTypedErrors) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  BuildConfig cfg;
  cfg.profiles.push_back(batch_profile("input", {3, 64, 64}, 1, 1, 2));
  ExecutionContext ctx = build_engine(model, cfg).create_context();
  auto code_of = [&](const TensorMap& in) {
    try {
      ctx.run(in);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::Cuda;  // "no error" marker
  };
  EXPECT_EQ(code_of({}), ErrorCode::InvalidArgument);  // missing input
  EXPECT_EQ(code_of({{"input", Tensor(DType::Float32, {1, 3, 64, 64})}, {"extra", Tensor(DType::Float32, {1})}}),
            ErrorCode::InvalidArgument);  // unknown input
  EXPECT_EQ(code_of({{"input", Tensor(DType::Float16, {1, 3, 64, 64})}}), ErrorCode::InvalidArgument);  // dtype
  EXPECT_EQ(code_of({{"input", Tensor(DType::Float32, {3, 64, 64})}}), ErrorCode::InvalidArgument);     // rank
  EXPECT_EQ(code_of({{"input", Tensor(DType::Float32, {1, 4, 64, 64})}}), ErrorCode::InvalidArgument);  // fixed dim

  // Profiles must name exactly the model's inputs.
  BuildConfig bad;
  bad.profiles.push_back(Profile().add_input_shape("x", {1}, {1}, {1}));
  try {
    build_engine(model, bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("missing: 'input'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown: 'x'"), std::string::npos) << e.what();
  }
  // Unwritable plan path: Io, and nothing left behind.
  Engine engine = build_engine(model, cfg);
  try {
    engine.save("/nonexistent-dir/plan.kiln");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Io);
  }
}

// Each pass: the graph changes and the outputs do not (compared with the oracle on the unoptimized graph).
TEST(Passes, BatchNormFoldingAndDceChangeGraphNotOutputs) {
  Model model = Model::load(kE2E + "/bn/model.onnx");
  const ir::Graph& original = model.impl()->m.graph;
  TensorMap in{{"x", load_npy(kE2E + "/bn/batch2/x.npy")}};
  TensorMap ref = runtime::cpu::run_graph_reference(original, in);

  ir::Graph g = original;
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 3, 8, 8});
  ir::infer_types(g);
  EXPECT_TRUE(passes::eliminate_dead_code(g));
  EXPECT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.initializers.count("unused_k"), 0u);
  EXPECT_FALSE(passes::eliminate_dead_code(g));  // idempotent
  TensorMap after_dce = runtime::cpu::run_graph_reference(g, in);
  EXPECT_TRUE(compare(after_dce.at("y"), ref.at("y"), tolerance_for("exact")).passed);

  EXPECT_TRUE(passes::fold_batchnorm_into_conv(g));
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op_type, "Conv");
  EXPECT_EQ(g.nodes[1].op_type, "Relu");
  TensorMap after_bn = runtime::cpu::run_graph_reference(g, in);
  Comparison c = compare(after_bn.at("y"), ref.at("y"), tolerance_for("fp32"));
  EXPECT_TRUE(c.passed) << c.reason;
  EXPECT_TRUE(compare(after_bn.at("y"), load_npy(kE2E + "/bn/batch2/y.npy"), tolerance_for("fp32")).passed);
}

TEST(Passes, ConstantFoldingEvaluatesConstantsAndStaticShapes) {
  Model model = Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx");
  ir::Graph g = model.impl()->m.graph;
  TensorMap in{{"input", load_npy(kE2E + "/demo/batch1/input.npy")}};
  TensorMap ref = runtime::cpu::run_graph_reference(g, in);

  // Dynamic batch: Shape cannot fold.
  ir::infer_types(g);
  size_t before = g.nodes.size();
  EXPECT_FALSE(passes::fold_constants(g));
  // Static batch: Shape -> Gather -> Unsqueeze -> Concat all fold into the Reshape's shape constant.
  g.types["input"] = ir::ValueType::of(DType::Float32, {1, 3, 64, 64});
  ir::infer_types(g);
  EXPECT_TRUE(passes::fold_constants(g));
  EXPECT_EQ(g.nodes.size(), before - 4);
  for (const auto& n : g.nodes) EXPECT_NE(n.op_type, "Shape");
  passes::eliminate_dead_code(g);
  TensorMap out = runtime::cpu::run_graph_reference(g, in);
  for (const auto& [k, t] : ref) EXPECT_TRUE(t.bit_equal(out.at(k))) << k;
}

// ONNX IR >= 4: an initializer listed among the inputs is an overridable input with a default.
TEST(E2E, InputsWithInitializerDefaultsAreOverridable) {
  Model model = Model::load(kE2E + "/defaults/model.onnx");
  ASSERT_EQ(model.inputs().size(), 3u);
  EXPECT_TRUE(model.inputs()[1].has_default);
  BuildConfig cfg;
  cfg.profiles.push_back(batch_profile("x", {4}, 1, 3, 8));  // w and b may be left out: their defaults' shapes
  Engine engine = build_engine(model, cfg);
  std::string path = (fs::temp_directory_path() / "kiln_e2e_defaults.kiln").string();
  engine.save(path);
  ExecutionContext ctx = Engine::load(path).create_context();
  fs::remove(path);
  Tensor x = load_npy(kE2E + "/defaults/default/x.npy");
  TensorMap d = ctx.run({{"x", x}});
  EXPECT_TRUE(compare(d.at("y"), load_npy(kE2E + "/defaults/default/y.npy"), tolerance_for("fp32")).passed);
  TensorMap o = ctx.run({{"x", x}, {"w", load_npy(kE2E + "/defaults/override/w.npy")}});
  EXPECT_TRUE(compare(o.at("y"), load_npy(kE2E + "/defaults/override/y.npy"), tolerance_for("fp32")).passed);
  EXPECT_FALSE(compare(o.at("y"), d.at("y"), tolerance_for("fp32")).passed);

  // Frozen: the defaults become constants, the engine has one input.
  cfg.freeze_input_defaults = true;
  Engine frozen = build_engine(model, cfg);
  ASSERT_EQ(frozen.inputs().size(), 1u);
  TensorMap f = frozen.create_context().run({{"x", x}});
  EXPECT_TRUE(compare(f.at("y"), load_npy(kE2E + "/defaults/default/y.npy"), tolerance_for("fp32")).passed);
}
