// Engine reuse in the backend's cache_dir: the reuse key (model content hash, config key, kiln build id, target,
// profiles) recorded in report.json, and verified loading of a cached plan.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "backend/python_json.h"
#include "kiln/engine.h"
#include "kiln/profile.h"

namespace kiln::backend {

struct EngineKey {
  std::string model_hash;     // Model::content_hash()
  std::string config_key;     // EngineBackendConfig::key()
  std::string build_id;       // kiln::build_id()
  std::string target;         // "cpu" / "cuda:<GPU name (sm_XX)>"
  std::string profiles_hash;  // sha256 of the profiles' JSON

  std::string key() const;  // sha256 over all fields
  pyjson::Json to_json() const;
  static std::optional<EngineKey> from_json(const pyjson::Json& j);
  // "config_key changed (a -> b), ..." for a miss; "" when equal.
  std::string diff_from(const EngineKey& old) const;
  static std::string hash_profiles(const std::vector<Profile>& profiles);
};

// A plan file read and verified: its sha256 equals `expected_sha` (when not ""), then its magic, version, build id,
// target and checksum. Io when missing; Integrity on a sha mismatch, empty or corrupt file; PlanMismatch as
// Engine::load. `sha_out` receives the file's sha256.
Engine load_plan_verified(const std::string& path, const std::string& expected_sha, std::string* sha_out);

struct CachedEngine {
  Engine engine;
  std::string sha256;
};
// The engine in `cache_dir` when report.json records `key`, engine.kiln matches the sha256 recorded there and loads,
// and profiles.json holds `profiles`. A miss returns nullopt, logged at info (which key field changed) or, for an
// unusable cached plan, as a warning ("... rebuilding").
std::optional<CachedEngine> find_cached_engine(const std::string& cache_dir, const EngineKey& key,
                                               const std::vector<Profile>& profiles);

}  // namespace kiln::backend
