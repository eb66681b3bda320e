// build_engine: profiles -> specialized graph -> pass pipeline -> tactics -> Engine.
#include <set>
#include <sstream>

#include "builder/profiles.h"
#include "ir/op_registry.h"
#include "kiln/builder.h"
#include "kiln/version.h"
#include "onnx/model_impl.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/engine_impl.h"
#include "util/error.h"
#include "util/log.h"

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

Engine build_engine(const Model& model, const BuildConfig& config) {
  ir::register_all_ops();
  auto report = [&](double f, const std::string& step) {
    if (config.progress) config.progress(f, step);
    KILN_INFO("build: " << step);
  };
  if (!model.impl()) KILN_THROW(InvalidArgument, "build_engine: model is empty");
  if (config.target == Target::Cuda)
    KILN_THROW(Unsupported, "target cuda: the CUDA executor is not part of this kiln version yet; build for the cpu target");
  if (config.precision != Precision::FP32)
    KILN_THROW(Unsupported, "precision " << precision_name(config.precision)
                                         << ": the autocast pass is not part of this kiln version yet; use fp32");
  if (config.optimization_level < 0 || config.optimization_level > 5)
    KILN_THROW(InvalidArgument, "optimization_level must be 0..5, got " << config.optimization_level);

  const auto& m = model.impl()->m;
  auto impl = std::make_shared<detail::EngineImpl>();
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

  report(0.1, "passes");
  auto changed = passes::run_pipeline(impl->graph, passes::cpu_pipeline(config.optimization_level));
  for (const auto& p : changed) KILN_DEBUG("build: pass " << p << " changed the graph");

  report(0.6, "tactics");
  size_t i = 0;
  for (auto& n : impl->graph.nodes) {
    auto cands = runtime::cpu::tactics_for(n);
    if (cands.empty()) KILN_THROW(Unsupported, n.label() << ": no CPU kernel (opset " << n.opset << ")");
    n.tactic = cands.front().name;
    if (config.progress && impl->graph.nodes.size() > 50 && ++i % 50 == 0)
      report(0.6 + 0.35 * double(i) / double(impl->graph.nodes.size()), "tactics " + std::to_string(i) + "/" +
                                                                            std::to_string(impl->graph.nodes.size()));
  }
  // Output dtypes/shapes as the optimized graph computes them.
  for (auto& o : impl->outputs)
    if (const ir::ValueType* t = impl->graph.type_of(o.name)) o.dtype = t->dtype;

  impl->target = "cpu";
  impl->precision = precision_name(config.precision);
  impl->kiln_version = version();
  impl->build_id = build_id();
  impl->model_hash = m.content_hash;
  report(1.0, "done");
  return Engine(std::move(impl));
}

}  // namespace kiln
