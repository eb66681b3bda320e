#include "plan/plan.h"

#include "util/error.h"

namespace kiln::plan {
std::string serialize(const detail::EngineImpl&) { KILN_THROW(Unsupported, "plan: not yet implemented"); }
std::shared_ptr<detail::EngineImpl> deserialize(const std::string&, const std::string& origin) {
  KILN_THROW(Unsupported, "plan: not yet implemented: " << origin);
}
}  // namespace kiln::plan
