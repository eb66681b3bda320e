// If and the subgraph machinery (ir/subgraph.h): outer-scope captures as node inputs, the subgraph runner hook,
// If inference (branch types with the captured types bound) and the kernel, on hand-built IR graphs. The import
// of captures and the end-to-end runs (build, save, load) against onnxruntime are in test_ops3_e2e.cpp.
#include "ir/subgraph.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace test_ops_if_cpp {

using ir::Graph;
using ir::GraphPtr;
using ir::Node;

Node node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, int64_t opset = 13) {
  Node n;
  n.name = op + "_" + out[0];
  n.op_type = op;
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

GraphPtr branch(const std::string& name, std::vector<Node> nodes, std::vector<std::string> outputs) {
  auto g = std::make_shared<Graph>();
  g->name = name;
  g->nodes = std::move(nodes);
  g->outputs = std::move(outputs);
  return g;
}

// Outer graph: inputs c (bool[]), x (float[2,3]); a = x * k (k = 3, constant); y = If(c) with
// then: t = Relu(a) + x, else: e = Neg(x); z = y - x. The branches capture a and x.
Graph if_graph(GraphPtr then_g, GraphPtr else_g) {
  ir::register_all_ops();
  Graph g;
  g.name = "outer";
  g.inputs = {"c", "x"};
  g.types["c"] = ir::ValueType::of(DType::Bool, {});
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 3});
  g.initializers["k"] = f32({}, {3.f});
  g.nodes.push_back(node("Mul", {"x", "k"}, {"a"}));
  Node iff = node("If", {"c"}, {"y"});
  iff.attrs["then_branch"] = then_g;
  iff.attrs["else_branch"] = else_g;
  std::vector<std::string> caps;
  for (const auto* b : {&else_g, &then_g})
    for (const auto& v : ir::free_names(**b))
      if (std::find(caps.begin(), caps.end(), v) == caps.end()) caps.push_back(v);
  iff.attrs[ir::kNumFormalInputs] = int64_t(1);
  iff.attrs[ir::kCapturedNames] = caps;
  iff.inputs.insert(iff.inputs.end(), caps.begin(), caps.end());
  g.nodes.push_back(iff);
  g.nodes.push_back(node("Sub", {"y", "x"}, {"z"}));
  g.outputs = {"y", "z"};
  return g;
}

GraphPtr relu_plus_x() {
  return branch("then", {node("Relu", {"a"}, {"r"}), node("Add", {"r", "x"}, {"t"})}, {"t"});
}
GraphPtr neg_x() { return branch("else", {node("Neg", {"x"}, {"e"})}, {"e"}); }

const std::vector<float> kX = {0.5f, -1.f, 2.f, -0.25f, 1.5f, -3.f};

TEST(OpsIf, FreeNamesAreReadButNotDefined) {
  ir::register_all_ops();
  GraphPtr b = branch("b", {node("Relu", {"a"}, {"r"}), node("Add", {"r", "x"}, {"t"}), node("Mul", {"t", "w"}, {"u"})},
                      {"u", "x2"});
  b->initializers["w"] = f32({}, {2.f});
  EXPECT_EQ(ir::free_names(*b), (std::vector<std::string>{"a", "x", "x2"}));
}

TEST(OpsIf, RunsTheChosenBranchWithCapturedValues) {
  Graph g = if_graph(relu_plus_x(), neg_x());
  ir::infer_types(g);
  EXPECT_EQ(g.type_of("y")->str(), "float32[2,3]");
  EXPECT_EQ(g.nodes[1].inputs, (std::vector<std::string>{"c", "x", "a"}));
  for (bool c : {true, false}) {
    TensorMap out = runtime::cpu::run_graph_reference(g, {{"c", boolean({}, {uint8_t(c)})}, {"x", f32({2, 3}, kX)}});
    std::vector<double> want_y, want_z;
    for (float v : kX) {
      const double y = c ? std::max(0.f, 3 * v) + v : -v;
      want_y.push_back(y);
      want_z.push_back(y - v);
    }
    expect_tensor(out.at("y"), DType::Float32, {2, 3}, want_y);
    expect_tensor(out.at("z"), DType::Float32, {2, 3}, want_z);
  }
}

