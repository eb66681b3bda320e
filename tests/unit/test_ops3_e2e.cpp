// End to end for ops3: an If whose branches (one holding a nested If) read outer-scope values, and a
// NonZero -> Transpose -> GatherND chain with data-dependent shapes; both imported, built with build_engine
// (passes included), run, saved, loaded and run again, against onnxruntime 1.23.2's outputs
// (tests/models/gen_ops3_models.py, cases e2e_*).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "ir/subgraph.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "ops3_case_util.h"
#include "runtime/engine_impl.h"

namespace kiln::test_ops3 {
namespace test_ops3_e2e_cpp {

namespace fs = std::filesystem;

TensorMap feeds_of(const Engine& e, const std::string& dir) {
  TensorMap f;
  for (const auto& ti : e.inputs()) f[ti.name] = load_npy(dir + "/in_" + ti.name + ".npy");
  return f;
}

void expect_outputs(const TensorMap& got, const Engine& e, const std::string& dir) {
  for (const auto& ti : e.outputs()) {
    const Tensor want = load_npy(dir + "/out_" + ti.name + ".npy");
    ASSERT_TRUE(got.count(ti.name)) << ti.name;
    Comparison c = compare(got.at(ti.name), want, tolerance_for("fp32"));
    EXPECT_TRUE(c.passed) << dir << " output " << ti.name << ": " << c.reason;
  }
}

int count_op(const Engine& e, const std::string& op) {
  int n = 0;
  for (const auto& ni : e.nodes()) n += ni.op == op;
  return n;
}

double spread(const Tensor& t) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.at_double(i), s2 += t.at_double(i) * t.at_double(i);
  const double m = s / static_cast<double>(t.numel());
  return std::sqrt(std::max(0.0, s2 / static_cast<double>(t.numel()) - m * m));
}

TEST(Ops3E2E, ImportMakesOuterScopeCapturesExplicit) {
  Model model = Model::load(ops3_dir() + "/e2e_if_tt/model.onnx");
  const ir::Graph& g = model.impl()->m.graph;
  const ir::Node* outer = nullptr;
  for (const auto& n : g.nodes)
    if (n.op_type == "If") outer = &n;
  ASSERT_NE(outer, nullptr);
  EXPECT_EQ(ir::num_formal_inputs(*outer), 1u);
  std::vector<std::string> caps(outer->inputs.begin() + 1, outer->inputs.end());
  std::sort(caps.begin(), caps.end());
  // then reads r, c1; the nested If in else reads flag2 (its cond), r, s, c1.
  EXPECT_EQ(caps, (std::vector<std::string>{"c1", "flag2", "r", "s"}));
  const auto& else_g = std::get<ir::GraphPtr>(outer->attrs.at("else_branch"));
  ASSERT_EQ(else_g->nodes.size(), 1u);
  const ir::Node& inner = else_g->nodes[0];
  EXPECT_EQ(inner.op_type, "If");
  EXPECT_EQ(inner.inputs.front(), "flag2");
  std::vector<std::string> inner_caps(inner.inputs.begin() + 1, inner.inputs.end());
  std::sort(inner_caps.begin(), inner_caps.end());
  EXPECT_EQ(inner_caps, (std::vector<std::string>{"c1", "r", "s"}));
}

TEST(Ops3E2E, IfWithOuterScopeValuesBuildsSavesLoadsAndMatchesOnnxRuntime) {
  Model model = Model::load(ops3_dir() + "/e2e_if_tt/model.onnx");
  Engine engine = build_engine(model, BuildConfig{});
  // The conv output is read by the branches too: folding the BN into the conv would rename it away.
  EXPECT_EQ(count_op(engine, "BatchNormalization"), 1);
  EXPECT_EQ(count_op(engine, "If"), 1);
  const std::string path = (fs::temp_directory_path() / "kiln_ops3_if.kiln").string();
  engine.save(path);
  Engine loaded = Engine::load(path);
  fs::remove(path);
  ExecutionContext ctx = engine.create_context(), ctx2 = loaded.create_context();
  std::map<std::string, Tensor> y;
  for (const char* tag : {"tt", "tf", "ft", "ff"}) {
    const std::string dir = ops3_dir() + "/e2e_if_" + tag;
    SCOPED_TRACE(dir);
    const TensorMap in = feeds_of(engine, dir);
    const TensorMap a = ctx.run(in), b = ctx2.run(in);
    expect_outputs(a, engine, dir);
    for (const auto& [k, t] : a) EXPECT_TRUE(t.bit_equal(b.at(k))) << k;
    EXPECT_GT(spread(a.at("y")), 1e-2);
    y[tag] = a.at("y");
  }
  // flag picks the branch; flag2 matters only in the else branch (the nested If).
  EXPECT_TRUE(y["tt"].bit_equal(y["tf"]));
  EXPECT_FALSE(y["tt"].bit_equal(y["ft"]));
  EXPECT_FALSE(y["ft"].bit_equal(y["ff"]));
}

TEST(Ops3E2E, NonZeroChainWithDataDependentShapes) {
  Model model = Model::load(ops3_dir() + "/e2e_nonzero_a/model.onnx");
  BuildConfig cfg;
  cfg.profiles.push_back(Profile().add_input_shape("x", {1, 4}, {3, 4}, {8, 4}));
  Engine engine = build_engine(model, cfg);
  // Inference leaves the data-dependent dims unknown: idx is [nnz, 2], pos is [nnz].
  const ir::ValueType* idx = engine.impl()->graph.type_of("idx");
  ASSERT_NE(idx, nullptr);
  EXPECT_EQ(idx->str(), "int64[?,2]");
  EXPECT_EQ(engine.impl()->graph.type_of("pos")->str(), "float32[?]");
  const std::string path = (fs::temp_directory_path() / "kiln_ops3_nonzero.kiln").string();
  engine.save(path);
  Engine loaded = Engine::load(path);
  fs::remove(path);
  ExecutionContext ctx = engine.create_context(), ctx2 = loaded.create_context();
  std::vector<int64_t> counts;
  for (const char* tag : {"a", "b", "a"}) {  // back to a smaller output after a larger one
    const std::string dir = ops3_dir() + "/e2e_nonzero_" + tag;
    SCOPED_TRACE(dir);
    const TensorMap in = feeds_of(engine, dir);
    const TensorMap a = ctx.run(in), b = ctx2.run(in);
    expect_outputs(a, engine, dir);
    expect_outputs(b, engine, dir);
    counts.push_back(a.at("idx").shape()[0]);
  }
  EXPECT_NE(counts[0], counts[1]);
  EXPECT_EQ(counts[0], counts[2]);
}

TEST(Ops3E2E, GeneratedEndToEndModelsAlsoPassTheOracleSweep) { check_ops3_family("e2e_", 6); }

}  // namespace test_ops3_e2e_cpp
}  // namespace kiln::test_ops3
