// CUDA kernel of kiln.FusedElementwise (src/runtime/cuda/kernels/elementwise_fused.cu) against the reference kernel:
// every fused node of random elementwise trees (float32 / float16 / bfloat16), large tensors on the vector path with
// bias and per-channel operands, odd sizes (the scalar tail), general broadcasts (the scalar path), and whole fused
// graphs through the CUDA executor. Tolerances: the table's row for the output dtype. Skips without a GPU.
#include <gtest/gtest.h>

#if KILN_WITH_CUDA
#include "cuda_op_test_util.h"
#include "fuse_test_util.h"
#include "runtime/cuda/executor.h"

namespace kiln::test_fuse {
namespace {

namespace fz = ops::fused;

// A graph holding only node n, its inputs typed from `values` (initializers kept as such).
ir::Graph one_node(const ir::Graph& from, const ir::Node& n, const TensorMap& values, TensorMap& feeds) {
  ir::Graph g;
  g.name = "one";
  for (const auto& name : n.inputs) {
    if (from.initializers.count(name)) {
      g.initializers[name] = from.initializers.at(name);
      continue;
    }
    if (g.types.count(name)) continue;
    g.inputs.push_back(name);
    g.types[name] = ir::ValueType::of(values.at(name).dtype(), values.at(name).shape());
    feeds[name] = values.at(name);
  }
  g.nodes = {n};
  g.outputs = {n.outputs[0]};
  return g;
}

const char* row(DType dt) { return dt == DType::Float32 ? "fp32" : dt == DType::Float16 ? "fp16" : "bf16"; }

// Checks every fused node of f (inputs from running the graph node by node on the reference).
size_t check_fused_nodes(const ir::Graph& f, const TensorMap& feeds, const std::string& what) {
  TensorMap values = feeds;
  for (const auto& [k, v] : f.initializers) values[k] = v;
  size_t checked = 0;
  for (const auto& n : f.nodes) {
    std::vector<const Tensor*> in;
    for (const auto& name : n.inputs) in.push_back(&values.at(name));
    std::vector<Tensor> out(1);
    ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset)->reference(n, in, out);
    values[n.outputs[0]] = out[0];
    if (n.op_type != fz::kOpType) continue;
    TensorMap one_feeds;
    const ir::Graph g = one_node(f, n, values, one_feeds);
    EXPECT_EQ(test_cuda::tactic_names(g), std::vector<std::string>{"cuda"}) << what << " " << n.name;
    const std::vector<Tensor> got = test_cuda::run_cuda_node(g, one_feeds, "");
    if (got.size() != 1) continue;
    const Comparison c = compare(got[0], out[0], tolerance_for(row(out[0].dtype())));
    EXPECT_TRUE(c.passed) << what << " " << n.name << " = " << fz::describe(fz::decode(n)) << ": " << c.reason
                          << " (max abs " << c.max_abs << ", rel L2 " << c.rel_l2 << ")";
    ++checked;
  }
  return checked;
}

TEST(CudaFusedElementwise, RandomTreesMatchReference) {
  KILN_SKIP_WITHOUT_CUDA();
  size_t checked = 0;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (uint32_t seed = 0; seed < 30; ++seed) {
      RandomGraph rg(dt, seed);
      ir::Graph f = rg.make(1 + static_cast<int>(seed % 5));
      passes::fuse_elementwise(f);
      ir::infer_types(f);
      checked += check_fused_nodes(f, rg.feeds, std::string(dtype_name(dt)) + " seed " + std::to_string(seed));
    }
  EXPECT_GE(checked, 60u);
}

// Bias GELU (decomposed, as exporters write it) with residual add on [rows, cols] plus a per-row scale:
// cols = 1024 takes the vector path (bias contiguous per vector, the per-row scale uniform), cols = 333 the tail.
TEST(CudaFusedElementwise, VectorPathBiasAndPerChannelOperands) {
  KILN_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (int64_t cols : {1024, 333}) {
      GraphBuilder b;
      const Shape s{37, cols};
      TensorMap feeds = {{"x", random_tensor(dt, s, 1)},
                         {"res", random_tensor(dt, s, 2)},
                         {"bias", random_tensor(dt, {cols}, 3)},
                         {"scale", random_tensor(dt, {37, 1}, 4)}};
      const std::string x = b.input("x", dt, s);
      const std::string h = b.node("Add", {x, b.input("bias", dt, {cols})});
      const std::string d = b.node("Div", {h, b.constant("sqrt2", scalar(dt, 1.4142135f))});
      const std::string e = b.node("Add", {b.node("Erf", {d}), b.constant("one", scalar(dt, 1.0f))});
      const std::string gl = b.node("Mul", {b.node("Mul", {h, e}), b.constant("half", scalar(dt, 0.5f))});
      const std::string r = b.node("Add", {gl, b.input("res", dt, s)});
      b.output(b.node("Mul", {r, b.input("scale", dt, {37, 1})}));
      ir::Graph f = b.typed();
      ASSERT_TRUE(passes::fuse_elementwise(f));
      ir::infer_types(f);
      EXPECT_EQ(f.nodes.size(), 1u);
      EXPECT_EQ(check_fused_nodes(f, feeds, std::string(dtype_name(dt)) + " cols " + std::to_string(cols)), 1u);
    }
}

// An input broadcast over two separate dims ([2, 1, 5] into [2, 3, 5]) takes the general index path; a bool
// condition broadcast too; the output rounds through a Cast to float16 inside the program.
TEST(CudaFusedElementwise, GeneralBroadcastWhereAndCast) {
  KILN_SKIP_WITHOUT_CUDA();
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {2, 3, 5});
  const std::string y = b.input("y", DType::Float32, {2, 1, 5});
  const std::string m = b.input("m", DType::Bool, {3, 1});
  const std::string w = b.node("Where", {m, b.node("Sigmoid", {x}), b.node("Tanh", {y})});
  b.output(b.node("Cast", {b.node("Mul", {w, y})}, {{"to", int64_t(10)}}));
  TensorMap feeds = {{"x", random_tensor(DType::Float32, {2, 3, 5}, 5)},
                     {"y", random_tensor(DType::Float32, {2, 1, 5}, 6)},
                     {"m", random_tensor(DType::Bool, {3, 1}, 7)}};
  ir::Graph f = b.typed();
  ASSERT_TRUE(passes::fuse_elementwise(f));
  ir::infer_types(f);
  EXPECT_EQ(check_fused_nodes(f, feeds, "general broadcast"), 1u);
}

// Whole graphs through the CUDA executor (plans, arena, fused and unfused nodes together) against the unfused
// reference.
TEST(CudaFusedElementwise, ExecutorRunsFusedGraphs) {
  KILN_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::Float32, DType::Float16})
    for (uint32_t seed = 100; seed < 110; ++seed) {
      RandomGraph rg(dt, seed);
      const ir::Graph g = rg.make(4);
      ir::Graph f = g;
      passes::fuse_elementwise(f);
      ir::infer_types(f);
      const TensorMap want = runtime::cpu::run_graph_reference(g, rg.feeds);
      const TensorMap got = runtime::cuda::run_graph_cuda(f, rg.feeds, 0, false);
      for (const auto& o : g.outputs) {
        const Comparison c = compare(got.at(o), want.at(o), tolerance_for(row(dt)));
        EXPECT_TRUE(c.passed) << dtype_name(dt) << " seed " << seed << " " << o << ": " << c.reason;
      }
    }
}

}  // namespace
}  // namespace kiln::test_fuse
#endif  // KILN_WITH_CUDA
