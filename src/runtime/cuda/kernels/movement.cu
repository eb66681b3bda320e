// CUDA kernels: the movement family (kernels/families.h). Not yet written: no tactics registered, so the builder
// uses the host fallback for these ops.
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/families.h"

namespace kiln::runtime::cuda {

void register_movement_kernels() {}

}  // namespace kiln::runtime::cuda
