// ONNX importer: models from tests/models/gen_test_models.py (opsets 9-18, model-local functions, typed-field
// initializers, IR 3, Constant nodes, subgraphs, external data, unsupported ops).
#include <gtest/gtest.h>

#include <set>

#include "kiln/model.h"
#include "unit/onnx_test_util.h"
#include "util/sha256.h"

namespace {

using namespace kiln_onnx_test;
using kiln::ErrorCode;
using kiln::onnx_import::ImportedModel;
using kiln::onnx_import::import_model_file;

class OnnxImport : public ::testing::Test {
 protected:
  void SetUp() override { ensure_test_ops(); }
};

const kiln::ir::Node* find_node(const kiln::ir::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

TEST_F(OnnxImport, ConvReluAddAtEachOpset) {
  for (int opset : {9, 13, 17, 18}) {
    SCOPED_TRACE("opset " + std::to_string(opset));
    const std::string file = model_path("conv_opset" + std::to_string(opset) + ".onnx");
    ImportedModel m = import_model_file(file);
    EXPECT_EQ(m.opset, opset);
    EXPECT_EQ(m.opsets.at(""), opset);
    EXPECT_EQ(m.ir_version, opset == 9 ? 4 : opset == 13 ? 7 : 8);
    EXPECT_EQ(m.producer, "kiln-tests 1.0");
    ASSERT_EQ(m.graph.nodes.size(), 3u);
    EXPECT_EQ(m.graph.nodes[0].op_type, "Conv");
    EXPECT_EQ(m.graph.nodes[1].op_type, "Relu");
    EXPECT_EQ(m.graph.nodes[2].op_type, "Add");
    for (const auto& n : m.graph.nodes) {
      EXPECT_EQ(n.opset, opset);
      EXPECT_EQ(n.domain, "");
    }
    const auto* conv = find_node(m.graph, "conv1");
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->attr_ints("pads", {}), (std::vector<int64_t>{1, 1, 1, 1}));
    EXPECT_EQ(conv->attr_ints("kernel_shape", {}), (std::vector<int64_t>{3, 3}));
    ASSERT_EQ(m.graph.initializers.size(), 3u);
    EXPECT_EQ(m.graph.initializers.at("conv.weight").shape(), (Shape{4, 3, 3, 3}));
    EXPECT_EQ(m.graph.initializers.at("add.bias").shape(), (Shape{1, 4, 1, 1}));
    ASSERT_EQ(m.inputs.size(), 1u);
    EXPECT_EQ(m.inputs[0].str(), "float32[batch,3,8,8]");
    EXPECT_EQ(m.inputs[0].dims[0].symbol, "batch");
    ASSERT_EQ(m.outputs.size(), 1u);
    EXPECT_EQ(m.outputs[0].name, "y");
    EXPECT_EQ(m.graph.inputs, std::vector<std::string>{"x"});
    EXPECT_EQ(m.graph.outputs, std::vector<std::string>{"y"});
    EXPECT_EQ(m.graph.type_of("x")->str(), "float32[batch,3,8,8]");
    EXPECT_EQ(m.content_hash, kiln::util::sha256_hex(kiln::util::read_file(file)));
  }
  // The public face.
  kiln::Model pm = kiln::Model::load(model_path("conv_opset18.onnx"));
  EXPECT_EQ(pm.opset(), 18);
  EXPECT_EQ(pm.node_count(), 3u);
  EXPECT_EQ(pm.op_counts().at("Conv"), 1u);
  EXPECT_EQ(pm.inputs().at(0).name, "x");
}

TEST_F(OnnxImport, ModelLocalFunctionsAreInlined) {
  ImportedModel m = import_model_file(model_path("functions.onnx"));
  EXPECT_EQ(m.ir_version, 10);
  EXPECT_EQ(m.opset, 18);
  EXPECT_EQ(m.producer, "pytorch 2.11.0");
  // Two Block calls, each: 2 x ScaledRelu (Constant -> initializer, Mul, Relu) + Add + LeakyRelu.
  ASSERT_EQ(m.graph.nodes.size(), 12u);
  std::map<std::string, size_t> ops;
  std::set<std::string> names, outputs;
  for (const auto& n : m.graph.nodes) {
    ops[n.op_type]++;
    EXPECT_EQ(n.domain, "") << n.name;
    EXPECT_EQ(n.opset, 18) << n.name;
    EXPECT_TRUE(names.insert(n.name).second) << "duplicate node name " << n.name;
    for (const auto& o : n.outputs) EXPECT_TRUE(outputs.insert(o).second) << "value defined twice: " << o;
  }
  EXPECT_EQ(ops, (std::map<std::string, size_t>{{"Mul", 4}, {"Relu", 4}, {"Add", 2}, {"LeakyRelu", 2}}));
  // Attribute references: the call's value (slope -> alpha), the call's alpha=0.5 and the default alpha=2.0.
  std::multiset<float> slopes, consts;
  for (const auto& n : m.graph.nodes)
    if (n.op_type == "LeakyRelu") slopes.insert(n.attr_float("alpha", -1.f));
  EXPECT_EQ(slopes, (std::multiset<float>{0.1f, 0.2f}));
  ASSERT_EQ(m.graph.initializers.size(), 4u);
  for (const auto& [k, t] : m.graph.initializers) {
    EXPECT_EQ(t.dtype(), DType::Float32);
    EXPECT_EQ(t.shape(), Shape{});
    consts.insert(t.as<float>()[0]);
  }
  EXPECT_EQ(consts, (std::multiset<float>{0.5f, 0.5f, 2.0f, 2.0f}));
  EXPECT_NE(find_node(m.graph, "block1/sr_half/mul"), nullptr);
  EXPECT_NE(find_node(m.graph, "block2/leaky"), nullptr);
  EXPECT_EQ(m.graph.outputs, std::vector<std::string>{"y"});
  // Same numbers as onnxruntime running the functions.
  auto vals = eval_graph(m.graph, {{"x", kiln::load_npy(model_path("functions.input_0.npy"))}});
  expect_close(vals.at("y"), kiln::load_npy(model_path("functions.output_0.npy")));
}

TEST_F(OnnxImport, TypedFieldInitializers) {
  ImportedModel m = import_model_file(model_path("typed_fields.onnx"));
  const auto& in = m.graph.initializers;
  auto vals = [&](const std::string& n) {
    std::vector<double> v;
    for (int64_t i = 0; i < in.at(n).numel(); ++i) v.push_back(in.at(n).at_double(i));
    return v;
  };
  EXPECT_EQ(in.at("f32").dtype(), DType::Float32);
  EXPECT_EQ(in.at("f32").shape(), (Shape{2, 2}));
  EXPECT_EQ(vals("f32"), (std::vector<double>{1.5, -2.0, 3.25, 0.0}));
  EXPECT_EQ(vals("f64"), (std::vector<double>{1e-300, -2.5, 1e300}));
  EXPECT_EQ(in.at("i64").at_int64(0), -(int64_t(1) << 62));
  EXPECT_EQ(in.at("i64").at_int64(1), (int64_t(1) << 40) + 7);
  EXPECT_EQ(in.at("i32").dtype(), DType::Int32);
  EXPECT_EQ(vals("i32"), (std::vector<double>{-2147483648.0, 7, 2147483647.0}));
  EXPECT_EQ(in.at("i16").dtype(), DType::Int16);
  EXPECT_EQ(vals("i16"), (std::vector<double>{-32768, 32767}));
  EXPECT_EQ(in.at("i8").dtype(), DType::Int8);
  EXPECT_EQ(vals("i8"), (std::vector<double>{-128, 0, 127}));
  EXPECT_EQ(in.at("u8").dtype(), DType::UInt8);
  EXPECT_EQ(vals("u8"), (std::vector<double>{0, 255}));
  EXPECT_EQ(in.at("b").dtype(), DType::Bool);
  EXPECT_EQ(vals("b"), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(in.at("f16").dtype(), DType::Float16);
  EXPECT_EQ(vals("f16"), (std::vector<double>{1.0, -0.5}));
  EXPECT_EQ(in.at("bf16").dtype(), DType::BFloat16);
  EXPECT_EQ(vals("bf16"), (std::vector<double>{1.0, -2.0}));
  EXPECT_EQ(in.at("scalar").shape(), Shape{});
  EXPECT_EQ(vals("scalar"), std::vector<double>{42.0});
  EXPECT_EQ(in.at("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(vals("raw_f32"), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(vals("raw_i64"), (std::vector<double>{1, -1}));
  EXPECT_EQ(vals("raw_f16"), (std::vector<double>{0.5, 2.0}));
  EXPECT_TRUE(m.inputs.empty());
  EXPECT_EQ(m.outputs.size(), in.size());
  EXPECT_TRUE(m.graph.nodes.empty());
}

TEST_F(OnnxImport, Ir3InitializersListedAmongInputsAreConstants) {
  ImportedModel m = import_model_file(model_path("ir3_inputs.onnx"));
  EXPECT_EQ(m.ir_version, 3);
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].name, "x");
  EXPECT_EQ(m.graph.inputs, std::vector<std::string>{"x"});
  EXPECT_TRUE(m.graph.is_constant("W"));
  EXPECT_TRUE(m.graph.is_constant("B"));
  auto vals = eval_graph(m.graph, {{"x", kiln::load_npy(model_path("ir3_inputs.input_0.npy"))}});
  expect_close(vals.at("y"), kiln::load_npy(model_path("ir3_inputs.output_0.npy")));
}

TEST_F(OnnxImport, InitializerBackedInputsOfIr4AndLaterAreInputsWithDefaults) {
  onnx::ModelProto p = relu_model();
  auto* g = p.mutable_graph();
  *g->add_initializer() = f32_proto("w", {2}, {1.f, 2.f});
  auto* wi = g->add_input();
  wi->set_name("w");
  wi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* n = g->add_node();
  n->set_op_type("Relu");
  n->add_input("w");
  n->add_output("w_relu");
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.inputs.size(), 2u);
  EXPECT_EQ(m.inputs[0].name, "x");
  EXPECT_FALSE(m.inputs[0].has_default);
  EXPECT_EQ(m.inputs[1].name, "w");
  EXPECT_TRUE(m.inputs[1].has_default);
  EXPECT_FALSE(m.graph.is_constant("w"));
  ASSERT_EQ(m.graph.input_defaults.count("w"), 1u);
  EXPECT_EQ(m.graph.input_defaults.at("w").as<float>()[1], 2.f);
}

TEST_F(OnnxImport, ConstantNodesBecomeInitializers) {
  ImportedModel m = import_model_file(model_path("constants.onnx"));
  for (const auto& n : m.graph.nodes) EXPECT_NE(n.op_type, "Constant");
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  const auto& in = m.graph.initializers;
  EXPECT_EQ(in.at("c_tensor").shape(), (Shape{2, 3}));
  EXPECT_EQ(in.at("c_float").dtype(), DType::Float32);
  EXPECT_EQ(in.at("c_float").shape(), Shape{});
  EXPECT_EQ(in.at("c_float").as<float>()[0], 0.5f);
  EXPECT_EQ(in.at("c_ints").dtype(), DType::Int64);
  EXPECT_EQ(in.at("c_ints").shape(), Shape{2});
  EXPECT_EQ(in.at("c_ints").at_int64(0), 3);
  EXPECT_EQ(in.at("c_ints").at_int64(1), 2);
  EXPECT_EQ(in.at("c_int").shape(), Shape{});
  EXPECT_EQ(in.at("c_int").at_int64(0), 7);
  ASSERT_EQ(m.outputs.size(), 3u);
  EXPECT_EQ(m.outputs[1].str(), "int64[2]");
  auto vals = eval_graph(m.graph, {{"x", kiln::load_npy(model_path("constants.input_0.npy"))}});
  expect_close(vals.at("y"), kiln::load_npy(model_path("constants.output_0.npy")));
  EXPECT_TRUE(vals.at("c_ints").bit_equal(kiln::load_npy(model_path("constants.output_1.npy"))));
}

TEST_F(OnnxImport, EveryUnsupportedNodeIsListedInOneError) {
  try {
    import_model_file(model_path("unsupported.onnx"));
    FAIL() << "expected Unsupported";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Unsupported);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mystery1 (NotARealOp, ai.onnx, opset 17)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("frob (Frobnicate, com.example, opset 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Teleport_3 (Teleport, ai.onnx, opset 17)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("ok_relu"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3 node(s)"), std::string::npos) << msg;
    EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 3) << msg;
    EXPECT_NE(msg.find("unsupported.onnx"), std::string::npos) << msg;
  }
}

