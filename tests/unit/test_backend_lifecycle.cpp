// EngineBackend lifecycle: every transition of AITune's state machine, its exact messages, failed builds, devices,
// and deactivate() waiting for inferences in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "backend/testing_hooks.h"
#include "backend_test_util.h"

using namespace kiln;
using backend_test::expect_error;
using backend_test::mlp_sample;

namespace backend_lifecycle_test {
void expect_state_error(const std::function<void()>& f, const std::string& msg) {
  Error e = expect_error(f, ErrorCode::InvalidState);
  EXPECT_EQ(std::string(e.what()), msg);
}
}  // namespace backend_lifecycle_test
using namespace backend_lifecycle_test;

TEST(BackendLifecycle, InitStateRefusesEverythingButBuild) {
  EngineBackend b;
  EXPECT_EQ(b.state(), BackendState::Init);
  EXPECT_EQ(b.name(), "EngineBackend");
  EXPECT_FALSE(b.is_active());
  EXPECT_EQ(b.device(), "");
  expect_state_error([&] { b.activate(); }, "Cannot activate backend EngineBackend, backend should be built first");
  expect_state_error([&] { b.deactivate(); }, "Cannot deactivate backend EngineBackend, backend should be built first");
  expect_state_error([&] { b.deploy("cpu"); }, "Cannot deploy backend EngineBackend, backend should be loaded from a checkpoint");
  expect_state_error([&] { b.infer({}); }, "Cannot run inference, backend EngineBackend should be activated first");
  expect_error([&] { b.save("/tmp/never_written"); }, ErrorCode::InvalidState);
  expect_error([&] { b.to_dict(); }, ErrorCode::InvalidState);
  expect_error([&] { b.engine(); }, ErrorCode::InvalidState);
  EXPECT_EQ(b.state(), BackendState::Init);
}

TEST(BackendLifecycle, BuildActivateDeactivateInferAndCheckpointTransitions) {
  backend_test::ScratchDir dir;
  std::vector<Sample> samples = {mlp_sample(1, 1), mlp_sample(3, 2)};
  EngineBackend b = backend_test::build_mlp(dir / "cache", samples);
  EXPECT_EQ(b.state(), BackendState::Active);
  EXPECT_TRUE(b.is_active());
  EXPECT_EQ(b.device(), backend_test::device());
  TensorMap want = b.infer(samples[1]);
  ASSERT_EQ(want.size(), 2u);

  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  expect_state_error([&] { b.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), dir / "other"); },
                     "Backend EngineBackend build should be called only once");
  EXPECT_FALSE(std::filesystem::exists(dir / "other"));
  b.activate();  // no-op when ACTIVE
  EXPECT_EQ(b.state(), BackendState::Active);
  expect_state_error([&] { b.deploy("cpu"); }, "Cannot deploy backend EngineBackend, backend should be loaded from a checkpoint");

  b.deactivate();
  EXPECT_EQ(b.state(), BackendState::Inactive);
  EXPECT_FALSE(b.is_active());
  expect_error([&] { b.engine(); }, ErrorCode::InvalidState);  // the engine is released
  expect_state_error([&] { b.infer(samples[1]); }, "Cannot run inference, backend EngineBackend should be activated first");
  b.deactivate();  // no-op when INACTIVE
  EXPECT_EQ(b.state(), BackendState::Inactive);

  b.activate();  // reloads the plan from disk
  EXPECT_EQ(b.state(), BackendState::Active);
  TensorMap again = b.infer(samples[1]);
  for (const auto& [n, t] : want) EXPECT_TRUE(again.at(n).bit_equal(t)) << n;

  b.save(dir / "ckpt");
  EngineBackend c = EngineBackend::load(dir / "ckpt");
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  EXPECT_FALSE(c.is_active());
  EXPECT_EQ(c.device(), backend_test::device());
  expect_state_error([&] { c.infer(samples[1]); }, "Cannot run inference, backend EngineBackend should be activated first");
  // AITune says "has already been deployed" here; kiln names the real state.
  expect_state_error([&] { c.deactivate(); },
                     "Cannot deactivate backend EngineBackend, backend is loaded from a checkpoint and not active (deploy "
                     "or activate it first)");
  expect_state_error([&] { c.build(model, GraphSpec::from_model(model, samples), samples, backend_test::device(), dir / "x"); },
                     "Backend EngineBackend build should be called only once");
  c.deploy();
  EXPECT_EQ(c.state(), BackendState::Deployed);
  EXPECT_TRUE(c.is_active());
  TensorMap got = c.infer(samples[1]);
  for (const auto& [n, t] : want) EXPECT_TRUE(got.at(n).bit_equal(t)) << n;
  expect_state_error([&] { c.activate(); }, "Cannot activate backend EngineBackend, backend is already deployed");
  expect_state_error([&] { c.deactivate(); }, "Cannot deactivate backend EngineBackend, backend is already deployed");
  expect_state_error([&] { c.deploy("cpu"); }, "Cannot deploy backend EngineBackend, backend should be loaded from a checkpoint");
  EXPECT_EQ(c.state(), BackendState::Deployed);

  // CHECKPOINT_LOADED may also be activated (AITune allows it), and then deactivated.
  EngineBackend d = EngineBackend::load(dir / "ckpt");
  d.activate();
  EXPECT_EQ(d.state(), BackendState::Active);
  d.deactivate();
  EXPECT_EQ(d.state(), BackendState::Inactive);
}

