// Shared helpers of the EngineBackend tests: test models, scratch folders, deterministic inputs, log capture.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace backend_test {

namespace fs = std::filesystem;

inline std::string model_path(const std::string& name) {
  return std::string(KILN_TEST_MODELS) + "/backend/" + name;
}
inline std::string demo_model_path() { return std::string(KILN_SOURCE_DIR) + "/models/kiln_demo_cnn.onnx"; }

// The device the backend tests build and deploy on: the environment variable KILN_TEST_DEVICE, "cpu" when unset
// (CI). The GPU suite (scripts/gpu_suite.sh) runs them again with KILN_TEST_DEVICE=cuda:0 where a GPU exists.
// "cuda" means "cuda:0"; the result is what EngineBackend::device() reports.
inline const std::string& device() {
  static const std::string d = [] {
    const char* e = std::getenv("KILN_TEST_DEVICE");
    std::string s = (e != nullptr && *e != '\0') ? e : "cpu";
    return s == "cuda" ? std::string("cuda:0") : s;
  }();
  return d;
}
inline bool on_cuda() { return device() != "cpu"; }
// The target part of the engine reuse key for device(): "cpu", or "cuda:<GPU name (sm_XX)>".
inline std::string target_identity() {
  return on_cuda() ? "cuda:" + kiln::cuda_device_name(std::atoi(device().c_str() + 5)) : std::string("cpu");
}
// The correctness gate's tolerance row for an FP32 engine on device(): TF32 on CUDA when the config allows it.
inline std::string fp32_gate_row(bool enable_tf32 = true) { return on_cuda() && enable_tf32 ? "tf32" : "fp32"; }

// A fresh, empty folder per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> n{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "scratch";
    path_ = fs::temp_directory_path() / ("kiln_backend_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + "_" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& s) const { return (path_ / s).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Float tensor with values uniform in [-1, 1) from `seed`.
inline kiln::Tensor rand_f32(const kiln::Shape& shape, uint64_t seed) {
  kiln::Tensor t(kiln::DType::Float32, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  float* p = t.mutable_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(rng);
  return t;
}

inline kiln::Sample mlp_sample(int64_t batch, uint64_t seed) { return {{"x", rand_f32({batch, 4}, seed)}}; }
inline kiln::Sample demo_sample(int64_t batch, uint64_t seed) { return {{"input", rand_f32({batch, 3, 64, 64}, seed)}}; }

inline std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
inline void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

// Collects log messages (at `level` and above) while alive; restores the default sink and level afterwards.
class LogCollector {
 public:
  explicit LogCollector(kiln::LogLevel level = kiln::LogLevel::Info) : old_(kiln::log_level()) {
    kiln::set_log_level(level);
    kiln::set_log_sink([this](kiln::LogLevel l, const std::string& m) {
      std::lock_guard<std::mutex> lk(mu_);
      lines_.push_back(std::string(kiln::log_level_name(l)) + " " + m);
    });
  }
  ~LogCollector() {
    kiln::set_log_sink(nullptr);
    kiln::set_log_level(old_);
  }
  bool contains(const std::string& s) const {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& l : lines_)
      if (l.find(s) != std::string::npos) return true;
    return false;
  }
  std::string all() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  kiln::LogLevel old_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// Runs `f` and returns the kiln::Error it throws (fails the test when it throws nothing or something else).
template <class F>
kiln::Error expect_error(F&& f, kiln::ErrorCode code) {
  try {
    f();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(kiln::error_code_name(e.code()), std::string(kiln::error_code_name(code))) << e.what();
    return e;
  }
  ADD_FAILURE() << "expected kiln::Error " << kiln::error_code_name(code);
  return kiln::Error(code, "<not thrown>");
}

// Builds an EngineBackend for the MLP test model on device() from `samples`.
inline kiln::EngineBackend build_mlp(const std::string& cache_dir, const std::vector<kiln::Sample>& samples,
                                     kiln::EngineBackendConfig cfg = {}) {
  kiln::Model model = kiln::Model::load(model_path("mlp.onnx"));
  kiln::EngineBackend b(std::move(cfg));
  b.build(model, kiln::GraphSpec::from_model(model, samples), samples, device(), cache_dir);
  return b;
}

}  // namespace backend_test
