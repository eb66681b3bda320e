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

struct BuildConfig {
  Target target = Target::Cpu;
  int device = 0;  // CUDA ordinal when target == Cuda
  Precision precision = Precision::FP32;
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
};

// Imports nothing: `model` is already parsed. Runs the pass pipeline per profile, picks tactics and
// returns the engine. Throws kiln::Error on failure.
Engine build_engine(const Model& model, const BuildConfig& config);

}  // namespace kiln
