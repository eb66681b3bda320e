// Helpers for plan tests: a hand-made EngineImpl covering every IR feature the plan stores,
// deep structural comparison, and checksum repair for corruption tests.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kiln/version.h"
#include "plan/plan.h"
#include "runtime/engine_impl.h"
#include "util/sha256.h"

namespace kiln::plan_test {

inline Tensor iota_tensor(DType dt, const Shape& shape, int start = 1) {
  Tensor t(dt, shape);
  auto* p = static_cast<uint8_t*>(t.mutable_data());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(start + 7 * static_cast<int>(i));
  return t;
}

inline ir::ValueType vt(DType dt, std::vector<Dim> dims) { return ir::ValueType{dt, true, std::move(dims)}; }

// A branch subgraph with its own initializer, optionally holding a nested subgraph.
inline ir::GraphPtr branch_graph(const std::string& name, int nested) {
  auto g = std::make_shared<ir::Graph>();
  g->name = name;
  g->outputs = {name + "_out"};
  g->initializers[name + "_c"] = iota_tensor(DType::Float32, {2}, nested + 3);
  ir::Node n;
  n.name = name + "_id";
  n.op_type = "Identity";
  n.opset = 17;
  n.inputs = {name + "_c"};
  n.outputs = {name + "_out"};
  n.tactic = "cpu.identity";
  if (nested > 0) n.attrs["inner"] = branch_graph(name + "_inner", nested - 1);
  g->nodes.push_back(n);
  g->types[name + "_out"] = ir::ValueType::of(DType::Float32, {2});
  return g;
}

inline detail::EngineImpl make_engine() {
  detail::EngineImpl e;
  e.kiln_version = kiln::version();
  e.build_id = kiln::build_id();
  e.target = "cpu";
  e.precision = "fp32";
  e.model_hash = "sha256:0123456789abcdef";
  ir::Graph& g = e.graph;
  g.name = "main";
  g.inputs = {"x", "cond", "bias_in"};
  g.outputs = {"y", "z"};
  g.types["x"] = vt(DType::Float32, {Dim{-1, "batch"}, Dim{3, ""}});
  g.types["cond"] = vt(DType::Bool, {});
  g.types["mm"] = vt(DType::Float32, {Dim{-1, "batch"}, Dim{4, ""}});
  g.types["y"] = vt(DType::Float32, {Dim{-1, "batch"}, Dim{4, ""}});
  g.types["z"] = ir::ValueType::unknown(DType::Float32);
  g.types["dyn"] = vt(DType::Int64, {Dim{-1, ""}, Dim{-1, "seq"}});

  g.initializers["w"] = iota_tensor(DType::Float32, {3, 4});
  g.initializers["b"] = iota_tensor(DType::Float16, {4}, 5);
  g.initializers["scale_bf16"] = iota_tensor(DType::BFloat16, {2, 2}, 9);
  g.initializers["d"] = iota_tensor(DType::Float64, {3}, 11);
  g.input_defaults["bias_in"] = iota_tensor(DType::Float32, {4}, 13);  // IR >= 4 overridable input
  g.initializers["idx"] = iota_tensor(DType::Int64, {});  // scalar
  g.initializers["i32"] = iota_tensor(DType::Int32, {5}, 13);
  g.initializers["i16"] = iota_tensor(DType::Int16, {3}, 15);
  g.initializers["i8"] = iota_tensor(DType::Int8, {7}, 17);
  g.initializers["u8"] = iota_tensor(DType::UInt8, {1, 1, 3}, 19);
  g.initializers["mask"] = iota_tensor(DType::Bool, {4}, 0);
  g.initializers["empty"] = Tensor(DType::Float32, {0, 4});  // zero elements

  ir::Node mm;
  mm.name = "mm";
  mm.op_type = "MatMul";
  mm.opset = 17;
  mm.inputs = {"x", "w"};
  mm.outputs = {"mm"};
  mm.tactic = "cpu.gemm.blas";
  g.nodes.push_back(mm);

  ir::Node add;
  add.name = "add";
  add.op_type = "Add";
  add.opset = 17;
  add.inputs = {"mm", "b"};
  add.outputs = {"y"};
  add.tactic = "cpu.eltwise";
  add.attrs["i"] = int64_t{-42};
  add.attrs["f"] = 0.25f;
  add.attrs["s"] = std::string("hello\0world", 11);
  add.attrs["ints"] = std::vector<int64_t>{1, -2, 3, INT64_MAX, INT64_MIN};
  add.attrs["floats"] = std::vector<float>{1.5f, -0.0f, 3e38f};
  add.attrs["strings"] = std::vector<std::string>{"a", "", "ccc"};
  add.attrs["empty_ints"] = std::vector<int64_t>{};
  add.attrs["t"] = iota_tensor(DType::Int32, {2, 3}, 21);
  add.attrs["t_scalar"] = iota_tensor(DType::Float32, {}, 23);
  add.attrs["t_none"] = Tensor();
  add.attrs["g_none"] = ir::GraphPtr();
  g.nodes.push_back(add);

  ir::Node iff;
  iff.name = "if";
  iff.op_type = "If";
  iff.opset = 17;
  iff.inputs = {"cond", "", "y"};
  iff.outputs = {"z", ""};
  iff.tactic = "cpu.if";
  iff.attrs["then_branch"] = branch_graph("then", 2);
  iff.attrs["else_branch"] = branch_graph("else", 0);
  g.nodes.push_back(iff);

  ir::Node custom;
  custom.name = "custom";
  custom.op_type = "MyOp";
  custom.domain = "com.example";
  custom.opset = 3;
  custom.inputs = {"y"};
  custom.outputs = {"unused"};
  g.nodes.push_back(custom);

  e.inputs = {TensorInfo{"x", DType::Float32, {Dim{-1, "batch"}, Dim{3, ""}}},
              TensorInfo{"cond", DType::Bool, {}},
              TensorInfo{"bias_in", DType::Float32, {Dim{4, ""}}, true}};
  e.outputs = {TensorInfo{"y", DType::Float32, {Dim{-1, "batch"}, Dim{4, ""}}},
               TensorInfo{"z", DType::Float32, {Dim{-1, "n"}}}};
  Profile p1, p2;
  p1.add_input_shape("x", {1, 3}, {4, 3}, {8, 3}).add_input_shape("cond", {}, {}, {});
  p2.add_input_shape("x", {9, 3}, {32, 3}, {64, 3});
  e.profiles = {p1, p2};
  return e;
}

// The smallest engine: no nodes, no weights, no profiles.
inline detail::EngineImpl make_empty_engine() {
  detail::EngineImpl e;
  e.kiln_version = kiln::version();
  e.build_id = kiln::build_id();
  return e;
}

inline void expect_graph_eq(const ir::Graph& a, const ir::Graph& b);

inline void expect_attr_eq(const ir::Attr& a, const ir::Attr& b, const std::string& where) {
  ASSERT_EQ(a.index(), b.index()) << where;
  if (const auto* ta = std::get_if<Tensor>(&a)) {
    const Tensor& tb = std::get<Tensor>(b);
    EXPECT_EQ(ta->empty(), tb.empty()) << where;
    if (!ta->empty()) {
      EXPECT_TRUE(ta->bit_equal(tb)) << where;
    }
  } else if (const auto* ga = std::get_if<ir::GraphPtr>(&a)) {
    const ir::GraphPtr& gb = std::get<ir::GraphPtr>(b);
    ASSERT_EQ(*ga == nullptr, gb == nullptr) << where;
    if (*ga) expect_graph_eq(**ga, *gb);
  } else if (const auto* fa = std::get_if<std::vector<float>>(&a)) {
    const auto& fb = std::get<std::vector<float>>(b);
    ASSERT_EQ(fa->size(), fb.size()) << where;
    EXPECT_EQ(0, std::memcmp(fa->data(), fb.data(), fa->size() * sizeof(float))) << where;
  } else if (const auto* f = std::get_if<float>(&a)) {
    EXPECT_EQ(0, std::memcmp(f, &std::get<float>(b), sizeof(float))) << where;
  } else if (const auto* ia = std::get_if<int64_t>(&a)) {
    EXPECT_EQ(*ia, std::get<int64_t>(b)) << where;
  } else if (const auto* sa = std::get_if<std::string>(&a)) {
    EXPECT_EQ(*sa, std::get<std::string>(b)) << where;
  } else if (const auto* va = std::get_if<std::vector<int64_t>>(&a)) {
    EXPECT_EQ(*va, std::get<std::vector<int64_t>>(b)) << where;
  } else {
    EXPECT_EQ(std::get<std::vector<std::string>>(a), std::get<std::vector<std::string>>(b)) << where;
  }
}

inline void expect_dims_eq(const std::vector<Dim>& a, const std::vector<Dim>& b, const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].value, b[i].value) << where << " dim " << i;
    EXPECT_EQ(a[i].symbol, b[i].symbol) << where << " dim " << i;
  }
}

