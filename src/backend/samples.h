// Sample validation shared by GraphSpec::from_model and EngineBackend::build.
#pragma once
#include <vector>

#include "kiln/graph_spec.h"

namespace kiln::backend {

// Every sample must give exactly `inputs`, with their dtypes, ranks and fixed dims (InvalidArgument naming the
// sample index and the input).
void check_samples(const std::vector<Sample>& samples, const std::vector<TensorInfo>& inputs);

}  // namespace kiln::backend
