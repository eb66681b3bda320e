// The builder's timing harness for CUDA tactics (docs/cuda.md, "Timed tactics"): one node at a time, on device
// buffers of its input / output / workspace types filled with random data, each candidate tactic (and each variant of
// a library tactic: cuBLASLt's heuristic top-N, cuDNN's algorithm list, tactic_variant.h) run and timed with CUDA
// events on the harness's own stream and library handles. Mirrors the CPU timing (builder/tactic_timing.h): warm-up
// runs, a cut-off for candidates far behind, timed rounds (one sample of every candidate per round), the median, ties
// within `tie` to the heuristic's first choice. Host C++; needs the device.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::runtime::cuda {

struct BenchOptions {
  int min_runs = 5;            // samples per candidate, at least
  int max_runs = 50;           // and at most
  double min_total_ms = 2.0;   // keep sampling until every candidate has run this long (within max_runs)
  double tie = 0.05;           // a challenger must be more than 5% faster than the current best
  double cutoff = 3.0;         // a warm-up this many times slower than the best warm-up ends a candidate
  size_t variants = 8;         // variants listed per library tactic (the plain name is the first)
  bool check_outputs = true;   // a candidate whose output differs from the heuristic's beyond the tolerance loses
};

struct NodeTiming {
  std::vector<std::string> candidates;  // tactic names, heuristic first ("cublaslt", "cublaslt#<algo>", "cuda", ...)
  // Per candidate: the median ms of one run; the warm-up time for one cut off; +inf when it failed or was rejected.
  std::vector<double> ms;
  std::vector<std::string> notes;       // per candidate: why it was dropped ("" when it was timed)
  size_t best = 0;                      // index of the winner
  bool timed = false;                   // false: the node could not be timed (shapes not static, ...): keep heuristic
  std::string line() const;             // "cublaslt 12.3 us, cublaslt#0a1b.. 11.9 us, cuda 310 us (cut off)"
};

class TacticBench {
 public:
  // Makes `device` current and creates a stream and cuBLASLt / cuDNN handles (Cuda error when that fails).
  TacticBench(int device, bool allow_tf32, size_t workspace_cap);
  ~TacticBench();
  TacticBench(const TacticBench&) = delete;
  TacticBench& operator=(const TacticBench&) = delete;

  // Times node `n` at these static types. `host_in`: per input its host value when known (copied to the device; the
  // rest is random). `tactics`: the base names of the CUDA tactics that support the node, heuristic order.
  NodeTiming time_node(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>& out,
                       const std::vector<const Tensor*>& host_in, const std::vector<std::string>& tactics,
                       const BenchOptions& opt);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::runtime::cuda
