// Per-profile tactics (EngineImpl::profile_tactics, plan format 3): the plan round trip, format-2 plans still loading,
// inconsistent tables refused; the builder timing each profile at its own opt shapes (a CPU test op whose fastest
// tactic depends on the batch), a profile with the same opt shapes as an earlier one not timed again, a warm cache
// timing nothing; the CPU executor running the tactics of the profile a run selects; `kiln inspect` and
// `kiln bench --layers` showing them. CPU only: runs everywhere (the CUDA side is test_cuda_profile_tactics.cpp).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "temp_dir_util.h"
#include "builder/timing_cache.h"
#include "ir/op_registry.h"
#include "kiln/kiln.h"
#include "onnx/model_impl.h"
#include "plan/plan.h"
#include "plan/plan_codec.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cpu/cpu_tactics.h"
#include "unit/plan_test_util.h"
#include "util/fs.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;

void expect_error(const std::function<void()>& fn, ErrorCode code, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected " << error_code_name(code) << " with '" << part << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what() << "\nmissing: " << part;
  }
}

// ---- plan format --------------------------------------------------------------------------------------------------

detail::EngineImpl engine_with_table() {
  detail::EngineImpl e = plan_test::make_engine();  // 4 nodes, 2 profiles
  std::vector<std::string> p0, p1;
  for (const auto& n : e.graph.nodes) p0.push_back(n.tactic);
  p1 = p0;
  p1[0] = "ref";  // the MatMul runs another tactic under profile 1
  e.profile_tactics = {p0, p1};
  return e;
}

TEST(PlanProfileTactics, RoundTripIsByteIdentical) {
  const detail::EngineImpl e = engine_with_table();
  const std::string a = plan::serialize(e);
  EXPECT_EQ(plan::read_header(a, "x").format_version, 3u);
  auto back = plan::deserialize(a, "<memory>");
  plan_test::expect_engine_eq(e, *back);
  ASSERT_EQ(back->profile_tactics.size(), 2u);
  EXPECT_EQ(back->profile_tactics[1][0], "ref");
  EXPECT_EQ(a, plan::serialize(*back));
  // The single-tactic form (no table) round-trips as such.
  const detail::EngineImpl plain = plan_test::make_engine();
  auto back2 = plan::deserialize(plan::serialize(plain), "<memory>");
  EXPECT_TRUE(back2->profile_tactics.empty());
}

TEST(PlanProfileTactics, Format2PlansStillLoad) {
  const detail::EngineImpl e = plan_test::make_engine();
  const std::string v2 = plan::serialize(e, 2);
  EXPECT_EQ(plan::codec::load_u32(v2.data() + 8), 2u);
  EXPECT_LT(v2.size(), plan::serialize(e).size() + 1);
  auto back = plan::deserialize(v2, "old.kiln");
  plan_test::expect_engine_eq(e, *back);
  EXPECT_TRUE(back->profile_tactics.empty());
  // And through the public API: the engine runs as it did (every profile node.tactic).
  const Engine loaded = Engine::deserialize(v2, "old.kiln");
  EXPECT_EQ(loaded.nodes().size(), e.graph.nodes.size());
  for (const NodeInfo& n : loaded.nodes()) EXPECT_TRUE(n.profile_tactics.empty()) << n.name;
  // Format 2 cannot hold a table; formats outside 2..3 are not written.
  expect_error([&] { plan::serialize(engine_with_table(), 2); }, ErrorCode::InvalidArgument,
               "cannot hold per-profile tactics");
  expect_error([&] { plan::serialize(e, 1); }, ErrorCode::InvalidArgument, "plan format version 1");
}

TEST(PlanProfileTactics, InconsistentTablesAreRefused) {
  {
    detail::EngineImpl e = engine_with_table();
    e.profile_tactics.pop_back();  // one list for two profiles
    expect_error([&] { plan::serialize(e); }, ErrorCode::InvalidArgument, "1 per-profile tactic lists for 2 profiles");
  }
  {
    detail::EngineImpl e = engine_with_table();
    e.profile_tactics[1].pop_back();
    expect_error([&] { plan::serialize(e); }, ErrorCode::InvalidArgument, "has 3 names for 4 nodes");
  }
  {
    // Profile 0's list must be the nodes' own tactics: a plan saying otherwise is corrupt.
    detail::EngineImpl e = engine_with_table();
    e.profile_tactics[0][1] = "other";
    const std::string s = plan::serialize(e);
    expect_error([&] { plan::deserialize(s, "bad.kiln"); }, ErrorCode::Integrity,
                 "profile 0's tactic of node 1 ('other') differs from the node's ('cpu.eltwise')");
  }
}

