// CUDA kernels of kiln.FusedMatMul (gemm_epilogue.cu: cuBLASLt BIAS / RELU_BIAS / GELU_BIAS epilogues, and kiln's own
// GEMM + activation) and kiln.AddLayerNormalization (norm.cu: the add-while-loading LayerNorm row kernel and the
// add + LayerNorm fallback) against their reference kernels (the oracle), every float dtype, both tactics, with and
// without the optional inputs / outputs; and a BERT-style FP16 block built with tactic timing (the cublaslt#<algo>
// variants are listed and timed with the epilogue) run on the device against the float32 reference.
// Tolerances: the table's row for the output dtype. Skips without a GPU.
#include <gtest/gtest.h>

#if KILN_WITH_CUDA
#include <cstdlib>
#include <iostream>

#include "cuda_op_test_util.h"
#include "epi_test_util.h"
#include "fuse_test_util.h"
#include "kiln/kiln.h"
#include "ops/fused_ops.h"
#include "runtime/cuda/executor.h"
#include "runtime/engine_impl.h"

namespace kiln::test_fuse {
namespace {

namespace fo = ops::fused_ops;

const char* row(DType dt) { return dt == DType::Float32 ? "fp32" : dt == DType::Float16 ? "fp16" : "bf16"; }

std::vector<Tensor> reference(const ir::Graph& g, const TensorMap& feeds) {
  const ir::Node& n = g.nodes[0];
  std::vector<const Tensor*> in;
  for (const auto& name : n.inputs)
    in.push_back(name.empty() ? nullptr : g.initializers.count(name) ? &g.initializers.at(name) : &feeds.at(name));
  std::vector<Tensor> out(n.outputs.size());
  ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset)->reference(n, in, out);
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  const Comparison c = compare(got, want, tolerance_for(row(want.dtype())));
  EXPECT_TRUE(c.passed) << what << ": " << c.reason << " (max abs " << c.max_abs << ", rel L2 " << c.rel_l2 << ")";
}

TEST(CudaFusedGemm, FusedMatMulMatchesReference) {
  KILN_SKIP_WITHOUT_CUDA();
  struct Dims {
    Shape a;
    int64_t n;
  };
  // Aligned (BERT-like, batch folded into M) and odd sizes (unaligned: other cuBLASLt kernels or kiln's own).
  const std::vector<Dims> dims = {{{3, 37, 64}, 96}, {{5, 33}, 17}, {{40}, 24}};
  size_t checked = 0;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (const char* act : {"none", "relu", "gelu", "gelu_tanh"})
      for (const Dims& d : dims)
        for (bool with_bias : {true, false})
          for (const char* tactic : {"cublaslt", "cuda"}) {
            const std::string what = std::string(dtype_name(dt)) + " " + act + " " + shape_str(d.a) + " x N=" +
                                     std::to_string(d.n) + (with_bias ? " bias " : " no bias ") + tactic;
            SCOPED_TRACE(what);
            GraphBuilder b;
            const int64_t K = d.a.back();
            b.input("a", dt, d.a);
            b.constant("w", random_tensor(dt, {K, d.n}, 2, -0.25f, 0.25f));
            b.constant("bias", random_tensor(dt, {d.n}, 3, -1.f, 1.f));
            ir::Node n;
            n.name = "fmm";
            n.op_type = fo::kFusedMatMul;
            n.domain = fo::kDomain;
            n.opset = 1;
            n.inputs = {"a", "w"};
            if (with_bias) n.inputs.push_back("bias");
            n.outputs = {"y"};
            n.attrs["activation"] = std::string(act);
            b.g.nodes.push_back(n);
            b.output("y");
            ir::Graph g = b.typed();
            const TensorMap feeds{{"a", random_tensor(dt, d.a, 1, -2.f, 2.f)}};
            const std::vector<Tensor> want = reference(g, feeds);
            const std::vector<Tensor> got = test_cuda::run_cuda_node(g, feeds, tactic);
            ASSERT_EQ(got.size(), 1u);
            expect_close(got[0], want[0], what);
            ++checked;
          }
  EXPECT_EQ(checked, 3u * 4u * 3u * 2u * 2u);
}

TEST(CudaFusedGemm, AddLayerNormMatchesReference) {
  KILN_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16})
    for (int64_t len : {768, 30, 4096})  // 768 / 4096: the add-while-loading kernel; 30: the fallback
      for (bool with_sum : {false, true})
        for (bool with_bias : {true, false}) {
          const std::string what = std::string(dtype_name(dt)) + " len " + std::to_string(len) +
                                   (with_sum ? " +sum" : "") + (with_bias ? " +B" : "");
          SCOPED_TRACE(what);
          const Shape s{3, 7, len};
          GraphBuilder b;
          b.input("a", dt, s);
          b.input("b", dt, s);
          b.constant("scale", random_tensor(dt, {len}, 3, 0.5f, 1.5f));
          b.constant("beta", random_tensor(dt, {len}, 4, -0.5f, 0.5f));
          ir::Node n;
          n.name = "aln";
          n.op_type = fo::kAddLayerNorm;
          n.domain = fo::kDomain;
          n.opset = 1;
          n.inputs = {"a", "b", "scale"};
          if (with_bias) n.inputs.push_back("beta");
          n.outputs = {"y"};
          if (with_sum) n.outputs.push_back("sum");
          n.attrs["axis"] = int64_t(-1);
          n.attrs["epsilon"] = 1e-5f;
          b.g.nodes.push_back(n);
          b.output("y");
          if (with_sum) b.output("sum");
          ir::Graph g = b.typed();
          // Values ~1e2 with a large common offset: a float16 sum of squares would overflow.
          const TensorMap feeds{{"a", random_tensor(dt, s, 1, 100.f, 300.f)}, {"b", random_tensor(dt, s, 2, -50.f, 50.f)}};
          const std::vector<Tensor> want = reference(g, feeds);
          const std::vector<Tensor> got = test_cuda::run_cuda_node(g, feeds, "cuda");
          ASSERT_EQ(got.size(), with_sum ? 2u : 1u);
          expect_close(got[0], want[0], what + " Y");
          if (with_sum && dt != DType::BFloat16) {  // one rounding of the exact sum, here and in the reference
            EXPECT_TRUE(bit_equal(got[1], want[1])) << what << ": the sum is rounded as the Add rounds";
          } else if (with_sum) {
            expect_close(got[1], want[1], what + " Sum");
          }
        }
}

