// kiln's channels-last ops, written by the layout_nhwc pass (src/passes/layout_nhwc.cpp) for CUDA engines with
// float16 / bfloat16 convolutions (docs/passes.md, "layout_nhwc"). Domain "kiln", opset 1.
//
// kiln.Conv   inputs X [N, H, W, C], W [M, kH, kW, C / group] (KRSC), B [M] (optional), Z [N, OH, OW, M] (optional)
//             output Y [N, OH, OW, M] = act(conv(X, W) + B + Z)
//             attributes: those of ONNX Conv (pads, auto_pad, strides, dilations, group, kernel_shape; the same
//             meaning, spatial dims H, W), layout = "NHWC" (the only one), activation = "" or "Relu".
// kiln.Pool   input X [N, H, W, C], output Y [N, OH, OW, C]: ONNX MaxPool / AveragePool in channels-last order.
//             attributes: those of the pool op, op = "MaxPool" or "AveragePool", onnx_opset = the original node's
//             ai.onnx opset (pool semantics moved across opsets), layout = "NHWC".
// kiln.ToNhwc input X [N, C, H, W], output Y [N, H, W, channels]: Y[n, h, w, c] = X[n, c, h, w] for c < C, zero
//             for C <= c < channels (the entry of a channels-last region; the zero channels feed a narrow image
//             stem conv whose weights have zero input channels there). attributes: channels (default C, >= C).
//             Any dtype (pure data movement). Its reference kernel is a permuting copy and a zero fill.
// kiln.Conv and kiln.Pool are 2-D only. Their inference and reference kernels permute to NCHW, run the ai.onnx op's own inference /
// reference kernel (Conv, Add, Relu, MaxPool, AveragePool: the same roundings as the unfused NCHW graph) and permute
// back, so the oracle of a rewritten graph computes what the original graph computed.
#pragma once
#include <string>

#include "ir/graph.h"

namespace kiln::ops::nhwc {

inline constexpr const char* kDomain = "kiln";
inline constexpr const char* kConv = "Conv";
inline constexpr const char* kPool = "Pool";
inline constexpr const char* kToNhwc = "ToNhwc";
inline constexpr const char* kLayout = "NHWC";

// Whether `n` is kiln.Conv / kiln.Pool.
bool is_conv(const ir::Node& n);
bool is_pool(const ir::Node& n);
bool is_to_nhwc(const ir::Node& n);

// The ai.onnx node a kiln.Conv / kiln.Pool computes in NCHW (its attributes less layout / activation / op /
// onnx_opset; inputs and outputs left empty).
ir::Node onnx_conv_of(const ir::Node& n);
ir::Node onnx_pool_of(const ir::Node& n);

void register_nhwc_ops();

}  // namespace kiln::ops::nhwc