inline void expect_graph_eq(const ir::Graph& a, const ir::Graph& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  ASSERT_EQ(a.nodes.size(), b.nodes.size()) << "graph " << a.name;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const ir::Node &na = a.nodes[i], &nb = b.nodes[i];
    EXPECT_EQ(na.name, nb.name);
    EXPECT_EQ(na.op_type, nb.op_type);
    EXPECT_EQ(na.domain, nb.domain);
    EXPECT_EQ(na.opset, nb.opset);
    EXPECT_EQ(na.inputs, nb.inputs);
    EXPECT_EQ(na.outputs, nb.outputs);
    EXPECT_EQ(na.tactic, nb.tactic);
    ASSERT_EQ(na.attrs.size(), nb.attrs.size()) << na.name;
    for (const auto& [k, v] : na.attrs) {
      ASSERT_TRUE(nb.attrs.count(k)) << na.name << "." << k;
      expect_attr_eq(v, nb.attrs.at(k), na.name + "." + k);
    }
  }
  ASSERT_EQ(a.types.size(), b.types.size());
  for (const auto& [k, t] : a.types) {
    ASSERT_TRUE(b.types.count(k)) << k;
    const ir::ValueType& u = b.types.at(k);
    EXPECT_EQ(t.dtype, u.dtype) << k;
    EXPECT_EQ(t.has_rank, u.has_rank) << k;
    expect_dims_eq(t.dims, u.dims, k);
  }
  ASSERT_EQ(a.input_defaults.size(), b.input_defaults.size());
  for (const auto& [k, t] : a.input_defaults) {
    ASSERT_TRUE(b.input_defaults.count(k)) << k;
    EXPECT_TRUE(t.bit_equal(b.input_defaults.at(k))) << k;
  }
  ASSERT_EQ(a.initializers.size(), b.initializers.size());
  for (const auto& [k, t] : a.initializers) {
    ASSERT_TRUE(b.initializers.count(k)) << k;
    EXPECT_EQ(t.empty(), b.initializers.at(k).empty()) << k;
    EXPECT_TRUE(t.bit_equal(b.initializers.at(k))) << k;
  }
}

