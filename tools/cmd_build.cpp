// kiln build MODEL.onnx -o PLAN [build options]
#include <iomanip>
#include <iostream>
#include <memory>

#include "common.h"

namespace kiln_cli {
namespace {

struct BuildArgs {
  std::string model, output;
  BuildOptions b;
};

int run_build(BuildArgs& a, const CLI::App& sub) {
  a.b.prepare(sub);
  require_file(a.model);
  require_writable(a.output);  // fail before a long build, not after it
  kiln::Model model = kiln::Model::load(a.model);
  kiln::BuildConfig cfg = make_build_config(a.b, model, nullptr);
  double seconds = 0;
  kiln::Engine engine = build_with_progress(model, cfg, &seconds);
  engine.save(a.output);  // atomic: temp file + rename

  std::ostream& os = std::cout;
  os << "built " << a.output << " from " << a.model << "\n";
  print_engine_io(os, engine);
  os << "  nodes:      " << engine.nodes().size() << " (model: " << model.node_count() << ")\n"
     << "  target:     " << engine.target() << ", precision " << engine.precision() << "\n"
     << "  plan size:  " << human_bytes(file_size_or_zero(a.output)) << ", weights "
     << human_bytes(engine.weights_bytes()) << "\n"
     << "  build time: " << std::fixed << std::setprecision(3) << seconds << " s\n";
  return 0;
}

}  // namespace

Command register_build(CLI::App& parent) {
  auto args = std::make_shared<BuildArgs>();
  CLI::App* sub = parent.add_subcommand("build", "Build an engine plan from an ONNX model");
  sub->add_option("model", args->model, "ONNX model file")->required();
  sub->add_option("-o,--output", args->output, "Plan file to write (written atomically)")->required();
  add_build_options(sub, args->b, true);
  return {sub, [args, sub] { return run_build(*args, *sub); }};
}

}  // namespace kiln_cli
