#include "passes/pass.h"

namespace kiln::passes {
bool eliminate_dead_code(ir::Graph&) { return false; }
}  // namespace kiln::passes
