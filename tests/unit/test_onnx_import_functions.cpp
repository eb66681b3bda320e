// ONNX importer: model-local function inlining corner cases, built with the generated protobuf classes.
#include <gtest/gtest.h>

#include <set>

#include "unit/onnx_test_util.h"

namespace {

using namespace kiln_onnx_test;
using kiln::ErrorCode;
using kiln::onnx_import::ImportedModel;

class OnnxImportFunctions : public ::testing::Test {
 protected:
  void SetUp() override { ensure_test_ops(); }
};

onnx::NodeProto* add_node(google::protobuf::RepeatedPtrField<onnx::NodeProto>* nodes, const std::string& op,
                          std::initializer_list<std::string> in, std::initializer_list<std::string> out,
                          const std::string& domain = "", const std::string& name = "") {
  auto* n = nodes->Add();
  n->set_op_type(op);
  n->set_domain(domain);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

// Model x -> F(x) -> y with F in domain "pkg.test"; the test fills F.
onnx::ModelProto call_model(onnx::FunctionProto** f) {
  onnx::ModelProto p = relu_model(17);
  p.set_ir_version(10);
  auto* os = p.add_opset_import();
  os->set_domain("pkg.test");
  os->set_version(1);
  auto* g = p.mutable_graph();
  g->clear_node();
  add_node(g->mutable_node(), "F", {"x"}, {"y"}, "pkg.test", "call");
  *f = p.add_functions();
  (*f)->set_name("F");
  (*f)->set_domain("pkg.test");
  (*f)->add_input("X");
  (*f)->add_output("Y");
  return p;
}

TEST_F(OnnxImportFunctions, OutputThatIsAnInputBecomesIdentity) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  f->set_output(0, "X");
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(m.graph.nodes[0].op_type, "Identity");
  EXPECT_EQ(m.graph.nodes[0].inputs, std::vector<std::string>{"x"});
  EXPECT_EQ(m.graph.nodes[0].outputs, std::vector<std::string>{"y"});
}

TEST_F(OnnxImportFunctions, BodyUsesTheFunctionsOwnOpsets) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  auto* os = f->add_opset_import();
  os->set_domain("");
  os->set_version(18);
  add_node(f->mutable_node(), "Relu", {"X"}, {"Y"});
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  EXPECT_EQ(m.graph.nodes[0].opset, 18);  // the model imports 17
  EXPECT_EQ(m.graph.nodes[0].name, "call/Relu");
  f->clear_opset_import();  // falls back to the model's
  EXPECT_EQ(import_proto(p).graph.nodes[0].opset, 17);
}

TEST_F(OnnxImportFunctions, UnboundAttributeReferenceLeavesTheAttributeOut) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  f->add_attribute("slope");
  auto* n = add_node(f->mutable_node(), "LeakyRelu", {"X"}, {"Y"});
  auto* a = n->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_ref_attr_name("slope");
  ImportedModel m = import_proto(p);
  EXPECT_FALSE(m.graph.nodes[0].has_attr("alpha"));
  // Given by the call: bound.
  auto* ca = p.mutable_graph()->mutable_node(0)->add_attribute();
  ca->set_name("slope");
  ca->set_type(onnx::AttributeProto::FLOAT);
  ca->set_f(0.3f);
  EXPECT_EQ(import_proto(p).graph.nodes[0].attr_float("alpha", 0), 0.3f);
}

TEST_F(OnnxImportFunctions, InternalNamesDoNotCollideWithGraphNames) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  // The body's internal value is called "call/t" — and so is a value of the main graph.
  add_node(f->mutable_node(), "Relu", {"X"}, {"t"});
  add_node(f->mutable_node(), "Relu", {"t"}, {"Y"});
  auto* g = p.mutable_graph();
  add_node(g->mutable_node(), "Relu", {"x"}, {"call/t"}, "", "other");
  add_node(g->mutable_node(), "F", {"call/t"}, {"y2"}, "pkg.test", "call2");
  ImportedModel m = import_proto(p);
  std::set<std::string> outs;
  for (const auto& n : m.graph.nodes)
    for (const auto& o : n.outputs) EXPECT_TRUE(outs.insert(o).second) << o;
  EXPECT_EQ(m.graph.nodes.size(), 5u);
}

