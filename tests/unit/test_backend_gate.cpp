// The correctness gate: the engine against the oracle on samples and at each profile's min / max shapes; a
// deliberately wrong kernel (test-only fault injection) must make it fail with Correctness.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backend/correctness_gate.h"
#include "backend/testing_hooks.h"
#include "backend_test_util.h"

using namespace kiln;
using backend_test::expect_error;
using backend_test::mlp_sample;
using Fault = backend::testing::Fault;
using Json = nlohmann::ordered_json;

namespace backend_gate_test {
struct FaultGuard {
  explicit FaultGuard(Fault f) { backend::testing::set_fault(f); }
  ~FaultGuard() { backend::testing::set_fault(Fault::None); }
};

std::string gate_failure(Fault f, const std::string& cache_dir) {
  FaultGuard guard(f);
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(4, 2)};
  EngineBackend b;
  Error e = expect_error([&] { b.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), cache_dir); },
                         ErrorCode::Correctness);
  EXPECT_EQ(b.state(), BackendState::Init);
  EXPECT_FALSE(std::filesystem::exists(cache_dir));
  return e.what();
}
}  // namespace backend_gate_test
using namespace backend_gate_test;

TEST(BackendGate, PassesAndCoversSamplesAndProfileBounds) {
  backend_test::ScratchDir dir;
  // Batch 6 is cut to 2 for the gate; the profile's min (1) and max (6) are made from sample 0 by slicing/repeating.
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(1, 1), mlp_sample(6, 2)});
  Json r = Json::parse(backend_test::slurp(dir / "cache/report.json"));
  EXPECT_EQ(r["gate"]["cases"], 3);  // sample 0 (= profile min), sample 1 cut to 2, profile max
  EXPECT_EQ(r["gate"]["tolerance"], tolerance_for(backend_test::fp32_gate_row()).str());
}

TEST(BackendGate, WrongKernelFailsWithTheErrorAndBound) {
  backend_test::ScratchDir dir;
  const std::string msg = gate_failure(Fault::WrongValue, dir / "cache");
  EXPECT_NE(msg.find("correctness gate: output 'y'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max abs error"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max rel error"), std::string::npos) << msg;
  // The device's FP32 gate row (element-wise on the CPU; TF32 may run on CUDA, so its row there).
  EXPECT_NE(msg.find("bound " + tolerance_for(backend_test::fp32_gate_row()).str()), std::string::npos) << msg;
  if (!backend_test::on_cuda()) {
    EXPECT_NE(msg.find("bound element-wise rtol 0.0001 atol 1e-05"), std::string::npos) << msg;
  }
}

TEST(BackendGate, NanAndShapeMismatchAlwaysFail) {
  backend_test::ScratchDir dir;
  std::string msg = gate_failure(Fault::NaN, dir / "nan");
  EXPECT_NE(msg.find("NaN/Inf"), std::string::npos) << msg;
  msg = gate_failure(Fault::WrongShape, dir / "shape");
  // The gate's comparison names the type mismatch; the CUDA executor already refuses an output whose shape differs
  // from the planned one, naming the node.
  if (backend_test::on_cuda()) {
    EXPECT_NE(msg.find("'kiln_fault'"), std::string::npos) << msg;
  } else {
    EXPECT_NE(msg.find("type mismatch"), std::string::npos) << msg;
  }
}

TEST(BackendGate, IntegerOutputsCompareExactly) {
  backend_test::ScratchDir dir;
  Model model = Model::load(backend_test::model_path("ints.onnx"));
  Tensor ids(DType::Int64, {3, 5});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.mutable_as<int64_t>()[i] = i * 11 - 20;
  std::vector<Sample> samples = {{{"ids", ids}}};
  EngineBackend b;
  b.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), dir / "ok");
  TensorMap out = b.infer(samples[0]);
  EXPECT_EQ(out.at("ids_out").at_int64(1), 11 - 20 + 7 - 3);
  FaultGuard guard(Fault::WrongValue);
  EngineBackend bad;
  expect_error([&] { bad.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), dir / "bad"); },
               ErrorCode::Correctness);
}

TEST(BackendGate, ResizeByTilingSlicesAndRepeats) {
  Tensor t = Tensor::from_vector(DType::Float32, {2, 3}, std::vector<float>{0, 1, 2, 3, 4, 5});
  Tensor r = backend::resize_by_tiling(t, {3, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  std::vector<float> want = {0, 1, 3, 4, 0, 1};
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(r.at_double(i), want[i]) << i;
  EXPECT_TRUE(backend::resize_by_tiling(t, {2, 3}).bit_equal(t));
  expect_error([&] { backend::resize_by_tiling(t, {2}); }, ErrorCode::InvalidArgument);
  expect_error([&] { backend::resize_by_tiling(Tensor(DType::Float32, {0, 3}), {1, 3}); }, ErrorCode::InvalidArgument);
}

// AutoCastConfig asks the builder for an FP16 / BF16 engine; the gate then uses that precision's row of the tolerance
// table, and compares float16 inputs and outputs (keep_io_types = false) in the oracle's dtype.
TEST(BackendGate, AutoCastEnginesUseTheirToleranceRow) {
  backend_test::ScratchDir dir;
  int k = 0;
  for (const auto& [precision, keep_io] : std::vector<std::pair<std::string, bool>>{{"fp16", true}, {"bf16", true}, {"fp16", false}}) {
    EngineBackendConfig cfg;
    cfg.quantization_config = AutoCastConfig{precision, keep_io};
    const std::string cache = dir / ("c" + std::to_string(k++));
    EngineBackend b = backend_test::build_mlp(cache, {mlp_sample(1, 1), mlp_sample(4, 2)}, cfg);
    EXPECT_EQ(b.engine().precision(), precision);
    Json r = Json::parse(backend_test::slurp(cache + "/report.json"));
    EXPECT_EQ(r["gate"]["tolerance"], tolerance_for(precision).str()) << precision;
    EXPECT_EQ(b.engine().inputs()[0].dtype, keep_io ? DType::Float32 : DType::Float16);
  }
}
