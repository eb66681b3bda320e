// Concurrency: infer() from many threads on one backend runs in parallel on per-thread execution contexts sharing
// one Engine, with results equal to sequential ones; and monitoring (memory peaks, counters). Built into the
// ThreadSanitizer test binary as well (tests/backend.cmake).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "backend/testing_hooks.h"
#include "backend_test_util.h"

using namespace kiln;
using backend_test::mlp_sample;

TEST(BackendConcurrency, EightThreadsTimesTwoHundredEqualSequential) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(1, 1), mlp_sample(4, 2)});
  constexpr int kThreads = 8, kEach = 200;
  std::vector<std::vector<Sample>> inputs(kThreads);
  std::vector<std::vector<TensorMap>> want(kThreads), got(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i) {
      inputs[t].push_back(mlp_sample(1 + (t + i) % 4, uint64_t(1000 * t + i)));
      want[t].push_back(b.infer(inputs[t].back()));
    }
  std::atomic<int> go{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      ++go;
      while (go.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kEach; ++i) got[t].push_back(b.infer(inputs[t][i]));
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kEach; ++i)
      for (const auto& [name, tensor] : want[t][i])
        ASSERT_TRUE(got[t][i].at(name).bit_equal(tensor)) << "thread " << t << " call " << i << " output " << name;
  MemoryStats m = b.memory_stats();
  EXPECT_EQ(m.inferences, uint64_t(2 * kThreads * kEach));
  EXPECT_GE(m.max_in_flight, 1u);
}

// Two inferences must be able to be inside the engine at the same moment: each waits (in the in-flight hook) until
// the other has arrived. With a global lock around execution the second could never arrive, and both time out.
TEST(BackendConcurrency, TwoInferencesAreInFlightAtOnce) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<int> met{0};
  backend::testing::set_infer_hook([&] {
    std::unique_lock<std::mutex> lk(mu);
    ++arrived;
    cv.notify_all();
    if (cv.wait_for(lk, std::chrono::seconds(10), [&] { return arrived >= 2; })) ++met;
  });
  std::thread t1([&] { b.infer(mlp_sample(2, 3)); });
  std::thread t2([&] { b.infer(mlp_sample(2, 4)); });
  t1.join();
  t2.join();
  backend::testing::set_infer_hook(nullptr);
  EXPECT_EQ(met.load(), 2) << "the two inferences never overlapped";
  EXPECT_GE(b.memory_stats().max_in_flight, 2u);
}

TEST(BackendConcurrency, DeactivateDuringConcurrentInferenceIsClean) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        try {
          TensorMap out = b.infer(mlp_sample(2, uint64_t(t * 7919 + i)));
          if (out.size() == 2) ++ok;
        } catch (const Error& e) {
          if (e.code() == ErrorCode::InvalidState) ++refused;
          else ADD_FAILURE() << e.what();
        }
      }
    });
  while (ok.load() < 20) std::this_thread::yield();
  b.deactivate();
  const int after_deactivate = ok.load();
  while (refused.load() < 4) std::this_thread::yield();
  // At most the calls already counted as done (one per thread, between returning and ++ok) land after it.
  EXPECT_LE(ok.load(), after_deactivate + 4) << "inferences ran after deactivate() returned";
  b.activate();
  while (ok.load() < after_deactivate + 20) std::this_thread::yield();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(b.state(), BackendState::Active);
}

TEST(BackendMonitoring, MemoryPeaksAndCounters) {
  backend_test::ScratchDir dir;
  EngineBackend b = backend_test::build_mlp(dir / "cache", {mlp_sample(2, 1)});
  MemoryStats m = b.memory_stats();
  EXPECT_GT(m.build_peak_rss_bytes, 0);
  EXPECT_EQ(m.inferences, 0u);
  b.infer(mlp_sample(2, 2));
  b.infer(mlp_sample(2, 3));
  m = b.memory_stats();
  EXPECT_EQ(m.inferences, 2u);
  EXPECT_GT(m.infer_peak_rss_bytes, 0);
  EXPECT_GE(m.process_peak_rss_bytes, m.infer_peak_rss_bytes);
  if (cuda_device_count() == 0) {
    EXPECT_EQ(m.build_peak_device_bytes, -1);
    EXPECT_EQ(m.infer_peak_device_bytes, -1);
  }
  b.deactivate();
  EXPECT_GT(b.memory_stats().infer_peak_rss_bytes, 0);  // kept after deactivation
}