TEST(OpsIf, CapturesStayBoundWhenAPassRenamesTheOuterValue) {
  Graph g = if_graph(relu_plus_x(), neg_x());
  // A pass replaced 'a' by an equivalent value 'a2': node inputs are rewired, the branch still reads 'a'.
  g.nodes[0].outputs[0] = "a2";
  g.nodes[1].inputs[2] = "a2";
  TensorMap out = runtime::cpu::run_graph_reference(g, {{"c", boolean({}, {1})}, {"x", f32({2, 3}, kX)}});
  EXPECT_DOUBLE_EQ(out.at("y").at_double(0), 3 * 0.5 + 0.5);
  EXPECT_DOUBLE_EQ(out.at("y").at_double(1), 0 - 1.0);
}

TEST(OpsIf, BranchOutputThatIsAnOuterValueIsAFreshBuffer) {
  Graph g = if_graph(branch("then", {}, {"x"}), neg_x());
  const Tensor x = f32({2, 3}, kX);
  TensorMap out = runtime::cpu::run_graph_reference(g, {{"c", boolean({}, {1})}, {"x", x}});
  expect_values(out.at("y"), {0.5, -1, 2, -0.25, 1.5, -3});
  EXPECT_NE(out.at("y").data(), x.data());
}

TEST(OpsIf, NestedIfCapturesThroughBothLevels) {
  // else: inner If(c) whose then-branch reads the outer 'a' -> the inner node captures 'a', so does the outer.
  GraphPtr inner_then = branch("it", {node("Sigmoid", {"a"}, {"s"})}, {"s"});
  GraphPtr inner_else = branch("ie", {node("Abs", {"x"}, {"ab"})}, {"ab"});
  Node inner = node("If", {"c"}, {"iy"});
  inner.attrs["then_branch"] = inner_then;
  inner.attrs["else_branch"] = inner_else;
  inner.attrs[ir::kNumFormalInputs] = int64_t(1);
  inner.attrs[ir::kCapturedNames] = std::vector<std::string>{"x", "a"};
  inner.inputs = {"c", "x", "a"};
  Graph g = if_graph(neg_x(), branch("else", {inner}, {"iy"}));
  EXPECT_EQ(g.nodes[1].inputs, (std::vector<std::string>{"c", "c", "x", "a"}));  // cond read by the inner If too
  ir::infer_types(g);
  TensorMap out = runtime::cpu::run_graph_reference(g, {{"c", boolean({}, {0})}, {"x", f32({2, 3}, kX)}});
  // Outer else -> inner If with c = false -> |x|.
  expect_values(out.at("y"), {0.5, 1, 2, 0.25, 1.5, 3});
}

TEST(OpsIf, InferenceMergesBranchTypes) {
  // then: [2,3]; else: Reshape to [3,2] -> dims differ -> unknown dims, rank kept.
  GraphPtr reshape = branch("else", {node("Reshape", {"x", "shp"}, {"e"})}, {"e"});
  reshape->initializers["shp"] = i64({2}, {3, 2});
  Graph g = if_graph(relu_plus_x(), reshape);
  ir::infer_types(g);
  EXPECT_EQ(g.type_of("y")->str(), "float32[?,?]");
  // A constant cond selects one branch's type (z = y - x no longer broadcasts: drop it).
  g.nodes.pop_back();
  g.outputs = {"y"};
  g.inputs = {"x"};
  g.initializers["c"] = boolean({}, {0});
  ir::infer_types(g);
  EXPECT_EQ(g.type_of("y")->str(), "float32[3,2]");
  // Declared branch output types fill what inference cannot know.
  GraphPtr declared = branch("then", {node("Relu", {"a"}, {"r"})}, {"r"});
  Graph g2 = if_graph(declared, neg_x());
  g2.types["x"] = ir::ValueType{DType::Float32, true, {S("n"), D(3)}};
  ir::infer_types(g2);
  EXPECT_EQ(g2.type_of("y")->str(), "float32[n,3]");
}