// Every byte of the table (the end of the metadata) changed, checksum repaired: Integrity or a plan that loads and
// re-serializes, never a crash.
TEST(PlanProfileTactics, CorruptTableWithValidChecksumNeverCrashes) {
  const std::string s = plan::serialize(engine_with_table());
  const size_t header_end = plan::kPreambleSize + plan::codec::load_u32(s.data() + 12);
  const size_t meta_len = plan::codec::load_u64(s.data() + header_end);
  const size_t meta_end = header_end + 24 + meta_len;
  size_t errors = 0, loaded = 0;
  for (size_t pos = meta_end - 120; pos < meta_end; ++pos) {
    for (int v : {0x00, 0xff, s[pos] + 1, 0x80}) {
      std::string t = s;
      t[pos] = static_cast<char>(v);
      if (t == s) continue;
      plan_test::fix_checksum(t);
      try {
        auto e2 = plan::deserialize(t, "fuzz.kiln");
        ++loaded;
        (void)plan::serialize(*e2);
      } catch (const Error& err) {
        ++errors;
        EXPECT_EQ(err.code(), ErrorCode::Integrity) << "byte " << pos << ": " << err.what();
      } catch (const std::exception& ex) {
        ADD_FAILURE() << "byte " << pos << " = " << v << ": non-kiln exception " << ex.what();
      }
    }
  }
  EXPECT_GT(errors, 50u);
  EXPECT_GT(loaded, 0u);  // a changed tactic name of profile 1
}

TEST(ProfileTactics, TacticOfAndProfileForShapes) {
  const detail::EngineImpl e = engine_with_table();  // profiles: x [1..8, 3], x [9..64, 3]
  EXPECT_EQ(e.tactic_of(0, 0), "cpu.gemm.blas");
  EXPECT_EQ(e.tactic_of(0, 1), "ref");
  EXPECT_EQ(e.tactic_of(0, -1), "cpu.gemm.blas");
  EXPECT_EQ(e.tactic_of(1, 1), "cpu.eltwise");
  // Shapes in graph-input order (x, cond, bias_in); the first profile containing them, as a context selects.
  EXPECT_EQ(detail::profile_for_shapes(e, {{4, 3}, {}, {4}}), 0);
  EXPECT_EQ(detail::profile_for_shapes(e, {{8, 3}, {}, {4}}), 0);
  EXPECT_EQ(detail::profile_for_shapes(e, {{9, 3}, {}, {4}}), 1);
  EXPECT_EQ(detail::profile_for_shapes(e, {{65, 3}, {}, {4}}), -1);
  const detail::EngineImpl none = plan_test::make_empty_engine();
  EXPECT_EQ(detail::profile_for_shapes(none, {}), -1);
}

TEST(ProfileTactics, SetProfileTacticsKeepsTheSingleFormWhenAllAgree) {
  ir::Graph g;
  g.nodes.resize(2);
  std::vector<std::vector<std::string>> t = {{"a", "b"}, {"a", "b"}};
  builder::set_profile_tactics(g, t);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(g.nodes[0].tactic, "a");
  EXPECT_EQ(g.nodes[1].tactic, "b");
  t = {{"a", "b"}, {"a", "c"}};
  builder::set_profile_tactics(g, t);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(g.nodes[1].tactic, "b");  // profile 0's
  t = {{"a"}, {"a", "c"}};
  expect_error([&] { builder::set_profile_tactics(g, t); }, ErrorCode::InvalidState, "1 tactics for 2 nodes");
}

// ---- builder and CPU executor -------------------------------------------------------------------------------------

