#include "passes/pass.h"

namespace kiln::passes {
bool fold_batchnorm_into_conv(ir::Graph&) { return false; }
}  // namespace kiln::passes