TEST_F(OnnxImport, OpsetBelowFirstSupportedVersionIsUnsupported) {
  onnx::ModelProto p = relu_model(17);
  auto* os = p.add_opset_import();
  os->set_domain("kiln.test");
  os->set_version(17);
  auto* n = p.mutable_graph()->add_node();
  n->set_op_type("NewOp");
  n->set_domain("kiln.test");
  n->set_name("too_old");
  n->add_input("y");
  n->add_output("z");
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"too_old (NewOp, kiln.test, opset 17)"});
  os->set_version(20);
  EXPECT_NO_THROW(import_proto(p));
}

TEST_F(OnnxImport, SubgraphAttributesAreImported) {
  ImportedModel m = import_model_file(model_path("if_subgraph.onnx"));
  ASSERT_EQ(m.graph.nodes.size(), 1u);
  const auto& n = m.graph.nodes[0];
  EXPECT_EQ(n.op_type, "If");
  auto then_g = std::get<kiln::ir::GraphPtr>(n.attrs.at("then_branch"));
  auto else_g = std::get<kiln::ir::GraphPtr>(n.attrs.at("else_branch"));
  ASSERT_TRUE(then_g && else_g);
  ASSERT_EQ(then_g->nodes.size(), 1u);
  EXPECT_EQ(then_g->nodes[0].op_type, "Relu");
  EXPECT_EQ(then_g->nodes[0].inputs[0], "x");  // outer-scope value
  EXPECT_EQ(then_g->outputs, std::vector<std::string>{"t"});
  EXPECT_EQ(else_g->nodes[0].op_type, "Neg");
  EXPECT_EQ(m.inputs.size(), 2u);
  EXPECT_EQ(m.inputs[0].str(), "bool[]");
  // Unsupported ops inside subgraphs are reported with their path.
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(kiln::util::read_file(model_path("if_subgraph.onnx"))));
  p.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g()->mutable_node(0)->set_op_type("Bogus");
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"if1/", "(Bogus, ai.onnx, opset 17)"});
}

