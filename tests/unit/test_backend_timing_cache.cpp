// The builder's timing cache as the backend uses it: loaded, consulted, merged and saved; corrupt and foreign files
// ignored with a warning (never fatal); merges under the lock file from concurrent writers lose nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "backend_test_util.h"
#include "builder/timing_cache.h"

using namespace kiln;
using backend_test::mlp_sample;
using backend_test::slurp;
using backend_test::spit;
using builder::TimingCache;
using builder::TimingEntry;
using Json = nlohmann::ordered_json;

namespace backend_timing_cache_test {
Json engine_build_step(const std::string& cache_dir) {
  Json r = Json::parse(slurp(cache_dir + "/report.json"));
  for (const auto& s : r["build_results"])
    if (s["step"] == "engine build") return s;
  return Json();
}
}  // namespace backend_timing_cache_test
using namespace backend_timing_cache_test;

TEST(BackendTimingCache, BuildRecordsThenReusesItsChoices) {
  backend_test::ScratchDir dir;
  EngineBackendConfig cfg;
  cfg.timing_cache = dir / "timing.cache";
  backend_test::build_mlp(dir / "a", {mlp_sample(2, 1)}, cfg);
  Json s = engine_build_step(dir / "a");
  const size_t nodes = s["nodes"].get<size_t>();
  ASSERT_GT(nodes, 0u);
  EXPECT_EQ(s["timing_cache_misses"], nodes);
  EXPECT_EQ(s["timing_cache_hits"], 0);
  EXPECT_EQ(s["timing_cache"], "no file, saved");
  Json file = Json::parse(slurp(dir / "timing.cache"));
  EXPECT_EQ(file["format"], "kiln-timing-cache");
  EXPECT_EQ(file["version"], 1);
  // One entry per distinct signature; where several tactics competed the winner's median time is recorded.
  ASSERT_GT(file["entries"].size(), 0u);
  ASSERT_LE(file["entries"].size(), nodes);
  // CPU: the nodes with several tactics; CUDA (built on the GPU host): the MatMul, every cuBLASLt variant timed.
  const char* no_timing = std::getenv("KILN_CUDA_TACTIC_TIMING");
  if (!backend_test::on_cuda() || !no_timing || std::string(no_timing) != "0") {
    EXPECT_GT(s["tactics_timed"].get<size_t>(), 0u);
    EXPECT_GE(s["tactic_candidates_timed"].get<size_t>(), 2 * s["tactics_timed"].get<size_t>());
  }
  for (const char* phase : {"profiles", "passes", "tactics", "total"}) EXPECT_GE(s["phase_s"][phase].get<double>(), 0.0);
  // Per profile, the tactic of every GEMM-like node (one profile here: no node differs).
  ASSERT_TRUE(s["tactics_by_profile"].is_array());
  ASSERT_EQ(s["tactics_by_profile"].size(), 1u);
  EXPECT_GT(s["tactics_by_profile"][0].size(), 0u);
  for (const auto& el : s["tactics_by_profile"][0].items()) EXPECT_FALSE(el.value().get<std::string>().empty()) << el.key();
  EXPECT_EQ(s["nodes_with_per_profile_tactics"], 0);
  for (const auto& e : file["entries"]) {
    EXPECT_FALSE(e["tactic"].get<std::string>().empty());
    if (backend_test::on_cuda()) {  // KILN_TEST_DEVICE=cuda:N: CUDA tactics, keyed by the GPU
      EXPECT_EQ(e["target"].get<std::string>().rfind("cuda", 0), 0u) << e["target"];
    } else {
      EXPECT_EQ(e["target"].get<std::string>().rfind("cpu:", 0), 0u);
    }
    EXPECT_FALSE(e["signature"].get<std::string>().empty());
    // On CUDA only GEMM-like nodes are timed; the others record their heuristic choice untimed (-1).
    const bool timed_op = !backend_test::on_cuda() || e["signature"].get<std::string>().rfind("MatMul", 0) == 0;
    if (e["candidates"].get<int>() > 1 && timed_op) {
      EXPECT_GT(e["time_us"].get<double>(), 0.0) << e["signature"];
    }
  }
  // A second build (another cache_dir, so no engine reuse) finds every choice in the cache.
  backend_test::build_mlp(dir / "b", {mlp_sample(2, 1)}, cfg);
  s = engine_build_step(dir / "b");
  EXPECT_EQ(s["timing_cache_hits"], nodes);
  EXPECT_EQ(s["timing_cache_misses"], 0);
  EXPECT_EQ(s["tactics_timed"], 0);  // a warm cache times nothing
  EXPECT_EQ(s["timing_cache"], std::to_string(nodes) + " entries");
}

