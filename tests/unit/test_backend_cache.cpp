// The backend's cache_dir: the pinned layout written atomically, engine reuse by key (a hit runs no pass, proven by
// report.json; every key field changed once misses), corrupted cached plans rebuilt with a warning, foreign files
// kept, and a failed rebuild leaving the previous artifacts untouched.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backend/testing_hooks.h"
#include "backend_test_util.h"
#include "util/sha256.h"

using namespace kiln;
using backend_test::expect_error;
using backend_test::mlp_sample;
using backend_test::slurp;
using backend_test::spit;
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace backend_cache_test {
const std::vector<std::string> kLayout = {"build.log", "config.json", "engine.kiln", "model.onnx", "profiles.json", "report.json"};

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}
Json report_of(const std::string& dir) { return Json::parse(slurp(dir + "/report.json")); }
bool has_step(const Json& r, const std::string& step) {
  for (const auto& s : r["build_results"])
    if (s["step"] == step) return true;
  return false;
}
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& n : listing(dir)) m[n] = slurp(dir + "/" + n);
  return m;
}
}  // namespace backend_cache_test
using namespace backend_cache_test;

TEST(BackendCache, WritesThePinnedLayout) {
  backend_test::ScratchDir dir;
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(4, 2)};
  EngineBackend b = backend_test::build_mlp(dir / "cache", samples);
  const std::string c = dir / "cache";
  EXPECT_EQ(listing(c), kLayout);
  EXPECT_EQ(listing(dir.path().string()), std::vector<std::string>{"cache"}) << "staging folders left behind";
  // config.json is the config's to_json; model.onnx the source model; engine.kiln a loadable plan.
  EngineBackendConfig cfg;
  cfg.to_json(dir / "expected_config.json");
  EXPECT_EQ(slurp(c + "/config.json"), slurp(dir / "expected_config.json"));
  EXPECT_EQ(slurp(c + "/model.onnx"), slurp(backend_test::model_path("mlp.onnx")));
  Engine e = Engine::load(c + "/engine.kiln");
  EXPECT_EQ(e.profiles().size(), 1u);
  EXPECT_EQ(b.engine_path(), c + "/engine.kiln");
  EXPECT_EQ(b.profiles_path(), c + "/profiles.json");

  Json r = report_of(c);
  EXPECT_EQ(r["backend"], "EngineBackend()");
  EXPECT_EQ(r["key"], b.key());
  EXPECT_EQ(r["success"], true);
  EXPECT_TRUE(r["exception"].is_null());
  EXPECT_EQ(r["engine_reused"], false);
  EXPECT_EQ(r["log_file"], "build.log");
  EXPECT_FALSE(r["passes_run"].empty());
  for (const char* s : {"profiles", "engine cache lookup", "write config", "engine build", "correctness gate", "save engine"})
    EXPECT_TRUE(has_step(r, s)) << s;
  for (const auto& s : r["build_results"]) {
    EXPECT_EQ(s["success"], true);
    EXPECT_GE(s["duration_s"].get<double>(), 0.0);
    EXPECT_GT(s["peak_rss_bytes"].get<int64_t>(), 0);
  }
  EXPECT_EQ(r["artifacts"]["engine.kiln"]["sha256"], util::sha256_hex(slurp(c + "/engine.kiln")));
  EXPECT_GT(r["memory"]["peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(r["engine_key"]["model_hash"], Model::load(backend_test::model_path("mlp.onnx")).content_hash());
  EXPECT_EQ(r["engine_key"]["build_id"], build_id());
  EXPECT_EQ(r["engine_key"]["target"], backend_test::target_identity());
  EXPECT_EQ(b.build_report(), slurp(c + "/report.json"));
  const std::string log = slurp(c + "/build.log");
  EXPECT_NE(log.find("step 'engine build' done"), std::string::npos) << log;
  EXPECT_NE(log.find("peak RSS"), std::string::npos) << log;
  EXPECT_NE(log.find("kiln I build: passes"), std::string::npos) << "the builder's own log lines are captured:\n" << log;
}

TEST(BackendCache, ReuseHitRunsNoPassAndKeepsTheEngine) {
  backend_test::ScratchDir dir;
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(4, 2)};
  EngineBackend first = backend_test::build_mlp(dir / "cache", samples);
  const std::string engine_before = slurp(dir / "cache/engine.kiln");
  const auto mtime = fs::last_write_time(dir / "cache/engine.kiln");
  TensorMap want = first.infer(samples[1]);

  backend_test::LogCollector logs;
  EngineBackend second = backend_test::build_mlp(dir / "cache", samples);
  Json r = report_of(dir / "cache");
  EXPECT_EQ(r["engine_reused"], true);
  EXPECT_EQ(r["passes_run"], Json::array());
  EXPECT_EQ(r["tactics_timed"], 0);
  EXPECT_FALSE(has_step(r, "engine build"));
  EXPECT_FALSE(has_step(r, "correctness gate"));
  EXPECT_EQ(slurp(dir / "cache/engine.kiln"), engine_before);
  EXPECT_EQ(fs::last_write_time(dir / "cache/engine.kiln"), mtime);
  EXPECT_EQ(listing(dir / "cache"), kLayout);
  EXPECT_NE(slurp(dir / "cache/build.log").find("reused the cached engine"), std::string::npos);
  TensorMap got = second.infer(samples[1]);
  for (const auto& [n, t] : want) EXPECT_TRUE(got.at(n).bit_equal(t)) << n;
}