TEST_F(OnnxImport, ExternalDataIsReadRelativeToTheModel) {
  const std::string file = model_path("external/model.onnx");
  ImportedModel m = import_model_file(file);
  ASSERT_EQ(m.graph.initializers.size(), 3u);
  // Compare each initializer with the bytes at its recorded offset in weights.bin.
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(kiln::util::read_file(file)));
  const std::string bin = kiln::util::read_file(model_path("external/weights.bin"));
  for (const auto& tp : p.graph().initializer()) {
    ASSERT_EQ(tp.data_location(), onnx::TensorProto::EXTERNAL);
    size_t off = 0;
    for (const auto& kv : tp.external_data())
      if (kv.key() == "offset") off = std::stoull(kv.value());
    const Tensor& t = m.graph.initializers.at(tp.name());
    ASSERT_LE(off + t.nbytes(), bin.size());
    EXPECT_EQ(0, std::memcmp(bin.data() + off, t.data(), t.nbytes())) << tp.name();
  }
  // The content hash covers the weights too, and is stable.
  EXPECT_NE(m.content_hash, kiln::util::sha256_hex(kiln::util::read_file(file)));
  EXPECT_EQ(m.content_hash, import_model_file(file).content_hash);
  // Without a folder to resolve it, external data is refused.
  expect_error([&] { kiln::onnx_import::import_model_bytes(kiln::util::read_file(file), ""); },
               ErrorCode::InvalidArgument, {"weights.bin"});
}

