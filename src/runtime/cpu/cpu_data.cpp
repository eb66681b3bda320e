#include "runtime/cpu/cpu_tactics.h"

namespace kiln::runtime::cpu {
void register_data_tactics() {}
}  // namespace kiln::runtime::cpu