TEST_F(OnnxImportFunctions, OmittedOptionalInputsAndOutputs) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  f->add_input("Bias");       // not passed by the call
  f->add_output("Extra");     // not used by the call
  add_node(f->mutable_node(), "Add", {"X", "Bias"}, {"Y"});
  add_node(f->mutable_node(), "Relu", {"X"}, {"Extra"});
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(m.graph.nodes[0].inputs, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(m.graph.nodes[1].outputs[0], "call/Extra");
}

TEST_F(OnnxImportFunctions, BadCallsAndDefinitions) {
  {  // recursion
    onnx::FunctionProto* f;
    onnx::ModelProto p = call_model(&f);
    add_node(f->mutable_node(), "F", {"X"}, {"Y"}, "pkg.test");
    expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"calls itself"});
  }
  {  // too many inputs
    onnx::FunctionProto* f;
    onnx::ModelProto p = call_model(&f);
    add_node(f->mutable_node(), "Relu", {"X"}, {"Y"});
    p.mutable_graph()->mutable_node(0)->add_input("x");
    expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"call", "2 inputs"});
  }
  {  // defined twice
    onnx::FunctionProto* f;
    onnx::ModelProto p = call_model(&f);
    add_node(f->mutable_node(), "Relu", {"X"}, {"Y"});
    *p.add_functions() = *f;
    expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"pkg.test::F", "defined twice"});
  }
  {  // attribute reference outside a function
    onnx::ModelProto p = relu_model();
    auto* a = p.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("alpha");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_ref_attr_name("alpha");
    expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"relu", "alpha", "only allowed inside functions"});
  }
  {  // body node of an unknown op: reported by its inlined name
    onnx::FunctionProto* f;
    onnx::ModelProto p = call_model(&f);
    add_node(f->mutable_node(), "Gizmo", {"X"}, {"Y"}, "", "inner");
    expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"call/inner (Gizmo, ai.onnx, opset 17)"});
  }
}

TEST_F(OnnxImportFunctions, SubgraphsInBodiesSeeRenamedValues) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  add_node(f->mutable_node(), "Relu", {"X"}, {"t"});
  auto* if_node = add_node(f->mutable_node(), "If", {"X"}, {"Y"}, "", "branch");
  for (const char* br : {"then_branch", "else_branch"}) {
    auto* a = if_node->add_attribute();
    a->set_name(br);
    a->set_type(onnx::AttributeProto::GRAPH);
    auto* g = a->mutable_g();
    add_node(g->mutable_node(), "Neg", {"t"}, {"u"}, "", "neg");  // "t" is the body's value
    g->add_output()->set_name("u");
  }
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  const auto& n = m.graph.nodes[1];
  EXPECT_EQ(n.name, "call/branch");
  auto then_g = std::get<kiln::ir::GraphPtr>(n.attrs.at("then_branch"));
  EXPECT_EQ(then_g->nodes[0].inputs[0], m.graph.nodes[0].outputs[0]);
  EXPECT_EQ(then_g->nodes[0].inputs[0], "call/t");
  EXPECT_EQ(then_g->outputs[0], then_g->nodes[0].outputs[0]);
}

TEST_F(OnnxImportFunctions, ExponentialNestingHitsTheNodeLimit) {
  onnx::FunctionProto* f;
  onnx::ModelProto p = call_model(&f);
  f->set_name("F20");
  p.mutable_graph()->mutable_node(0)->set_op_type("F20");
  for (int k = 0; k < 20; ++k) {  // F<k+1>(X) = F<k>(F<k>(X)); F0 = Relu
    auto* fk = k == 0 ? f : p.add_functions();
    fk->set_name(std::string("F") + std::to_string(20 - k));
    fk->set_domain("pkg.test");
    fk->clear_input();
    fk->clear_output();
    fk->add_input("X");
    fk->add_output("Y");
    const std::string callee = std::string("F") + std::to_string(19 - k);
    add_node(fk->mutable_node(), callee, {"X"}, {"T"}, "pkg.test");
    add_node(fk->mutable_node(), callee, {"T"}, {"Y"}, "pkg.test");
  }
  auto* f0 = p.add_functions();
  f0->set_name("F0");
  f0->set_domain("pkg.test");
  f0->add_input("X");
  f0->add_output("Y");
  add_node(f0->mutable_node(), "Relu", {"X"}, {"Y"});
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"after function inlining"});
}

}  // namespace
