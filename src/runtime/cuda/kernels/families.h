// One register function per CUDA kernel family; register_all_cuda_kernels() calls each once.
// A family lives in one file, src/runtime/cuda/kernels/<family>.cu, with all of its ops' pieces.
#pragma once
#include <cstdint>

namespace kiln::runtime::cuda {

void register_elementwise_kernels();    // unary, binary, variadic, Where, Cast, Clip, compare, logical
void register_gemm_kernels();           // MatMul, Gemm (cuBLASLt), Einsum, Attention
void register_conv_kernels();           // Conv, ConvTranspose (cuDNN)
// ConvTranspose runs that took cuDNN's channels-last path (not the NCHW fallback) in this process, for tests.
uint64_t conv_transpose_nhwc_runs();
void register_nhwc_kernels();           // kiln.Conv, kiln.Pool (channels-last, conv_nhwc.cu)
void register_reduce_kernels();         // Reduce*, ArgMax/ArgMin, Softmax, LogSoftmax, CumSum, TopK
void register_norm_kernels();           // BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm
void register_pool_kernels();           // MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool
void register_movement_kernels();       // Transpose, Gather*, Scatter*, Slice, Concat, Split, Pad, Expand, Tile, ...
void register_control_kernels();        // If, NonZero, Shape, Size, Identity-like, Range, ConstantOfShape

}  // namespace kiln::runtime::cuda
