// ONNX importer on bad input: every failure is a kiln::Error with the right code, naming what is wrong.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "unit/onnx_test_util.h"

namespace {

using namespace kiln_onnx_test;
using kiln::ErrorCode;
using kiln::onnx_import::import_model_bytes;
using kiln::onnx_import::import_model_file;

class OnnxImportErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_test_ops();
    dir_ = std::filesystem::temp_directory_path() /
           ("kiln_onnx_err_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "models");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // relu_model plus an initializer "w" (float32[4]) stored externally at `location`; consumed by Add.
  onnx::ModelProto external_model(const std::string& location, const std::string& offset = "0") {
    onnx::ModelProto p = relu_model();
    auto* g = p.mutable_graph();
    auto* t = g->add_initializer();
    t->set_name("w");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(location);
    kv = t->add_external_data();
    kv->set_key("offset");
    kv->set_value(offset);
    auto* n = g->add_node();
    n->set_op_type("Add");
    n->add_input("y");
    n->add_input("w");
    n->add_output("z");
    return p;
  }
  void write(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f << bytes;
  }

  std::filesystem::path dir_;
};

TEST_F(OnnxImportErrors, GarbageAndTruncatedBytes) {
  expect_error([] { import_model_bytes("this is certainly not a protobuf \xff\xff\xff\xff", ""); },
               ErrorCode::InvalidModel, {"not an ONNX model"});
  expect_error([] { import_model_bytes("", ""); }, ErrorCode::InvalidModel, {"not an ONNX model", "no graph"});
  const std::string good = kiln::util::read_file(model_path("conv_opset17.onnx"));
  expect_error([&] { import_model_bytes(good.substr(0, good.size() / 2), ""); }, ErrorCode::InvalidModel,
               {"not an ONNX model"});
  onnx::ModelProto no_graph;
  no_graph.set_ir_version(8);
  expect_error([&] { import_proto(no_graph); }, ErrorCode::InvalidModel, {"no graph"});
  onnx::ModelProto no_ir = relu_model();
  no_ir.clear_ir_version();
  expect_error([&] { import_proto(no_ir); }, ErrorCode::InvalidModel, {"ir_version"});
  write(dir_ / "half.onnx", good.substr(0, good.size() / 2));
  expect_error([&] { import_model_file((dir_ / "half.onnx").string()); }, ErrorCode::InvalidModel,
               {"half.onnx", "not an ONNX model"});
  expect_error([&] { import_model_file((dir_ / "missing.onnx").string()); }, ErrorCode::Io, {"missing.onnx"});
}

TEST_F(OnnxImportErrors, RandomlyCorruptedModelsNeverCrash) {
  std::string good = kiln::util::read_file(model_path("functions.onnx"));
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    if (iter % 7 == 0) b.resize(rng() % b.size());
    try {
      import_model_bytes(b, "");
    } catch (const kiln::Error&) {
      ++errors;
    }  // anything else escapes and fails the test
  }
  EXPECT_GT(errors, 100);
}

TEST_F(OnnxImportErrors, BadAttributeKinds) {
  onnx::ModelProto p = relu_model();
  auto* a = p.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("weird");
  a->set_type(onnx::AttributeProto::SPARSE_TENSOR);
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"relu", "weird", "SPARSE_TENSOR"});
  a->set_type(onnx::AttributeProto::TYPE_PROTOS);
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"relu", "weird", "TYPE_PROTOS"});
  a->set_type(onnx::AttributeProto::UNDEFINED);
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"relu", "weird", "no value"});
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(1);
  auto* dup = p.mutable_graph()->mutable_node(0)->add_attribute();
  *dup = *a;
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"weird", "twice"});
}

TEST_F(OnnxImportErrors, ExternalDataProblems) {
  const std::string base = (dir_ / "models").string();
  expect_error([&] { import_proto(external_model("nope.bin"), base); }, ErrorCode::Io,
               {"nope.bin", "initializer 'w'"});
  expect_error([&] { import_proto(external_model("../secret.bin"), base); }, ErrorCode::InvalidModel,
               {"'w'", "escapes"});
  expect_error([&] { import_proto(external_model("a/../../secret.bin"), base); }, ErrorCode::InvalidModel,
               {"escapes"});
  expect_error([&] { import_proto(external_model("/etc/passwd"), base); }, ErrorCode::InvalidModel,
               {"'w'", "absolute"});
  expect_error([&] { import_proto(external_model(""), base); }, ErrorCode::InvalidModel, {"location"});
  expect_error([&] { import_proto(external_model("w.bin", "-3"), base); }, ErrorCode::InvalidModel, {"offset"});
  // A file too short for the tensor.
  write(dir_ / "models" / "short.bin", std::string(10, '\0'));
  expect_error([&] { import_proto(external_model("short.bin"), base); }, ErrorCode::Io,
               {"short.bin", "'w'", "16"});
  expect_error([&] { import_proto(external_model("short.bin", "99999999999999999999"), base); },
               ErrorCode::InvalidModel, {"offset"});
  // A directory is not a data file.
  std::filesystem::create_directories(dir_ / "models" / "sub");
  expect_error([&] { import_proto(external_model("sub"), base); }, ErrorCode::Io, {"sub"});
  // Good: inside a subfolder, at an offset; '..' that stays inside the folder is fine.
  std::string bytes(8, 'x');
  const float w[4] = {1.f, -2.f, 3.f, 0.5f};
  bytes.append(reinterpret_cast<const char*>(w), sizeof w);
  write(dir_ / "models" / "sub" / "w.bin", bytes);
  auto m = import_proto(external_model("sub/../sub/w.bin", "8"), base);
  EXPECT_EQ(m.graph.initializers.at("w").at_double(1), -2.0);
  // A length key that disagrees with the dims.
  onnx::ModelProto p = external_model("sub/w.bin", "8");
  auto* kv = p.mutable_graph()->mutable_initializer(0)->add_external_data();
  kv->set_key("length");
  kv->set_value("12");
  expect_error([&] { import_proto(p, base); }, ErrorCode::InvalidModel, {"length 12"});
}

