#include "backend/memory_monitor.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>

#include "kiln/device.h"
#endif

namespace kiln::backend {

int64_t current_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = 0;
  int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  return static_cast<int64_t>(resident) * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

int64_t process_peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

int64_t device_used_bytes(int ordinal) {
#ifdef KILN_WITH_CUDA
  if (ordinal < 0 || ordinal >= cuda_device_count()) return -1;
  int prev = 0;
  if (cudaGetDevice(&prev) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  size_t free_b = 0, total_b = 0;
  bool ok = cudaSetDevice(ordinal) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
  cudaSetDevice(prev);
  if (!ok) {
    cudaGetLastError();
    return -1;
  }
  return static_cast<int64_t>(total_b - free_b);
#else
  (void)ordinal;
  return -1;
#endif
}

MemorySampler::MemorySampler(int device, int period_ms) : device_(device), period_ms_(period_ms) {
  thread_ = std::thread([this] { loop(); });
}

MemorySampler::~MemorySampler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MemorySampler::sample_now() {
  auto raise = [](std::atomic<int64_t>& peak, int64_t v) {
    int64_t cur = peak.load();
    while (v > cur && !peak.compare_exchange_weak(cur, v)) {
    }
  };
  raise(peak_rss_, current_rss_bytes());
  if (device_ >= 0) raise(peak_device_, device_used_bytes(device_));
}

void MemorySampler::reset_peak() {
  peak_rss_ = current_rss_bytes();
  peak_device_ = device_ >= 0 ? device_used_bytes(device_) : -1;
}

void MemorySampler::enter() {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake = active_++ == 0;
  }
  if (wake) {
    sample_now();
    cv_.notify_all();
  }
}

void MemorySampler::leave() {
  bool last = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    last = --active_ == 0;
  }
  if (last) sample_now();
}

void MemorySampler::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait(lk, [this] { return stop_ || active_ > 0; });
    if (stop_) break;
    lk.unlock();
    sample_now();
    lk.lock();
    cv_.wait_for(lk, std::chrono::milliseconds(period_ms_), [this] { return stop_; });
  }
}

}  // namespace kiln::backend
