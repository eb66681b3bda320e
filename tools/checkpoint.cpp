// kiln CLI — EngineBackend checkpoints: `kiln build --checkpoint DIR` builds through the backend (profiles from the
// flags or the samples, correctness gate, cache) and saves a checkpoint; `kiln run --checkpoint DIR` loads and
// deploys one. Sample folders hold one tensor per input: input_N.pb (by TensorProto name, else by position) or
// <input>.npy.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <random>

#include "common.h"

namespace fs = std::filesystem;

namespace kiln_cli {
namespace checkpoint_cli {

[[noreturn]] void bad_arg(const std::string& msg) {
  throw kiln::Error(kiln::ErrorCode::InvalidArgument, msg);
}

// Random samples when none are given: one per profile at its min, opt and max shapes (deduplicated), else one at the
// model's fixed shapes.
std::vector<kiln::Sample> random_samples(const kiln::Model& model, const std::vector<kiln::Profile>& profiles) {
  std::mt19937_64 rng(0);
  RandomSpec spec;
  std::vector<kiln::Sample> out;
  std::vector<std::map<std::string, kiln::Shape>> seen;
  auto add = [&](const std::map<std::string, kiln::Shape>& shapes) {
    for (const auto& s : seen)
      if (s == shapes) return;
    seen.push_back(shapes);
    kiln::Sample s;
    for (const auto& in : model.inputs()) s[in.name] = random_tensor(in.dtype, shapes.at(in.name), rng, spec);
    out.push_back(std::move(s));
  };
  if (profiles.empty()) {
    std::map<std::string, kiln::Shape> shapes;
    for (const auto& in : model.inputs()) {
      if (!in.is_static())
        bad_arg("input '" + in.name + "' is " + in.str() +
                ": with --checkpoint give --sample folders or profile flags (--shapes / --min-shapes ...) for dynamic inputs");
      kiln::Shape sh;
      for (const auto& d : in.dims) sh.push_back(d.value);
      shapes[in.name] = sh;
    }
    add(shapes);
    return out;
  }
  for (const auto& p : profiles)
    for (int which = 0; which < 3; ++which) {
      std::map<std::string, kiln::Shape> shapes;
      for (const auto& [name, r] : p.shapes()) shapes[name] = which == 0 ? r.min : which == 1 ? r.opt : r.max;
      add(shapes);
    }
  return out;
}

}  // namespace checkpoint_cli
using checkpoint_cli::bad_arg;
using checkpoint_cli::random_samples;

kiln::Sample load_sample_dir(const std::string& dir, const std::vector<kiln::TensorInfo>& inputs) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw kiln::Error(kiln::ErrorCode::Io, "--sample: '" + dir + "' is not a folder");
  kiln::Sample s;
  for (size_t i = 0;; ++i) {
    const std::string f = (fs::path(dir) / ("input_" + std::to_string(i) + ".pb")).string();
    if (!fs::exists(f, ec)) break;
    std::string pb_name;
    kiln::Tensor t = load_tensor_file(f, &pb_name);
    std::string name;
    for (const auto& in : inputs)
      if (in.name == pb_name) name = pb_name;
    if (name.empty() && i < inputs.size()) name = inputs[i].name;
    if (name.empty()) bad_arg("--sample: " + f + " matches no model input");
    s[name] = t;
  }
  for (const auto& in : inputs) {
    if (s.count(in.name)) continue;
    for (const std::string& stem : {in.name, sanitize_name(in.name)}) {
      const std::string f = (fs::path(dir) / (stem + ".npy")).string();
      if (fs::exists(f, ec)) {
        s[in.name] = load_tensor_file(f);
        break;
      }
    }
    if (!s.count(in.name))
      bad_arg("--sample: '" + dir + "' has no tensor for input '" + in.name + "' (input_N.pb or " + sanitize_name(in.name) + ".npy)");
  }
  return s;
}

kiln::EngineBackend build_checkpoint(const kiln::Model& model, const BuildOptions& o, const CLI::App& sub,
                                     const CheckpointOptions& c) {
  kiln::EngineBackendConfig cfg;
  std::vector<kiln::Profile> flag_profiles;
  if (!o.specs.empty()) {
    flag_profiles = make_profiles(o.specs, model.inputs());
    if (c.samples_used) bad_arg("--samples-used makes the profiles from the samples: it cannot be combined with profile flags");
    cfg.profiles = flag_profiles;
  } else if (c.samples_used) {
    cfg.profiles = kiln::ProfileMode::SamplesUsed;
  }
  if (sub.get_option("--opt-level")->count()) cfg.optimization_level = o.opt_level;
  if (o.workspace_bytes) cfg.workspace_size = static_cast<int64_t>(o.workspace_bytes);
  cfg.timing_cache = o.timing_cache;
  cfg.enable_tf32 = !o.no_tf32;
  if (o.fp16 || o.bf16) cfg.quantization_config = kiln::AutoCastConfig{o.fp16 ? "fp16" : "bf16", !o.low_precision_io};
  // Build flags the backend's config (AITune's fields) cannot carry.
  if (!o.keep_fp32.empty())
    bad_arg("--keep-fp32 is not available with --checkpoint: EngineBackendConfig (AITune's ONNXAutoCastConfig) has no keep list");
  if (o.freeze_defaults) bad_arg("--freeze-input-defaults is not available with --checkpoint: EngineBackendConfig has no such field");

  std::vector<kiln::Sample> samples;
  for (const auto& d : c.sample_dirs) samples.push_back(load_sample_dir(d, model.inputs()));
  if (samples.empty()) {
    if (c.samples_used) bad_arg("--samples-used needs --sample folders");
    samples = random_samples(model, flag_profiles);
    kiln::log(kiln::LogLevel::Info, "no --sample given: " + std::to_string(samples.size()) +
                                        " random sample(s) at the profile shapes feed the correctness gate");
  }
  kiln::GraphSpec spec = kiln::GraphSpec::from_model(model, samples);

  std::string cache = c.cache_dir;
  bool temporary = cache.empty();
  if (temporary)
    cache = (fs::temp_directory_path() / ("kiln-build-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}())))
                .string();
  kiln::EngineBackend backend(cfg);
  try {
    backend.build(model, spec, samples, o.device, cache);
    backend.save(c.checkpoint, /*overwrite=*/true);
  } catch (...) {
    if (temporary) fs::remove_all(cache);
    throw;
  }
  if (temporary) {
    // The checkpoint is self-contained; deploy it from there, and drop the temporary cache.
    kiln::EngineBackend deployed = kiln::EngineBackend::load(c.checkpoint);
    fs::remove_all(cache);
    deployed.deploy(o.device);
    return deployed;
  }
  return backend;
}

void print_checkpoint_summary(std::ostream& os, const kiln::EngineBackend& b, const std::string& dir) {
  os << "checkpoint " << dir << ": " << b.describe() << "\n"
     << "  key:        " << b.key() << "\n"
     << "  state:      " << kiln::backend_state_name(b.state()) << ", device " << b.device() << "\n";
}

}  // namespace kiln_cli
