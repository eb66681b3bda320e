// kiln's private fused ops around GEMMs and LayerNorm (domain "kiln", opset 1), made by the CUDA-engine passes
// fuse_gemm_epilogue and fuse_add_layernorm (src/passes/). Their reference kernels run the original ONNX ops' own
// reference kernels in the original order, so a fused node equals the nodes it replaced bit for bit on the CPU; the
// CUDA kernels compute in float and round once (docs/passes.md).
//
// kiln.FusedMatMul(A, B, bias) -> Y            (src/ops/fused_matmul.cpp)
//   Y = act(MatMul(A, B) + bias). A: [..., K] (rank >= 1), B: [K, N] (rank 2), bias: [N] or [1, ..., 1, N] (rank <=
//   Y's), all of one float dtype. Attribute activation: "none" | "relu" | "gelu" (erf form) | "gelu_tanh".
//
// kiln.AddLayerNormalization(A, B, Scale, Bias?) -> (Y, Sum?)   (src/ops/fused_matmul.cpp)
//   Sum = A + B (A and B of one shape), Y = LayerNormalization(Sum, Scale, Bias) with the LayerNorm's axis, epsilon
//   and stash_type attributes. The optional second output is Sum itself (written when the sum is read elsewhere).
#pragma once
#include <string>

namespace kiln::ops::fused_ops {

inline constexpr const char* kDomain = "kiln";
inline constexpr const char* kFusedMatMul = "FusedMatMul";
inline constexpr const char* kAddLayerNorm = "AddLayerNormalization";

// The activation names of kiln.FusedMatMul ("none", "relu", "gelu", "gelu_tanh").
bool valid_activation(const std::string& a);

void register_fused_ops();  // called by ir::register_all_ops

}  // namespace kiln::ops::fused_ops
