// Per-layer profiles (kiln/profile_layers.h, `kiln bench --layers`): every node listed once with its op, dtype and
// tactic, medians that add up to the reported sum, shares summing to 100%, slowest first, an end-to-end time; the
// CLI's table, JSON (parses, one entry per node) and SVG chart (well-formed XML, one bar per shown layer). On a CPU
// engine (runs everywhere) and on a CUDA engine (skips without a device).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "temp_dir_util.h"
#include "kiln/kiln.h"
#include "util/fs.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;

Model demo() { return Model::load(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"); }

Engine demo_engine(Target target) {
  BuildConfig cfg;
  cfg.target = target;
  cfg.optimization_level = 1;
  if (target == Target::Cuda) cfg.precision = Precision::FP16;
  cfg.profiles.push_back(Profile().add_input_shape("input", {1, 3, 64, 64}, {2, 3, 64, 64}, {4, 3, 64, 64}));
  return build_engine(demo(), cfg);
}

Tensor input(Shape s) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_as<float>()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  return t;
}

// Checks what every profile must satisfy.
void check_profile(const Engine& e, const LayerProfile& p, int iterations) {
  const std::vector<NodeInfo> nodes = e.nodes();
  ASSERT_EQ(p.layers.size(), nodes.size());
  EXPECT_EQ(p.iterations, iterations);
  std::set<size_t> seen;
  double sum = 0, shares = 0;
  for (size_t k = 0; k < p.layers.size(); ++k) {
    const LayerTime& l = p.layers[k];
    ASSERT_LT(l.index, nodes.size());
    EXPECT_TRUE(seen.insert(l.index).second) << "node " << l.index << " listed twice";
    EXPECT_EQ(l.op, nodes[l.index].op);
    EXPECT_EQ(l.tactic, nodes[l.index].tactic);
    EXPECT_EQ(l.dtype, nodes[l.index].dtype);
    EXPECT_FALSE(l.name.empty());
    EXPECT_GE(l.median_ms, 0.0);
    if (k) {
      EXPECT_GE(p.layers[k - 1].median_ms, l.median_ms) << "not sorted at " << k;
    }
    sum += l.median_ms;
    shares += l.share;
  }
  EXPECT_NEAR(sum, p.layers_ms, 1e-9 + 1e-9 * p.layers_ms);
  EXPECT_GT(p.layers_ms, 0.0);
  EXPECT_NEAR(shares, 1.0, 1e-6);
  EXPECT_GT(p.end_to_end_ms, 0.0);
}

// Whether `s` is well-formed XML as far as an SVG writer can get it wrong: balanced, properly nested tags,
// quoted attributes, no raw '<' or stray '&' in text.
bool well_formed_xml(const std::string& s, std::string* why) {
  std::vector<std::string> open;
  size_t i = 0;
  bool root_seen = false;
  while (i < s.size()) {
    if (s[i] == '<') {
      const size_t end = s.find('>', i);
      if (end == std::string::npos) return *why = "unterminated tag", false;
      std::string tag = s.substr(i + 1, end - i - 1);
      i = end + 1;
      if (tag.rfind("?", 0) == 0) continue;  // XML declaration
      if (tag.empty()) return *why = "empty tag", false;
      if (tag[0] == '/') {
        const std::string name = tag.substr(1);
        if (open.empty() || open.back() != name) return *why = "closing </" + name + "> does not match", false;
        open.pop_back();
        continue;
      }
      const bool self = tag.back() == '/';
      const std::string name = tag.substr(0, tag.find_first_of(" /"));
      size_t quotes = 0;
      for (char c : tag) quotes += c == '"';
      if (quotes % 2) return *why = "unbalanced quotes in <" + name + ">", false;
      if (open.empty() && root_seen) return *why = "a second root element", false;
      root_seen = true;
      if (!self) open.push_back(name);
      continue;
    }
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : s.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
        return *why = "stray '&'", false;
    }
    ++i;
  }
  if (!open.empty()) return *why = "unclosed <" + open.back() + ">", false;
  return root_seen || (*why = "no element", false);
}

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

