// EngineBackend::build: device check, profiles, engine reuse from cache_dir, engine build, correctness gate, and the
// pinned cache layout written atomically (staging folder + rename).
#include <filesystem>

#include "backend/backend_impl.h"
#include "backend/build_report.h"
#include "backend/config_json.h"
#include "backend/correctness_gate.h"
#include "backend/device_spec.h"
#include "backend/engine_cache.h"
#include "backend/profile_derivation.h"
#include "backend/profile_json.h"
#include "backend/samples.h"
#include "backend/testing_hooks.h"
#include "kiln/builder.h"
#include "kiln/compare.h"
#include "kiln/version.h"
#include "onnx/model_impl.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"

namespace kiln {
namespace backend::build_impl {

namespace fs = std::filesystem;

// The files of the pinned cache layout (DESIGN.md), in the order they are listed.
const char* const kLayout[] = {"config.json", "build.log", "report.json", "model.onnx", "engine.kiln", "profiles.json"};

BuildConfig builder_config(const EngineBackendConfig& c, const DeviceSpec& d, const std::vector<Profile>& profiles) {
  BuildConfig b;
  b.target = d.target;
  b.device = d.ordinal;
  b.enable_tf32 = c.enable_tf32;
  b.profiles = profiles;
  if (c.optimization_level) b.optimization_level = static_cast<int>(*c.optimization_level);
  if (c.workspace_size) b.workspace_size = static_cast<size_t>(*c.workspace_size);
  b.timing_cache_path = c.timing_cache;
  if (const auto* a = std::get_if<AutoCastConfig>(&c.quantization_config)) {
    b.precision = a->precision == "bf16" ? Precision::BF16 : Precision::FP16;
    b.keep_io_types = a->keep_io_types;
  }
  return b;
}

void check_supported(const EngineBackendConfig& c) {
  if (std::holds_alternative<OnnxQuantizationConfig>(c.quantization_config) ||
      std::holds_alternative<TorchQuantizationConfig>(c.quantization_config))
    KILN_THROW(Unsupported, "quantization_config " << quantization_type_name(c.quantization_config)
                                                   << " is not yet supported by kiln (no quantized kernels yet); use "
                                                      "ONNXAutoCastConfig or none");
}

void check_spec(const GraphSpec& spec, const Model& model) {
  const auto& ins = model.inputs();
  bool same = spec.inputs.size() == ins.size();
  for (size_t i = 0; same && i < ins.size(); ++i) same = spec.inputs[i].name == ins[i].name && spec.inputs[i].dtype == ins[i].dtype;
  if (!same)
    KILN_THROW(InvalidArgument, "the graph spec's inputs do not match the model's inputs (make it with GraphSpec::from_model)");
}

Tolerance gate_tolerance(const Engine& e, const DeviceSpec& d, const EngineBackendConfig& c) {
  if (e.precision() == "fp32" && d.target == Target::Cuda && c.enable_tf32) return tolerance_for("tf32");
  return tolerance_for(e.precision());
}

// model.onnx beside the engine: the bytes Model::from_bytes parsed, or a copy of the file Model::load read.
void write_model_copy(const Model& model, const std::string& path) {
  const auto& mi = *model.impl();
  if (mi.source_bytes) {
    util::write_file_atomic(path, *mi.source_bytes);
  } else if (!mi.source_path.empty() && util::file_exists(mi.source_path)) {
    util::write_file_atomic(path, util::read_file(mi.source_path));
  } else {
    KILN_WARN("model.onnx not written: the model's source ('" << mi.source_path << "') is gone");
  }
}

pyjson::Json artifact_entry(const std::string& path) {
  pyjson::Json o = pyjson::Json::object();
  std::string bytes = util::read_file(path);
  o["bytes"] = bytes.size();
  o["sha256"] = util::sha256_hex(bytes);
  return o;
}

struct Outcome {
  Engine engine;
  std::string engine_sha;
  std::vector<Profile> profiles;
  std::string report;
};

Outcome run_build(const EngineBackendConfig& config, const std::string& describe, const std::string& backend_key,
                  const Model& model, const GraphSpec& spec, const std::vector<Sample>& samples, const DeviceSpec& dev,
                  const std::string& cache_dir, BuildRecorder& rec) {
  Outcome out;
  rec.fields()["backend"] = describe;
  rec.fields()["key"] = backend_key;
  rec.fields()["config"] = config_to_json(config);
  rec.fields()["kiln_version"] = version();
  rec.fields()["build_id"] = build_id();
  rec.fields()["device"] = dev.str();
  rec.fields()["log_file"] = "build.log";

  rec.step("profiles", [&](pyjson::Json& f) {
    check_spec(spec, model);
    check_samples(samples, model.inputs());
    out.profiles = derive_profiles(config, spec, samples);
    f["num_optimization_profiles"] = out.profiles.size();
    f["profiles"] = profiles_to_json(out.profiles);
  });
  EngineKey key{model.content_hash(), config.key(), build_id(), target_identity(dev), EngineKey::hash_profiles(out.profiles)};
  rec.fields()["engine_key"] = key.to_json();
  rec.fields()["engine_key"]["key"] = key.key();

  std::optional<CachedEngine> cached;
  rec.step("engine cache lookup", [&](pyjson::Json& f) {
    cached = find_cached_engine(cache_dir, key, out.profiles);
    f["hit"] = cached.has_value();
  });
  rec.fields()["engine_reused"] = cached.has_value();

  if (cached) {
    // Reuse: no pass runs, no tactic is timed. Only report.json and build.log are rewritten.
    out.engine = cached->engine;
    out.engine_sha = cached->sha256;
    rec.fields()["passes_run"] = pyjson::Json::array();
    rec.fields()["tactics_timed"] = 0;
    rec.fields()["gate"] = {{"cases", 0}, {"skipped", "engine reused: it passed the gate when it was built"}};
    pyjson::Json arts = pyjson::Json::object();
    for (const char* f : {"config.json", "model.onnx", "engine.kiln", "profiles.json"})
      if (util::file_exists(util::join_path(cache_dir, f))) arts[f] = artifact_entry(util::join_path(cache_dir, f));
    rec.fields()["artifacts"] = arts;
    rec.note("reused the cached engine (key " + key.key() + ")");
    out.report = rec.report(true, "");
    std::string old_log;
    try {
      old_log = util::read_file(util::join_path(cache_dir, "build.log"));
    } catch (const Error&) {
    }
    util::write_file_atomic(util::join_path(cache_dir, "report.json"), out.report);
    util::write_file_atomic(util::join_path(cache_dir, "build.log"), old_log + "--- reuse\n" + rec.log_text());
    return out;
  }

  const std::string staging = util::make_staging_dir(cache_dir);
  try {
    rec.step("write config", [&](pyjson::Json&) {
      config.to_json(util::join_path(staging, "config.json"));
      write_model_copy(model, util::join_path(staging, "model.onnx"));
    });
    BuildStats stats;
    rec.step("engine build", [&](pyjson::Json& f) {
      BuildConfig bc = builder_config(config, dev, out.profiles);
      bc.stats = &stats;
      out.engine = build_engine(model, bc);
      if (testing::fault() != testing::Fault::None) out.engine = testing::inject_fault(out.engine, testing::fault());
      f["passes_run"] = stats.passes_run;
      f["passes_changed"] = stats.passes_changed;
      f["nodes"] = stats.nodes;
      f["tactics_timed"] = stats.tactics_timed;
      f["timing_cache"] = stats.timing_cache;
      f["timing_cache_hits"] = stats.timing_cache_hits;
      f["timing_cache_misses"] = stats.timing_cache_misses;
      f["tactic_candidates_timed"] = stats.tactic_candidates_timed;
      // Per profile, the tactic of every GEMM-like node (the timed ones), and how many nodes differ across profiles.
      const std::vector<NodeInfo> nodes = out.engine.nodes();
      const size_t np = out.engine.profiles().size();
      pyjson::Json by_profile = pyjson::Json::array();
      size_t differ = 0;
      for (const NodeInfo& n : nodes) {
        bool d = false;
        for (const auto& t : n.profile_tactics) d |= t != n.tactic;
        differ += d;
      }
      for (size_t p = 0; p < np; ++p) {
        pyjson::Json m = pyjson::Json::object();
        for (size_t i = 0; i < nodes.size(); ++i) {
          const NodeInfo& n = nodes[i];
          if (!n.gemm_like) continue;
          m[n.name.empty() ? n.op + "_" + std::to_string(i) : n.name] =
              p < n.profile_tactics.size() ? n.profile_tactics[p] : n.tactic;
        }
        by_profile.push_back(m);
      }
      f["tactics_by_profile"] = by_profile;
      f["nodes_with_per_profile_tactics"] = differ;
      // Where the build's time went (seconds); the engine's serialization is the "save engine" step.
      pyjson::Json phases = pyjson::Json::object();
      phases["profiles"] = stats.profiles_s;
      phases["passes"] = stats.passes_s;
      phases["tactics"] = stats.tactics_s;
      phases["total"] = stats.total_s;
      f["phase_s"] = phases;
    });
    rec.fields()["passes_run"] = stats.passes_run;
    rec.fields()["tactics_timed"] = stats.tactics_timed;
    rec.step("correctness gate", [&](pyjson::Json& f) {
      const Tolerance tol = gate_tolerance(out.engine, dev, config);
      GateSummary g = run_correctness_gate(model, out.engine, spec, samples, tol);
      f["cases"] = g.cases;
      f["tolerance"] = tol.str();
      f["notes"] = g.notes;
      rec.fields()["gate"] = {{"cases", g.cases}, {"tolerance", tol.str()}, {"notes", g.notes}};
    });
    rec.step("save engine", [&](pyjson::Json& f) {
      const std::string bytes = out.engine.serialize();
      out.engine_sha = util::sha256_hex(bytes);
      util::write_file_atomic(util::join_path(staging, "engine.kiln"), bytes);
      util::write_file_atomic(util::join_path(staging, "profiles.json"), pyjson::dumps(profiles_to_json(out.profiles), 2) + "\n");
      f["engine_size_bytes"] = bytes.size();
      const std::string onnx = util::join_path(staging, "model.onnx");
      if (util::file_exists(onnx)) f["onnx_size_bytes"] = std::filesystem::file_size(onnx);
    });
    pyjson::Json arts = pyjson::Json::object();
    for (const char* f : {"config.json", "model.onnx", "engine.kiln", "profiles.json"})
      if (util::file_exists(util::join_path(staging, f))) arts[f] = artifact_entry(util::join_path(staging, f));
    rec.fields()["artifacts"] = arts;
    rec.note("writing the cache layout into '" + cache_dir + "'");
    out.report = rec.report(true, "");
    util::write_file_atomic(util::join_path(staging, "report.json"), out.report);
    util::write_file_atomic(util::join_path(staging, "build.log"), rec.log_text());
    util::replace_dir_atomic(staging, cache_dir, /*keep_foreign=*/true);
  } catch (...) {
    util::remove_tree_quiet(staging);
    throw;
  }
  return out;
}

}  // namespace backend::build_impl

EngineBackend& EngineBackend::build(const Model& model, const GraphSpec& spec, const std::vector<Sample>& samples,
                                    const std::string& device, const std::string& cache_dir) {
  if (!impl_) KILN_THROW(InvalidState, "EngineBackend was moved from");
  Impl& m = *impl_;
  std::lock_guard<std::mutex> life(m.life_mu);
  if (state() != BackendState::Init) KILN_THROW(InvalidState, "Backend " << name() << " build should be called only once");
  backend::NvtxRange range("build", backend::NvtxColor::Build);
  std::unique_ptr<backend::BuildRecorder> rec;
  try {
    if (!model.impl()) KILN_THROW(InvalidArgument, "build: the model is empty");
    if (cache_dir.empty()) KILN_THROW(InvalidArgument, "build: cache_dir is empty");
    const backend::DeviceSpec dev = backend::parse_device(device);
    backend::assert_device(dev);
    backend::build_impl::check_supported(m.config);
    rec = std::make_unique<backend::BuildRecorder>(describe(), backend::memory_device(dev));
    const std::string dir = std::filesystem::absolute(cache_dir).lexically_normal().string();
    // Inputs with initializer defaults may be left out of the samples: the defaults fill them in.
    const std::vector<Sample> full = backend::with_input_defaults(model, samples);
    backend::build_impl::Outcome out =
        backend::build_impl::run_build(m.config, describe(), key(), model, spec, full, dev, dir, *rec);
    m.spec = spec;
    m.artifact_dir = dir;
    m.engine_path = util::join_path(dir, "engine.kiln");
    m.profiles_path = util::join_path(dir, "profiles.json");
    m.engine_sha256 = out.engine_sha;
    m.outputs = out.engine.outputs();
    m.profiles = out.profiles;
    m.build_peak_rss = rec->peak_rss();
    m.build_peak_device = rec->peak_device();
    m.start(out.engine, dev.str());
    std::lock_guard<std::mutex> lk(m.mu);
    m.report_json = out.report;
    m.state = BackendState::Active;
  } catch (const std::exception& e) {
    KILN_LOG(LogLevel::Error, "Failed to build backend(" << name() << "): " << e.what());
    if (rec) {
      std::lock_guard<std::mutex> lk(m.mu);
      m.report_json = rec->report(false, e.what());
    }
    throw;
  }
  return *this;
}

}  // namespace kiln
