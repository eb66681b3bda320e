// EngineBackendConfig <-> AITune's config dict as a JSON value (the backend embeds it in its state dict).
#pragma once
#include "backend/python_json.h"
#include "kiln/backend_config.h"

namespace kiln::backend {

pyjson::Json config_to_json(const EngineBackendConfig& c);
// `what` prefixes error messages.
EngineBackendConfig config_from_json(const pyjson::Json& j, const std::string& what);

}  // namespace kiln::backend
