// The kiln CLI, run as a process (KILN_CLI): exit codes, output and files. Models and test data come from
// tests/models/gen_cli_models.py (registered by tests/cli.cmake).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/kiln.h"

namespace fs = std::filesystem;
using kiln::ErrorCode;

namespace {

const std::string kCli = KILN_CLI;
const std::string kModels = std::string(KILN_TEST_MODELS) + "/cli";

struct Result {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("kiln_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `kiln ARGS` with stdout and stderr captured (`env`: "NAME=value" assignments for the command).
  static Result cli(const std::string& args) { return cli_env("", args); }
  static Result cli_env(const std::string& env, const std::string& args) {
    static int n = 0;
    fs::path o = dir_ / ("stdout" + std::to_string(n)), e = dir_ / ("stderr" + std::to_string(n++));
    std::string cmd = env + (env.empty() ? "" : " ") + q(kCli) + " " + args + " >" + q(o.string()) + " 2>" +
                      q(e.string());
    int st = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }
  static std::string model(const std::string& name) { return q(kModels + "/" + name); }
  static std::string tmp(const std::string& name) { return (dir_ / name).string(); }

  // Builds mlp.onnx into PLAN with batch 1..4 (opt 2); returns the plan path.
  static std::string build_mlp() {
    std::string plan = tmp("mlp.kiln");
    if (fs::exists(plan)) return plan;
    Result r = cli("build " + model("mlp.onnx") + " -o " + q(plan) +
                   " --min-shapes x:1x4 --opt-shapes x:2x4 --max-shapes x:4x4");
    EXPECT_EQ(r.code, 0) << r.err;
    return plan;
  }

  static inline fs::path dir_;
};

#define EXPECT_KILN_ERROR(r, code_)                                                                             \
  do {                                                                                                          \
    EXPECT_EQ((r).code, kiln::exit_code(ErrorCode::code_)) << "stdout:\n" << (r).out << "stderr:\n" << (r).err; \
    EXPECT_NE((r).err.find(std::string("kiln: error: ") + #code_ + ": "), std::string::npos) << (r).err;        \
  } while (0)

// ---- no model needed ----------------------------------------------------------------------------

TEST_F(Cli, Version) {
  Result r = cli("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find(kiln::version()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(kiln::build_id()), std::string::npos) << r.out;
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(cli("").code, 2);
  EXPECT_EQ(cli("frobnicate").code, 2);
  EXPECT_EQ(cli("build " + model("mlp.onnx")).code, 2);  // -o missing
  EXPECT_EQ(cli("build " + model("mlp.onnx") + " -o x.kiln --fp16 --bf16").code, 2);
  EXPECT_EQ(cli("run x.kiln --format csv").code, 2);
  EXPECT_EQ(cli("bench x.kiln --iterations 0").code, 2);
  EXPECT_EQ(cli("inspect x.kiln --no-such-flag").code, 2);
  Result h = cli("run --help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("--expect"), std::string::npos);
}

TEST_F(Cli, BadShapeStringsAreInvalidArgument) {
  Result r = cli("build " + model("mlp.onnx") + " -o " + q(tmp("p.kiln")) + " --shapes x:2xAx4");
  EXPECT_KILN_ERROR(r, InvalidArgument);
  EXPECT_NE(r.err.find("'x:2xAx4'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'A'"), std::string::npos) << r.err;
  for (const char* bad : {"x", "x:1x-4", ":1x4", "x:1x4,", "x:1x4,x:2x4", "x:1x99999999999"}) {
    Result b = cli("run " + model("mlp.onnx") + " --shapes " + q(bad));
    EXPECT_KILN_ERROR(b, InvalidArgument);
  }
  // An empty profile, a bad device and a bad workspace size.
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o " + q(tmp("p.kiln")) + " --shapes x:1x4 --profile"),
                    InvalidArgument);
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o " + q(tmp("p.kiln")) + " --device gpu7"), InvalidArgument);
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o " + q(tmp("p.kiln")) + " --workspace 12Q"),
                    InvalidArgument);
  EXPECT_FALSE(fs::exists(tmp("p.kiln")));
}

TEST_F(Cli, MissingFileIsIo) {
  EXPECT_KILN_ERROR(cli("build " + q(tmp("nope.onnx")) + " -o " + q(tmp("p.kiln"))), Io);
  EXPECT_KILN_ERROR(cli("run " + q(tmp("nope.kiln"))), Io);
  EXPECT_KILN_ERROR(cli("bench " + q(tmp("nope.onnx"))), Io);
  Result r = cli("inspect " + q(tmp("nope.kiln")));
  EXPECT_KILN_ERROR(r, Io);
  EXPECT_NE(r.err.find("nope.kiln"), std::string::npos) << r.err;
}

TEST_F(Cli, UnwritableOutputIsIoAndLeavesNoFile) {
  std::string in_missing_dir = tmp("no_such_dir/p.kiln");
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o " + q(in_missing_dir) + " --shapes x:2x4"), Io);
  EXPECT_FALSE(fs::exists(tmp("no_such_dir")));
  fs::create_directories(tmp("a_dir"));
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o " + q(tmp("a_dir")) + " --shapes x:2x4"), Io);
  EXPECT_TRUE(fs::is_empty(tmp("a_dir")));
  // Not writable even for root.
  EXPECT_KILN_ERROR(cli("build " + model("mlp.onnx") + " -o /proc/kiln_cli_test.kiln --shapes x:2x4"), Io);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "partial file left: " << e.path();
}

// ---- need the importer, the ops and the plan format -----------------------------------------------

TEST_F(Cli, GarbageModelIsInvalidModel) {
  EXPECT_KILN_ERROR(cli("build " + model("garbage.onnx") + " -o " + q(tmp("g.kiln"))), InvalidModel);
  EXPECT_FALSE(fs::exists(tmp("g.kiln")));
  EXPECT_KILN_ERROR(cli("inspect " + model("garbage.onnx")), InvalidModel);
  EXPECT_KILN_ERROR(cli("run " + model("garbage.onnx")), InvalidModel);
  // An ONNX file given where a plan is expected: foreign magic.
  fs::copy_file(kModels + "/mlp.onnx", tmp("mlp_as.kiln"));
  EXPECT_KILN_ERROR(cli("inspect " + q(tmp("mlp_as.kiln"))), PlanMismatch);
}

TEST_F(Cli, BuildPrintsSummary) {
  std::string plan = tmp("s.kiln");
  Result r = cli("build " + model("mlp.onnx") + " -o " + q(plan) + " --shapes x:2x4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(plan));
  for (const char* s : {"inputs:", "outputs:", "profiles:", "nodes:", "plan size:", "build time:", "float32[batch,4]"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST_F(Cli, BuildRunExpectPass) {
  std::string plan = build_mlp();
  Result r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --expect " + model("mlp_data"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS: 2 output(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max abs err"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("latency:"), std::string::npos) << r.out;
  // Inputs bound by TensorProto name (stored in reverse order) give the same outputs.
  r = cli("run " + q(plan) + " --inputs " + model("mlp_named") + " --expect " + model("mlp_data"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  // .npy inputs.
  r = cli("run " + q(plan) + " --input x=" + model("mlp_x.npy") + " --input y=" + model("mlp_y.npy") + " --expect " +
          model("mlp_data"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

TEST_F(Cli, RunOnTheFlyFromModel) {
  Result r = cli("run " + model("mlp.onnx") + " --inputs " + model("mlp_data") + " --expect " + model("mlp_data"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("built in"), std::string::npos) << r.out;
  r = cli("run " + model("int.onnx") + " --inputs " + model("int_data") + " --expect " + model("int_data"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

TEST_F(Cli, ExpectMismatchIsCorrectness) {
  std::string plan = build_mlp();
  Result r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --expect " + model("mlp_wrong"));
  EXPECT_KILN_ERROR(r, Correctness);
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;  // "diff" still matches
  // A looser tolerance accepts the 0.01 error.
  r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --expect " + model("mlp_wrong") + " --atol 0.1");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  // A shape mismatch always fails: the int model's expected output against another batch.
  r = cli("run " + model("int.onnx") + " --shapes ids:2x5 --expect " + model("int_data"));
  EXPECT_KILN_ERROR(r, Correctness);
}

TEST_F(Cli, OutputsSavedAsNpyAndPb) {
  std::string plan = build_mlp();
  std::string npy = tmp("out_npy"), pb = tmp("out_pb");
  Result r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --output-dir " + q(npy));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(npy + "/out_0.npy")) << r.out;  // "out:0" sanitized
  EXPECT_TRUE(fs::exists(npy + "/diff.npy")) << r.out;
  r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --output-dir " + q(pb) + " --format pb");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(pb + "/output_0.pb"));
  EXPECT_TRUE(fs::exists(pb + "/output_1.pb"));
  // The saved outputs are themselves a valid --expect folder.
  r = cli("run " + q(plan) + " --inputs " + model("mlp_data") + " --expect " + q(pb));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

TEST_F(Cli, RandomInputsAreSeeded) {
  std::string plan = build_mlp();
  Result a = cli("run " + q(plan) + " --seed 3"), b = cli("run " + q(plan) + " --seed 3"),
         c = cli("run " + q(plan) + " --seed 4");
  ASSERT_EQ(a.code, 0) << a.err;
  auto outputs = [](const std::string& s) {
    return s.substr(s.find("outputs:"), s.find("latency:") - s.find("outputs:"));
  };
  EXPECT_EQ(outputs(a.out), outputs(b.out));
  EXPECT_NE(outputs(a.out), outputs(c.out));
  EXPECT_NE(a.out.find("float32[2,4]"), std::string::npos) << a.out;  // profile 0's opt batch
  Result i = cli("run " + model("int.onnx") + " --shapes ids:2x5 --int-range 5:6");
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("[5, 5, 5, 5, 5, 5, ...]"), std::string::npos) << i.out;
}

TEST_F(Cli, OutOfProfileShape) {
  std::string plan = build_mlp();
  Result r = cli("run " + q(plan) + " --shapes x:8x4");
  EXPECT_KILN_ERROR(r, ShapeOutOfProfile);
  EXPECT_NE(r.err.find("'x'"), std::string::npos) << r.err;
  EXPECT_KILN_ERROR(cli("bench " + q(plan) + " --shapes x:8x4 --iterations 1"), ShapeOutOfProfile);
  EXPECT_KILN_ERROR(cli("run " + q(plan) + " --shapes zz:1x4"), InvalidArgument);  // not an input
  EXPECT_KILN_ERROR(cli("run " + q(plan) + " --input zz=" + model("mlp_x.npy")), InvalidArgument);
}

TEST_F(Cli, SeveralProfiles) {
  std::string plan = tmp("multi.kiln");
  Result r = cli("build " + model("mlp.onnx") + " -o " + q(plan) +
                 " --profile --shapes x:1x4 --profile --min-shapes x:2x4 --max-shapes x:8x4");
  ASSERT_EQ(r.code, 0) << r.err;
  Result j = cli("inspect " + q(plan) + " --json");
  ASSERT_EQ(j.code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["profiles"].size(), 2u);
  EXPECT_EQ(doc["profiles"][0]["x"]["max"], nlohmann::json({1, 4}));
  EXPECT_EQ(doc["profiles"][1]["x"]["opt"], nlohmann::json({8, 4}));  // opt defaults to max
  EXPECT_EQ(doc["profiles"][1]["y"]["min"], nlohmann::json({1, 4}));  // static input filled in
  r = cli("run " + q(plan) + " --shapes x:5x4");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("profile 1"), std::string::npos) << r.out;
}

TEST_F(Cli, BenchJson) {
  std::string plan = build_mlp();
  Result r = cli("bench " + q(plan) + " --warmup 1 --iterations 5 --shapes x:4x4 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j["iterations"].get<int>(), 5);
  EXPECT_EQ(j["batch"].get<int>(), 4);
  for (const char* k : {"p50", "p90", "p99", "mean", "min"}) EXPECT_GT(j["latency_ms"][k].get<double>(), 0) << k;
  EXPECT_LE(j["latency_ms"]["min"].get<double>(), j["latency_ms"]["p50"].get<double>());
  EXPECT_LE(j["latency_ms"]["p50"].get<double>(), j["latency_ms"]["p99"].get<double>());
  double ips = j["throughput"]["inferences_per_s"], sps = j["throughput"]["samples_per_s"];
  EXPECT_NEAR(sps, 4 * ips, 1e-6 * sps);
  Result t = cli("bench " + model("mlp.onnx") + " --iterations 3");  // text, built on the fly
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("p99"), std::string::npos) << t.out;
  // --threads sets the CPU executor's threads, and the result says so (as does KILN_CPU_THREADS).
  for (int threads : {1, 3}) {
    Result th = cli("bench " + q(plan) + " --iterations 2 --shapes x:4x4 --json --threads " + std::to_string(threads));
    ASSERT_EQ(th.code, 0) << th.err;
    EXPECT_EQ(nlohmann::json::parse(th.out)["threads"].get<int>(), threads);
  }
  Result env = cli_env("KILN_CPU_THREADS=2", "bench " + q(plan) + " --iterations 2 --shapes x:4x4 --json");
  ASSERT_EQ(env.code, 0) << env.err;
  EXPECT_EQ(nlohmann::json::parse(env.out)["threads"].get<int>(), 2);
  EXPECT_NE(cli("bench " + q(plan) + " --threads 0").code, 0);
}

TEST_F(Cli, InspectJson) {
  std::string plan = build_mlp();
  Result r = cli("inspect " + q(plan) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kind"], "plan");
  ASSERT_FALSE(j["nodes"].empty());
  EXPECT_EQ(j["node_count"].get<size_t>(), j["nodes"].size());
  for (const auto& n : j["nodes"]) {
    EXPECT_FALSE(n["op"].get<std::string>().empty()) << n.dump();
    EXPECT_FALSE(n["tactic"].get<std::string>().empty()) << n.dump();
  }
  EXPECT_EQ(j["inputs"][0]["dims"], nlohmann::json({"batch", 4}));
  EXPECT_EQ(j["build_id"].get<std::string>(), std::string(kiln::build_id()));
  EXPECT_EQ(j["precision"], "fp32");
  EXPECT_GT(j["file_size"].get<size_t>(), 0u);
  Result m = cli("inspect " + model("mlp.onnx") + " --json");
  ASSERT_EQ(m.code, 0) << m.err;
  auto mj = nlohmann::json::parse(m.out);
  EXPECT_EQ(mj["kind"], "model");
  EXPECT_EQ(mj["opset"], 17);
  EXPECT_EQ(mj["ir_version"], 8);
  EXPECT_EQ(mj["node_count"], 4);
  EXPECT_EQ(mj["op_counts"]["Relu"], 1);
  Result t = cli("inspect " + q(plan));
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("tactic"), std::string::npos) << t.out;
}

// The bundled demo CNN against ONNX Runtime's outputs (tests/models/gen_e2e_models.py), through the CLI.
TEST_F(Cli, DemoModelMatchesOnnxRuntime) {
  const std::string e2e = std::string(KILN_TEST_MODELS) + "/e2e";
  std::string plan = tmp("demo.kiln");
  Result r = cli("build " + q(std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx") + " -o " + q(plan) +
                 " --min-shapes input:1x3x64x64 --opt-shapes input:3x3x64x64 --max-shapes input:4x3x64x64");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* b : {"batch1", "batch3"}) {
    std::string data = q(e2e + "/demo/" + b);
    r = cli("run " + q(plan) + " --inputs " + data + " --expect " + data);
    EXPECT_EQ(r.code, 0) << b << "\n" << r.out << r.err;
  }
  std::string bn = q(e2e + "/bn/batch2");
  r = cli("run " + q(e2e + "/bn/model.onnx") + " --inputs " + bn + " --expect " + bn);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

}  // namespace

TEST_F(Cli, FreezeInputDefaultsDropsOverridableInputs) {
  const std::string model = std::string(KILN_TEST_MODELS) + "/e2e/defaults/model.onnx";
  Result open = cli("inspect " + model + " --json");
  ASSERT_EQ(open.code, 0) << open.err;
  Result frozen_plan = cli("build " + model + " -o " + tmp("frozen.kiln") + " --shapes x:2x4 --freeze-input-defaults");
  ASSERT_EQ(frozen_plan.code, 0) << frozen_plan.err;
  Result inspect = cli("inspect " + tmp("frozen.kiln") + " --json");
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j["inputs"].size(), 1u);
  Result plain = cli("build " + model + " -o " + tmp("open.kiln") + " --shapes x:2x4");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(nlohmann::json::parse(cli("inspect " + tmp("open.kiln") + " --json").out)["inputs"].size(), 3u);
}