TEST(BackendLifecycle, DeployNeedsADevice) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  std::string state = b.to_dict();
  const std::string from = "\"device\": \"" + backend_test::device() + "\"";
  state.replace(state.find(from), from.size(), "\"device\": \"\"");
  EngineBackend c = EngineBackend::from_dict(state);
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  Error e = expect_error([&] { c.deploy(); }, ErrorCode::InvalidArgument);
  EXPECT_STREQ(e.what(), "Device is not set. Please set the device before deploying.");
  EXPECT_EQ(c.state(), BackendState::CheckpointLoaded);
  c.deploy(backend_test::device());
  EXPECT_EQ(c.state(), BackendState::Deployed);
  EXPECT_EQ(c.device(), backend_test::device());
}

TEST(BackendLifecycle, FailedBuildStaysInitAndLeavesNoArtifact) {
  backend_test::ScratchDir dir;
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  GraphSpec spec = GraphSpec::from_model(model, samples);
  EngineBackend b;
  // A sample of the wrong dtype fails the build before anything is written.
  std::vector<Sample> bad = {{{"x", Tensor(DType::Float64, {2, 4})}}};
  expect_error([&] { b.build(model, spec, bad, backend_test::device(), dir / "cache"); }, ErrorCode::InvalidArgument);
  EXPECT_EQ(b.state(), BackendState::Init);
  EXPECT_FALSE(std::filesystem::exists(dir / "cache"));
  EXPECT_FALSE(b.build_report().empty());
  EXPECT_NE(b.build_report().find("\"success\": false"), std::string::npos);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    ADD_FAILURE() << "left behind: " << e.path();
  // The backend is still INIT, so a correct build now succeeds.
  b.build(model, spec, samples, backend_test::device(), dir / "cache");
  EXPECT_EQ(b.state(), BackendState::Active);
}

TEST(BackendLifecycle, DeviceArgumentDecidesAndCudaWithoutGpuIsAClearError) {
  backend_test::ScratchDir dir;
  Model model = Model::load(backend_test::model_path("mlp.onnx"));
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  GraphSpec spec = GraphSpec::from_model(model, samples);
  EngineBackend b;
  Error e = expect_error([&] { b.build(model, spec, samples, "mps", dir / "c"); }, ErrorCode::InvalidArgument);
  EXPECT_NE(std::string(e.what()).find("Device mps is not supported by the backend EngineBackend"), std::string::npos);
  if (cuda_device_count() == 0) {
    try {
      b.build(model, spec, samples, "cuda:0", dir / "c");
      ADD_FAILURE() << "cuda:0 built without a GPU";
    } catch (const Error& err) {
      EXPECT_TRUE(err.code() == ErrorCode::Unsupported || err.code() == ErrorCode::InvalidArgument) << err.what();
      EXPECT_NE(std::string(err.what()).find("cuda:0"), std::string::npos) << err.what();
    }
    EXPECT_EQ(b.state(), BackendState::Init);
    EXPECT_FALSE(std::filesystem::exists(dir / "c"));
  }
  // The config's device field is recorded only (as in AITune): "cuda" there does not stop a CPU build.
  EngineBackendConfig cfg;
  EXPECT_EQ(cfg.device, "cuda");
  EngineBackend ok(cfg);
  ok.build(model, spec, samples, "cpu", dir / "c");
  EXPECT_EQ(ok.device(), "cpu");
}

TEST(BackendLifecycle, DeactivateWaitsForInferencesInFlight) {
  backend_test::ScratchDir dir;
  std::vector<Sample> samples = {mlp_sample(2, 1)};
  EngineBackend b = backend_test::build_mlp(dir / "cache", samples);
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  backend::testing::set_infer_hook([&] {
    std::unique_lock<std::mutex> lk(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lk, std::chrono::seconds(10), [&] { return release; });
  });
  TensorMap out;
  std::thread runner([&] { out = b.infer(samples[0]); });
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return entered; }));
  }
  backend::testing::set_infer_hook(nullptr);
  std::atomic<bool> deactivated{false};
  std::thread stopper([&] {
    b.deactivate();
    deactivated = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(deactivated.load()) << "deactivate() returned while an inference was running";
  EXPECT_EQ(b.state(), BackendState::Inactive);  // new calls are refused already
  expect_error([&] { b.infer(samples[0]); }, ErrorCode::InvalidState);
  {
    std::lock_guard<std::mutex> lk(mu);
    release = true;
  }
  cv.notify_all();
  runner.join();
  stopper.join();
  EXPECT_TRUE(deactivated.load());
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(b.memory_stats().inferences, 1u);
}
