// The backend's checkpoint state (AITune's Backend.to_dict / from_dict) as a JSON value.
#pragma once
#include <string>

#include "backend/backend_impl.h"
#include "backend/python_json.h"

namespace kiln::backend {

// `relative`: write artifact paths relative to their folder (inside a checkpoint) instead of absolute.
pyjson::Json state_to_json(const EngineBackend::Impl& m, bool relative);
// Fills a fresh Impl (state CHECKPOINT_LOADED); relative paths resolve against `base_dir` (absolute).
void state_from_json(EngineBackend::Impl& m, const pyjson::Json& j, const std::string& base_dir);

}  // namespace kiln::backend
