// Sample validation shared by GraphSpec::from_model and EngineBackend::build.
#pragma once
#include <vector>

#include "kiln/graph_spec.h"
#include "kiln/model.h"

namespace kiln::backend {

// Every sample must give exactly `inputs`, with their dtypes, ranks and fixed dims (InvalidArgument naming the
// sample index and the input).
void check_samples(const std::vector<Sample>& samples, const std::vector<TensorInfo>& inputs);
// The samples with every omitted input that has an initializer default (ONNX IR >= 4) filled in with that default.
std::vector<Sample> with_input_defaults(const Model& model, const std::vector<Sample>& samples);

}  // namespace kiln::backend