inline void expect_infos_eq(const std::vector<TensorInfo>& a, const std::vector<TensorInfo>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    expect_dims_eq(a[i].dims, b[i].dims, a[i].name);
    EXPECT_EQ(a[i].has_default, b[i].has_default) << a[i].name;
  }
}

inline void expect_engine_eq(const detail::EngineImpl& a, const detail::EngineImpl& b) {
  expect_graph_eq(a.graph, b.graph);
  expect_infos_eq(a.inputs, b.inputs);
  expect_infos_eq(a.outputs, b.outputs);
  EXPECT_EQ(a.profiles, b.profiles);
  EXPECT_EQ(a.profile_tactics, b.profile_tactics);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.kiln_version, b.kiln_version);
  EXPECT_EQ(a.build_id, b.build_id);
  EXPECT_EQ(a.model_hash, b.model_hash);
}

// Rewrites the trailing SHA-256 so that a deliberately edited plan passes the checksum.
inline void fix_checksum(std::string& plan) {
  ASSERT_GE(plan.size(), plan::kChecksumSize);
  size_t body = plan.size() - plan::kChecksumSize;
  std::string hex = util::sha256_hex(plan.data(), body);
  for (size_t i = 0; i < plan::kChecksumSize; ++i)
    plan[body + i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
}

}  // namespace kiln::plan_test
