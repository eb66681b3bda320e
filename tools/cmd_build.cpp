// kiln build MODEL.onnx -o PLAN [build options]
// kiln build MODEL.onnx --checkpoint DIR [--sample DIR ...] [--samples-used] [--cache-dir DIR] [build options]
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include "common.h"

namespace kiln_cli {
namespace {

struct BuildArgs {
  std::string model, output;
  BuildOptions b;
  CheckpointOptions ckpt;
};

// --checkpoint: through kiln::EngineBackend (profiles from flags or samples, correctness gate, cache, checkpoint).
int run_build_checkpoint(BuildArgs& a, const CLI::App& sub, const kiln::Model& model) {
  auto t0 = std::chrono::steady_clock::now();
  kiln::EngineBackend backend = build_checkpoint(model, a.b, sub, a.ckpt);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!a.output.empty()) backend.engine().save(a.output);
  std::ostream& os = std::cout;
  os << "built checkpoint " << a.ckpt.checkpoint << " from " << a.model << "\n";
  print_engine_io(os, backend.engine());
  print_checkpoint_summary(os, backend, a.ckpt.checkpoint);
  if (!a.output.empty()) os << "  plan:       " << a.output << "\n";
  os << "  build time: " << std::fixed << std::setprecision(3) << seconds << " s (correctness gate included)\n";
  return 0;
}

int run_build(BuildArgs& a, const CLI::App& sub) {
  a.b.prepare(sub);
  require_file(a.model);
  if (a.output.empty() && a.ckpt.checkpoint.empty())
    throw kiln::Error(kiln::ErrorCode::InvalidArgument, "give -o PLAN, --checkpoint DIR, or both");
  if (!a.output.empty()) require_writable(a.output);  // fail before a long build, not after it
  if (!a.ckpt.checkpoint.empty()) {
    // The checkpoint folder may exist (it is replaced); its parent must.
    std::filesystem::path parent = std::filesystem::absolute(a.ckpt.checkpoint).parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(parent, ec))
      throw kiln::Error(kiln::ErrorCode::Io, "cannot write checkpoint '" + a.ckpt.checkpoint + "': folder '" +
                                                 parent.string() + "' does not exist");
  }
  kiln::Model model = kiln::Model::load(a.model);
  if (!a.ckpt.checkpoint.empty()) return run_build_checkpoint(a, sub, model);
  kiln::BuildConfig cfg = make_build_config(a.b, model, nullptr);
  kiln::BuildStats stats;
  cfg.stats = &stats;
  double seconds = 0;
  kiln::Engine engine = build_with_progress(model, cfg, &seconds);
  const auto t_save = std::chrono::steady_clock::now();
  engine.save(a.output);  // atomic: temp file + rename
  const double save_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_save).count();

  std::ostream& os = std::cout;
  os << "built " << a.output << " from " << a.model << "\n";
  print_engine_io(os, engine);
  os << "  nodes:      " << engine.nodes().size() << " (model: " << model.node_count() << ")\n"
     << "  target:     " << engine.target() << ", precision " << engine.precision() << "\n"
     << "  plan size:  " << human_bytes(file_size_or_zero(a.output)) << ", weights "
     << human_bytes(engine.weights_bytes()) << "\n"
     << "  build time: " << std::fixed << std::setprecision(3) << seconds << " s (profiles " << stats.profiles_s
     << ", passes " << stats.passes_s << ", tactics " << stats.tactics_s << "; writing the plan " << save_s << ")\n"
     << "  tactics:    " << stats.tactics_timed << " nodes timed (" << stats.tactic_candidates_timed
     << " candidates), " << stats.timing_cache_hits << " from the timing cache";
  if (engine.profiles().size() > 1) {
    size_t differ = 0;
    for (const auto& n : engine.nodes()) {
      bool d = false;
      for (const auto& t : n.profile_tactics) d |= t != n.tactic;
      differ += d;
    }
    os << "; over " << engine.profiles().size() << " profiles, " << differ
       << " node(s) run another tactic under some profile";
  }
  os << "\n";
  return 0;
}

}  // namespace

Command register_build(CLI::App& parent) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* sub = parent.add_subcommand("build", "Build an engine plan from an ONNX model");
  sub->add_option("model", args->model, "ONNX model file")->required();
  // At least one destination: a missing one is a usage error (exit 2), like any missing required flag.
  CLI::Option_group* dest = sub->add_option_group("Output", "-o PLAN, --checkpoint DIR, or both");
  dest->add_option("-o,--output", args->output, "Plan file to write (written atomically)");
  dest->add_option("--checkpoint", args->ckpt.checkpoint,
                   "Build through the EngineBackend (correctness gate included) and save a checkpoint folder here");
  dest->require_option(1, 0);
  add_build_options(sub, args->b, true);
  const std::string g = "Checkpoint (EngineBackend) options";
  sub->add_option("--sample", args->ckpt.sample_dirs,
                  "Folder with one sample (input_N.pb or <input>.npy per input); repeatable; default: random samples "
                  "at the profile shapes")
      ->allow_extra_args(false)
      ->group(g);
  sub->add_flag("--samples-used", args->ckpt.samples_used, "One exact profile per distinct sample shape (ProfileMode::SamplesUsed)")
      ->group(g);
  sub->add_option("--cache-dir", args->ckpt.cache_dir,
                  "Backend cache folder (engine reuse across builds); default: a temporary folder")
      ->group(g);
  return {sub, [args, sub] { return run_build(*args, *sub); }};
}

}  // namespace kiln_cli
