#include "passes/pass.h"

namespace kiln::passes {
bool fold_constants(ir::Graph&) { return false; }
}  // namespace kiln::passes