TEST(BackendTimingCache, CorruptOrForeignCacheIsIgnoredWithAWarning) {
  backend_test::ScratchDir dir;
  EngineBackendConfig cfg;
  cfg.timing_cache = dir / "timing.cache";
  int k = 0;
  for (const std::string& bad : {std::string("\x01garbage"), std::string(R"({"format": "trt-timing-cache", "version": 1})"),
                                std::string(R"({"format": "kiln-timing-cache", "version": 99, "entries": []})"),
                                std::string(R"({"format": "kiln-timing-cache", "version": 1, "entries": [{"x": 1}]})")}) {
    spit(cfg.timing_cache, bad);
    backend_test::LogCollector logs(LogLevel::Warning);
    EngineBackend b = backend_test::build_mlp(dir / ("c" + std::to_string(k++)), {mlp_sample(2, 1)}, cfg);
    EXPECT_EQ(b.state(), BackendState::Active);
    EXPECT_TRUE(logs.contains("timing cache ignored")) << bad << "\n" << logs.all();
    // The file is replaced by a valid cache.
    EXPECT_NO_THROW(TimingCache::parse(slurp(cfg.timing_cache), "test")) << bad;
  }
  // An unwritable cache path is a warning too, never a failed build.
  cfg.timing_cache = dir / "no_such_dir/timing.cache";
  backend_test::LogCollector logs(LogLevel::Warning);
  EngineBackend b = backend_test::build_mlp(dir / "d", {mlp_sample(2, 1)}, cfg);
  EXPECT_EQ(b.state(), BackendState::Active);
  EXPECT_TRUE(logs.contains("timing cache not saved")) << logs.all();
}

TEST(BackendTimingCache, MergeRules) {
  TimingCache a, b;
  a.record("cpu:x", "s1", {"ref", -1, 1});
  a.record("cpu:x", "s2", {"blas", 5.0, 2});
  a.record("cpu:x", "s3", {"ref", 3.0, 2});
  b.record("cpu:x", "s1", {"blas", 7.0, 2});  // timed beats untimed
  b.record("cpu:x", "s2", {"ref", 9.0, 2});   // slower loses
  b.record("cpu:x", "s3", {"ref", -1, 1});    // untimed loses
  b.record("cpu:y", "s1", {"ref", -1, 1});    // another target is another entry
  a.merge(b);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.lookup("cpu:x", "s1")->tactic, "blas");
  EXPECT_EQ(a.lookup("cpu:x", "s2")->tactic, "blas");
  EXPECT_EQ(a.lookup("cpu:x", "s3")->time_us, 3.0);
  EXPECT_NE(a.lookup("cpu:y", "s1"), nullptr);
  EXPECT_EQ(a.lookup("cpu:z", "s1"), nullptr);
  TimingCache back = TimingCache::parse(a.serialize(), "test");
  EXPECT_EQ(back.serialize(), a.serialize());
}

TEST(BackendTimingCache, ConcurrentWritersMergeUnderTheLock) {
  backend_test::ScratchDir dir;
  const std::string path = dir / "shared.cache";
  constexpr int kWriters = 8, kEach = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        TimingCache c;
        for (int i = 0; i < kEach; ++i)
          c.record("cpu:test", "w" + std::to_string(w) + "/" + std::to_string(i), {"ref", double(round), 1});
        c.record("cpu:test", "shared", {"t" + std::to_string(w), 100.0 - w, 2});
        if (!c.save_merged(path)) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  TimingCache all = TimingCache::parse(slurp(path), path);
  EXPECT_EQ(all.size(), size_t(kWriters * kEach + 1));
  EXPECT_EQ(all.lookup("cpu:test", "shared")->tactic, "t7");  // the fastest writer's entry
  EXPECT_EQ(all.lookup("cpu:test", "w3/5")->time_us, 0.0);     // the first (fastest) round's entry
  // No temporary files are left beside it.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "shared.cache" || n == "shared.cache.lock") << n;
  }
}

TEST(BackendTimingCache, SignatureNamesOpShapesAndAttributes) {
  ir::Graph g;
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 4});
  g.initializers["w"] = Tensor(DType::Float32, {4, 3});
  ir::Node n;
  n.op_type = "Gemm";
  n.opset = 13;
  n.inputs = {"x", "w", ""};
  n.attrs["transB"] = int64_t(0);
  n.attrs["alpha"] = 1.0f;
  const std::string s = builder::tactic_signature(g, n);
  EXPECT_EQ(s, "Gemm opset 13 in float32[2,4] const float32[4,3] - attrs alpha=1 transB=0 layout default");
  n.attrs["transB"] = int64_t(1);
  EXPECT_NE(builder::tactic_signature(g, n), s);
}