TEST_F(OnnxImportErrors, BadInitializers) {
  auto with_init = [](const onnx::TensorProto& t) {
    onnx::ModelProto p = relu_model();
    *p.mutable_graph()->add_initializer() = t;
    return p;
  };
  onnx::TensorProto t = f32_proto("w", {2, 2}, {1, 2, 3});  // 12 bytes for 16
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'w'", "raw_data has 12 bytes"});
  t = f32_proto("w", {-1}, {});
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'w'", "negative"});
  t = f32_proto("w", {int64_t(1) << 40, int64_t(1) << 40}, {});
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'w'", "overflow"});
  t = f32_proto("w", {int64_t(1) << 62}, {});
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'w'", "overflow"});
  t = f32_proto("w", {1000000000}, {});
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'w'"});
  t.Clear();
  t.set_name("s");
  t.set_data_type(onnx::TensorProto::STRING);
  t.add_string_data("hello");
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::Unsupported, {"'s'", "STRING"});
  t.set_data_type(onnx::TensorProto::FLOAT8E4M3FN);
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::Unsupported, {"'s'", "FLOAT8E4M3FN"});
  t.set_data_type(onnx::TensorProto::COMPLEX64);
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::Unsupported, {"'s'", "COMPLEX64"});
  t.set_data_type(99);
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'s'", "99"});
  t.Clear();
  t.set_name("i");
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(3);
  t.add_int64_data(1);
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'i'", "int64_data has 1"});
  t.clear_int64_data();
  t.add_float_data(1.f);
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'i'", "int64_data"});
  t.clear_float_data();
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"'i'", "no data"});
  t = f32_proto("", {1}, {1.f});
  expect_error([&] { import_proto(with_init(t)); }, ErrorCode::InvalidModel, {"initializer #0 has no name"});
  onnx::ModelProto p = with_init(f32_proto("w", {1}, {1.f}));
  *p.mutable_graph()->add_initializer() = f32_proto("w", {1}, {2.f});
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"'w'", "twice"});
  p = relu_model();
  p.mutable_graph()->add_sparse_initializer()->mutable_values()->set_name("sp");
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"sparse", "sp"});
}

TEST_F(OnnxImportErrors, BadConstants) {
  auto constant = [](const std::string& attr, onnx::AttributeProto::AttributeType type) {
    onnx::ModelProto p = relu_model();
    auto* n = p.mutable_graph()->add_node();
    n->set_op_type("Constant");
    n->set_name("c");
    n->add_output("cv");
    auto* a = n->add_attribute();
    a->set_name(attr);
    a->set_type(type);
    return p;
  };
  expect_error([&] { import_proto(constant("sparse_value", onnx::AttributeProto::SPARSE_TENSOR)); },
               ErrorCode::Unsupported, {"'c'", "sparse_value"});
  onnx::ModelProto p = constant("value_string", onnx::AttributeProto::STRING);
  p.mutable_graph()->mutable_node(1)->mutable_attribute(0)->set_s("x");
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"'c'", "string"});
  p = constant("value_float", onnx::AttributeProto::FLOAT);
  p.mutable_graph()->mutable_node(1)->clear_attribute();
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"'c'", "exactly one value"});
}

TEST_F(OnnxImportErrors, BadGraphStructure) {
  onnx::ModelProto p = relu_model();
  p.mutable_graph()->mutable_node(0)->set_input(0, "ghost");
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"ghost"});
  p = relu_model();  // cycle: y = Relu(z), z = Relu(y)
  auto* n = p.mutable_graph()->add_node();
  n->set_op_type("Relu");
  n->set_name("back");
  n->add_input("y");
  n->add_output("z");
  p.mutable_graph()->mutable_node(0)->set_input(0, "z");
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"cycle"});
  p = relu_model();  // the same value produced twice
  *p.mutable_graph()->add_node() = p.graph().node(0);
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"'y'", "more than once"});
  p = relu_model();
  p.mutable_graph()->mutable_output(0)->set_name("nothing");
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"nothing"});
  p = relu_model();
  p.mutable_graph()->mutable_node(0)->set_domain("com.unknown");
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"com.unknown", "opset_import"});
  p = relu_model();
  p.mutable_graph()->mutable_input(0)->clear_type();
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"'x'", "no type"});
  p = relu_model();
  p.mutable_graph()->mutable_input(0)->mutable_type()->mutable_sequence_type();
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"'x'", "sequence"});
  p = relu_model();
  p.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::STRING);
  expect_error([&] { import_proto(p); }, ErrorCode::Unsupported, {"'x'", "STRING"});
  p = relu_model();
  *p.mutable_graph()->add_input() = p.graph().input(0);
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"'x'", "twice"});
  p = relu_model();
  p.mutable_graph()->mutable_node(0)->clear_op_type();
  expect_error([&] { import_proto(p); }, ErrorCode::InvalidModel, {"no op_type"});
}

}  // namespace
