// build_engine: profiles -> specialized graph -> pass pipeline -> tactics -> Engine.
#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

#include "builder/cuda_tactics.h"
#include "builder/profiles.h"
#include "builder/tactic_timing.h"
#include "builder/timing_cache.h"
#include "ir/op_registry.h"
#include "kiln/builder.h"
#include "kiln/version.h"
#include "onnx/model_impl.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/engine_impl.h"
#include "runtime/target.h"
#include "util/error.h"
#include "util/log.h"
#if KILN_WITH_CUDA
#include "kiln/device.h"
#include "runtime/cuda/tactic_select.h"
#endif

namespace kiln {

const char* target_name(Target t) { return t == Target::Cpu ? "cpu" : "cuda"; }
const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

namespace {
bool env_is(const char* name, const char* value) {
  const char* e = std::getenv(name);
  return e != nullptr && std::string(e) == value;
}
}  // namespace

Engine build_engine(const Model& model, const BuildConfig& config) {
  ir::register_all_ops();
  auto report = [&](double f, const std::string& step) {
    if (config.progress) config.progress(f, step);
    KILN_INFO("build: " << step);
  };
  if (!model.impl()) KILN_THROW(InvalidArgument, "build_engine: model is empty");
#if !KILN_WITH_CUDA
  if (config.target == Target::Cuda)
    KILN_THROW(Unsupported, "target cuda: this kiln build has no CUDA support (built without the CUDA toolkit); "
                            "build for the cpu target");
#endif
  if (config.target == Target::Cuda && config.device < 0)
    KILN_THROW(InvalidArgument, "device must be a CUDA ordinal >= 0, got " << config.device);
  for (const auto& k : config.keep_fp32)
    if (k.empty()) KILN_THROW(InvalidArgument, "keep_fp32: empty op type / node name");
  if (config.optimization_level < 0 || config.optimization_level > 5)
    KILN_THROW(InvalidArgument, "optimization_level must be 0..5, got " << config.optimization_level);

  const auto& m = model.impl()->m;
  auto impl = std::make_shared<detail::EngineImpl>();
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  report(0.0, "profiles");
  impl->inputs = m.inputs;
  impl->outputs = m.outputs;
  impl->graph = m.graph;
  std::vector<Profile> user_profiles = config.profiles;
  if (config.freeze_input_defaults) {
    // Frozen inputs are model inputs, so profiles may still name them: drop those entries.
    for (Profile& p : user_profiles) {
      Profile kept;
      for (const auto& [name, r] : p.shapes())
        if (!impl->graph.input_defaults.count(name)) kept.add_input_shape(name, r.min, r.opt, r.max);
      p = kept;
    }
    builder::freeze_input_defaults(impl->graph, impl->inputs);
  } else if (!impl->graph.input_defaults.empty())
    KILN_INFO("build: " << impl->graph.input_defaults.size()
                        << " inputs have initializer defaults and stay overridable (freeze_input_defaults folds them)");
  impl->profiles = builder::resolve_profiles(impl->inputs, user_profiles, impl->graph.input_defaults);
  builder::specialize_inputs(impl->graph, impl->inputs, impl->profiles);

  BuildStats local_stats;
  BuildStats& stats = config.stats ? *config.stats : local_stats;
  stats = BuildStats{};
  stats.profiles_s = seconds_since(t_start);
  report(0.1, "passes");
  const auto t_passes = Clock::now();
  const auto pipeline = passes::cpu_pipeline(config.optimization_level);
  for (const auto& p : pipeline) stats.passes_run.push_back(p.name);
  auto changed = passes::run_pipeline(impl->graph, pipeline);
  for (const auto& p : changed) KILN_DEBUG("build: pass " << p << " changed the graph");
  stats.passes_changed = changed;
  if (config.precision != Precision::FP32) {
    // Strongly typed low precision: fold and fuse in float32 first, then cast (docs/precision.md).
    report(0.5, "autocast");
    passes::AutocastOptions ac;
    ac.low = config.precision == Precision::FP16 ? DType::Float16 : DType::BFloat16;
    ac.keep_io_types = config.keep_io_types;
    ac.keep_fp32 = config.keep_fp32;
    // CUDA: LayerNorm / Softmax read and write the low type (float math inside) unless KILN_LOW_PRECISION_NORMS=0.
    ac.low_precision_norms = config.target == Target::Cuda && !env_is("KILN_LOW_PRECISION_NORMS", "0");
    stats.passes_run.push_back("autocast");
    if (passes::autocast(impl->graph, ac)) {
      stats.passes_changed.push_back("autocast");
      for (const auto& p : passes::run_pipeline(impl->graph, {{"cast_cleanup", passes::remove_redundant_casts},
                                                              {"dead_code_elimination", passes::eliminate_dead_code}}))
        stats.passes_changed.push_back(p);
      stats.passes_run.push_back("cast_cleanup");
      stats.passes_run.push_back("dead_code_elimination");
    }
  } else if (!config.keep_fp32.empty()) {
    KILN_INFO("build: keep_fp32 has no effect on an fp32 engine");
  }

  // CUDA fusions run on the graph autocast made strongly typed: channels-last conv regions, attention, then GEMM
  // epilogues (MatMul + bias [+ Relu / Gelu]) and Add + LayerNorm, elementwise fusion last (autocast's Casts fuse
  // too). KILN_LAYOUT_NHWC=0, KILN_FUSE_ATTENTION=0, KILN_FUSE_GEMM_EPILOGUE=0, KILN_FUSE_QKV=0,
  // KILN_FUSE_ADD_LAYERNORM=0 and KILN_FUSE_ELEMENTWISE=0 turn each off (docs/passes.md).
  const bool cuda_fusion = config.target == Target::Cuda && config.optimization_level >= 1;
  // Channels-last convolution regions (float16 / bfloat16 2-D convs) with conv epilogues folded, before the other
  // fusions (elementwise fusion then fuses what is left between the convs in NHWC). KILN_LAYOUT_NHWC=0 turns it off.
  if (cuda_fusion && !env_is("KILN_LAYOUT_NHWC", "0")) {
    report(0.52, "layout_nhwc");
    stats.passes_run.push_back("layout_nhwc");
    stats.passes_run.push_back("dead_code_elimination");
    for (const auto& p : passes::run_pipeline(impl->graph, {{"layout_nhwc", passes::layout_nhwc},
                                                            {"dead_code_elimination", passes::eliminate_dead_code}}))
      stats.passes_changed.push_back(p);
  }
  std::vector<passes::ValueShapes> samples;
  if (cuda_fusion) {
    ir::infer_types(impl->graph);
    samples = builder::profile_value_shapes(impl->graph, impl->profiles);
  }
  // Attention fusion first: on the strongly typed graph, before the GEMM epilogues and elementwise fusion take its
  // MatMuls / Adds apart. KILN_FUSE_ATTENTION=0 turns it off (docs/passes.md).
  if (cuda_fusion && !env_is("KILN_FUSE_ATTENTION", "0")) {
    report(0.52, "fuse_attention");
    stats.passes_run.push_back("fuse_attention");
    stats.passes_run.push_back("dead_code_elimination");
    if (passes::fuse_attention(impl->graph, samples)) {
      stats.passes_changed.push_back("fuse_attention");
      for (const auto& p : passes::run_pipeline(impl->graph, {{"dead_code_elimination", passes::eliminate_dead_code}}))
        stats.passes_changed.push_back(p);
      samples = builder::profile_value_shapes(impl->graph, impl->profiles);
    }
  }
  if (cuda_fusion && !env_is("KILN_FUSE_GEMM_EPILOGUE", "0")) {
    report(0.53, "fuse_gemm_epilogue");
    stats.passes_run.push_back("fuse_gemm_epilogue");
    if (passes::fuse_gemm_epilogue(impl->graph)) {
      stats.passes_changed.push_back("fuse_gemm_epilogue");
      ir::infer_types(impl->graph);
    }
  }
  if (cuda_fusion && !env_is("KILN_FUSE_QKV", "0")) {
    report(0.535, "fuse_qkv");
    stats.passes_run.push_back("fuse_qkv");
    stats.passes_run.push_back("dead_code_elimination");
    for (const auto& p : passes::run_pipeline(impl->graph, {{"fuse_qkv", passes::fuse_qkv},
                                                            {"dead_code_elimination", passes::eliminate_dead_code}}))
      stats.passes_changed.push_back(p);
  }
  if (cuda_fusion && !env_is("KILN_FUSE_ADD_LAYERNORM", "0")) {
    report(0.54, "fuse_add_layernorm");
    stats.passes_run.push_back("fuse_add_layernorm");
    if (passes::fuse_add_layernorm(impl->graph, samples)) {
      stats.passes_changed.push_back("fuse_add_layernorm");
      ir::infer_types(impl->graph);
    }
  }
  if (cuda_fusion && !env_is("KILN_FUSE_ELEMENTWISE", "0")) {
    report(0.55, "fuse_elementwise");
    stats.passes_run.push_back("fuse_elementwise");
    stats.passes_run.push_back("dead_code_elimination");
    ir::infer_types(impl->graph);
    if (passes::fuse_elementwise(impl->graph, samples)) {
      stats.passes_changed.push_back("fuse_elementwise");
      for (const auto& p : passes::run_pipeline(impl->graph, {{"dead_code_elimination", passes::eliminate_dead_code}}))
        stats.passes_changed.push_back(p);
    }
  }

  // CPU: Conv + Add + Relu / Clip chains become kiln.FusedConv, whose tactics apply the epilogue while the output is in
  // cache. KILN_FUSE_CONV_ACTIVATION=0 turns it off (docs/passes.md).
  if (config.target == Target::Cpu && config.optimization_level >= 1 && !env_is("KILN_FUSE_CONV_ACTIVATION", "0")) {
    report(0.55, "fuse_conv_activation");
    stats.passes_run.push_back("fuse_conv_activation");
    stats.passes_run.push_back("dead_code_elimination");
    for (const auto& p : passes::run_pipeline(impl->graph, {{"fuse_conv_activation", passes::fuse_conv_activation},
                                                            {"dead_code_elimination", passes::eliminate_dead_code}}))
      stats.passes_changed.push_back(p);
  }

  // Input and output dtypes as the optimized graph has them (autocast may lower them).
  for (auto& in : impl->inputs)
    if (const ir::ValueType* t = impl->graph.type_of(in.name)) in.dtype = t->dtype;
  for (auto& o : impl->outputs)
    if (const ir::ValueType* t = impl->graph.type_of(o.name)) o.dtype = t->dtype;

  stats.passes_s = seconds_since(t_passes);
  report(0.6, "tactics");
  const auto t_tactics = Clock::now();
  // Candidates per node and profile: from the timing cache when it knows the signature, else timed at that profile's
  // opt shapes (optimization_level 0: the heuristic, nothing timed); every choice is recorded and merged back.
  std::optional<builder::TimingCache> timing;
  const std::string timing_target = builder::timing_target(config.target, config.device);
  if (!config.timing_cache_path.empty()) timing = builder::TimingCache::load(config.timing_cache_path, &stats.timing_cache);
  if (config.target == Target::Cuda) {
    // Candidates per node (heuristic order, workspace within the cap, then "host"); the GEMM-like nodes timed on the
    // build device when it is present and optimization_level > 0, else the heuristic (docs/cuda.md).
    std::vector<std::vector<std::string>> candidates;
    builder::CudaTacticOptions copt;
#if KILN_WITH_CUDA
    std::vector<std::map<std::string, Shape>> max_shapes;
    for (const Profile& p : impl->profiles) {
      std::map<std::string, Shape> m;
      for (const auto& [name, r] : p.shapes()) m[name] = r.max;
      max_shapes.push_back(m);
    }
    candidates = runtime::cuda::cuda_tactic_candidates(impl->graph, max_shapes, config.workspace_size);
    // KILN_CUDA_TACTIC_TIMING=0: the heuristic even on a GPU host (compute-sanitizer runs, where timing every
    // candidate would take far too long).
    copt.time = config.optimization_level > 0 && config.device < cuda_device_count() &&
                !env_is("KILN_CUDA_TACTIC_TIMING", "0");
#endif
    if (candidates.size() != impl->graph.nodes.size())
      KILN_THROW(Unsupported, "target cuda: this kiln build has no CUDA support");
    copt.device = config.device;
    copt.allow_tf32 = config.enable_tf32;
    copt.workspace_cap = config.workspace_size;
    copt.variants = builder::cuda_variant_breadth(config.optimization_level);
    builder::choose_cuda_tactics(impl->graph, impl->inputs, impl->profiles, candidates,
                                 timing ? &*timing : nullptr, timing_target, copt, stats, impl->profile_tactics,
                                 [&](size_t done, size_t total) {
                                   report(0.6 + 0.35 * double(done) / double(total),
                                          "tactics " + std::to_string(done) + "/" + std::to_string(total));
                                 });
    size_t host = 0;
    for (const auto& n : impl->graph.nodes) host += n.tactic == "host";  // the fallback is profile-independent
    if (host) KILN_INFO("build: " << host << " of " << impl->graph.nodes.size() << " nodes run with the host fallback");
  } else {
    builder::TacticTimingOptions topt;
    topt.time = config.optimization_level > 0;
    if (config.optimization_level >= 4) topt.ref_budget_ms = -1;  // every candidate on every node
    builder::choose_cpu_tactics(impl->graph, impl->inputs, impl->profiles, timing ? &*timing : nullptr,
                                timing_target, topt, stats, impl->profile_tactics, [&](size_t done, size_t total) {
                                  report(0.6 + 0.35 * double(done) / double(total),
                                         "tactics " + std::to_string(done) + "/" + std::to_string(total));
                                });
  }
  stats.nodes = impl->graph.nodes.size();
  if (!impl->profile_tactics.empty()) {
    size_t differ = 0;
    for (size_t i = 0; i < impl->graph.nodes.size(); ++i)
      for (const auto& per : impl->profile_tactics)
        if (per[i] != impl->graph.nodes[i].tactic) {
          ++differ;
          break;
        }
    KILN_INFO("build: " << differ << " nodes run another tactic under some profile than under profile 0");
  }
  if (timing && stats.timing_cache_misses > 0 && timing->save_merged(config.timing_cache_path))
    stats.timing_cache += ", saved";
  stats.tactics_s = seconds_since(t_tactics);

  impl->target = "cpu";
  if (config.target == Target::Cuda) {
    runtime::CudaTarget t;
#if KILN_WITH_CUDA
    // The device's architecture when it is present; building needs no GPU (kiln's kernels are sm_90 + PTX).
    if (config.device < cuda_device_count()) {
      const std::string name = cuda_device_name(config.device);
      const size_t at = name.rfind("(sm_");
      if (at != std::string::npos) t.arch = name.substr(at + 1, name.size() - at - 2);
    }
#endif
    t.tf32 = config.enable_tf32;
    t.workspace_cap = config.workspace_size;
    impl->target = runtime::cuda_target_string(t);
  }
  impl->precision = precision_name(config.precision);
  impl->kiln_version = version();
  impl->build_id = build_id();
  impl->model_hash = m.content_hash;
  stats.total_s = seconds_since(t_start);
  report(1.0, "done");
  return Engine(std::move(impl));
}

}  // namespace kiln