TEST_F(OnnxImport, NodeNamesAreMadeUnique) {
  onnx::ModelProto p = relu_model();
  auto* g = p.mutable_graph();
  g->mutable_node(0)->set_name("dup");
  for (int i = 0; i < 2; ++i) {
    auto* n = g->add_node();
    n->set_op_type("Relu");
    n->set_name(i == 0 ? "dup" : "");
    n->add_input("y");
    n->add_output("z" + std::to_string(i));
  }
  ImportedModel m = import_proto(p);
  ASSERT_EQ(m.graph.nodes.size(), 3u);
  EXPECT_EQ(m.graph.nodes[0].name, "dup");
  EXPECT_EQ(m.graph.nodes[1].name, "Relu_1");
  EXPECT_EQ(m.graph.nodes[2].name, "Relu_2");
}

TEST_F(OnnxImport, ValueTypesFromTypeProtos) {
  onnx::ModelProto p = relu_model();
  auto* g = p.mutable_graph();
  auto* shape = g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->mutable_dim(0)->set_dim_param("N");
  shape->add_dim();  // neither value nor param
  g->mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();  // rank unknown
  auto* vi = g->add_value_info();
  vi->set_name("x");
  auto* x2 = g->add_input();
  x2->set_name("x2");
  x2->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  x2->mutable_type()->mutable_tensor_type()->mutable_shape();  // rank 0
  ImportedModel m = import_proto(p);
  const auto* tx = m.graph.type_of("x");
  ASSERT_NE(tx, nullptr);
  EXPECT_TRUE(tx->has_rank);
  EXPECT_EQ(tx->str(), "float32[N,3,?]");
  EXPECT_EQ(m.inputs[0].dims[0].symbol, "N");
  EXPECT_FALSE(m.inputs[0].dims[0].is_static());
  EXPECT_EQ(m.inputs[0].dims[1].value, 3);
  EXPECT_FALSE(m.graph.type_of("y")->has_rank);
  EXPECT_EQ(m.graph.type_of("x2")->str(), "int64[]");
  EXPECT_TRUE(m.graph.type_of("x2")->has_rank);
  EXPECT_EQ(m.inputs[1].str(), "int64[]");
}

