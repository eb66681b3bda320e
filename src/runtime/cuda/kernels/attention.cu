// CUDA kernels: Attention (gemm family, registered by register_gemm_kernels). Not yet written: host fallback.
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"

namespace kiln::runtime::cuda {

void register_attention_kernels() {}

}  // namespace kiln::runtime::cuda
