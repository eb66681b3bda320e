#include "backend/engine_cache.h"

#include <memory>

#include "backend/profile_json.h"
#include "ir/op_registry.h"
#include "plan/plan.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"

namespace kiln::backend {

std::string EngineKey::key() const { return util::sha256_hex(pyjson::dumps(to_json())); }

pyjson::Json EngineKey::to_json() const {
  pyjson::Json o = pyjson::Json::object();
  o["model_hash"] = model_hash;
  o["config_key"] = config_key;
  o["build_id"] = build_id;
  o["target"] = target;
  o["profiles_hash"] = profiles_hash;
  return o;
}

std::optional<EngineKey> EngineKey::from_json(const pyjson::Json& j) {
  if (!j.is_object()) return std::nullopt;
  EngineKey k;
  for (auto [name, field] : {std::pair<const char*, std::string*>{"model_hash", &k.model_hash},
                             {"config_key", &k.config_key},
                             {"build_id", &k.build_id},
                             {"target", &k.target},
                             {"profiles_hash", &k.profiles_hash}}) {
    if (!j.contains(name) || !j[name].is_string()) return std::nullopt;
    *field = j[name].get<std::string>();
  }
  return k;
}

std::string EngineKey::diff_from(const EngineKey& old) const {
  std::string out;
  auto cmp = [&](const char* name, const std::string& was, const std::string& now) {
    if (was != now) out += std::string(out.empty() ? "" : ", ") + name + " changed (" + was + " -> " + now + ")";
  };
  cmp("model_hash", old.model_hash, model_hash);
  cmp("config_key", old.config_key, config_key);
  cmp("build_id", old.build_id, build_id);
  cmp("target", old.target, target);
  cmp("profiles_hash", old.profiles_hash, profiles_hash);
  return out;
}

std::string EngineKey::hash_profiles(const std::vector<Profile>& profiles) {
  return util::sha256_hex(pyjson::dumps(profiles_to_json(profiles)));
}

Engine load_plan_verified(const std::string& path, const std::string& expected_sha, std::string* sha_out) {
  if (!util::file_exists(path)) KILN_THROW(Io, "engine file not found: " << path);
  auto bytes = std::make_shared<const std::string>(util::read_file(path));
  if (bytes->empty()) KILN_THROW(Integrity, "engine file is empty: " << path);
  const std::string sha = util::sha256_hex(*bytes);
  if (!expected_sha.empty() && sha != expected_sha)
    KILN_THROW(Integrity, "engine file '" << path << "' has sha256 " << sha << ", expected " << expected_sha);
  if (sha_out) *sha_out = sha;
  ir::register_all_ops();  // the runtime resolves each node's kernel through the registry
  return Engine(plan::deserialize(bytes, path));
}

std::optional<CachedEngine> find_cached_engine(const std::string& cache_dir, const EngineKey& key,
                                               const std::vector<Profile>& profiles) {
  const std::string report_path = util::join_path(cache_dir, "report.json");
  const std::string engine_path = util::join_path(cache_dir, "engine.kiln");
  if (!util::file_exists(report_path) || !util::file_exists(engine_path)) {
    KILN_INFO("engine cache miss in '" << cache_dir << "': no cached engine");
    return std::nullopt;
  }
  pyjson::Json report;
  try {
    report = pyjson::parse(util::read_file(report_path), report_path);
  } catch (const Error& e) {
    KILN_WARN("engine cache: '" << report_path << "' is unreadable (" << e.what() << "): rebuilding");
    return std::nullopt;
  }
  std::optional<EngineKey> old = EngineKey::from_json(report.is_object() ? report.value("engine_key", pyjson::Json()) : pyjson::Json());
  if (!old || !report.value("success", false)) {
    KILN_INFO("engine cache miss in '" << cache_dir << "': report.json records no successful build");
    return std::nullopt;
  }
  const std::string changed = key.diff_from(*old);
  if (!changed.empty()) {
    KILN_INFO("engine cache miss in '" << cache_dir << "': " << changed);
    return std::nullopt;
  }
  std::string expected_sha;
  const pyjson::Json arts = report.value("artifacts", pyjson::Json::object());
  if (arts.is_object() && arts.contains("engine.kiln") && arts["engine.kiln"].is_object())
    expected_sha = arts["engine.kiln"].value("sha256", "");
  try {
    if (expected_sha.empty()) KILN_THROW(Integrity, "report.json records no sha256 for engine.kiln");
    CachedEngine c;
    c.engine = load_plan_verified(engine_path, expected_sha, &c.sha256);
    const std::string profiles_path = util::join_path(cache_dir, "profiles.json");
    std::vector<Profile> stored = profiles_from_json(pyjson::parse(util::read_file(profiles_path), profiles_path), "profiles.json");
    if (!(stored == profiles) || !(c.engine.profiles() == profiles))
      KILN_THROW(Integrity, "profiles.json or the plan's profiles differ from the build's profiles");
    return c;
  } catch (const Error& e) {
    KILN_WARN("engine cache: the cached plan '" << engine_path << "' is unusable (" << error_code_name(e.code()) << ": "
                                                << e.what() << "): rebuilding");
    return std::nullopt;
  }
}

}  // namespace kiln::backend
