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
//
// kiln.FusedConv(X, W, B?, Z?) -> Y            (src/ops/fused_conv.cpp; made by fuse_conv_activation, CPU engines)
//   Y = act(Conv(X, W, B) + Z): ONNX Conv with all its attributes, then Add of Z (optional; Z has Y's shape), then
//   the activation. Attribute activation: "none" | "relu" | "clip" (Clip with the float attributes clip_min /
//   clip_max, default -inf / +inf; NaN stays NaN as in Clip, while relu maps NaN to 0 as Relu does).
#pragma once
#include <limits>
#include <string>

#include "ir/graph.h"

namespace kiln::ops::fused_ops {

inline constexpr const char* kDomain = "kiln";
inline constexpr const char* kFusedMatMul = "FusedMatMul";
inline constexpr const char* kAddLayerNorm = "AddLayerNormalization";
inline constexpr const char* kFusedConv = "FusedConv";

// The activation names of kiln.FusedMatMul ("none", "relu", "gelu", "gelu_tanh").
bool valid_activation(const std::string& a);

// kiln.FusedConv's activation, read from its attributes (InvalidModel for an unknown one).
struct ConvActivation {
  enum Kind { None, Relu, Clip } kind = None;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
};
ConvActivation conv_activation(const ir::Node& n);

void register_fused_ops();  // called by ir::register_all_ops
void register_fused_conv();  // called by register_fused_ops

}  // namespace kiln::ops::fused_ops
