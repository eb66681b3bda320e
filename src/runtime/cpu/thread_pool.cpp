#include "runtime/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/device.h"
#include "util/log.h"

namespace kiln::runtime::cpu {
namespace {

thread_local bool t_in_pool_loop = false;
thread_local bool t_inline = false;  // an InlineScope is alive on this thread
std::atomic<uint64_t> g_pool_loops{0};

int default_threads() {
  if (const char* e = std::getenv("KILN_CPU_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(e, &end, 10);
    if (end != e && *end == '\0' && v >= 1) return static_cast<int>(std::min<long>(v, 1024));
    KILN_WARN("KILN_CPU_THREADS='" << e << "' is not a positive integer; using the hardware threads");
  }
  unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Chunks are claimed under the mutex (at most 4 per thread, so a worker that starts late leaves its share to the
// others). Waking a sleeping thread costs tens of microseconds, as much as a small kernel, so a worker that has
// just finished a loop spins for a while (kSpin pauses, ~0.1-0.4 ms) watching `posted_` before it sleeps on the
// condition variable, and the caller waiting for the last chunks spins, then yields, before it sleeps: back-to-back
// loops of one inference hand over without a system call.
class Pool {
 public:
  static constexpr int kSpin = 8000;
  static constexpr int kYields = 2000;

  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      posted_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk) {
    std::unique_lock<std::mutex> lk(m_);
    job_ = &chunk;
    chunks_ = chunks;
    next_ = 0;
    remaining_.store(chunks, std::memory_order_relaxed);
    error_ = nullptr;
    posted_.fetch_add(1, std::memory_order_release);
    if (sleepers_ > 0) cv_.notify_all();
    drain(lk);
    if (remaining_.load(std::memory_order_acquire) != 0) {
      // The other chunks are running on workers: wait spinning, then yielding (a sleep and wake-up would cost more
      // than the wait), and only after that on the condition variable.
      lk.unlock();
      for (int i = 0; i < kSpin && remaining_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
      for (int i = 0; i < kYields && remaining_.load(std::memory_order_acquire) != 0; ++i) std::this_thread::yield();
      lk.lock();
      done_.wait(lk, [&] { return remaining_.load(std::memory_order_acquire) == 0; });
    }
    job_ = nullptr;
    std::exception_ptr e = error_;
    error_ = nullptr;
    lk.unlock();
    if (e) std::rethrow_exception(e);
  }

 private:
  // Runs chunks until none is left to claim; `lk` is held on entry and exit.
  void drain(std::unique_lock<std::mutex>& lk) {
    while (job_ && next_ < chunks_) {
      const int64_t c = next_++;
      const std::function<void(int64_t)>* job = job_;
      lk.unlock();
      std::exception_ptr e;
      t_in_pool_loop = true;
      try {
        (*job)(c);
      } catch (...) {
        e = std::current_exception();
      }
      t_in_pool_loop = false;
      lk.lock();
      if (e && !error_) error_ = e;
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.notify_all();
    }
  }

  void work() {
    std::unique_lock<std::mutex> lk(m_);
    uint64_t seen = posted_.load(std::memory_order_acquire);
    for (;;) {
      if (!stop_ && !(job_ && next_ < chunks_)) {
        lk.unlock();
        for (int i = 0; i < kSpin && posted_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
        lk.lock();
        ++sleepers_;
        cv_.wait(lk, [&] { return stop_ || (job_ && next_ < chunks_); });
        --sleepers_;
      }
      if (stop_) return;
      seen = posted_.load(std::memory_order_acquire);
      drain(lk);
    }
  }

  std::mutex m_;
  std::condition_variable cv_, done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t chunks_ = 0, next_ = 0;
  std::atomic<int64_t> remaining_{0};
  std::atomic<uint64_t> posted_{0};  // bumped for every loop posted (and at shutdown)
  int sleepers_ = 0;                 // workers blocked on cv_ (guarded by m_)
  std::exception_ptr error_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

struct Global {
  std::mutex busy;                 // held by the one caller using the pool (and by set_cpu_threads)
  std::atomic<int> threads{0};     // 0 = not read yet
  std::unique_ptr<Pool> pool;      // guarded by `busy`; rebuilt when the count changes
};

Global& global() {
  static Global* g = new Global();  // never destroyed: workers must not outlive a destroyed pool at exit
  return *g;
}

}  // namespace

int cpu_threads() {
  Global& g = global();
  int t = g.threads.load(std::memory_order_relaxed);
  if (t == 0) {
    int d = default_threads();
    g.threads.compare_exchange_strong(t, d);
    t = g.threads.load(std::memory_order_relaxed);
  }
  return t;
}

void set_cpu_threads(int n) {
  Global& g = global();
  std::lock_guard<std::mutex> lk(g.busy);
  g.threads.store(n >= 1 ? std::min(n, 1024) : default_threads());
  g.pool.reset();
}

int64_t parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  if (t_in_pool_loop || t_inline) return 1;
  const int64_t by_grain = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int64_t threads = cpu_threads();
  return threads <= 1 ? 1 : std::min<int64_t>({by_grain, 4 * threads, n});
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  Global& g = global();
  std::unique_lock<std::mutex> busy(g.busy, std::try_to_lock);
  if (!busy.owns_lock()) {  // another thread's loop is on the pool: run this one here
    fn(0, n);
    return;
  }
  const int threads = cpu_threads();
  if (!g.pool || g.pool->threads() != threads) {
    g.pool.reset();
    g.pool = std::make_unique<Pool>(threads);
  }
  g_pool_loops.fetch_add(1, std::memory_order_relaxed);
  g.pool->run(chunks, [&](int64_t c) { fn(n * c / chunks, n * (c + 1) / chunks); });
}

InlineScope::InlineScope() : prev_(t_inline) { t_inline = true; }
InlineScope::~InlineScope() { t_inline = prev_; }

uint64_t pool_loops_run() { return g_pool_loops.load(std::memory_order_relaxed); }

double min_macs_from(const char* e) {
  if (!e) return kMinMacsPerThread;
  char* end = nullptr;
  const double v = std::strtod(e, &end);
  if (end != e && *end == '\0' && v >= 1 && v <= 1e15) return v;
  KILN_WARN("KILN_MIN_MACS_PER_THREAD='" << e << "' is not a number of multiply-adds >= 1; using " << kMinMacsPerThread);
  return kMinMacsPerThread;
}

double min_macs_per_thread() {
  static const double v = min_macs_from(std::getenv("KILN_MIN_MACS_PER_THREAD"));
  return v;
}

int64_t threads_for_work(double work, double min_per_thread, int64_t threads) {
  if (threads <= 1 || !(work > 0) || !(min_per_thread > 0)) return 1;
  const double t = work / min_per_thread;  // threads that each get at least min_per_thread
  return t < 2.0 ? 1 : t >= static_cast<double>(threads) ? threads : static_cast<int64_t>(t);
}

void parallel_for_threads(int64_t n, int64_t threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  parallel_for(n, std::max<int64_t>(1, n / (4 * threads)), fn);
}

}  // namespace kiln::runtime::cpu

namespace kiln {
int cpu_threads() { return runtime::cpu::cpu_threads(); }
void set_cpu_threads(int n) { runtime::cpu::set_cpu_threads(n); }
}  // namespace kiln
