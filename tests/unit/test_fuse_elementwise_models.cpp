// Elementwise fusion in the builder (docs/passes.md): on for CUDA engines at optimization_level >= 1, off with
// KILN_FUSE_ELEMENTWISE=0 or optimization_level 0, never on CPU engines; fused plans survive save / load.
// Real-architecture models (tests/models/real_arch): node counts with and without fusion, and the fused CUDA-engine
// graphs, run with the reference kernels (no GPU needed), still match ONNX Runtime within the tolerance table.
// (On a GPU host the RealArch* tests run the same engines on the device.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "fuse_test_util.h"
#include "real_arch_test_util.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "runtime/engine_impl.h"

namespace kiln::test_fuse {
namespace {

using namespace real_arch_test;



// fuse = false builds with KILN_FUSE_ELEMENTWISE=0, KILN_FUSE_GEMM_EPILOGUE=0 and KILN_FUSE_ADD_LAYERNORM=0.
Engine build(const Model& m, Target t, Precision p, bool fuse, BuildStats* stats = nullptr, int level = 3) {
  BuildConfig cfg;
  cfg.target = t;
  cfg.precision = p;
  cfg.optimization_level = level;
  cfg.profiles.push_back(batch_profile(m));
  cfg.stats = stats;
  if (!fuse) {  // no CUDA fusion at all (the GEMM-epilogue and Add + LayerNorm passes too)
    for (const char* v : {"KILN_FUSE_ELEMENTWISE", "KILN_FUSE_GEMM_EPILOGUE", "KILN_FUSE_ADD_LAYERNORM"})
      EXPECT_EQ(setenv(v, "0", 1), 0);
  }
  // These tests are about the graph, not the kernels' speed: no tactic timing on a GPU host (it would time every
  // GEMM / conv candidate of 14 models x 3 precisions; CudaTacticTiming.* tests the timing).
  EXPECT_EQ(setenv("KILN_CUDA_TACTIC_TIMING", "0", 1), 0);
  Engine e = build_engine(m, cfg);
  unsetenv("KILN_CUDA_TACTIC_TIMING");
  if (!fuse)
    for (const char* v : {"KILN_FUSE_ELEMENTWISE", "KILN_FUSE_GEMM_EPILOGUE", "KILN_FUSE_ADD_LAYERNORM"}) unsetenv(v);
  return e;
}

bool changed(const BuildStats& s, const std::string& pass) {
  return std::find(s.passes_changed.begin(), s.passes_changed.end(), pass) != s.passes_changed.end();
}

size_t fused_nodes(const Engine& e) { return count_op(e.impl()->graph, ops::fused::kOpType); }

// CUDA engines are built (no GPU needed) only by a kiln built with CUDA.
#if KILN_WITH_CUDA
#define KILN_FUSE_REQUIRE_CUDA_BUILD()
#else
#define KILN_FUSE_REQUIRE_CUDA_BUILD() GTEST_SKIP() << "built without CUDA: no CUDA engines"
#endif

TEST(FuseElementwiseBuild, CudaEnginesOnlyAndTheSwitchTurnsItOff) {
  KILN_FUSE_REQUIRE_CUDA_BUILD();
  const Model m = Model::load(kModels + "/bert_torchscript.onnx");
  BuildStats on, off, cpu, level0;
  const Engine a = build(m, Target::Cuda, Precision::FP32, true, &on);
  const Engine b = build(m, Target::Cuda, Precision::FP32, false, &off);
  const Engine c = build(m, Target::Cpu, Precision::FP32, true, &cpu);
  const Engine d = build(m, Target::Cuda, Precision::FP32, true, &level0, 0);
  EXPECT_TRUE(changed(on, "fuse_elementwise"));
  EXPECT_GT(fused_nodes(a), 0u);
  EXPECT_LT(on.nodes, off.nodes);
  EXPECT_EQ(fused_nodes(b), 0u);
  EXPECT_EQ(fused_nodes(c), 0u);
  EXPECT_EQ(cpu.nodes, off.nodes) << "the CPU pipeline does not fuse";
  for (const auto& n : a.impl()->graph.nodes)
    if (n.op_type == ops::fused::kOpType) {
      EXPECT_EQ(n.tactic, "cuda") << n.name << ": the fused kernel takes it";
    }
  EXPECT_FALSE(changed(off, "fuse_elementwise"));
  EXPECT_EQ(fused_nodes(d), 0u) << "optimization_level 0 does not fuse";
}

TEST(FuseElementwiseBuild, FusedPlanRoundTrips) {
  KILN_FUSE_REQUIRE_CUDA_BUILD();
  const Model m = Model::load(kModels + "/gpt2_dynamo.onnx");
  const Engine e = build(m, Target::Cuda, Precision::FP16, true);
  ASSERT_GT(fused_nodes(e), 0u);
  bool listed = false;  // inspect's node list names the fused op
  for (const NodeInfo& n : e.nodes()) listed |= n.op == ops::fused::kOpType;
  EXPECT_TRUE(listed);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kiln_fuse_" + std::to_string(::getpid()) + ".plan")).string();
  e.save(path);
  const Engine l = Engine::load(path);
  std::filesystem::remove(path);
  const ir::Graph& g0 = e.impl()->graph;
  const ir::Graph& g1 = l.impl()->graph;
  ASSERT_EQ(g0.nodes.size(), g1.nodes.size());
  for (size_t i = 0; i < g0.nodes.size(); ++i) {
    if (g0.nodes[i].op_type != ops::fused::kOpType) continue;
    EXPECT_EQ(g1.nodes[i].domain, "kiln");
    EXPECT_EQ(ops::fused::describe(ops::fused::decode(g1.nodes[i])),
              ops::fused::describe(ops::fused::decode(g0.nodes[i])));
    EXPECT_EQ(g1.nodes[i].inputs, g0.nodes[i].inputs);
  }
}



class FusedRealArch : public testing::TestWithParam<Arch> {};

// The fused CUDA-engine graph (fp32, fp16, bf16), run by the reference kernels, against ONNX Runtime; node counts.
TEST_P(FusedRealArch, MatchesOnnxRuntimeAndCountsNodes) {
  KILN_FUSE_REQUIRE_CUDA_BUILD();
  const std::string tag = GetParam().arch + "_" + GetParam().exporter;
  const Model m = Model::load(kModels + "/" + tag + ".onnx");
  for (Precision p : {Precision::FP32, Precision::FP16, Precision::BF16}) {
    const char* prec = p == Precision::FP32 ? "fp32" : p == Precision::FP16 ? "fp16" : "bf16";
    SCOPED_TRACE(prec);
    BuildStats on, off;
    const Engine e = build(m, Target::Cuda, p, true, &on);
    build(m, Target::Cuda, p, false, &off);
    std::cout << "[fuse] " << tag << " " << prec << ": " << off.nodes << " -> " << on.nodes << " nodes, "
              << fused_nodes(e) << " fused kernels\n";
    EXPECT_LE(on.nodes, off.nodes);
    if ((GetParam().arch == "bert" || GetParam().arch == "gpt2") && p == Precision::FP16)
      for (const auto& n : e.impl()->graph.nodes)
        if (n.op_type == ops::fused::kOpType)
          std::cout << "[fuse]   " << n.name << " = " << ops::fused::describe(ops::fused::decode(n)) << "\n";
    expect_reference_run_matches(e.impl()->graph, m, tag, prec);
  }
}

INSTANTIATE_TEST_SUITE_P(FuseElementwise, FusedRealArch,
                         testing::Values(Arch{"bert", "dynamo"}, Arch{"bert", "torchscript"}, Arch{"gpt2", "dynamo"},
                                         Arch{"gpt2", "torchscript"}, Arch{"vit", "dynamo"},
                                         Arch{"vit", "torchscript"}, Arch{"t5_encoder", "dynamo"},
                                         Arch{"t5_encoder", "torchscript"}, Arch{"swin", "dynamo"},
                                         Arch{"swin", "torchscript"}, Arch{"efficientnet_b0", "dynamo"},
                                         Arch{"efficientnet_b0", "torchscript"}, Arch{"mobilenet_v2", "dynamo"},
                                         Arch{"resnet18", "torchscript"}),
                         arch_name);

}  // namespace
}  // namespace kiln::test_fuse
