#include "runtime/cpu/cpu_tactics.h"

namespace kiln::runtime::cpu {
void register_norm_tactics() {}
}  // namespace kiln::runtime::cpu