// The BERT-style block (epi_test_util.h, hidden 256, ffn 1024, 4 x 128 tokens) as an FP16 CUDA engine built with
// tactic timing (optimization_level 3): two kiln.FusedMatMul timed over their cublaslt#<algo> variants (listed with
// the epilogue), one kiln.AddLayerNormalization, no Casts; run on the device (CUDA graphs) within the FP16 bound of
// the float32 reference. Prints the node count against the unfused engine.
TEST(CudaFusedGemm, BertBlockEngineMatchesFloat32Reference) {
  KILN_SKIP_WITHOUT_CUDA();
  const ir::Graph g = bert_block_graph(4, 128, 256, 1024);
  const TensorMap feeds{{"x", random_tensor(DType::Float32, {4, 128, 256}, 11)}};
  const Tensor want = runtime::cpu::run_graph_reference(g, feeds).at("y");
  for (bool fuse : {true, false}) {
    SCOPED_TRACE(fuse ? "fused" : "unfused");
    BuildConfig cfg;
    cfg.target = Target::Cuda;
    cfg.precision = Precision::FP16;
    cfg.optimization_level = 3;
    BuildStats stats;
    cfg.stats = &stats;
    if (!fuse) {
      setenv("KILN_FUSE_GEMM_EPILOGUE", "0", 1);
      setenv("KILN_FUSE_ADD_LAYERNORM", "0", 1);
    }
    const Engine e = build_engine(as_model(g), cfg);
    unsetenv("KILN_FUSE_GEMM_EPILOGUE");
    unsetenv("KILN_FUSE_ADD_LAYERNORM");
    size_t fmm = 0, aln = 0, casts = 0;
    for (const auto& n : e.impl()->graph.nodes) {
      fmm += n.op_type == fo::kFusedMatMul;
      aln += n.op_type == fo::kAddLayerNorm;
      casts += n.op_type == "Cast";
      if (n.op_type == fo::kFusedMatMul) {
        EXPECT_EQ(n.tactic.rfind("cublaslt", 0), 0u) << n.name << ": " << n.tactic;
      }
    }
    EXPECT_EQ(fmm, fuse ? 2u : 0u);
    EXPECT_EQ(aln, fuse ? 1u : 0u);
    EXPECT_GE(stats.tactics_timed, 2u) << "the GEMMs (fused or not) are timed";
    ExecutionContext ctx = e.create_context();
    const Tensor got = ctx.run(feeds).at("y");
    const Comparison c = compare(got, want, tolerance_for("fp16"));
    EXPECT_TRUE(c.passed) << c.reason << " rel L2 " << c.rel_l2;
    std::cout << "[fused gemm] BERT block fp16 " << (fuse ? "fused" : "unfused") << ": " << stats.nodes
              << " nodes, " << stats.tactics_timed << " timed, " << casts << " Casts, rel L2 " << c.rel_l2
              << " against float32\n";
  }
}

}  // namespace
}  // namespace kiln::test_fuse
#endif