// `kiln bench PLAN --layers` with JSON and chart files.
void check_cli(const Engine& e, const fs::path& dir) {
  const std::string plan = (dir / "demo.kiln").string(), json = (dir / "layers.json").string(),
                    svg = (dir / "layers.svg").string();
  e.save(plan);
  const CliRun r = cli("bench '" + plan + "' --layers --warmup 1 --iterations 3 --top 5 --json '" + json +
                        "' --chart '" + svg + "'",
                    dir);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"median ms", "share", "sum of layer medians", "end to end", "more layers"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const nlohmann::json j = nlohmann::json::parse(util::read_file(json));
  ASSERT_EQ(j["layers"].size(), e.nodes().size());
  double shares = 0;
  for (const auto& l : j["layers"]) shares += l["share"].get<double>();
  EXPECT_NEAR(shares, 1.0, 1e-6);
  EXPECT_GT(j["layers_ms"].get<double>(), 0.0);
  EXPECT_GT(j["end_to_end_ms"].get<double>(), 0.0);
  EXPECT_EQ(j["iterations"], 3);
  EXPECT_EQ(j["target"], e.target());
  const std::string chart = util::read_file(svg);
  std::string why;
  EXPECT_TRUE(well_formed_xml(chart, &why)) << why << "\n" << chart;
  EXPECT_NE(chart.find("<svg"), std::string::npos);
  size_t bars = 0;
  for (size_t at = chart.find("fill=\"#4c72b0\""); at != std::string::npos; at = chart.find("fill=\"#4c72b0\"", at + 1))
    ++bars;
  EXPECT_EQ(bars, 5u);
  // JSON on stdout alone (no file): parses.
  const CliRun only = cli("bench '" + plan + "' --layers --warmup 0 --iterations 2 --json", dir);
  ASSERT_EQ(only.code, 0) << only.err;
  EXPECT_EQ(nlohmann::json::parse(only.out)["layers"].size(), e.nodes().size());
}

TEST(ProfileLayers, CpuEngineListsEveryNode) {
  const Engine e = demo_engine(Target::Cpu);
  LayerProfileOptions o;
  o.iterations = 4;
  o.warmup = 1;
  const LayerProfile p = profile_layers(e, {{"input", input({2, 3, 64, 64})}}, o);
  EXPECT_EQ(p.device, "cpu");
  EXPECT_EQ(p.method, "steady_clock");
  check_profile(e, p, 4);
  // Where a CNN spends its time on the CPU: its convs (with their Relu / residual Add fused: kiln.FusedConv).
  EXPECT_TRUE(p.layers.front().op == "Conv" || p.layers.front().op == "FusedConv") << p.layers.front().op;
}

TEST(ProfileLayers, BadArgumentsAreErrors) {
  const Engine e = demo_engine(Target::Cpu);
  LayerProfileOptions o;
  o.iterations = 0;
  try {
    profile_layers(e, {{"input", input({2, 3, 64, 64})}}, o);
    ADD_FAILURE() << "iterations 0 accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::InvalidArgument);
  }
  try {
    profile_layers(e, {{"input", input({8, 3, 64, 64})}});  // outside the profile
    ADD_FAILURE() << "a shape outside the profiles accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::ShapeOutOfProfile);
  }
}

TEST(ProfileLayers, CliTableJsonAndChartOnCpu) {
  TempDir dir;
  check_cli(demo_engine(Target::Cpu), dir.p);
  // --chart without --layers is a usage mistake.
  demo_engine(Target::Cpu).save((dir.p / "x.kiln").string());
  const CliRun r = cli("bench '" + (dir.p / "x.kiln").string() + "' --iterations 1 --chart '" +
                        (dir.p / "c.svg").string() + "'",
                    dir.p);
  EXPECT_NE(r.code, 0);
}

TEST(ProfileLayers, CudaEngineListsEveryNode) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Engine e = demo_engine(Target::Cuda);
  for (bool graphs : {false, true}) {
    LayerProfileOptions o;
    o.iterations = 5;
    o.warmup = 2;
    o.use_cuda_graphs = graphs;
    const LayerProfile p = profile_layers(e, {{"input", input({2, 3, 64, 64})}}, o);
    EXPECT_EQ(p.device, "cuda:0");
    EXPECT_EQ(p.method, "cuda events");
    check_profile(e, p, 5);
    // Views and host-side shape arithmetic launch nothing: their time is (about) zero, far below a conv's.
    for (const LayerTime& l : p.layers)
      if (l.op == "Shape" || l.op == "Gather" || l.op == "Concat") {
        EXPECT_LT(l.median_ms, p.layers.front().median_ms);
      }
  }
  TempDir dir;
  check_cli(e, dir.p);
}

}  // namespace
}  // namespace kiln
