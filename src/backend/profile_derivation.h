// AITune's get_profiles: optimization profiles from the config, the graph spec and the samples.
#pragma once
#include <vector>

#include "kiln/backend_config.h"
#include "kiln/graph_spec.h"

namespace kiln::backend {

std::vector<Profile> derive_profiles(const EngineBackendConfig& config, const GraphSpec& spec,
                                     const std::vector<Sample>& samples);

}  // namespace kiln::backend