TEST(BackendCache, EachKeyFieldChangedOnceIsAMiss) {
  backend_test::ScratchDir dir;
  const std::string c = dir / "cache";
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(4, 2)};
  backend_test::build_mlp(c, samples);
  auto expect_miss = [&](const std::string& field, const std::function<void()>& rebuild) {
    backend_test::LogCollector logs;
    rebuild();
    Json r = report_of(c);
    EXPECT_EQ(r["engine_reused"], false) << field;
    EXPECT_TRUE(has_step(r, "engine build")) << field;
    EXPECT_TRUE(logs.contains(field + " changed")) << field << ":\n" << logs.all();
  };
  // Model content: the same model with one more (ignored) protobuf field has another content hash.
  expect_miss("model_hash", [&] {
    Model m = Model::from_bytes(slurp(backend_test::model_path("mlp.onnx")) + std::string("\x32\x01x", 3));
    EngineBackend b;
    b.build(m, GraphSpec::from_model(m, samples), samples, backend_test::device(), c);
  });
  // Config key.
  expect_miss("config_key", [&] {
    EngineBackendConfig cfg;
    cfg.use_dynamo = false;
    backend_test::build_mlp(c, samples, cfg);
  });
  // Profiles: other sample shapes give another profile.
  expect_miss("profiles_hash", [&] { backend_test::build_mlp(c, {mlp_sample(1, 1), mlp_sample(8, 2)}); });
  // kiln build id and target cannot change inside one test binary: a report written by another build / for another
  // target is what the next build sees.
  for (const char* field : {"build_id", "target"}) {
    Json r = report_of(c);
    r["engine_key"][field] = std::string("other-") + field;
    spit(c + "/report.json", r.dump(2));
    expect_miss(field, [&] { backend_test::build_mlp(c, {mlp_sample(1, 1), mlp_sample(8, 2)}); });
  }
  // And unchanged, it hits.
  backend_test::build_mlp(c, {mlp_sample(1, 1), mlp_sample(8, 2)});
  EXPECT_EQ(report_of(c)["engine_reused"], true);
}

TEST(BackendCache, CorruptedCachedPlanIsRebuiltWithAWarning) {
  backend_test::ScratchDir dir;
  const std::string c = dir / "cache";
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  backend_test::build_mlp(c, samples);
  std::string plan = slurp(c + "/engine.kiln");
  plan[plan.size() / 2] ^= 0x5a;
  spit(c + "/engine.kiln", plan);
  backend_test::LogCollector logs(LogLevel::Warning);
  EngineBackend b = backend_test::build_mlp(c, samples);
  EXPECT_TRUE(logs.contains("is unusable")) << logs.all();
  EXPECT_TRUE(logs.contains("rebuilding")) << logs.all();
  EXPECT_EQ(report_of(c)["engine_reused"], false);
  EXPECT_NO_THROW(Engine::load(c + "/engine.kiln"));
  EXPECT_EQ(b.infer(samples[0]).size(), 2u);

  // A truncated plan, too.
  spit(c + "/engine.kiln", plan.substr(0, 100));
  backend_test::build_mlp(c, samples);
  EXPECT_EQ(report_of(c)["engine_reused"], false);
  // And an unreadable report.json.
  spit(c + "/report.json", "{oops");
  backend_test::build_mlp(c, samples);
  EXPECT_EQ(report_of(c)["engine_reused"], false);
}

TEST(BackendCache, ForeignFilesSurviveARebuild) {
  backend_test::ScratchDir dir;
  const std::string c = dir / "cache";
  backend_test::build_mlp(c, {mlp_sample(2, 1)});
  spit(c + "/notes.txt", "mine");
  EngineBackendConfig cfg;
  cfg.use_dynamo = false;  // a miss: the folder is replaced
  backend_test::build_mlp(c, {mlp_sample(2, 1)}, cfg);
  EXPECT_EQ(report_of(c)["engine_reused"], false);
  EXPECT_EQ(slurp(c + "/notes.txt"), "mine");
}

TEST(BackendCache, FailedRebuildLeavesThePreviousArtifactsUntouched) {
  backend_test::ScratchDir dir;
  const std::string c = dir / "cache";
  backend_test::build_mlp(c, {mlp_sample(2, 1)});
  const auto before = snapshot(c);
  backend::testing::set_fault(backend::testing::Fault::WrongValue);
  EngineBackendConfig cfg;
  cfg.use_dynamo = false;  // a miss, so the faulty engine is built and fails the gate
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  EngineBackend b(cfg);
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  expect_error([&] { b.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), c); }, ErrorCode::Correctness);
  backend::testing::set_fault(backend::testing::Fault::None);
  EXPECT_EQ(b.state(), BackendState::Init);
  EXPECT_EQ(snapshot(c), before);
  EXPECT_EQ(listing(dir.path().string()), std::vector<std::string>{"cache"}) << "staging folders left behind";
}
