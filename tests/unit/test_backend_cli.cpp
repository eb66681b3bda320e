// `kiln build --checkpoint DIR` and `kiln run --checkpoint DIR`, run as processes (KILN_CLI).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "backend_test_util.h"
#include "kiln/io.h"

using namespace kiln;
using backend_test::mlp_sample;
using backend_test::slurp;
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace backend_cli_test {
struct CliRun {
  int code = -1;
  std::string out, err;
};
std::string q(const std::string& s) { return "'" + s + "'"; }

CliRun kiln_cli(const backend_test::ScratchDir& dir, const std::string& args) {
  static int n = 0;
  const std::string o = dir / ("out" + std::to_string(n)), e = dir / ("err" + std::to_string(n++));
  int st = std::system((q(KILN_CLI) + " " + args + " >" + q(o) + " 2>" + q(e)).c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(o), slurp(e)};
}

std::string sample_dir(const backend_test::ScratchDir& dir, const std::string& name, const Sample& s) {
  fs::create_directories(dir / name);
  for (const auto& [n, t] : s) save_npy(dir / (name + "/" + n + ".npy"), t);
  return dir / name;
}
}  // namespace backend_cli_test
using namespace backend_cli_test;

TEST(BackendCli, BuildCheckpointThenRunIt) {
  backend_test::ScratchDir dir;
  const std::string model = backend_test::model_path("mlp.onnx");
  const std::string s1 = sample_dir(dir, "s1", mlp_sample(1, 1)), s2 = sample_dir(dir, "s2", mlp_sample(4, 2));
  CliRun b = kiln_cli(dir, "build " + q(model) + " --checkpoint " + q(dir / "ckpt") + " --sample " + q(s1) + " --sample " +
                            q(s2) + " --cache-dir " + q(dir / "cache") + " -o " + q(dir / "plan.kiln"));
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  EXPECT_NE(b.out.find("built checkpoint"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("[0] x: min [1,4] opt [4,4] max [4,4]"), std::string::npos) << b.out;  // Single from samples
  EXPECT_TRUE(fs::exists(dir / "ckpt/SHA256SUMS"));
  EXPECT_TRUE(fs::exists(dir / "plan.kiln"));
  EXPECT_EQ(Json::parse(slurp(dir / "cache/report.json"))["engine_reused"], false);

  // The same build again reuses the cached engine.
  b = kiln_cli(dir, "build " + q(model) + " --checkpoint " + q(dir / "ckpt") + " --sample " + q(s1) + " --sample " + q(s2) +
                        " --cache-dir " + q(dir / "cache"));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Json::parse(slurp(dir / "cache/report.json"))["engine_reused"], true);

  // CliRun the checkpoint on a given input and compare with the library.
  Sample in = mlp_sample(3, 77);
  save_npy(dir / "x.npy", in.at("x"));
  CliRun r = kiln_cli(dir, "run --checkpoint " + q(dir / "ckpt") + " --input x=" + q(dir / "x.npy") + " --output-dir " +
                            q(dir / "out"));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("run checkpoint"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DEPLOYED on cpu"), std::string::npos) << r.out;
  EngineBackend lib = EngineBackend::load(dir / "ckpt");
  lib.deploy("cpu");
  TensorMap want = lib.infer(in);
  EXPECT_TRUE(load_npy(dir / "out/y.npy").bit_equal(want.at("y")));
  EXPECT_TRUE(load_npy(dir / "out/p.npy").bit_equal(want.at("p")));
}

TEST(BackendCli, SamplesUsedRandomSamplesAndErrors) {
  backend_test::ScratchDir dir;
  const std::string model = backend_test::model_path("mlp.onnx");
  const std::string s1 = sample_dir(dir, "s1", mlp_sample(1, 1)), s2 = sample_dir(dir, "s2", mlp_sample(2, 2));
  CliRun b = kiln_cli(dir, "build " + q(model) + " --checkpoint " + q(dir / "su") + " --samples-used --sample " + q(s1) +
                            " --sample " + q(s2));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(Json::parse(slurp(dir / "su/profiles.json")).size(), 2u);
  EXPECT_EQ(Json::parse(slurp(dir / "su/config.json"))["profiles"], "samples_used");
  EXPECT_FALSE(fs::exists(dir / "cache")) << "the default cache is temporary";

  // Profile flags without samples: random samples at the profile shapes feed the gate.
  b = kiln_cli(dir, "build " + q(model) + " --checkpoint " + q(dir / "flags") + " --min-shapes x:1x4 --max-shapes x:8x4");
  ASSERT_EQ(b.code, 0) << b.err;
  // Random samples at min (1) and max (8) shapes (opt = max): sample 0, sample 1 cut to batch 2, and the profile max.
  EXPECT_EQ(Json::parse(slurp(dir / "flags/report.json"))["gate"]["cases"], 3);

  // Dynamic inputs with neither samples nor profile flags.
  b = kiln_cli(dir, "build " + q(model) + " --checkpoint " + q(dir / "none"));
  EXPECT_EQ(b.code, exit_code(ErrorCode::InvalidArgument)) << b.err;
  EXPECT_NE(b.err.find("give --sample folders or profile flags"), std::string::npos) << b.err;
  // Neither -o nor --checkpoint is a usage error.
  EXPECT_EQ(kiln_cli(dir, "build " + q(model)).code, 2);
  // run needs a file or --checkpoint, not both.
  EXPECT_EQ(kiln_cli(dir, "run").code, exit_code(ErrorCode::InvalidArgument));
  EXPECT_EQ(kiln_cli(dir, "run " + q(model) + " --checkpoint " + q(dir / "su")).code, exit_code(ErrorCode::InvalidArgument));
  // A tampered checkpoint is an Integrity error.
  std::string profiles = slurp(dir / "su/profiles.json");
  profiles[profiles.size() / 2] ^= 1;
  backend_test::spit(dir / "su/profiles.json", profiles);
  CliRun r = kiln_cli(dir, "run --checkpoint " + q(dir / "su"));
  EXPECT_EQ(r.code, exit_code(ErrorCode::Integrity)) << r.err;
  EXPECT_NE(r.err.find("profiles.json"), std::string::npos) << r.err;
}
