// The builder's "tactics" step on the CPU: for every profile and node, the candidate tactics
// (runtime/cpu/cpu_tactics.h) are looked up in the timing cache, or timed on the node's real inputs at that profile's
// opt shapes, and the winner is recorded in the profile's tactic list and the cache (docs/cpu.md). A node whose
// signature under a profile equals an earlier profile's (static inputs, equal opt shapes) takes that choice again.
//
// Candidates are timed on one thread (runtime::cpu::InlineScope): the thread split of a node is a fixed rule of its
// shapes, the same whatever the tactic, and a second thread's timing on a busy machine measures the scheduler.
// Timing runs the graph once, node by node, on random non-zero inputs (floats in [-1, 1), integers 0 or 1, inputs
// with a default take their default). A node with several candidates runs each once (warm-up), then all of them in
// rounds, one run each per round (at least min_runs rounds and min_total_ms per candidate, at most max_runs), so a
// change of load on a shared machine hits every candidate alike; the lower quartile of the rounds counts (load only
// ever adds time), and the winner's outputs feed the next nodes. A candidate replaces the current choice only when
// its quartile is more than `tie` below it, so ties go to the heuristic (the first candidate). A candidate whose
// warm-up is `cutoff` times slower than the best warm-up, twice (one slow run may be a preemption), is not run
// again, and "ref" is skipped where a faster candidate's warm-up already took more than
// `ref_budget_ms`. A warm cache times nothing: when every node with several candidates has a timed cache entry,
// the graph is not run at all.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "builder/timing_cache.h"
#include "ir/graph.h"
#include "kiln/builder.h"
#include "kiln/engine.h"
#include "kiln/profile.h"
#include "runtime/cpu/cpu_tactics.h"

namespace kiln::builder {

struct TacticTimingOptions {
  bool time = true;          // false (optimization_level 0): the heuristic candidate, nothing timed
  int min_runs = 5;
  int max_runs = 50;
  double min_total_ms = 2.0;
  double tie = 0.05;         // a challenger must be > 5% faster than the current choice
  double cutoff = 3.0;       // a warm-up this many times slower than the current choice ends a candidate
  // "ref" (the naive oracle kernel) is not run where another candidate already took longer than this: on such nodes
  // it is 10x to 100x slower and cannot win, and running it once would cost seconds on real models. < 0: always run.
  double ref_budget_ms = 0.5;
};

// Chooses every node's tactic for every profile: `per_profile` receives one list per profile (cleared when all
// agree, see set_profile_tactics) and node.tactic profile 0's choice. Fills stats.tactics_timed /
// timing_cache_hits / timing_cache_misses (summed over the profiles). `cache` may be null (no timing cache);
// `inputs` are the engine's inputs and `profiles` give their opt shapes (none: static shapes, unknown dims as 1).
// `progress(done, total)` is called now and then.
void choose_cpu_tactics(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles,
                        TimingCache* cache, const std::string& target, const TacticTimingOptions& opt,
                        BuildStats& stats, std::vector<std::vector<std::string>>& per_profile,
                        const std::function<void(size_t, size_t)>& progress = nullptr);

namespace tactic_timing_impl {
// One node's timing (exposed for tests): `best` indexes `cands`, `ms` holds per candidate the lower quartile of its
// rounds (or the warm-up time of one cut off; +inf when it failed), `outs` the winner's outputs.
struct Choice {
  size_t best = 0;
  std::vector<double> ms;
  std::vector<Tensor> outs;
};
Choice time_candidates(const ir::Node& n, const std::vector<runtime::cpu::Tactic>& cands,
                       const std::vector<const Tensor*>& ins, const TacticTimingOptions& opt);
}  // namespace tactic_timing_impl

}  // namespace kiln::builder
