// kiln — EngineBackend: AITune's TensorRT backend contract (lifecycle, config, profiles, cache, checkpoint, deploy)
// on kiln's own engine. docs/backend.md maps every AITune method and config field to this class.
//
// Lifecycle (AITune's BackendState):
//   INIT --build--> ACTIVE <--deactivate / activate--> INACTIVE
//   load(checkpoint) -> CHECKPOINT_LOADED --deploy--> DEPLOYED (never deactivated);  CHECKPOINT_LOADED --activate--> ACTIVE
// Illegal calls throw kiln::Error(InvalidState) with AITune's wording. infer() is thread-safe: concurrent calls run
// in parallel on per-thread execution contexts that share one Engine.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/backend_config.h"
#include "kiln/engine.h"
#include "kiln/graph_spec.h"
#include "kiln/model.h"
#include "kiln/profile.h"

namespace kiln {

enum class BackendState { Init, Active, Inactive, CheckpointLoaded, Deployed };
// "INIT", "ACTIVE", "INACTIVE", "CHECKPOINT_LOADED", "DEPLOYED"
const char* backend_state_name(BackendState s);

// Memory seen by the backend's monitor. -1: not measured (device memory in a CPU-only run, or before a build).
struct MemoryStats {
  int64_t build_peak_rss_bytes = -1;     // peak host RSS while build() ran
  int64_t build_peak_device_bytes = -1;  // peak device memory in use while build() ran (CUDA only)
  int64_t infer_peak_rss_bytes = -1;     // peak host RSS while at least one inference was in flight
  int64_t infer_peak_device_bytes = -1;  // peak device memory in use during inference (CUDA only)
  int64_t process_peak_rss_bytes = -1;   // the process's peak RSS so far (VmHWM)
  uint64_t inferences = 0;               // completed infer() calls since the last activation
  uint64_t max_in_flight = 0;            // most infer() calls seen executing at the same time
};

class EngineBackend {
 public:
  // Validates the config (InvalidArgument, as AITune's __post_init__ checks).
  explicit EngineBackend(EngineBackendConfig config = {});
  ~EngineBackend();
  EngineBackend(EngineBackend&&) noexcept;
  EngineBackend& operator=(EngineBackend&&) noexcept;
  EngineBackend(const EngineBackend&) = delete;
  EngineBackend& operator=(const EngineBackend&) = delete;

  // INIT only. `device`: "cpu", "cuda" or "cuda:N" (Unsupported / InvalidArgument when this build or machine has no
  // such device). Writes cache_dir/{config.json, build.log, report.json, model.onnx, engine.kiln, profiles.json}
  // atomically; reuses the cached engine when its key (model content hash, config key, kiln build id, target,
  // profiles) matches; runs the correctness gate on a fresh engine (Correctness when it fails). Ends ACTIVE. On
  // failure the state stays INIT and cache_dir is untouched.
  EngineBackend& build(const Model& model, const GraphSpec& spec, const std::vector<Sample>& samples,
                       const std::string& device, const std::string& cache_dir);
  // INACTIVE / CHECKPOINT_LOADED -> ACTIVE (reloads the plan from disk); no-op when ACTIVE.
  void activate();
  // ACTIVE -> INACTIVE: waits for in-flight inferences, then releases the engine and every execution context;
  // no-op when INACTIVE.
  void deactivate();
  // CHECKPOINT_LOADED -> DEPLOYED on `device` (the stored device when none is given).
  void deploy(const std::optional<std::string>& device = std::nullopt);
  // ACTIVE or DEPLOYED. Inputs by name; returns every output by name (fresh tensors). Thread-safe.
  TensorMap infer(const TensorMap& inputs);

  // The profiles build() would use (AITune's get_profiles): the config's list verbatim (each must name exactly the
  // model's tensor inputs), else Single or SamplesUsed from the spec and samples; declared dimension ranges in the
  // spec make one profile from them.
  std::vector<Profile> get_profiles(const GraphSpec& spec, const std::vector<Sample>& samples) const;

  // "EngineBackend_" + config().key()
  std::string key() const;
  // "EngineBackend(" + config().describe() + ")"
  std::string describe() const;
  std::string name() const { return "EngineBackend"; }
  // "cpu" / "cuda:N"; "" before a build or load.
  std::string device() const;
  bool is_active() const;
  BackendState state() const;
  const EngineBackendConfig& config() const;
  const GraphSpec& graph_spec() const;
  // The engine while ACTIVE or DEPLOYED (InvalidState otherwise).
  Engine engine() const;
  // Absolute paths of the artifacts ("" before a build or load).
  std::string engine_path() const;
  std::string profiles_path() const;
  // The optimization profiles as stored in profiles.json (empty when it could not be read).
  const std::vector<Profile>& profiles() const;

  // Checkpoint state (AITune's to_dict) as JSON text: type, engine_path, optimization_profiles_path, output_object
  // (output names, dtypes and shapes), graph_spec, device, quantization_config, config, use_cuda_graphs. Paths are
  // absolute here; relative to the folder inside a checkpoint.
  std::string to_dict() const;
  // A backend in CHECKPOINT_LOADED from that JSON; relative paths are resolved against `base_dir`.
  static EngineBackend from_dict(const std::string& state_json, const std::string& base_dir = "");
  // Writes a self-contained checkpoint folder: the cache artifacts, backend.json (to_dict with relative paths) and
  // SHA256SUMS, atomically (temp folder + rename). Io when `dir` exists and `overwrite` is false.
  void save(const std::string& dir, bool overwrite = false) const;
  // Verifies every hash in SHA256SUMS (Integrity naming the file), rebases the paths onto `dir` wherever the folder
  // now is, and returns a backend in CHECKPOINT_LOADED.
  static EngineBackend load(const std::string& dir);

  // Monitoring: memory peaks and inference counters, and the last build's report.json text ("" before a build).
  MemoryStats memory_stats() const;
  std::string build_report() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
