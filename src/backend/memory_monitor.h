// Host RSS and device memory readings, and a sampler thread that tracks their peaks while work is running.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace kiln::backend {

// Current resident set size of this process in bytes (/proc/self/statm); -1 when unreadable.
int64_t current_rss_bytes();
// Peak resident set size of this process so far (VmHWM); -1 when unreadable.
int64_t process_peak_rss_bytes();
// Device memory in use on CUDA device `ordinal` (total - free); -1 without CUDA or a device.
int64_t device_used_bytes(int ordinal);

// Samples every `period_ms` while active() and tracks peaks; also samples once whenever it becomes active. The
// thread sleeps while nothing is active. `device` < 0: host only.
class MemorySampler {
 public:
  MemorySampler(int device, int period_ms);
  ~MemorySampler();
  MemorySampler(const MemorySampler&) = delete;
  MemorySampler& operator=(const MemorySampler&) = delete;
  // Scopes nest and may overlap across threads: sampling runs while at least one is open.
  void enter();
  void leave();
  int64_t peak_rss() const { return peak_rss_.load(); }
  int64_t peak_device() const { return peak_device_.load(); }
  void sample_now();
  // Restarts the peaks from the current readings (per-step peaks).
  void reset_peak();

 private:
  void loop();
  int device_;
  int period_ms_;
  std::atomic<int64_t> peak_rss_{-1}, peak_device_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// RAII scope on a sampler.
class SampledScope {
 public:
  explicit SampledScope(MemorySampler& s) : s_(s) { s_.enter(); }
  ~SampledScope() { s_.leave(); }
  SampledScope(const SampledScope&) = delete;
  SampledScope& operator=(const SampledScope&) = delete;

 private:
  MemorySampler& s_;
};

}  // namespace kiln::backend
