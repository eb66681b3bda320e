// kiln's CPU thread pool: a few workers that split one loop among themselves and the calling thread.
//
// The thread count is KILN_CPU_THREADS when set to a positive integer, else the hardware threads
// (std::thread::hardware_concurrency()); set_cpu_threads() changes it at run time (tests, benchmarks).
// One loop runs on the pool at a time: a second caller (another ExecutionContext on another thread) and any call
// made from inside a pool loop run their loop inline, on their own thread, so nothing waits for the pool and
// nothing deadlocks. OpenBLAS is kept single-threaded (cpu_blas.h) and its calls are split over this pool, so there
// is one set of threads.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln::runtime::cpu {

// Threads the CPU kernels use (>= 1).
int cpu_threads();
// Sets the thread count for later loops; n <= 0 restores the default (KILN_CPU_THREADS, else hardware threads).
// Waits for a loop in flight to finish.
void set_cpu_threads(int n);

// Runs fn(begin, end) over [0, n) in contiguous chunks of at least `grain` items (>= 1), at most 4 per thread,
// claimed by the workers and the caller as they come free. Returns when every chunk is done; an exception thrown by a chunk is rethrown here
// (the first one, after all chunks have finished).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// How many chunks parallel_for(n, grain, ...) would use now (1 = runs inline).
int64_t parallel_chunks(int64_t n, int64_t grain);

// The thread rule of the convolution kernels: how many of `threads` threads a node whose work is
// `work` units (multiply-adds) uses, when each thread must get at least `min_per_thread` units: in [1, threads].
// Handing chunks to another thread costs microseconds when it is spinning and tens of microseconds when it has to
// be woken, so work below 2 * min_per_thread runs on the calling thread alone. Deterministic: the same shapes give
// the same split on every run and in every build (docs/cpu.md, "Threads").
int64_t threads_for_work(double work, double min_per_thread, int64_t threads);

// Multiply-adds per thread below which a convolution is not split further (the rule above): 2^19, about 5-12 us
// of one core's work, so a convolution splits from ~1 M multiply-adds (~20 us) on: of ResNet-18 at 64x64 and batch 1
// (0.3-1.8 M) only the 7x7 stem takes two threads, at batch 8 all do (docs/cpu.md, "Threads").
constexpr double kMinMacsPerThread = 1 << 19;
// kMinMacsPerThread, or the environment variable KILN_MIN_MACS_PER_THREAD when set (for experiments; read once).
double min_macs_per_thread();
// The value for that variable's text `e` (nullptr: unset): a number >= 1, else kMinMacsPerThread with a warning.
double min_macs_from(const char* e);
// The same rule for the direct convolution's padded copy of its input: floats per thread.
constexpr double kMinCopyPerThread = 1 << 14;

// While alive, loops started on this thread run inline (one thread). The builder times tactics in one: the thread
// split is a fixed rule of the shapes, the same for every candidate (threads_for_work), so one thread ranks the
// kernels, and a second thread's timing on a busy machine mostly measures when the other core was free.
class InlineScope {
 public:
  InlineScope();
  ~InlineScope();
  InlineScope(const InlineScope&) = delete;
  InlineScope& operator=(const InlineScope&) = delete;

 private:
  bool prev_;
};

// Loops handed to the pool so far in this process (not those run inline): lets tests check that small work stays
// on the calling thread.
uint64_t pool_loops_run();

// Runs fn(begin, end) over [0, n) split for `threads` threads (up to 4 chunks each, claimed as threads come
// free); threads <= 1 runs it inline on the calling thread.
void parallel_for_threads(int64_t n, int64_t threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace kiln::runtime::cpu