// A test op, kiln.perprof.Twin (y = x), with two CPU tactics: "small" is fast for at most 4 rows and sleeps 2 ms
// above, "large" the other way round; the reference ("ref") always sleeps 1 ms. Timing at a profile's opt shapes
// thus picks "small" for a small-batch profile and "large" for a large one, by a margin no load on the build machine
// can reverse. Each tactic counts its runs.
std::atomic<int> g_small_runs{0}, g_large_runs{0};

void twin_copy(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) { out[0] = in[0]->clone(); }
bool small_batch(const std::vector<const Tensor*>& in) { return in[0]->shape()[0] <= 4; }

void register_twin() {
  static const bool once = [] {
    ir::OpDef d;
    d.op_type = "Twin";
    d.domain = "kiln.perprof";
    d.since = {1};
    d.infer = [](const ir::InferContext& c) { return std::vector<ir::ValueType>{c.input(0)}; };
    d.reference = [](const ir::Node&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      twin_copy(in, out);
    };
    ir::OpRegistry::instance().add(d);
    runtime::cpu::register_cpu_tactic(
        "kiln.perprof", "Twin",
        {"small", [](const ir::Node&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
           ++g_small_runs;
           if (!small_batch(in)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
           twin_copy(in, out);
         }, nullptr});
    runtime::cpu::register_cpu_tactic(
        "kiln.perprof", "Twin",
        {"large", [](const ir::Node&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
           ++g_large_runs;
           if (small_batch(in)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
           twin_copy(in, out);
         }, nullptr});
    return true;
  }();
  (void)once;
}

// x [N, 8] -> Twin -> y.
Model twin_model() {
  register_twin();
  ir::register_all_ops();
  auto m = std::make_shared<detail::ModelImpl>();
  ir::Graph& g = m->m.graph;
  g.name = "twin";
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.types["x"] = ir::ValueType{DType::Float32, true, {Dim{-1, "N"}, Dim{8, ""}}};
  ir::Node n;
  n.name = "twin";
  n.op_type = "Twin";
  n.domain = "kiln.perprof";
  n.opset = 1;
  n.inputs = {"x"};
  n.outputs = {"y"};
  g.nodes.push_back(n);
  ir::infer_types(g);
  m->m.inputs = {TensorInfo{"x", DType::Float32, {Dim{-1, "N"}, Dim{8, ""}}}};
  m->m.outputs = {TensorInfo{"y", DType::Float32, {Dim{-1, "N"}, Dim{8, ""}}}};
  m->m.ir_version = 8;
  m->m.opset = 17;
  m->m.opsets = {{"", 17}, {"kiln.perprof", 1}};
  m->m.content_hash = "sha256:twin";
  return Model(m);
}

Profile batch(int64_t lo, int64_t opt, int64_t hi) { return Profile().add_input_shape("x", {lo, 8}, {opt, 8}, {hi, 8}); }

Tensor rows(int64_t n) {
  Tensor t(DType::Float32, {n, 8});
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_as<float>()[i] = static_cast<float>(i % 13) - 6.0f;
  return t;
}

// Runs the context on `n` rows: the output is the input, and exactly one tactic ran (returned).
std::string ran(ExecutionContext& ctx, int64_t n) {
  const int s0 = g_small_runs, l0 = g_large_runs;
  const Tensor x = rows(n);
  const TensorMap out = ctx.run({{"x", x}});
  EXPECT_TRUE(out.at("y").bit_equal(x)) << n << " rows";
  const int ds = g_small_runs - s0, dl = g_large_runs - l0;
  EXPECT_EQ(ds + dl, 1) << n << " rows";
  return ds ? "small" : dl ? "large" : "none";
}

TEST(CpuProfileTactics, EachProfileIsTimedAtItsOptShapesAndRunsItsOwnTactic) {
  TempDir dir;
  BuildConfig cfg;
  cfg.profiles = {batch(1, 2, 4), batch(5, 256, 512)};
  cfg.timing_cache_path = (dir.p / "timing.cache").string();
  BuildStats cold;
  cfg.stats = &cold;
  const Engine e = build_engine(twin_model(), cfg);
  EXPECT_EQ(cold.tactics_timed, 2u);  // once per profile: the opt shapes differ
  EXPECT_EQ(cold.timing_cache_misses, 2u);
  EXPECT_EQ(cold.timing_cache_hits, 0u);
  ASSERT_EQ(e.nodes().size(), 1u);
  const NodeInfo n = e.nodes()[0];
  EXPECT_EQ(n.tactic, "small");
  EXPECT_EQ(n.profile_tactics, (std::vector<std::string>{"small", "large"}));

  // Each run takes the tactic of the profile its shapes select; so does the engine loaded from its plan.
  for (const Engine& eng : {e, Engine::deserialize(e.serialize())}) {
    ExecutionContext ctx = eng.create_context();
    EXPECT_EQ(ran(ctx, 3), "small");
    EXPECT_EQ(ctx.last_profile(), 0);
    EXPECT_EQ(ran(ctx, 300), "large");
    EXPECT_EQ(ctx.last_profile(), 1);
    EXPECT_EQ(ran(ctx, 1), "small");
  }
  // The layer profile names the tactic of the profile its inputs select.
  LayerProfileOptions lo;
  lo.iterations = 1;
  lo.warmup = 0;
  const LayerProfile lp = profile_layers(e, {{"x", rows(100)}}, lo);
  EXPECT_EQ(lp.profile, 1);
  ASSERT_EQ(lp.layers.size(), 1u);
  EXPECT_EQ(lp.layers[0].tactic, "large");
  EXPECT_EQ(profile_layers(e, {{"x", rows(2)}}, lo).layers[0].tactic, "small");

  // Warm cache: nothing timed, one hit per profile, the same tactics.
  BuildStats warm;
  cfg.stats = &warm;
  const Engine again = build_engine(twin_model(), cfg);
  EXPECT_EQ(warm.tactics_timed, 0u);
  EXPECT_EQ(warm.tactic_candidates_timed, 0u);
  EXPECT_EQ(warm.timing_cache_hits, 2u);
  EXPECT_EQ(warm.timing_cache_misses, 0u);
  EXPECT_EQ(again.nodes()[0].profile_tactics, n.profile_tactics);
}

TEST(CpuProfileTactics, AProfileWithAnEarlierProfilesOptShapesIsNotTimedAgain) {
  TempDir dir;
  BuildConfig cfg;
  // Profiles 1 and 2 share opt [256, 8]; profile 3 shares profile 0's opt [2, 8].
  cfg.profiles = {batch(1, 2, 4), batch(5, 256, 300), batch(256, 256, 512), batch(1, 2, 2)};
  cfg.timing_cache_path = (dir.p / "timing.cache").string();
  BuildStats stats;
  cfg.stats = &stats;
  const Engine e = build_engine(twin_model(), cfg);
  EXPECT_EQ(stats.tactics_timed, 2u);
  EXPECT_EQ(stats.timing_cache_misses, 2u);  // the repeated signatures are not looked up again
  EXPECT_EQ(stats.timing_cache_hits, 0u);
  EXPECT_EQ(e.nodes()[0].profile_tactics, (std::vector<std::string>{"small", "large", "large", "small"}));
  const nlohmann::json j = nlohmann::json::parse(util::read_file(cfg.timing_cache_path));
  EXPECT_EQ(j["entries"].size(), 2u);
}

TEST(CpuProfileTactics, OneProfileOrAgreeingProfilesKeepTheSingleTacticForm) {
  BuildConfig cfg;
  cfg.profiles = {batch(1, 2, 4), batch(1, 3, 4)};  // both small: both choose "small"
  const Engine e = build_engine(twin_model(), cfg);
  EXPECT_EQ(e.nodes()[0].tactic, "small");
  EXPECT_TRUE(e.nodes()[0].profile_tactics.empty());
  EXPECT_TRUE(e.impl()->profile_tactics.empty());
  // Optimization level 0 times nothing: the heuristic for every profile.
  cfg.profiles = {batch(1, 2, 4), batch(5, 256, 512)};
  cfg.optimization_level = 0;
  BuildStats s;
  cfg.stats = &s;
  const Engine h = build_engine(twin_model(), cfg);
  EXPECT_EQ(s.tactics_timed, 0u);
  EXPECT_EQ(h.nodes()[0].tactic, "small");
  EXPECT_TRUE(h.nodes()[0].profile_tactics.empty());
}

// ---- CLI ----------------------------------------------------------------------------------------------------------

struct CliRun {
  int code = -1;
  std::string out, err;
};
CliRun cli(const std::string& args, const fs::path& dir) {
  const fs::path o = dir / "stdout", e = dir / "stderr";
  const std::string cmd = "'" + std::string(KILN_CLI) + "' " + args + " >'" + o.string() + "' 2>'" + e.string() + "'";
  const int st = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = util::read_file(o.string());
  r.err = util::read_file(e.string());
  return r;
}

// The demo CNN on the CPU with two batch profiles, and under profile 1 another candidate for every node that has
// one (as if profile 1's timing had chosen it): inspect and bench --layers show the table, runs stay correct.
TEST(CpuProfileTactics, InspectAndBenchLayersShowTheTacticsOfEachProfile) {
  TempDir dir;
  BuildConfig cfg;
  cfg.optimization_level = 0;
  cfg.profiles = {Profile().add_input_shape("input", {1, 3, 64, 64}, {2, 3, 64, 64}, {2, 3, 64, 64}),
                  Profile().add_input_shape("input", {3, 3, 64, 64}, {4, 3, 64, 64}, {4, 3, 64, 64})};
  const Engine built = build_engine(Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"), cfg);
  auto impl = std::make_shared<detail::EngineImpl>(*built.impl());
  std::vector<std::string> p0, p1;
  size_t changed = 0;
  for (const auto& n : impl->graph.nodes) {
    p0.push_back(n.tactic);
    p1.push_back(n.tactic);
    for (const auto& t : runtime::cpu::tactics_for(impl->graph, n))
      if (t.name != n.tactic) {
        p1.back() = t.name;
        ++changed;
        break;
      }
  }
  ASSERT_GT(changed, 3u);
  impl->profile_tactics = {p0, p1};
  const Engine e(impl);
  const std::string plan = (dir.p / "demo.kiln").string();
  e.save(plan);

  // Both profiles' runs match the reference graph.
  Tensor in(DType::Float32, {3, 3, 64, 64});
  for (int64_t i = 0; i < in.numel(); ++i) in.mutable_as<float>()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  const TensorMap want = runtime::cpu::run_graph_reference(impl->graph, {{"input", in}});
  ExecutionContext ctx = Engine::load(plan).create_context();
  const TensorMap got = ctx.run({{"input", in}});
  EXPECT_EQ(ctx.last_profile(), 1);
  for (const auto& [name, t] : want) {
    const Comparison c = compare(got.at(name), t, tolerance_for("fp32"));
    EXPECT_TRUE(c.passed) << name << ": " << c.reason;
  }

  const CliRun j = cli("inspect --json '" + plan + "'", dir.p);
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json ij = nlohmann::json::parse(j.out);
  EXPECT_EQ(ij["per_profile_tactics"].get<size_t>(), changed);
  ASSERT_EQ(ij["nodes"].size(), p0.size());
  for (size_t i = 0; i < p0.size(); ++i) {
    EXPECT_EQ(ij["nodes"][i]["tactic"], p0[i]);
    EXPECT_EQ(ij["nodes"][i]["profile_tactics"], nlohmann::json({p0[i], p1[i]})) << i;
  }
  const CliRun t = cli("inspect '" + plan + "'", dir.p);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("per profile: " + std::to_string(changed) + " node(s)"), std::string::npos) << t.out;
  size_t first = 0;
  while (p1[first] == p0[first]) ++first;
  EXPECT_NE(t.out.find(p0[first] + " [p1: " + p1[first] + "]"), std::string::npos) << t.out;

  for (int profile : {0, 1}) {
    const std::string shape = profile ? "input:3x3x64x64" : "input:2x3x64x64";
    const CliRun b = cli("bench '" + plan + "' --layers --warmup 0 --iterations 1 --shapes " + shape + " --json", dir.p);
    ASSERT_EQ(b.code, 0) << b.err;
    const nlohmann::json bj = nlohmann::json::parse(b.out);
    EXPECT_EQ(bj["profile"], profile);
    const auto& tactics = profile ? p1 : p0;
    for (const auto& l : bj["layers"]) EXPECT_EQ(l["tactic"], tactics[l["index"].get<size_t>()]) << l["name"];
  }
}

}  // namespace
}  // namespace kiln
