// Helpers for the CUDA runtime tests: small IR graphs and engines made from them (no ONNX file needed).
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/kiln.h"
#include "runtime/engine_impl.h"

namespace kiln::cuda_test {

inline ir::Node mk(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                   std::map<std::string, ir::Attr> attrs = {}, int64_t opset = 17) {
  ir::Node n;
  n.name = op + "_" + out.front();
  n.op_type = op;
  n.opset = opset;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attrs = std::move(attrs);
  return n;
}

// x (float32[N,4]) -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1... ]) -> Reshape(x) -> Relu -> y.
// The shape arithmetic is host-known for every input shape; Reshape and Relu run on the device.
inline ir::Graph shape_arith_graph() {
  ir::register_all_ops();
  ir::Graph g;
  g.name = "shape_arith";
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType{DType::Float32, true, {Dim{-1, "N"}, Dim{4, ""}}};
  g.initializers["zero"] = Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{0});
  g.initializers["axes"] = Tensor::from_vector(DType::Int64, {1}, std::vector<int64_t>{0});
  g.initializers["two_two"] = Tensor::from_vector(DType::Int64, {2}, std::vector<int64_t>{2, 2});
  g.nodes.push_back(mk("Shape", {"x"}, {"s"}));
  g.nodes.push_back(mk("Gather", {"s", "zero"}, {"n"}, {{"axis", int64_t(0)}}));
  g.nodes.push_back(mk("Unsqueeze", {"n", "axes"}, {"n1"}));
  g.nodes.push_back(mk("Concat", {"n1", "two_two"}, {"shape"}, {{"axis", int64_t(0)}}));
  g.nodes.push_back(mk("Reshape", {"x", "shape"}, {"r"}));
  g.nodes.push_back(mk("Relu", {"r"}, {"y"}));
  g.outputs = {"y", "shape"};
  ir::infer_types(g);
  return g;
}

// An engine around a bare graph: one profile over `input` (min / opt / max), the given target, no tactics
// (the CUDA executor then chooses heuristically per node).
inline Engine engine_of(const ir::Graph& g, const std::string& input, Shape min, Shape opt, Shape max,
                        const std::string& target = "cuda:sm_90") {
  auto e = std::make_shared<detail::EngineImpl>();
  e->graph = g;
  for (const auto& name : g.inputs) {
    TensorInfo ti;
    ti.name = name;
    const ir::ValueType* t = g.type_of(name);
    ti.dtype = t ? t->dtype : DType::Float32;
    if (t)
      for (const auto& d : t->dims) ti.dims.push_back(d);
    e->inputs.push_back(ti);
  }
  for (const auto& name : g.outputs) {
    TensorInfo ti;
    ti.name = name;
    if (const ir::ValueType* t = g.type_of(name)) ti.dtype = t->dtype;
    e->outputs.push_back(ti);
  }
  e->profiles.push_back(Profile().add_input_shape(input, min, opt, max));
  e->target = target;
  return Engine(e);
}

}  // namespace kiln::cuda_test