TEST(OpsIf, ConstantCondTypesOnlyTheTakenBranch) {
  // The then branch cannot be typed (Reshape of 6 elements to [4]); with cond a constant false it is never run,
  // so inference must not fail on it (AffineGrid's function body relies on this).
  GraphPtr bad = branch("then", {node("Reshape", {"x", "shp"}, {"t"})}, {"t"});
  bad->initializers["shp"] = i64({1}, {4});
  Graph g = if_graph(bad, neg_x());
  g.nodes.pop_back();
  g.outputs = {"y"};
  g.inputs = {"x"};
  g.initializers["c"] = boolean({}, {0});
  ir::infer_types(g);
  EXPECT_EQ(g.type_of("y")->str(), "float32[2,3]");
  // A run-time cond still types (and here rejects) both branches.
  Graph g2 = if_graph(bad, neg_x());
  g2.nodes[1].name = "n0";
  EXPECT_EQ(error_code_of([&] { ir::infer_types(g2); }), ErrorCode::InvalidModel);
}

TEST(OpsIf, BadIfsAreTypedErrors) {
  {  // branches disagree on the dtype
    GraphPtr cast = branch("else", {node("Cast", {"x"}, {"e"})}, {"e"});
    cast->nodes[0].attrs["to"] = int64_t(7);
    Graph g = if_graph(relu_plus_x(), cast);
    g.nodes[1].name = "n0";
    EXPECT_EQ(error_code_of([&] { ir::infer_types(g); }), ErrorCode::InvalidModel);
  }
  {  // cond must be bool
    Graph g = if_graph(relu_plus_x(), neg_x());
    g.nodes[1].name = "n0";
    g.types["c"] = ir::ValueType::of(DType::Float32, {});
    EXPECT_EQ(error_code_of([&] { ir::infer_types(g); }), ErrorCode::InvalidModel);
  }
  {  // cond with two elements at run time
    Graph g = if_graph(relu_plus_x(), neg_x());
    g.nodes[1].name = "n0";
    EXPECT_EQ(error_code_of([&] {
                runtime::cpu::run_graph_reference(g, {{"c", boolean({2}, {1, 0})}, {"x", f32({2, 3}, kX)}});
              }),
              ErrorCode::InvalidArgument);
  }
  {  // capture attributes that disagree with the inputs
    Graph g = if_graph(relu_plus_x(), neg_x());
    g.nodes[1].name = "n0";
    g.nodes[1].attrs[ir::kCapturedNames] = std::vector<std::string>{"x"};
    EXPECT_EQ(error_code_of([&] {
                runtime::cpu::run_graph_reference(g, {{"c", boolean({}, {1})}, {"x", f32({2, 3}, kX)}});
              }),
              ErrorCode::InvalidModel);
  }
  {  // a missing branch; a branch with the wrong number of outputs
    Graph g = if_graph(relu_plus_x(), neg_x());
    g.nodes[1].name = "n0";
    g.nodes[1].attrs.erase("else_branch");
    EXPECT_EQ(error_code_of([&] { ir::infer_types(g); }), ErrorCode::InvalidModel);
    Graph g2 = if_graph(relu_plus_x(), branch("else", {node("Neg", {"x"}, {"e"})}, {"e", "x"}));
    g2.nodes[1].name = "n0";
    EXPECT_EQ(error_code_of([&] { ir::infer_types(g2); }), ErrorCode::InvalidModel);
  }
}

TEST(OpsIf, RunSubgraphWithoutARunnerIsInvalidState) {
  ir::register_all_ops();
  runtime::cpu::register_subgraph_runner();
  ir::set_subgraph_runner(nullptr);
  Graph b = *neg_x();
  EXPECT_EQ(error_code_of([&] { ir::run_subgraph(b, {{"x", f32({1}, {2.f})}}); }, "'else'"), ErrorCode::InvalidState);
  ir::set_subgraph_runner(runtime::cpu::run_subgraph_reference);
  TensorMap out = ir::run_subgraph(b, {{"x", f32({1}, {2.f})}});
  EXPECT_DOUBLE_EQ(out.at("e").at_double(0), -2.0);
}

}  // namespace test_ops_if_cpp
}  // namespace kiln::test_ops
