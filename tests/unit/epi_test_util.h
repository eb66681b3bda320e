// Helpers for the GEMM-epilogue / Add+LayerNorm fusion tests (test_fuse_gemm_epilogue.cpp, test_cuda_fused_gemm.cpp):
// a float32 BERT-style block graph and a Model around an ir::Graph (so build_engine can take it).
#pragma once
#include <memory>

#include "fuse_test_util.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"

namespace kiln::test_fuse {

// x [batch, seq, hidden] -> LayerNorm -> MatMul + bias + Gelu(erf) [ffn] -> MatMul + bias -> Add(LN output) ->
// LayerNorm: output "y". Weights scaled so the activations stay O(1).
inline ir::Graph bert_block_graph(int64_t batch, int64_t seq, int64_t hidden, int64_t ffn) {
  GraphBuilder b;
  const DType f = DType::Float32;
  const std::string x = b.input("x", f, {batch, seq, hidden});
  const std::string h0 =
      b.node("LayerNormalization",
             {x, b.constant("g0", random_tensor(f, {hidden}, 1, 0.5f, 1.5f)), b.constant("b0", random_tensor(f, {hidden}, 2))},
             {{"axis", int64_t(-1)}}, 17);
  const float s1 = 1.7f / static_cast<float>(hidden), s2 = 1.7f / static_cast<float>(ffn);
  const std::string u = b.node("MatMul", {h0, b.constant("w1", random_tensor(f, {hidden, ffn}, 3, -s1 * 10, s1 * 10))});
  const std::string ub = b.node("Add", {u, b.constant("b1", random_tensor(f, {ffn}, 4))});
  const std::string gl = b.node("Gelu", {ub}, {{"approximate", std::string("none")}});
  const std::string d = b.node("MatMul", {gl, b.constant("w2", random_tensor(f, {ffn, hidden}, 5, -s2 * 10, s2 * 10))});
  const std::string db = b.node("Add", {d, b.constant("b2", random_tensor(f, {hidden}, 6))});
  const std::string r = b.node("Add", {db, h0});
  b.node("LayerNormalization",
         {r, b.constant("g1", random_tensor(f, {hidden}, 7, 0.5f, 1.5f)), b.constant("b1n", random_tensor(f, {hidden}, 8))},
         {{"axis", int64_t(-1)}}, 17);
  b.g.nodes.back().outputs[0] = "y";
  b.output("y");
  ir::infer_types(b.g);
  return b.g;
}

// A Model holding g (static input / output shapes from its types).
inline Model as_model(const ir::Graph& g) {
  auto impl = std::make_shared<detail::ModelImpl>();
  impl->m.graph = g;
  impl->m.ir_version = 8;
  impl->m.opset = 20;
  impl->m.opsets[""] = 20;
  impl->m.content_hash = "epi-test-" + std::to_string(g.nodes.size());
  auto info = [&](const std::string& name) {
    TensorInfo ti;
    ti.name = name;
    ti.dtype = g.type_of(name)->dtype;
    for (int64_t d : g.type_of(name)->static_shape()) ti.dims.push_back(Dim{d, ""});
    return ti;
  };
  for (const auto& name : g.inputs) impl->m.inputs.push_back(info(name));
  for (const auto& name : g.outputs) impl->m.outputs.push_back(info(name));
  return Model(impl);
}

}  // namespace kiln::test_fuse
