// kiln CLI: `kiln devices` and --target (cpu / cuda / cuda:N): listing, and the errors when CUDA is asked for where
// this build or this machine has none. Runs the CLI as a process (KILN_CLI) on tests/models/gen_cli_models.py's mlp.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/kiln.h"

namespace fs = std::filesystem;

namespace {

struct CliResult {
  int code = -1;
  std::string out, err;
};

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class CliDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_cli_devices_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  CliResult cli(const std::string& args) {
    fs::path o = dir_ / ("out" + std::to_string(n_)), e = dir_ / ("err" + std::to_string(n_));
    ++n_;
    const std::string cmd = quoted(KILN_CLI) + " " + args + " >" + quoted(o.string()) + " 2>" + quoted(e.string());
    const int st = std::system(cmd.c_str());
    CliResult r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = read_all(o);
    r.err = read_all(e);
    return r;
  }
  std::string mlp() const { return quoted(std::string(KILN_TEST_MODELS) + "/cli/mlp.onnx"); }
  std::string plan() const { return quoted((dir_ / "p.kiln").string()); }
  fs::path dir_;
  int n_ = 0;
};

TEST_F(CliDevices, ListsCpuAndEveryCudaDevice) {
  const int n = kiln::cuda_device_count();
  CliResult r = cli("devices");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("cpu "), std::string::npos) << r.out;
  for (int i = 0; i < n; ++i) {
    EXPECT_NE(r.out.find("cuda:" + std::to_string(i)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(kiln::cuda_device_name(i)), std::string::npos) << r.out;
  }
  if (n == 0) {
    EXPECT_NE(r.out.find("no CUDA devices"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(kiln::built_with_cuda() ? "none is visible" : "built without CUDA"), std::string::npos)
        << r.out;
  }
  CliResult j = cli("devices --json");
  ASSERT_EQ(j.code, 0) << j.err;
  nlohmann::json doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc.at("built_with_cuda").get<bool>(), kiln::built_with_cuda());
  ASSERT_EQ(doc.at("targets").size(), static_cast<size_t>(n) + 1) << j.out;
  EXPECT_EQ(doc["targets"][0]["target"], "cpu");
  if (n > 0) {
    EXPECT_EQ(doc["targets"][1]["target"], "cuda:0");
  }
}

TEST_F(CliDevices, CudaTargetWithoutCudaIsAClearError) {
  if (kiln::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device exists here";
  for (const char* flag : {"--target cuda", "--target cuda:1", "--device cuda:0"}) {
    CliResult r = cli("build " + mlp() + " -o " + plan() + " --shapes x:1x4 " + flag);
    if (kiln::built_with_cuda()) {
      EXPECT_EQ(r.code, kiln::exit_code(kiln::ErrorCode::InvalidArgument)) << flag << ": " << r.err;
      EXPECT_NE(r.err.find("no CUDA device is visible"), std::string::npos) << r.err;
    } else {
      EXPECT_EQ(r.code, kiln::exit_code(kiln::ErrorCode::Unsupported)) << flag << ": " << r.err;
      EXPECT_NE(r.err.find("built without CUDA"), std::string::npos) << r.err;
    }
    EXPECT_NE(r.err.find("use --target cpu"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "p.kiln"));
  }
  // run and bench build on the fly: the same check, before any work.
  CliResult r = cli("run " + mlp() + " --shapes x:1x4 --target cuda");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--target cuda:0"), std::string::npos) << r.err;
}

TEST_F(CliDevices, BadTargetStringsAreInvalidArgument) {
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"}) {
    CliResult r = cli("build " + mlp() + " -o " + plan() + " --target " + quoted(bad));
    EXPECT_EQ(r.code, kiln::exit_code(kiln::ErrorCode::InvalidArgument)) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("is not a target (expected cpu, cuda or cuda:N)"), std::string::npos) << r.err;
  }
}

TEST_F(CliDevices, CpuTargetBuilds) {
  CliResult r = cli("build " + mlp() + " -o " + plan() + " --shapes x:1x4 --target cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("target:     cpu"), std::string::npos) << r.out;
}

// On a GPU host: an out-of-range ordinal names the devices there are; cuda:0 builds a CUDA plan that runs.
TEST_F(CliDevices, CudaTargetOnAGpu) {
  const int n = kiln::cuda_device_count();
  if (n == 0) GTEST_SKIP() << "no CUDA device";
  CliResult bad = cli("build " + mlp() + " -o " + plan() + " --shapes x:1x4 --target cuda:" + std::to_string(n));
  EXPECT_EQ(bad.code, kiln::exit_code(kiln::ErrorCode::InvalidArgument)) << bad.err;
  EXPECT_NE(bad.err.find("no such CUDA device"), std::string::npos) << bad.err;
  CliResult r = cli("build " + mlp() + " -o " + plan() + " --shapes x:1x4 --target cuda:0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("target:     cuda"), std::string::npos) << r.out;
  CliResult run = cli("run " + plan());
  EXPECT_EQ(run.code, 0) << run.err;
}

}  // namespace
