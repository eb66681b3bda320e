// Helpers for the ONNX importer tests: models built with the generated protobuf classes, stand-in op
// definitions for ops whose kernels may not be registered in this build, a tiny float32 evaluator to check
// inlined / converted graphs against onnxruntime's outputs, and error assertions.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/error.h"
#include "kiln/io.h"
#include "onnx/importer.h"
#include "onnx/onnx.pb.h"
#include "util/fs.h"

namespace kiln_onnx_test {

using kiln::DType;
using kiln::Shape;
using kiln::Tensor;

inline std::string model_path(const std::string& name) { return std::string(KILN_TEST_MODELS) + "/" + name; }

// Registers a stand-in for each op the tests use that the registry lacks (kernels are written elsewhere).
// Stand-ins infer "float32, unknown rank" and refuse to execute.
inline void ensure_test_ops() {
  kiln::ir::register_all_ops();
  auto& reg = kiln::ir::OpRegistry::instance();
  auto add_fake = [&](const char* domain, const char* op, int since) {
    if (reg.known_op(domain, op)) return;
    kiln::ir::OpDef d;
    d.op_type = op;
    d.domain = domain;
    d.since = {since};
    d.infer = [](const kiln::ir::InferContext& c) {
      return std::vector<kiln::ir::ValueType>(c.node.outputs.size(), kiln::ir::ValueType::unknown(DType::Float32));
    };
    d.reference = [](const kiln::ir::Node& n, const std::vector<const Tensor*>&, std::vector<Tensor>&) {
      throw kiln::Error(kiln::ErrorCode::Unsupported, "stand-in op " + n.op_type + " from the importer tests");
    };
    reg.add(std::move(d));
  };
  for (const char* op : {"Conv", "Relu", "Add", "Mul", "LeakyRelu", "MatMul", "Neg", "Identity", "If"})
    add_fake("", op, 1);
  add_fake("kiln.test", "AttrOp", 1);
  add_fake("kiln.test", "NewOp", 20);  // only from opset 20: older opsets are unsupported
}

// x -> Relu -> y, float32[2,3], opset 17, IR 8.
inline onnx::ModelProto relu_model(int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("kiln-tests");
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("relu");
  auto add_vi = [](onnx::ValueInfoProto* vi, const std::string& name) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_value(2);
    tt->mutable_shape()->add_dim()->set_dim_value(3);
  };
  add_vi(g->add_input(), "x");
  add_vi(g->add_output(), "y");
  auto* n = g->add_node();
  n->set_op_type("Relu");
  n->set_name("relu");
  n->add_input(std::string("x"));  // (std::string: GCC 12 -Wrestrict false positive on the const char* overload)
  n->add_output(std::string("y"));
  return m;
}

inline std::string serialize(const onnx::ModelProto& m) {
  std::string s;
  EXPECT_TRUE(m.SerializeToString(&s));
  return s;
}

inline kiln::onnx_import::ImportedModel import_proto(const onnx::ModelProto& m, const std::string& base_dir = "") {
  return kiln::onnx_import::import_model_bytes(serialize(m), base_dir);
}

// float32 tensor proto with raw data.
inline onnx::TensorProto f32_proto(const std::string& name, const Shape& dims, const std::vector<float>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return t;
}

// Runs `f` and checks it throws kiln::Error with `code` and a message containing every string in `parts`.
inline void expect_error(const std::function<void()>& f, kiln::ErrorCode code,
                         std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected kiln::Error " << kiln::error_code_name(code) << ", nothing was thrown";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(kiln::error_code_name(e.code()), std::string(kiln::error_code_name(code))) << e.what();
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
        << "message lacks '" << p << "': " << e.what();
  }
}

// ---- a tiny float32 evaluator (Relu, Neg, Identity, Add, Mul, LeakyRelu, 2-D MatMul; NumPy broadcasting) ----
inline Tensor eval_binary(const Tensor& a, const Tensor& b, const std::function<float(float, float)>& f) {
  const size_t r = std::max(a.shape().size(), b.shape().size());
  Shape out(r), sa(r, 1), sb(r, 1);
  for (size_t i = 0; i < a.shape().size(); ++i) sa[r - a.shape().size() + i] = a.shape()[i];
  for (size_t i = 0; i < b.shape().size(); ++i) sb[r - b.shape().size() + i] = b.shape()[i];
  for (size_t i = 0; i < r; ++i) out[i] = std::max(sa[i], sb[i]);
  Tensor t(DType::Float32, out);
  std::vector<int64_t> idx(r, 0);
  for (int64_t e = 0; e < t.numel(); ++e) {
    int64_t rem = e, ia = 0, ib = 0, sta = 1, stb = 1;
    for (size_t k = r; k-- > 0;) {
      int64_t c = rem % out[k];
      rem /= out[k];
      ia += (sa[k] == 1 ? 0 : c) * sta;
      ib += (sb[k] == 1 ? 0 : c) * stb;
      sta *= sa[k];
      stb *= sb[k];
    }
    t.mutable_as<float>()[e] = f(a.as<float>()[ia], b.as<float>()[ib]);
  }
  return t;
}

inline std::map<std::string, Tensor> eval_graph(const kiln::ir::Graph& g, std::map<std::string, Tensor> vals) {
  for (const auto& [k, v] : g.initializers) vals[k] = v;
  for (const auto& n : g.nodes) {
    auto in = [&](size_t i) -> const Tensor& { return vals.at(n.inputs.at(i)); };
    auto unary = [&](const std::function<float(float)>& f) {
      Tensor t(DType::Float32, in(0).shape());
      for (int64_t i = 0; i < t.numel(); ++i) t.mutable_as<float>()[i] = f(in(0).as<float>()[i]);
      return t;
    };
    Tensor r;
    if (n.op_type == "Relu") r = unary([](float x) { return x > 0 ? x : 0.f; });
    else if (n.op_type == "Neg") r = unary([](float x) { return -x; });
    else if (n.op_type == "Identity") r = in(0);
    else if (n.op_type == "LeakyRelu") {
      float alpha = n.attr_float("alpha", 0.01f);
      r = unary([alpha](float x) { return x >= 0 ? x : alpha * x; });
    } else if (n.op_type == "Add") r = eval_binary(in(0), in(1), [](float x, float y) { return x + y; });
    else if (n.op_type == "Mul") r = eval_binary(in(0), in(1), [](float x, float y) { return x * y; });
    else if (n.op_type == "MatMul") {
      const Tensor &a = in(0), &b = in(1);
      const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
      r = Tensor(DType::Float32, {M, N});
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += double(a.as<float>()[i * K + k]) * b.as<float>()[k * N + j];
          r.mutable_as<float>()[i * N + j] = static_cast<float>(s);
        }
    } else {
      ADD_FAILURE() << "eval_graph: no evaluator for " << n.op_type;
      return vals;
    }
    vals[n.outputs.at(0)] = r;
  }
  return vals;
}

inline void expect_close(const Tensor& got, const Tensor& want, double rtol = 1e-4, double atol = 1e-5) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_LE(std::fabs(got.at_double(i) - want.at_double(i)), atol + rtol * std::fabs(want.at_double(i)))
        << "element " << i;
}

}  // namespace kiln_onnx_test