TEST_F(OnnxImport, AttributesOfEveryKind) {
  onnx::ModelProto p = relu_model();
  auto* os = p.add_opset_import();
  os->set_domain("kiln.test");
  os->set_version(1);
  auto* n = p.mutable_graph()->add_node();
  n->set_op_type("AttrOp");
  n->set_domain("kiln.test");
  n->add_input("y");
  n->add_output("z");
  auto add = [&](const char* name, onnx::AttributeProto::AttributeType t) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(t);
    return a;
  };
  add("i", onnx::AttributeProto::INT)->set_i(-7);
  add("f", onnx::AttributeProto::FLOAT)->set_f(0.25f);
  add("s", onnx::AttributeProto::STRING)->set_s("same_upper");
  auto* ints = add("ints", onnx::AttributeProto::INTS);
  ints->add_ints(1);
  ints->add_ints(-2);
  auto* floats = add("floats", onnx::AttributeProto::FLOATS);
  floats->add_floats(1.5f);
  auto* strings = add("strings", onnx::AttributeProto::STRINGS);
  strings->add_strings("a");
  strings->add_strings("b");
  *add("t", onnx::AttributeProto::TENSOR)->mutable_t() = f32_proto("tv", {3}, {1.f, 2.f, 3.f});
  auto* legacy = n->add_attribute();  // IR 1 style: no type, kind inferred from the field
  legacy->set_name("legacy");
  legacy->set_i(5);
  ImportedModel m = import_proto(p);
  const auto& node = m.graph.nodes.back();
  EXPECT_EQ(node.domain, "kiln.test");
  EXPECT_EQ(node.name, "AttrOp_1");
  EXPECT_EQ(node.attr_int("i"), -7);
  EXPECT_EQ(node.attr_float("f", 0), 0.25f);
  EXPECT_EQ(node.attr_string("s", ""), "same_upper");
  EXPECT_EQ(node.attr_ints("ints", {}), (std::vector<int64_t>{1, -2}));
  EXPECT_EQ(node.attr_floats("floats", {}), std::vector<float>{1.5f});
  EXPECT_EQ(std::get<std::vector<std::string>>(node.attrs.at("strings")), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(node.attr_tensor("t").at_double(2), 3.0);
  EXPECT_EQ(node.attr_int("legacy"), 5);
}

TEST_F(OnnxImport, AiOnnxDomainIsTheDefaultDomain) {
  onnx::ModelProto p = relu_model();
  p.mutable_opset_import(0)->set_domain("ai.onnx");
  p.mutable_graph()->mutable_node(0)->set_domain("ai.onnx");
  ImportedModel m = import_proto(p);
  EXPECT_EQ(m.opset, 17);
  EXPECT_EQ(m.graph.nodes[0].domain, "");
  EXPECT_EQ(m.graph.nodes[0].opset, 17);
}

}  // namespace
