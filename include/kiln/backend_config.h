// kiln — EngineBackendConfig: AITune's TensorRTBackendConfig (fields, order, defaults, JSON and key) for
// kiln::EngineBackend. C++ has no dict: to_dict()/from_dict() exchange the dict as JSON text, serialized exactly
// like Python's json.dumps, so key() equals AITune's key for the same settings. docs/backend.md maps every field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kiln/profile.h"

namespace kiln {

// How optimization profiles are made when the config gives no list (AITune's ProfileMode).
enum class ProfileMode {
  Single,       // "single": one profile, min = smallest seen, opt = max = largest seen (default)
  SamplesUsed,  // "samples_used": one exact profile per distinct sample shape set, first-seen order
};
// "single" / "samples_used" (the enum's value in AITune's JSON).
const char* profile_mode_value(ProfileMode m);
// "ProfileMode.SINGLE" / "ProfileMode.SAMPLES_USED" (Python's str() of the enum, used by describe()).
const char* profile_mode_str(ProfileMode m);
// InvalidArgument "'x' is not a valid ProfileMode" for anything but the two values.
ProfileMode profile_mode_from_value(const std::string& value);

// AITune's ONNXAutoCastConfig: an FP16 / BF16 engine from the FP32 model.
struct AutoCastConfig {
  std::string precision = "fp16";  // "fp16" | "bf16"
  bool keep_io_types = true;       // inputs and outputs stay in the model's dtypes
  bool operator==(const AutoCastConfig&) const = default;
};
// AITune's ONNXQuantizationConfig (post-training quantization of the ONNX model). Accepted, serialized and
// hashed; a build with it fails with Unsupported until kiln has quantized kernels.
struct OnnxQuantizationConfig {
  std::string precision;                          // "int8" | "int4" | "fp8" (required)
  std::string calibration_method;  // "" (None) | max | entropy | awq_clip | awq_lite | awq_full | rtn_dq
  bool use_model_opt_post_processing = false;
  bool operator==(const OnnxQuantizationConfig&) const = default;
};
// AITune's TorchQuantizationConfig (ModelOpt presets on a PyTorch module). Accepted for round trips of AITune
// configs; kiln has no PyTorch path, so a build with it fails with Unsupported.
struct TorchQuantizationConfig {
  std::string quantization_config = "FP8_DEFAULT_CFG";
  std::string device = "cuda";
  bool operator==(const TorchQuantizationConfig&) const = default;
};
using QuantizationConfig =
    std::variant<std::monostate, AutoCastConfig, OnnxQuantizationConfig, TorchQuantizationConfig>;

// AITune's class name of the config kind ("" for none), e.g. "ONNXAutoCastConfig".
std::string quantization_type_name(const QuantizationConfig& q);

// Fields in AITune's declaration order with AITune's defaults.
struct EngineBackendConfig {
  bool use_dynamo = true;                   // PyTorch export path only: kiln has none yet (no effect)
  std::optional<int64_t> workspace_size;    // per-node scratch memory cap in bytes (none: no cap)
  std::optional<int64_t> opset_version;     // PyTorch export path only (no effect)
  std::optional<int64_t> optimization_level;   // 0..5; none = the builder's default (3); 0 is honoured
  std::optional<int64_t> compatibility_level;  // CUDA plans: may the plan load on another GPU of the family
  std::string timing_cache;                 // timing cache file ("" = none, null in the JSON): loaded, merged and
                                            // written back by the builder
  std::variant<ProfileMode, std::vector<Profile>> profiles = ProfileMode::Single;
  std::string device = "cuda";              // recorded only (as in AITune): build(device) decides
  QuantizationConfig quantization_config;   // none | AutoCast | quantization (not yet supported)
  bool enable_tf32 = true;                  // FP32 GEMM-like ops may use TF32 on CUDA
  bool use_cuda_graphs = false;             // CUDA executor only; no effect on the CPU

  // AITune's to_dict() as JSON text (json.dumps format, field order, profiles as "single" / "samples_used" or a
  // list of {name: [min, opt, max]}, quantization_config as {"_type": ..., fields...} or null).
  std::string to_dict() const;
  // Accepts that JSON; missing keys take their defaults. InvalidArgument names an unknown key, a wrong type or a
  // bad value ("Unknown quantization_config type: ..." for an unknown _type).
  static EngineBackendConfig from_dict(const std::string& json);
  // json.dump(to_dict(), indent=2) into `path` (atomic write; Io on failure).
  void to_json(const std::string& path) const;
  // sha256 hex of to_dict() serialized like json.dumps (AITune's BackendConfig.key()).
  std::string key() const;
  // The fields that differ from a default config, in declaration order, "name=value" joined by "," with
  // Python's str() of each value, e.g. "use_dynamo=False,profiles=ProfileMode.SAMPLES_USED".
  std::string describe() const;
  // InvalidArgument for a bad sub-config (AITune's __post_init__ checks): "Unsupported autocast precision: x",
  // "Unsupported precision: x", "Unsupported calibration_method: x", "Unsupported quantization_config: x",
  // negative sizes or levels.
  void validate() const;
  bool operator==(const EngineBackendConfig& o) const;
};

}  // namespace kiln
