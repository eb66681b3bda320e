// The EngineBackend workflow end to end on the CPU (AITune's TensorRT backend contract on kiln's own engine):
// build from an ONNX model with a Single profile learned from samples, infer, deactivate, activate, save a
// checkpoint, load it in a fresh backend, deploy, infer again and compare.
//
//   kiln_backend_example MODEL.onnx WORK_DIR
//
// WORK_DIR receives cache/ (the build artifacts: config.json, build.log, report.json, model.onnx, engine.kiln,
// profiles.json) and checkpoint/ (the same plus backend.json and SHA256SUMS). Run it twice: the second build reuses
// the cached engine.
#include <kiln/kiln.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

// One sample: every input with its dynamic axes set to `batch` (axis 0) or 8 (others), random values.
kiln::Sample make_sample(const kiln::Model& model, int64_t batch, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uf(-1.0f, 1.0f);
  kiln::Sample s;
  for (const auto& in : model.inputs()) {
    kiln::Shape shape;
    for (size_t a = 0; a < in.dims.size(); ++a) shape.push_back(in.dims[a].is_static() ? in.dims[a].value : a == 0 ? batch : 8);
    kiln::Tensor t(in.dtype, shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (in.dtype == kiln::DType::Float32) t.mutable_as<float>()[i] = uf(rng);
      else if (in.dtype == kiln::DType::Int64) t.mutable_as<int64_t>()[i] = static_cast<int64_t>(rng() % 10);
    }
    s[in.name] = t;
  }
  return s;
}

void print_outputs(const char* what, const kiln::TensorMap& out) {
  for (const auto& [name, t] : out)
    std::printf("  %-10s %s %-8s first %.6f\n", what, name.c_str(), t.type_str().c_str(), t.numel() ? t.at_double(0) : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.onnx WORK_DIR\n", argv[0]);
    return 2;
  }
  const std::string work = argv[2];
  try {
    kiln::set_log_level(kiln::LogLevel::Info);
    kiln::Model model = kiln::Model::load(argv[1]);

    // Samples (batch 1 and 4): the Single profile spans the smallest and largest shapes seen (opt = max).
    std::vector<kiln::Sample> samples = {make_sample(model, 1, 1), make_sample(model, 4, 2)};
    kiln::GraphSpec spec = kiln::GraphSpec::from_model(model, samples);

    kiln::EngineBackendConfig config;  // AITune's defaults: profiles = ProfileMode::Single
    kiln::EngineBackend backend(config);
    std::printf("backend %s, key %s\n", backend.describe().c_str(), backend.key().c_str());
    for (const auto& p : backend.get_profiles(spec, samples)) std::printf("profile: %s\n", p.str().c_str());

    backend.build(model, spec, samples, "cpu", work + "/cache");  // INIT -> ACTIVE (gate passed)
    std::printf("built: state %s, engine %s\n", kiln::backend_state_name(backend.state()), backend.engine_path().c_str());

    kiln::Sample query = make_sample(model, 3, 42);
    kiln::TensorMap first = backend.infer(query);
    print_outputs("active", first);

    backend.deactivate();  // releases the engine and every execution context; the plan stays on disk
    backend.activate();    // reloads it
    kiln::TensorMap again = backend.infer(query);

    backend.save(work + "/checkpoint", /*overwrite=*/true);
    kiln::MemoryStats mem = backend.memory_stats();
    std::printf("checkpoint saved to %s/checkpoint (build peak RSS %.1f MiB)\n", work.c_str(),
                static_cast<double>(mem.build_peak_rss_bytes) / 1048576.0);

    kiln::EngineBackend restored = kiln::EngineBackend::load(work + "/checkpoint");  // verifies SHA256SUMS
    restored.deploy("cpu");                                                           // CHECKPOINT_LOADED -> DEPLOYED
    kiln::TensorMap deployed = restored.infer(query);
    print_outputs("deployed", deployed);

    int bad = 0;
    for (const auto& [name, t] : first) {
      for (const kiln::TensorMap* other : {&again, &deployed}) {
        kiln::Comparison c = kiln::compare(other->at(name), t, kiln::tolerance_for("fp32"));
        if (!c.passed) {
          std::fprintf(stderr, "output %s differs: %s\n", name.c_str(), c.reason.c_str());
          ++bad;
        }
      }
    }
    if (bad) return 1;
    std::printf("backend example OK\n");
    return 0;
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "error: %s: %s\n", kiln::error_code_name(e.code()), e.what());
    return 1;
  }
}
