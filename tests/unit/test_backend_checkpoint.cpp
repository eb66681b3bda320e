// Checkpoints: to_dict/from_dict of the backend, save(dir) with SHA256SUMS, load verifying every hash, a moved
// folder, tampered / missing / escaping files, and deploy.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backend_test_util.h"
#include "util/sha256.h"

using namespace kiln;
using backend_test::expect_error;
using backend_test::mlp_sample;
using backend_test::slurp;
using backend_test::spit;
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace backend_checkpoint_test {
void expect_same(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [n, t] : a) EXPECT_TRUE(b.at(n).bit_equal(t)) << n;
}
std::string integrity_error(const std::string& dir) {
  return expect_error([&] { EngineBackend::load(dir); }, ErrorCode::Integrity).what();
}
}  // namespace backend_checkpoint_test
using namespace backend_checkpoint_test;

TEST(BackendCheckpoint, StateDictHasAITunesKeys) {
  backend_test::ScratchDir dir;
  EngineBackendConfig cfg;
  cfg.quantization_config = std::monostate{};
  cfg.use_cuda_graphs = true;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)}, cfg);
  Json d = Json::parse(b.to_dict());
  std::vector<std::string> keys;
  for (const auto& [k, v] : d.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"type", "engine_path", "optimization_profiles_path", "output_object", "graph_spec",
                                            "device", "quantization_config", "config", "use_cuda_graphs", "engine_sha256"}));
  EXPECT_EQ(d["type"], "EngineBackend");
  EXPECT_EQ(d["engine_path"], b.engine_path());
  EXPECT_EQ(d["device"], backend_test::device());
  EXPECT_EQ(d["use_cuda_graphs"], true);
  EXPECT_EQ(d["config"].dump(), Json::parse(cfg.to_dict()).dump());
  EXPECT_EQ(d["output_object"][0]["name"], "y");
  EXPECT_EQ(d["output_object"][1]["name"], "p");
  EXPECT_EQ(d["graph_spec"]["type"], "GraphSpec");
  EngineBackend c = EngineBackend::from_dict(b.to_dict());
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  EXPECT_TRUE(c.config() == cfg);
  EXPECT_TRUE(c.graph_spec() == b.graph_spec());
  c.deploy(backend_test::device());
  expect_same(b.infer(mlp_sample(2, 5)), c.infer(mlp_sample(2, 5)));
}

TEST(BackendCheckpoint, SaveLoadDeployRoundTripAndMovedFolder) {
  backend_test::ScratchDir dir;
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(4, 2)};
  EngineBackend b = backend_test::build_mlp(dir / "cache", samples);
  TensorMap want = b.infer(mlp_sample(3, 9));
  b.save(dir / "ckpt");

  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "ckpt")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"SHA256SUMS", "backend.json", "build.log", "config.json", "engine.kiln",
                                             "model.onnx", "profiles.json", "report.json"}));
  // sha256sum format, sorted, every file but itself.
  std::string sums;
  for (const auto& n : names)
    if (n != "SHA256SUMS") sums += util::sha256_hex(slurp(dir / ("ckpt/" + n))) + "  " + n + "\n";
  EXPECT_EQ(slurp(dir / "ckpt/SHA256SUMS"), sums);
  Json state = Json::parse(slurp(dir / "ckpt/backend.json"));
  EXPECT_EQ(state["engine_path"], "engine.kiln");  // relative inside the checkpoint
  EXPECT_EQ(state["optimization_profiles_path"], "profiles.json");

  // Move the folder and delete the cache: the checkpoint is self-contained.
  fs::rename(dir / "ckpt", dir / "moved");
  fs::remove_all(dir / "cache");
  EngineBackend c = EngineBackend::load(dir / "moved");
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  EXPECT_EQ(c.engine_path(), (dir.path() / "moved" / "engine.kiln").string());
  EXPECT_EQ(c.key(), b.key());
  c.deploy();
  EXPECT_EQ(c.state(), BackendState::Deployed);
  expect_same(c.infer(mlp_sample(3, 9)), want);
  ASSERT_EQ(c.profiles().size(), 1u);
  EXPECT_TRUE(c.profiles()[0] == b.profiles()[0]);

  // A deployed backend saves again (a checkpoint of a checkpoint).
  c.save(dir / "again");
  EngineBackend d = EngineBackend::load(dir / "again");
  d.deploy(backend_test::device());
  expect_same(d.infer(mlp_sample(3, 9)), want);
}

