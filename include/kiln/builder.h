// kiln — building an engine plan from a model.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/model.h"
#include "kiln/profile.h"

namespace kiln {

enum class Target { Cpu, Cuda };
enum class Precision { FP32, FP16, BF16 };

const char* target_name(Target t);
const char* precision_name(Precision p);

// What a build did, for reports (the backend's report.json). Filled when BuildConfig::stats is set.
struct BuildStats {
  std::vector<std::string> passes_run;      // every pass the pipeline ran, in order
  std::vector<std::string> passes_changed;  // those that changed the graph
  size_t nodes = 0;                         // nodes of the built graph
  size_t tactics_timed = 0;                 // nodes whose tactic was chosen by timing candidates
  size_t timing_cache_hits = 0;             // nodes whose tactic came from the timing cache
  size_t timing_cache_misses = 0;           // nodes the timing cache did not know (recorded into it)
  std::string timing_cache;                 // what happened to the cache file ("" when none was given)
  size_t tactic_candidates_timed = 0;       // candidates measured, summed over the timed nodes
  // Wall time of the build's phases in seconds: profiles (resolution and input specialization), passes (the
  // pipeline, autocast included), tactics (timing-cache lookups and timing, cache write-back), and the whole build.
  double profiles_s = 0, passes_s = 0, tactics_s = 0, total_s = 0;
};

struct BuildConfig {
  Target target = Target::Cpu;
  int device = 0;  // CUDA ordinal when target == Cuda
  // FP16 / BF16: the autocast pass makes the graph strongly typed in that type; normalizations, softmax, sum-like
  // reductions and Exp/Log/Pow stay float32 (docs/precision.md).
  Precision precision = Precision::FP32;
  // Low precision only. true: float32 inputs and outputs stay float32 (Casts inside the engine); false: they take
  // the low type, and callers pass and receive float16 / bfloat16 tensors.
  bool keep_io_types = true;
  // Low precision only. Op types ("Conv") or node names forced to float32.
  std::vector<std::string> keep_fp32;
  bool enable_tf32 = true;
  // One or more profiles. Empty: one profile from the model's static shapes; dynamic dims then
  // default to 1 with a warning.
  std::vector<Profile> profiles;
  // 0 = no optional passes and heuristic tactics; higher = more passes / more tactics timed.
  int optimization_level = 3;
  // Cap on per-node scratch memory in bytes (0 = no cap).
  size_t workspace_size = 0;
  // Path of a timing cache file to load and update ("" = none).
  std::string timing_cache_path;
  // ONNX IR >= 4 inputs that are also initializers are overridable inputs with a default (TensorInfo::has_default).
  // true: treat their defaults as constants instead (they stop being inputs), which lets folding passes use them.
  bool freeze_input_defaults = false;
  // Called during the build with a fraction in [0,1] and a step name.
  std::function<void(double, const std::string&)> progress;
  // When set, receives what the build did.
  BuildStats* stats = nullptr;
};

// Imports nothing: `model` is already parsed. Runs the pass pipeline per profile, picks tactics and
// returns the engine. Throws kiln::Error on failure.
Engine build_engine(const Model& model, const BuildConfig& config);

}  // namespace kiln
