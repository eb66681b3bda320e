// Minimal kiln consumer: load an ONNX model, build a CPU engine, save and reload the plan, run it.
//   kiln_consumer MODEL.onnx PLAN.kiln
#include <kiln/kiln.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.onnx PLAN.kiln\n", argv[0]);
    return 2;
  }
  try {
    kiln::Model model = kiln::Model::load(argv[1]);
    kiln::BuildConfig config;
    kiln::Profile profile;
    for (const auto& in : model.inputs()) {
      kiln::Shape s;
      for (const auto& d : in.dims) s.push_back(d.is_static() ? d.value : 1);
      profile.add_input_shape(in.name, s, s, s);
    }
    config.profiles.push_back(profile);
    kiln::build_engine(model, config).save(argv[2]);

    kiln::Engine engine = kiln::Engine::load(argv[2]);
    kiln::ExecutionContext ctx = engine.create_context();
    kiln::TensorMap inputs;
    for (const auto& in : engine.inputs()) {
      kiln::Tensor t(in.dtype, profile.at(in.name).opt);
      if (in.dtype == kiln::DType::Float32)
        for (int64_t i = 0; i < t.numel(); ++i) t.mutable_as<float>()[i] = float(i % 7) * 0.25f - 0.75f;
      inputs[in.name] = t;
    }
    kiln::TensorMap outputs = ctx.run(inputs);
    for (const auto& [name, t] : outputs) std::printf("%s %s first=%g\n", name.c_str(), t.type_str().c_str(), t.at_double(0));
    std::printf("kiln %s consumer OK\n", kiln::version());
    return 0;
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln error %s: %s\n", kiln::error_code_name(e.code()), e.what());
    return 1;
  }
}
