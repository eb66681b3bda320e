// Graph passes. Each pass lives in its own file, states what it matches and why it is valid,
// and returns whether it changed the graph.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "kiln/dtype.h"

#include "ir/graph.h"

namespace kiln::passes {

// Nodes with subgraphs (If, Loop) read outer-scope values implicitly: those reads are not in Graph::consumers().
bool has_subgraph(const ir::Node& n);
bool has_subgraphs(const ir::Graph& g);
// The initializer named v when it is a fixed constant (not a runtime input, nor one with a default a caller may
// override); nullptr otherwise.
const Tensor* fixed_initializer(const ir::Graph& g, const std::string& v);

// float32, float16 or bfloat16.
bool is_float3(DType t);
// Same rank and, dim by dim, the same static value or the same symbol (ops::same_dim).
bool same_dims(const ir::ValueType& a, const ir::ValueType& b);

// Values v and r (of types a and b; nullptr: unknown) have one shape: the same dims by the types, or, where the
// types leave dims unknown, the same concrete shape of both in every sample (every value's shape at sample inputs).
using ValueShapes = std::map<std::string, Shape>;
bool same_shape(const ir::ValueType* a, const ir::ValueType* b, const std::string& v, const std::string& r,
                const std::vector<ValueShapes>& samples);

// Rebuilds g.nodes after a fusion: node i becomes fused[replace_at[i]] where replace_at[i] >= 0, is left out where
// drop[i], and stays otherwise (order kept). Returns the new node count.
size_t splice_fused(ir::Graph& g, const std::vector<int>& replace_at, const std::vector<bool>& drop,
                    std::vector<ir::Node>& fused);

struct Pass {
  const char* name;
  bool (*run)(ir::Graph&);
};

bool eliminate_dead_code(ir::Graph& g);   // dce.cpp
bool fold_constants(ir::Graph& g);        // constant_folding.cpp (also folds Shape of static values)
bool fold_batchnorm_into_conv(ir::Graph& g);  // batchnorm_folding.cpp
bool remove_redundant_casts(ir::Graph& g);    // cast_cleanup.cpp
// Elementwise chains -> kiln.FusedElementwise nodes (fuse_elementwise.cpp; CUDA engines, after autocast).
// Whether a producer has its consumer's shape is decided from the inferred types, or, where they leave dims
// unknown, from `samples`: every value's concrete shape at sample input shapes (the builder passes each profile's
// min / opt / max); the shapes must agree in every sample.
bool fuse_elementwise(ir::Graph& g);
bool fuse_elementwise(ir::Graph& g, const std::vector<ValueShapes>& samples);
// Scaled-dot-product attention (MatMul, scale, mask, Softmax, NaN guard, MatMul, head splits) -> kiln.Attention
// nodes (fuse_attention.cpp; CUDA engines, after autocast, before elementwise fusion). `samples` as above decide the
// shapes of Reshapes whose dims the types leave unknown. Run DCE after it.
bool fuse_attention(ir::Graph& g);
bool fuse_attention(ir::Graph& g, const std::vector<ValueShapes>& samples);
// MatMul(A, B const) + Add(bias const on the last axis) [+ Relu | Gelu] -> kiln.FusedMatMul (fuse_gemm_epilogue.cpp;
// CUDA engines, after autocast, before fuse_elementwise).
bool fuse_gemm_epilogue(ir::Graph& g);
// Three kiln.FusedMatMul projections of one input feeding a kiln.Attention's Q, K and V -> one FusedMatMul with the
// weights side by side, read by the attention node with packed_qkv = 1 (fuse_qkv.cpp; CUDA engines, after
// fuse_attention and fuse_gemm_epilogue). Run DCE after it (the three weights become unused).
bool fuse_qkv(ir::Graph& g);
// Add(A, B) -> LayerNormalization -> kiln.AddLayerNormalization (fuse_add_layernorm.cpp; CUDA engines, after autocast,
// before fuse_elementwise). `samples` as for fuse_elementwise (A and B must have X's shape).
bool fuse_add_layernorm(ir::Graph& g);
bool fuse_add_layernorm(ir::Graph& g, const std::vector<ValueShapes>& samples);

// Conv [+ Add(Z)] [+ Relu | Clip(constant bounds)] -> kiln.FusedConv (fuse_conv_activation.cpp; CPU engines, after
// autocast). Run DCE after it (a Clip's bound initializers become unused).
bool fuse_conv_activation(ir::Graph& g);

// Channels-last regions for float16 / bfloat16 2-D convolution chains: kiln.Conv / kiln.Pool and NHWC elementwise
// ops and reductions between one entry and one exit transpose, conv + bias (+ residual Add) (+ Relu) folded into
// kiln.Conv (layout_nhwc.cpp; CUDA engines, after autocast, before fuse_elementwise).
bool layout_nhwc(ir::Graph& g);

// Autocast (autocast.cpp): makes a float32 graph strongly typed in `low` (float16 or bfloat16).
struct AutocastOptions {
  DType low = DType::Float16;
  // true: float32 graph inputs and outputs stay float32 (Casts at the boundary); false: they become `low`.
  bool keep_io_types = true;
  // Op types or node names forced to float32.
  std::vector<std::string> keep_fp32;
  // Keep the precision-sensitive ops (autocast_fp32_ops()) in float32. Only tests turn this off, to show why.
  bool keep_sensitive_ops = true;
  // CUDA engines: LayerNormalization, Softmax and LogSoftmax take the low type for input and output when their
  // input is not a value computed in float32 (their CUDA kernels read float16 / bfloat16, compute in float and round
  // once), instead of running in float32 between two Casts. Off (the default) keeps them float32 (docs/precision.md).
  bool low_precision_norms = false;
};
bool autocast(ir::Graph& g, const AutocastOptions& options);
// The op types autocast keeps in float32 by default (normalizations, softmax, sum-like reductions, Exp/Log/Pow).
const std::vector<std::string>& autocast_fp32_ops();

// The ordered pipeline for the CPU target at `optimization_level` (0 = DCE and folding only).
std::vector<Pass> cpu_pipeline(int optimization_level);
// Runs the passes, re-running type inference after each change. Returns names of passes that changed something.
std::vector<std::string> run_pipeline(ir::Graph& g, const std::vector<Pass>& passes);

}  // namespace kiln::passes
