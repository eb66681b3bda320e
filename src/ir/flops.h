// FLOP accounting for inspect: per node, from the value types of a graph whose shapes are known.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.h"

namespace kiln::ir {

// GEMM-shaped ops (their FLOPs are exact: 2 x multiply-adds): Conv, ConvTranspose, MatMul, Gemm, Einsum, Attention.
bool is_gemm_like(const std::string& op_type);
// The same for a node: ai.onnx ops by is_gemm_like(op_type), and kiln.FusedMatMul / kiln.Conv / kiln.FusedConv.
bool is_gemm_like(const Node& n);

// FLOPs of one node. GEMM-shaped ops: 2 x multiply-adds (bias and scaling not counted). Shape, data-movement
// and Cast ops: 0. Pooling: one per window element per output. Everything else: one per element of its largest
// input or output (an estimate). -1 when a shape it needs is not static, for If/Loop and for other domains.
int64_t node_flops(const Graph& g, const Node& n);

// A copy of `g` whose inputs have `shapes`, with every value's type inferred and the shape computations
// evaluated (Shape/Size of static values; nodes whose inputs are constant and whose outputs are small integer
// tensors run their reference kernels), so that e.g. Reshape targets computed from Shape become static.
// Nodes stay one to one with `g`'s. For accounting only: throws kiln::Error where inference fails.
Graph with_input_shapes(const Graph& g, const std::map<std::string, Shape>& shapes);

}  // namespace kiln::ir
