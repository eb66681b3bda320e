// The builder's "tactics" step for Target::Cuda (docs/cuda.md, "Timed tactics"). Per node the candidate CUDA
// tactics come from runtime/cuda/tactic_select.h (heuristic order, workspace within the cap, then "host"). For each
// profile, the GEMM-like nodes (MatMul, Gemm, Conv, ConvTranspose) are looked up in the timing cache, or, when the
// build host has the GPU and timing is on, timed at that profile's opt shapes with every candidate and variant
// (runtime/cuda/tactic_bench.h); the winner goes into the profile's tactic list and the cache. A node whose
// signature under a profile equals its signature under an earlier one (static shapes, equal opt shapes) takes the
// earlier choice without a second lookup or timing. Every other node, and every node of a build without a GPU, keeps
// the heuristic choice (a cache entry naming another candidate still applies). A warm cache times nothing: the
// device is not even touched.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "builder/timing_cache.h"
#include "ir/graph.h"
#include "kiln/builder.h"
#include "kiln/profile.h"

namespace kiln::builder {

struct CudaTacticOptions {
  bool time = false;         // a GPU at `device` and optimization_level > 0
  int device = 0;
  bool allow_tf32 = false;   // BuildConfig::enable_tf32
  size_t workspace_cap = 0;  // BuildConfig::workspace_size
  size_t variants = 8;       // library variants per tactic (cuda_variant_breadth)
  // Device-time samples (each behind a spin kernel, tactic_bench.cpp) vary little: a few suffice, and each costs
  // its spin as well as its runs.
  int min_runs = 5;
  int max_runs = 15;
  double min_total_ms = 0.3;
  double tie = 0.05;
  double cutoff = 3.0;
};

// Variants listed per library tactic at an optimization level: 4 at levels 1 and 2, 8 at 3, 16 at 4, 32 at 5.
size_t cuda_variant_breadth(int optimization_level);

// The signature suffix of CUDA timings: the build options that change which candidates exist and how fast they are
// (" | cuda tf32", " | cuda ws<=N").
std::string cuda_signature_suffix(bool allow_tf32, size_t workspace_cap);

// Chooses every node's tactic for every profile from `candidates` (one list per node, as cuda_tactic_candidates
// gives): `per_profile` receives one list per profile (see set_profile_tactics: cleared when all profiles agree) and
// node.tactic profile 0's choice. Fills stats.tactics_timed, tactic_candidates_timed (summed over the profiles),
// timing_cache_hits and timing_cache_misses (per node and distinct signature). `cache` may be null.
void choose_cuda_tactics(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles,
                         const std::vector<std::vector<std::string>>& candidates, TimingCache* cache,
                         const std::string& target, const CudaTacticOptions& opt, BuildStats& stats,
                         std::vector<std::vector<std::string>>& per_profile,
                         const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace kiln::builder
