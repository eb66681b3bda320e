// EngineBackend's state, shared by backend.cpp (lifecycle, inference), backend_build.cpp (build), state_dict.cpp
// and checkpoint.cpp.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backend/memory_monitor.h"
#include "kiln/backend.h"

namespace kiln {

struct EngineBackend::Impl {
  EngineBackendConfig config;

  // What a build or a checkpoint load sets; changed only by transitions (under life_mu).
  GraphSpec spec;
  std::string device;         // "cpu" / "cuda:N"; "" before a build or load
  std::string artifact_dir;   // absolute: the cache_dir or the checkpoint folder
  std::string engine_path;    // absolute
  std::string profiles_path;  // absolute
  std::string engine_sha256;  // of engine.kiln as built or as SHA256SUMS lists it
  std::vector<TensorInfo> outputs;  // output_object: names, dtypes, dims
  std::vector<Profile> profiles;    // profiles.json
  std::string report_json;          // the last build's report.json
  int64_t build_peak_rss = -1, build_peak_device = -1;

  // Transitions (build, activate, deactivate, deploy) run one at a time.
  std::mutex life_mu;
  // Guards the fields below; never held while an engine runs.
  mutable std::mutex mu;
  std::condition_variable idle_cv;
  BackendState state = BackendState::Init;
  std::optional<Engine> engine;
  std::vector<std::unique_ptr<ExecutionContext>> pool;  // idle contexts; infer() takes one per call
  uint64_t in_flight = 0, max_in_flight = 0, inferences = 0;
  std::unique_ptr<backend::MemorySampler> infer_sampler;
  int64_t infer_peak_rss = -1, infer_peak_device = -1;  // kept from the last activation

  // Loads engine_path (verifying engine_sha256 when known) and profiles.json, checks the plan can run on `dev`,
  // and makes the backend ready to infer. Caller holds life_mu.
  void load_and_start(const std::string& dev);
  // Starts serving `e` (a freshly built engine) on `dev`. Caller holds life_mu.
  void start(Engine e, const std::string& dev);
};

}  // namespace kiln
