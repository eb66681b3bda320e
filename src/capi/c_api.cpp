// The C API (include/kiln/c_api.h), part 1: the library, build configurations and engines. Every entry point
// catches every exception and turns it into a status code plus a thread-local message (docs/c-api.md).
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "capi/c_api_internal.h"
#include "kiln/device.h"
#include "kiln/logging.h"
#include "kiln/model.h"
#include "kiln/version.h"

namespace kiln::capi {

std::string& last_error() {
  thread_local std::string message;
  return message;
}

bool valid_dtype(int d) { return d >= 0 && d < static_cast<int>(kiln::all_dtypes().size()); }

// Names of `infos`, comma-separated, for messages.
std::string names_of(const std::vector<kiln::TensorInfo>& infos) {
  std::ostringstream os;
  for (size_t i = 0; i < infos.size(); ++i) os << (i ? ", " : "") << infos[i].name;
  return os.str();
}

}  // namespace kiln::capi

namespace {

using kiln::capi::guarded;
using kiln::capi::need;
using kiln::capi::valid_dtype;

std::vector<int64_t> dims_of(const kiln::TensorInfo& info) {
  std::vector<int64_t> v;
  for (const auto& d : info.dims) v.push_back(d.is_static() ? d.value : -1);
  return v;
}

void fill_desc(const kiln::TensorInfo& info, const std::vector<int64_t>& dims, kiln_tensor_desc* out) {
  out->name = info.name.c_str();
  out->dtype = static_cast<int32_t>(info.dtype);
  out->rank = static_cast<int32_t>(dims.size());
  out->dims = dims.data();
  out->has_default = info.has_default ? 1 : 0;
}

kiln_engine* wrap_engine(kiln::Engine e) {
  auto* h = new kiln_engine;
  h->engine = std::move(e);
  h->target = h->engine.target();
  h->precision = h->engine.precision();
  for (const auto& i : h->engine.inputs()) h->in_dims.push_back(dims_of(i));
  for (const auto& o : h->engine.outputs()) h->out_dims.push_back(dims_of(o));
  return h;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

extern "C" {

// ---- library --------------------------------------------------------------------------------------------------
const char* kiln_version(void) { return kiln::version(); }
const char* kiln_build_id(void) { return kiln::build_id(); }
const char* kiln_last_error(void) { return kiln::capi::last_error().c_str(); }

const char* kiln_status_name(int status) {
  if (status == KILN_OK) return "OK";
  if (status == KILN_ERR_INTERNAL) return "Internal";
  if (status >= KILN_ERR_INVALID_MODEL && status <= KILN_ERR_OUT_OF_MEMORY)
    return kiln::error_code_name(static_cast<kiln::ErrorCode>(status - KILN_ERR_INVALID_MODEL));
  return "Unknown";
}

size_t kiln_dtype_size(int dtype) { return valid_dtype(dtype) ? kiln::dtype_size(static_cast<kiln::DType>(dtype)) : 0; }
const char* kiln_dtype_name(int dtype) {
  return valid_dtype(dtype) ? kiln::dtype_name(static_cast<kiln::DType>(dtype)) : "unknown";
}

int kiln_cuda_device_count(void) {
  int n = 0;
  if (guarded("kiln_cuda_device_count", [&] { n = kiln::cuda_device_count(); }) != KILN_OK) return 0;
  return n;
}

int kiln_set_log_level(int level) {
  return guarded("kiln_set_log_level", [&] {
    if (level < 0 || level > 5) KILN_THROW(InvalidArgument, "log level " << level << " is outside 0..5");
    kiln::set_log_level(static_cast<kiln::LogLevel>(level));
  });
}

// ---- build configuration --------------------------------------------------------------------------------------
int kiln_build_config_create(kiln_build_config** out) {
  return guarded("kiln_build_config_create", [&] {
    need(out, "out");
    *out = new kiln_build_config;
  });
}

void kiln_build_config_destroy(kiln_build_config* config) { delete config; }

int kiln_build_config_set_target(kiln_build_config* config, const char* target) {
  return guarded("kiln_build_config_set_target", [&] {
    need(config, "config");
    need(target, "target");
    const std::string t = target;
    if (t == "cpu") {
      config->config.target = kiln::Target::Cpu;
      config->config.device = 0;
      return;
    }
    int device = 0;
    if (t != "cuda") {
      const std::string n = t.rfind("cuda:", 0) == 0 ? t.substr(5) : "";
      if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos)
        KILN_THROW(InvalidArgument, "target '" << t << "' is not a target (expected cpu, cuda or cuda:N)");
      device = std::stoi(n);
    }
    config->config.target = kiln::Target::Cuda;
    config->config.device = device;
  });
}

int kiln_build_config_set_precision(kiln_build_config* config, const char* precision) {
  return guarded("kiln_build_config_set_precision", [&] {
    need(config, "config");
    need(precision, "precision");
    const std::string p = precision;
    kiln::BuildConfig& c = config->config;
    if (p == "fp32" || p == "tf32") {
      c.precision = kiln::Precision::FP32;
      c.enable_tf32 = p == "tf32";
    } else if (p == "fp16") {
      c.precision = kiln::Precision::FP16;
    } else if (p == "bf16") {
      c.precision = kiln::Precision::BF16;
    } else {
      KILN_THROW(InvalidArgument, "precision '" << p << "' is not one of fp32, tf32, fp16, bf16");
    }
  });
}

int kiln_build_config_set_keep_io_types(kiln_build_config* config, int keep) {
  return guarded("kiln_build_config_set_keep_io_types", [&] {
    need(config, "config");
    config->config.keep_io_types = keep != 0;
  });
}

int kiln_build_config_set_optimization_level(kiln_build_config* config, int level) {
  return guarded("kiln_build_config_set_optimization_level", [&] {
    need(config, "config");
    if (level < 0 || level > 5) KILN_THROW(InvalidArgument, "optimization level " << level << " is outside 0..5");
    config->config.optimization_level = level;
  });
}

int kiln_build_config_set_workspace(kiln_build_config* config, uint64_t bytes) {
  return guarded("kiln_build_config_set_workspace", [&] {
    need(config, "config");
    config->config.workspace_size = static_cast<size_t>(bytes);
  });
}

int kiln_build_config_set_timing_cache(kiln_build_config* config, const char* path) {
  return guarded("kiln_build_config_set_timing_cache", [&] {
    need(config, "config");
    config->config.timing_cache_path = path ? path : "";
  });
}

int kiln_build_config_add_profile(kiln_build_config* config, int* index) {
  return guarded("kiln_build_config_add_profile", [&] {
    need(config, "config");
    config->config.profiles.emplace_back();
    if (index) *index = static_cast<int>(config->config.profiles.size()) - 1;
  });
}

int kiln_build_config_set_shape(kiln_build_config* config, int profile, const char* input, int rank,
                                const int64_t* min, const int64_t* opt, const int64_t* max) {
  return guarded("kiln_build_config_set_shape", [&] {
    need(config, "config");
    need(input, "input");
    auto& profiles = config->config.profiles;
    if (profile < 0 || profile >= static_cast<int>(profiles.size()))
      KILN_THROW(InvalidArgument, "input '" << input << "': profile " << profile << " does not exist ("
                                            << profiles.size() << " profiles; kiln_build_config_add_profile adds one)");
    if (rank < 0 || rank > 64) KILN_THROW(InvalidArgument, "input '" << input << "': rank " << rank << " is invalid");
    if (rank > 0 && (!min || !opt || !max))
      KILN_THROW(InvalidArgument, "input '" << input << "': min, opt or max is NULL");
    kiln::Shape a, b, c;
    for (int d = 0; d < rank; ++d) {
      a.push_back(min[d]);
      b.push_back(opt[d]);
      c.push_back(max[d]);
    }
    for (int d = 0; d < rank; ++d)
      if (a[d] < 0) KILN_THROW(InvalidArgument, "input '" << input << "': min dimension " << d << " is " << a[d]);
    profiles[static_cast<size_t>(profile)].add_input_shape(input, a, b, c);
  });
}

// ---- engines ----------------------------------------------------------------------------------------------------
int kiln_engine_build(const char* onnx_path, const kiln_build_config* config, kiln_engine** out) {
  return guarded("kiln_engine_build", [&] {
    need(onnx_path, "onnx_path");
    need(out, "out");
    *out = nullptr;
    kiln::BuildConfig cfg = config ? config->config : kiln::BuildConfig{};
    kiln::BuildStats stats;
    cfg.stats = &stats;
    auto t0 = std::chrono::steady_clock::now();
    kiln::Model model = kiln::Model::load(onnx_path);
    const double load_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    kiln::Engine engine = kiln::build_engine(model, cfg);
    const double build_s = seconds_since(t0);
    kiln_engine* h = wrap_engine(std::move(engine));
    h->stats.load_seconds = load_s;
    h->stats.build_seconds = build_s;
    h->stats.nodes = stats.nodes;
    h->stats.tactics_timed = stats.tactics_timed;
    h->stats.timing_cache_hits = stats.timing_cache_hits;
    h->stats.timing_cache_misses = stats.timing_cache_misses;
    h->stats.tactic_candidates_timed = stats.tactic_candidates_timed;
    h->stats.profiles_seconds = stats.profiles_s;
    h->stats.passes_seconds = stats.passes_s;
    h->stats.tactics_seconds = stats.tactics_s;
    h->stats.total_seconds = stats.total_s;
    h->stats.profiles = h->engine.profiles().size();
    for (const kiln::NodeInfo& n : h->engine.nodes()) {
      bool differs = false;
      for (const auto& t : n.profile_tactics) differs |= t != n.tactic;
      h->stats.per_profile_tactic_nodes += differs;
    }
    h->timing_cache = stats.timing_cache;
    h->stats.timing_cache = h->timing_cache.c_str();
    *out = h;
  });
}

int kiln_engine_load(const char* plan_path, kiln_engine** out) {
  return guarded("kiln_engine_load", [&] {
    need(plan_path, "plan_path");
    need(out, "out");
    *out = nullptr;
    *out = wrap_engine(kiln::Engine::load(plan_path));
  });
}

int kiln_engine_save(const kiln_engine* engine, const char* plan_path) {
  return guarded("kiln_engine_save", [&] {
    need(engine, "engine");
    need(plan_path, "plan_path");
    engine->engine.save(plan_path);
  });
}

void kiln_engine_destroy(kiln_engine* engine) { delete engine; }

int kiln_engine_num_inputs(const kiln_engine* engine, int* count) {
  return guarded("kiln_engine_num_inputs", [&] {
    need(engine, "engine");
    need(count, "count");
    *count = static_cast<int>(engine->engine.inputs().size());
  });
}

int kiln_engine_num_outputs(const kiln_engine* engine, int* count) {
  return guarded("kiln_engine_num_outputs", [&] {
    need(engine, "engine");
    need(count, "count");
    *count = static_cast<int>(engine->engine.outputs().size());
  });
}

int kiln_engine_input(const kiln_engine* engine, int index, kiln_tensor_desc* out) {
  return guarded("kiln_engine_input", [&] {
    need(engine, "engine");
    need(out, "out");
    const auto& v = engine->engine.inputs();
    if (index < 0 || index >= static_cast<int>(v.size()))
      KILN_THROW(InvalidArgument, "input index " << index << " is out of range (the engine has " << v.size()
                                                 << " inputs)");
    fill_desc(v[static_cast<size_t>(index)], engine->in_dims[static_cast<size_t>(index)], out);
  });
}

int kiln_engine_output(const kiln_engine* engine, int index, kiln_tensor_desc* out) {
  return guarded("kiln_engine_output", [&] {
    need(engine, "engine");
    need(out, "out");
    const auto& v = engine->engine.outputs();
    if (index < 0 || index >= static_cast<int>(v.size()))
      KILN_THROW(InvalidArgument, "output index " << index << " is out of range (the engine has " << v.size()
                                                  << " outputs)");
    fill_desc(v[static_cast<size_t>(index)], engine->out_dims[static_cast<size_t>(index)], out);
  });
}

int kiln_engine_num_profiles(const kiln_engine* engine, int* count) {
  return guarded("kiln_engine_num_profiles", [&] {
    need(engine, "engine");
    need(count, "count");
    *count = static_cast<int>(engine->engine.profiles().size());
  });
}

int kiln_engine_target(const kiln_engine* engine, const char** out) {
  return guarded("kiln_engine_target", [&] {
    need(engine, "engine");
    need(out, "out");
    *out = engine->target.c_str();
  });
}

int kiln_engine_precision(const kiln_engine* engine, const char** out) {
  return guarded("kiln_engine_precision", [&] {
    need(engine, "engine");
    need(out, "out");
    *out = engine->precision.c_str();
  });
}

int kiln_engine_memory_info(const kiln_engine* engine, kiln_engine_memory* out) {
  return guarded("kiln_engine_memory_info", [&] {
    need(engine, "engine");
    need(out, "out");
    const kiln::MemoryInfo m = engine->engine.memory_info();
    out->weights_bytes = engine->engine.weights_bytes();
    out->planned_arena_bytes = m.planned_arena_bytes;
    out->activation_bytes = m.activation_bytes;
    out->workspace_bytes = m.workspace_bytes;
    out->host_fallback_nodes = m.host_fallback_nodes;
  });
}

int kiln_engine_build_stats(const kiln_engine* engine, kiln_build_stats* out) {
  return guarded("kiln_engine_build_stats", [&] {
    need(engine, "engine");
    need(out, "out");
    *out = engine->stats;
    if (!out->timing_cache) out->timing_cache = "";
  });
}

}  // extern "C"
