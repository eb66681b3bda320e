// Engine plan file format (see docs/plan-format.md).
#pragma once
#include <memory>
#include <string>

#include "runtime/engine_impl.h"

namespace kiln::plan {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kWeightAlignment = 64;

std::string serialize(const detail::EngineImpl& e);
// `origin` (a path or "<memory>") is named in errors. Integrity on truncation/corruption/checksum,
// PlanMismatch on foreign magic, format version, kiln build id or target.
std::shared_ptr<detail::EngineImpl> deserialize(const std::string& bytes, const std::string& origin);

}  // namespace kiln::plan
