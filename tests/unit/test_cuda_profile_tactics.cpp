// Per-profile CUDA tactics (builder/cuda_tactics.h, EngineImpl::profile_tactics): a two-profile MatMul engine (batch 1
// and batch 512) times its candidates at both opt shapes, records one winner per profile in the plan and the timing
// cache, runs each profile correctly (against the CPU oracle, with and without CUDA graphs), a profile sharing an
// earlier profile's opt shapes is not timed again, and a warm rebuild times nothing; the CUDA executor launches the
// tactic of the profile a run selects (a bogus variant under profile 1 only warns at profile 1's shapes). GPU tests:
// skip without a device.
#if KILN_WITH_CUDA
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "temp_dir_util.h"
#include "builder/timing_cache.h"
#include "ir/op_registry.h"
#include "kiln/device.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "runtime/engine_impl.h"
#include "util/fs.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

#define KILN_PERPROF_SKIP_WITHOUT_TIMING()                                                       \
  do {                                                                                            \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";                               \
    const char* t = std::getenv("KILN_CUDA_TACTIC_TIMING");                                       \
    if (t && std::string(t) == "0") GTEST_SKIP() << "KILN_CUDA_TACTIC_TIMING=0";                  \
  } while (0)

using test_util::TempDir;

struct Warnings {
  std::vector<std::string> lines;
  Warnings() {
    set_log_sink([this](LogLevel l, const std::string& m) {
      if (l >= LogLevel::Warning) lines.push_back(m);
    });
  }
  ~Warnings() { set_log_sink(nullptr); }
  size_t count(const std::string& part) const {
    size_t n = 0;
    for (const auto& l : lines) n += l.find(part) != std::string::npos;
    return n;
  }
};

constexpr int64_t kK = 512, kN = 512;

Tensor values(Shape s, uint32_t seed) {
  Tensor t(DType::Float32, std::move(s));
  uint32_t x = seed * 747796405u + 2891336453u;
  for (int64_t i = 0; i < t.numel(); ++i) {
    x = x * 1664525u + 1013904223u;
    t.mutable_as<float>()[i] = (static_cast<float>(x >> 8) / 8388608.0f - 1.0f) * 0.25f;
  }
  return t;
}

// x [B, 512] -> MatMul W [512, 512] -> y.
Model matmul_model() {
  ir::register_all_ops();
  auto m = std::make_shared<detail::ModelImpl>();
  ir::Graph& g = m->m.graph;
  g.name = "mm";
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.types["x"] = ir::ValueType{DType::Float32, true, {Dim{-1, "B"}, Dim{kK, ""}}};
  g.initializers["W"] = values({kK, kN}, 7);
  ir::Node n;
  n.name = "mm";
  n.op_type = "MatMul";
  n.opset = 13;
  n.inputs = {"x", "W"};
  n.outputs = {"y"};
  g.nodes.push_back(n);
  ir::infer_types(g);
  m->m.inputs = {TensorInfo{"x", DType::Float32, {Dim{-1, "B"}, Dim{kK, ""}}}};
  m->m.outputs = {TensorInfo{"y", DType::Float32, {Dim{-1, "B"}, Dim{kN, ""}}}};
  m->m.ir_version = 8;
  m->m.opset = 13;
  m->m.opsets = {{"", 13}};
  m->m.content_hash = "sha256:perprof-matmul";
  return Model(m);
}

Profile batch(int64_t lo, int64_t opt, int64_t hi) {
  return Profile().add_input_shape("x", {lo, kK}, {opt, kK}, {hi, kK});
}

BuildConfig cuda_config(const std::string& cache, std::vector<Profile> profiles) {
  BuildConfig cfg;
  cfg.target = Target::Cuda;
  cfg.precision = Precision::FP16;
  cfg.optimization_level = 3;
  cfg.profiles = std::move(profiles);
  cfg.timing_cache_path = cache;
  return cfg;
}

// The MatMul's node index and its tactic under each profile.
std::vector<std::string> matmul_tactics(const Engine& e, size_t profiles) {
  for (const NodeInfo& n : e.nodes())
    if (n.op == "MatMul") {
      if (n.profile_tactics.empty()) return std::vector<std::string>(profiles, n.tactic);
      return n.profile_tactics;
    }
  ADD_FAILURE() << "no MatMul in the engine";
  return {};
}

// Runs `e` at `rows` rows and compares with the float32 CPU engine of the same model.
void check_against_oracle(ExecutionContext& ctx, int64_t rows, int want_profile) {
  const Tensor x = values({rows, kK}, static_cast<uint32_t>(rows));
  BuildConfig cpu;
  cpu.profiles = {batch(1, 1, 1024)};
  static const Engine oracle = build_engine(matmul_model(), cpu);
  const TensorMap want = oracle.create_context().run({{"x", x}});
  for (int rep = 0; rep < 2; ++rep) {  // the second run replays the CUDA graph where the context captures
    const TensorMap got = ctx.run({{"x", x}});
    EXPECT_EQ(ctx.last_profile(), want_profile) << rows << " rows";
    const Comparison c = compare(got.at("y"), want.at("y"), tolerance_for("fp16"));
    EXPECT_TRUE(c.passed) << rows << " rows (profile " << want_profile << "): " << c.reason;
  }
}

TEST(CudaProfileTactics, TwoProfilesAreTimedAtTheirOwnOptShapesAndEachRunsCorrectly) {
  KILN_PERPROF_SKIP_WITHOUT_TIMING();
  TempDir dir;
  const std::string cache = (dir.p / "timing.cache").string();
  BuildConfig cfg = cuda_config(cache, {batch(1, 1, 1), batch(2, 512, 512)});
  BuildStats cold;
  cfg.stats = &cold;
  const Engine e = build_engine(matmul_model(), cfg);
  EXPECT_EQ(cold.tactics_timed, 2u) << "the MatMul, once per profile";
  EXPECT_GE(cold.tactic_candidates_timed, 4u);
  EXPECT_EQ(cold.timing_cache_hits, 0u);
  const std::vector<std::string> chosen = matmul_tactics(e, 2);
  ASSERT_EQ(chosen.size(), 2u);

  // The cache holds one timed MatMul entry per profile (keyed by its opt shapes); each profile runs its entry's
  // tactic.
  const nlohmann::json j = nlohmann::json::parse(util::read_file(cache));
  const std::string target = builder::timing_target(Target::Cuda, 0);
  std::vector<std::string> by_profile(2);
  for (const auto& en : j["entries"]) {
    const std::string sig = en["signature"];
    if (en["target"] != target || sig.rfind("MatMul ", 0) != 0) continue;
    EXPECT_GE(en["time_us"].get<double>(), 0.0) << sig;
    EXPECT_GE(en["candidates"].get<int>(), 2) << sig;
    if (sig.find(" at float16[1,512] ") != std::string::npos) by_profile[0] = en["tactic"];
    if (sig.find(" at float16[512,512] ") != std::string::npos) by_profile[1] = en["tactic"];
  }
  EXPECT_EQ(by_profile, chosen) << j.dump(1);
  std::cout << "[ perprof  ] MatMul tactics: profile 0 (batch 1) " << chosen[0] << ", profile 1 (batch 512) "
            << chosen[1] << "\n";

  // Both profiles run correctly, from the built engine and from its plan, with and without CUDA graphs.
  for (const Engine& eng : {e, Engine::deserialize(e.serialize())}) {
    EXPECT_EQ(matmul_tactics(eng, 2), chosen);
    for (bool graphs : {false, true}) {
      ContextOptions o;
      o.use_cuda_graphs = graphs;
      ExecutionContext ctx = eng.create_context(o);
      check_against_oracle(ctx, 1, 0);
      check_against_oracle(ctx, 300, 1);
      check_against_oracle(ctx, 512, 1);
    }
  }

  // A warm rebuild times nothing and finds every choice.
  BuildStats warm;
  cfg.stats = &warm;
  const Engine again = build_engine(matmul_model(), cfg);
  EXPECT_EQ(warm.tactics_timed, 0u);
  EXPECT_EQ(warm.tactic_candidates_timed, 0u);
  EXPECT_EQ(warm.timing_cache_misses, 0u);
  EXPECT_EQ(warm.timing_cache_hits, cold.timing_cache_misses);
  EXPECT_EQ(matmul_tactics(again, 2), chosen);
}

TEST(CudaProfileTactics, AProfileWithAnEarlierProfilesOptShapesIsNotTimedAgain) {
  KILN_PERPROF_SKIP_WITHOUT_TIMING();
  TempDir dir;
  // Profiles 1 and 2 share opt [512, 512] (a run at 512 rows selects profile 1, the first that contains it).
  BuildConfig cfg = cuda_config((dir.p / "timing.cache").string(),
                                {batch(1, 1, 1), batch(2, 512, 512), batch(512, 512, 1024)});
  BuildStats stats;
  cfg.stats = &stats;
  const Engine e = build_engine(matmul_model(), cfg);
  EXPECT_EQ(stats.tactics_timed, 2u) << "profiles 1 and 2 share one measurement";
  const std::vector<std::string> chosen = matmul_tactics(e, 3);
  ASSERT_EQ(chosen.size(), 3u);
  EXPECT_EQ(chosen[2], chosen[1]);
  ExecutionContext ctx = e.create_context();
  check_against_oracle(ctx, 1, 0);
  check_against_oracle(ctx, 1000, 2);
}

// The executor launches the tactic of the profile a run selects: profile 1 names a cuBLASLt variant that does not
// exist, which warns once (and falls back to the heuristic) only when a run selects profile 1.
TEST(CudaProfileTactics, TheExecutorLaunchesTheActiveProfilesTactic) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  BuildConfig cfg = cuda_config("", {batch(1, 1, 4), batch(5, 64, 64)});
  cfg.optimization_level = 0;  // heuristic tactics: "cublaslt" for the MatMul
  const Engine built = build_engine(matmul_model(), cfg);
  auto impl = std::make_shared<detail::EngineImpl>(*built.impl());
  std::vector<std::string> p0, p1;
  for (const auto& n : impl->graph.nodes) {
    p0.push_back(n.tactic);
    // A cuBLASLt variant that decodes to no algorithm (unlike any other test's, so its one warning is ours).
    p1.push_back(n.op_type == "MatMul" ? "cublaslt#zq" + std::string(126, '7') : n.tactic);
  }
  ASSERT_EQ(built.impl()->graph.nodes.size(), p0.size());
  impl->profile_tactics = {p0, p1};
  const Engine e = Engine::deserialize(Engine(impl).serialize());
  Warnings w;
  ExecutionContext ctx = e.create_context();
  check_against_oracle(ctx, 3, 0);
  EXPECT_EQ(w.count("does not run"), 0u) << (w.lines.empty() ? "" : w.lines.front());
  check_against_oracle(ctx, 40, 1);
  EXPECT_EQ(w.count("does not run"), 1u);
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
