// The CLI side of autocast: `kiln build --fp16/--bf16 [--keep-fp32 ...] [--low-precision-io]`, the FLOPs and
// dtypes `kiln inspect --json` prints, and `kiln run --expect` choosing the precision's tolerance row.
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

const std::string kE2E = std::string(KILN_TEST_MODELS) + "/e2e";
const std::string kAC = std::string(KILN_TEST_MODELS) + "/autocast";
const std::string kDemo = std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx";

struct Result {
  int code = -1;
  std::string out, err;
};

std::string q(const std::string& s) { return "'" + s + "'"; }

class AutocastCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("kiln_autocast_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static Result cli(const std::string& args) {
    static int n = 0;
    fs::path o = dir_ / ("stdout" + std::to_string(n)), e = dir_ / ("stderr" + std::to_string(n++));
    std::string cmd = q(KILN_CLI) + " " + args + " >" + q(o.string()) + " 2>" + q(e.string());
    int st = std::system(cmd.c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(o), slurp(e)};
  }
  static std::string tmp(const std::string& name) { return (dir_ / name).string(); }
  static nlohmann::json inspect(const std::string& plan) {
    Result r = cli("inspect " + q(plan) + " --json");
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  static std::string node_dtype(const nlohmann::json& j, const std::string& name) {
    for (const auto& n : j["nodes"])
      if (n["name"] == name) return n["dtype"];
    return "<no node " + name + ">";
  }
  // The low-precision share recomputed from the per-node FLOPs and dtypes; checks the summary agrees.
  static double share(const nlohmann::json& j) {
    int64_t all = 0, low = 0;
    for (const auto& n : j["nodes"]) {
      if (!n["gemm_like"].get<bool>()) continue;
      EXPECT_FALSE(n["flops"].is_null()) << n.dump();
      const int64_t f = n["flops"].get<int64_t>();
      all += f;
      if (n["dtype"] == "float16" || n["dtype"] == "bfloat16") low += f;
    }
    EXPECT_EQ(j["flops"]["gemm_like"]["total"].get<int64_t>(), all);
    const double s = all ? double(low) / double(all) : 0.0;
    EXPECT_DOUBLE_EQ(j["flops"]["gemm_like"]["low_precision_share"].get<double>(), s);
    return s;
  }
  static inline fs::path dir_;
};

}  // namespace

// (b) + (e): FP16 and BF16 plans of the demo CNN and the e2e ResNet; inspect's FLOP share; run --expect picks the
// precision's row of the tolerance table.
TEST_F(AutocastCli, BuildInspectAndExpect) {
  struct M {
    std::string model, shapes, data;
  };
  const std::vector<M> models = {
      {kDemo, "--min-shapes input:1x3x64x64 --opt-shapes input:3x3x64x64 --max-shapes input:4x3x64x64",
       kE2E + "/demo/batch3"},
      {kE2E + "/resnet/model.onnx", "--shapes input:2x3x32x32", kE2E + "/resnet/batch2"}};
  for (const M& m : models) {
    for (const std::string p : {"fp16", "bf16"}) {
      SCOPED_TRACE(m.model + " " + p);
      std::string plan = tmp("plan_" + p + ".kiln");
      Result r = cli("build " + q(m.model) + " -o " + q(plan) + " --" + p + " " + m.shapes);
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("precision " + p), std::string::npos) << r.out;
      nlohmann::json j = inspect(plan);
      EXPECT_EQ(j["precision"], p);
      EXPECT_EQ(j["inputs"][0]["dtype"], "float32");
      const std::string low = p == "fp16" ? "float16" : "bfloat16";
      for (const auto& n : j["nodes"])
        if (n["op"] == "Conv" || n["op"] == "Gemm") {
          EXPECT_EQ(n["dtype"], low) << n.dump();
        }
      EXPECT_GE(share(j), 0.95);
      EXPECT_EQ(j["flops"]["unknown_nodes"], 0);
      EXPECT_GT(j["flops"]["total"].get<int64_t>(), j["flops"]["gemm_like"]["total"].get<int64_t>());

      r = cli("run " + q(plan) + " --inputs " + q(m.data) + " --expect " + q(m.data));
      EXPECT_EQ(r.code, 0) << r.out << r.err;
      const std::string row = "(" + p + ": relative L2 <= " + (p == "fp16" ? "0.01" : "0.02");
      EXPECT_NE(r.out.find(row), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("rel L2"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("PASS: 2 output(s)"), std::string::npos) << r.out;
      Result t = cli("inspect " + q(plan));
      EXPECT_NE(t.out.find("% in float16/bfloat16"), std::string::npos) << t.out;
    }
  }
}

// (d) through the CLI: --keep-fp32 by op type and node name.
TEST_F(AutocastCli, KeepFp32Flag) {
  std::string plan = tmp("keep.kiln");
  Result r = cli("build " + q(kDemo) + " -o " + q(plan) + " --fp16 --keep-fp32 Gemm,conv_2 --keep-fp32 maxpool_9");
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = inspect(plan);
  EXPECT_EQ(node_dtype(j, "fc_96"), "float32");
  EXPECT_EQ(node_dtype(j, "conv_2"), "float32");
  EXPECT_EQ(node_dtype(j, "maxpool_9"), "float32");
  EXPECT_EQ(node_dtype(j, "conv_11"), "float16");
  const double s = share(j);
  EXPECT_LT(s, 1.0);
  EXPECT_GT(s, 0.8);
  r = cli("run " + q(plan) + " --inputs " + q(kE2E + "/demo/batch1") + " --expect " + q(kE2E + "/demo/batch1"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;

  // Low-precision options without a low precision are usage errors.
  r = cli("build " + q(kDemo) + " -o " + q(tmp("bad.kiln")) + " --keep-fp32 Conv");
  EXPECT_EQ(r.code, kiln::exit_code(kiln::ErrorCode::InvalidArgument)) << r.err;
  EXPECT_FALSE(fs::exists(tmp("bad.kiln")));
}

// --low-precision-io: the plan's inputs and outputs are bfloat16; run converts float32 test data and compares the
// outputs in float32.
TEST_F(AutocastCli, LowPrecisionIo) {
  std::string plan = tmp("lpio.kiln");
  Result r = cli("build " + q(kE2E + "/resnet/model.onnx") + " -o " + q(plan) +
                 " --bf16 --low-precision-io --shapes input:2x3x32x32");
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = inspect(plan);
  EXPECT_EQ(j["inputs"][0]["dtype"], "bfloat16");
  EXPECT_EQ(j["outputs"][0]["dtype"], "bfloat16");
  const std::string data = q(kE2E + "/resnet/batch2");
  r = cli("run " + q(plan) + " --inputs " + data + " --expect " + data);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("converted from float32"), std::string::npos) << r.out;
}

// (c) through the CLI: an ONNX model built on the fly in FP16 whose LayerNorm squares overflow float16.
TEST_F(AutocastCli, OverflowModelOnTheFly) {
  for (const std::string m : {"ln_decomposed", "softmax"}) {
    const std::string data = q(kAC + "/" + m + "/case");
    Result r = cli("run " + q(kAC + "/" + m + "/model.onnx") + " --fp16 --inputs " + data + " --expect " + data);
    EXPECT_EQ(r.code, 0) << m << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("(fp16: relative L2 <= 0.01"), std::string::npos) << r.out;
  }
}
