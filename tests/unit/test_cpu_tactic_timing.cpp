// The builder's "tactics" step on the CPU: candidates timed on the node's inputs at the profile's opt shapes, the
// winner and its time recorded in the timing cache, a warm cache timing nothing, optimization level 0 taking the
// heuristic; and the engine built from timed tactics matching the oracle (reference kernels, unoptimized graph).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "temp_dir_util.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cpu/cpu_tactics.h"
#include "util/fs.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace cpu_tactic_timing_test {

using test_util::TempDir;

Model demo() { return Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"); }

BuildConfig demo_config(const std::string& cache, int64_t opt_batch = 2) {
  BuildConfig cfg;
  cfg.profiles.push_back(Profile().add_input_shape("input", {1, 3, 64, 64}, {opt_batch, 3, 64, 64}, {4, 3, 64, 64}));
  cfg.timing_cache_path = cache;
  return cfg;
}

// Nodes of the built graph with more than one candidate tactic.
size_t multi_candidate_nodes(const Engine& e) {
  size_t n = 0;
  for (const auto& node : e.impl()->graph.nodes) n += runtime::cpu::tactics_for(e.impl()->graph, node).size() > 1;
  return n;
}

Tensor random_input(Shape s, uint32_t seed) {
  Tensor t(DType::Float32, s);
  uint32_t x = seed * 747796405u + 2891336453u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    t.mutable_as<float>()[i] = static_cast<float>(x >> 8) / 8388608.0f - 1.0f;
  }
  return t;
}

}  // namespace cpu_tactic_timing_test
using namespace cpu_tactic_timing_test;

TEST(CpuTacticTiming, ColdBuildTimesCandidatesAndRecordsWinnersWithTheirTime) {
  TempDir dir;
  const std::string cache = (dir.p / "timing.cache").string();
  BuildStats stats;
  BuildConfig cfg = demo_config(cache);
  cfg.stats = &stats;
  Engine e = build_engine(demo(), cfg);
  const size_t multi = multi_candidate_nodes(e);
  ASSERT_GT(multi, 10u);  // Conv, Relu, Add, MaxPool, ... all have a fast tactic beside "ref"
  // Nodes sharing a signature (same op, shapes, attributes) are timed once per build.
  EXPECT_GT(stats.tactics_timed, 5u);
  EXPECT_LE(stats.tactics_timed, multi);
  EXPECT_EQ(stats.timing_cache_misses, stats.nodes);
  EXPECT_EQ(stats.timing_cache_hits, 0u);
  // Every Conv runs a fast tactic; the cache holds each node's winner, timed where there were several candidates.
  for (const auto& n : e.nodes())
    if (n.op == "Conv") {
      EXPECT_NE(n.tactic, "ref") << n.name;
    }
  nlohmann::json j = nlohmann::json::parse(util::read_file(cache));
  // One entry per distinct signature (nodes of the same op, shapes and attributes share one).
  ASSERT_GT(j["entries"].size(), 0u);
  ASSERT_LE(j["entries"].size(), stats.nodes);
  size_t timed = 0, convs = 0, convs3 = 0;
  for (const auto& entry : j["entries"]) {
    const std::string sig = entry["signature"];
    if (entry["candidates"].get<int>() > 1) {
      EXPECT_GT(entry["time_us"].get<double>(), 0.0) << sig;
      ++timed;
    } else {
      EXPECT_EQ(entry["time_us"].get<double>(), -1.0) << sig;
    }
    if (sig.rfind("Conv ", 0) == 0) {
      ++convs;
      EXPECT_GE(entry["candidates"].get<int>(), 2) << sig;  // im2col_blas, ref (+ direct at stride 1)
      convs3 += entry["candidates"].get<int>() >= 3;
      // The batch is dynamic: the signature names the opt shape the node was timed at.
      EXPECT_NE(sig.find("at opt input[2,3,64,64]"), std::string::npos) << sig;
    }
  }
  EXPECT_GT(timed, 5u);
  EXPECT_LE(timed, multi);
  EXPECT_GT(convs, 0u);
  EXPECT_GT(convs3, 0u);
}

TEST(CpuTacticTiming, WarmCacheTimesNothingAndKeepsTheChoices) {
  TempDir dir;
  const std::string cache = (dir.p / "timing.cache").string();
  BuildConfig cfg = demo_config(cache);
  Engine first = build_engine(demo(), cfg);
  const std::string before = util::read_file(cache);
  BuildStats stats;
  cfg.stats = &stats;
  Engine second = build_engine(demo(), cfg);
  EXPECT_EQ(stats.tactics_timed, 0u);
  EXPECT_EQ(stats.timing_cache_hits, stats.nodes);
  EXPECT_EQ(stats.timing_cache_misses, 0u);
  ASSERT_EQ(first.nodes().size(), second.nodes().size());
  for (size_t i = 0; i < first.nodes().size(); ++i)
    EXPECT_EQ(first.nodes()[i].tactic, second.nodes()[i].tactic) << first.nodes()[i].name;
  EXPECT_EQ(util::read_file(cache), before);  // nothing new to merge
  // Another opt shape is another signature for the dynamic-shape nodes: timed again, the static ones hit.
  BuildStats other;
  BuildConfig cfg4 = demo_config(cache, 4);
  cfg4.stats = &other;
  build_engine(demo(), cfg4);
  EXPECT_GT(other.tactics_timed, 0u);
  EXPECT_GT(other.timing_cache_hits, 0u);
}

TEST(CpuTacticTiming, LevelZeroTakesTheHeuristicWithoutTiming) {
  TempDir dir;
  BuildStats stats;
  BuildConfig cfg = demo_config((dir.p / "timing.cache").string());
  cfg.optimization_level = 0;
  cfg.stats = &stats;
  Engine e = build_engine(demo(), cfg);
  EXPECT_EQ(stats.tactics_timed, 0u);
  for (const auto& n : e.impl()->graph.nodes)
    EXPECT_EQ(n.tactic, runtime::cpu::tactics_for(e.impl()->graph, n).front().name) << n.label();
  // An untimed cache entry does not stop a later timed build from timing that node.
  BuildStats timed;
  BuildConfig cfg3 = demo_config((dir.p / "timing.cache").string());
  cfg3.stats = &timed;
  build_engine(demo(), cfg3);
  EXPECT_GT(timed.tactics_timed, 0u);
  EXPECT_LE(timed.tactics_timed, multi_candidate_nodes(e));
}

TEST(CpuTacticTiming, TimedEngineMatchesTheOracleAtEveryThreadCount) {
  Model m = demo();
  Engine e = build_engine(m, demo_config(""));
  for (int threads : {1, 2, 3}) {
    set_cpu_threads(threads);
    ExecutionContext ctx = e.create_context();
    for (int64_t batch : {1, 3}) {
      TensorMap in{{"input", random_input({batch, 3, 64, 64}, static_cast<uint32_t>(batch))}};
      TensorMap got = ctx.run(in);
      TensorMap want = runtime::cpu::run_graph_reference(m.impl()->m.graph, in);
      for (const auto& [name, t] : want) {
        Comparison c = compare(got.at(name), t, tolerance_for("fp32"));
        EXPECT_TRUE(c.passed) << name << " batch " << batch << " threads " << threads << ": " << c.reason;
      }
    }
  }
  set_cpu_threads(0);
}