TEST(BackendCheckpoint, SaveRefusesAnExistingFolderUnlessOverwriting) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  fs::create_directories(dir / "ckpt");
  spit(dir / "ckpt/old.txt", "x");
  expect_error([&] { b.save(dir / "ckpt"); }, ErrorCode::Io);
  EXPECT_TRUE(fs::exists(dir / "ckpt/old.txt"));
  b.save(dir / "ckpt", /*overwrite=*/true);
  EXPECT_FALSE(fs::exists(dir / "ckpt/old.txt"));
  EXPECT_NO_THROW(EngineBackend::load(dir / "ckpt"));
  expect_error([&] { b.save(dir / "cache"); }, ErrorCode::Io);              // exists
  expect_error([&] { b.save(dir / "cache", true); }, ErrorCode::InvalidArgument);  // is the artifact folder
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "cache" || n == "ckpt") << "left behind: " << n;
  }
}

TEST(BackendCheckpoint, TamperedMissingOrEscapingFilesAreIntegrityErrors) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  b.save(dir / "good");
  auto fresh = [&](const std::string& name) {
    fs::remove_all(dir / name);
    fs::copy(dir / "good", dir / name);
    return dir / name;
  };
  for (const char* f : {"engine.kiln", "profiles.json", "backend.json", "config.json"}) {
    const std::string d = fresh(std::string("t_") + f);
    std::string bytes = slurp(d + "/" + f);
    bytes[bytes.size() / 2] ^= 1;
    spit(d + "/" + f, bytes);
    const std::string msg = integrity_error(d);
    EXPECT_NE(msg.find(std::string("file '") + f + "' is corrupted or was modified"), std::string::npos) << msg;
  }
  std::string d = fresh("missing");
  fs::remove(d + "/profiles.json");
  EXPECT_NE(integrity_error(d).find("'profiles.json' listed in SHA256SUMS is missing"), std::string::npos);
  d = fresh("nosums");
  fs::remove(d + "/SHA256SUMS");
  EXPECT_NE(integrity_error(d).find("has no SHA256SUMS"), std::string::npos);
  d = fresh("escape");
  spit(d + "/SHA256SUMS", slurp(d + "/SHA256SUMS") + std::string(64, 'a') + "  ../outside\n");
  EXPECT_NE(integrity_error(d).find("resolves outside the checkpoint"), std::string::npos);
  d = fresh("uncovered");
  std::string sums = slurp(d + "/SHA256SUMS"), kept;
  std::istringstream in(sums);
  for (std::string line; std::getline(in, line);)
    if (line.find("engine.kiln") == std::string::npos) kept += line + "\n";
  spit(d + "/SHA256SUMS", kept);
  EXPECT_NE(integrity_error(d).find("'engine.kiln' is not covered by SHA256SUMS"), std::string::npos);
  d = fresh("malformed");
  spit(d + "/SHA256SUMS", "not a sum line\n");
  EXPECT_NE(integrity_error(d).find("line 1 is malformed"), std::string::npos);
  // Swapping the plan after load (between load and deploy) is caught at deploy time.
  d = fresh("swap");
  EngineBackend c = EngineBackend::load(d);
  std::string plan = slurp(d + "/engine.kiln");
  plan[plan.size() / 3] ^= 1;
  spit(d + "/engine.kiln", plan);
  expect_error([&] { c.deploy(backend_test::device()); }, ErrorCode::Integrity);
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  expect_error([&] { EngineBackend::load(dir / "nowhere"); }, ErrorCode::Io);
}

TEST(BackendCheckpoint, DeployOnAnotherDeviceKindIsRefused) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  b.save(dir / "ckpt");
  EngineBackend c = EngineBackend::load(dir / "ckpt");
  // The other device kind: a CPU plan on cuda:0, or (KILN_TEST_DEVICE=cuda:N) a CUDA plan on the CPU.
  const std::string other = backend_test::on_cuda() ? "cpu" : "cuda:0";
  try {
    c.deploy(other);
    ADD_FAILURE() << "a " << backend_test::device() << " plan deployed on " << other;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(other), std::string::npos) << e.what();
  }
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  c.deploy(backend_test::device());
  EXPECT_EQ(c.state(), BackendState::Deployed);
}
