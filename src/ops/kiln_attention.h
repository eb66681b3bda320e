// kiln.Attention: scaled-dot-product attention as one node, made by the fuse_attention pass
// (src/passes/fuse_attention.cpp) for CUDA engines. This header holds the attribute model shared by the pass, the
// op's inference and reference kernel (src/ops/kiln_attention.cpp) and the CUDA kernel
// (src/runtime/cuda/kernels/attention_fused.cu).
//
// Inputs: Q, K, V, mask (optional). Output: O. Per batch b and head h, with S = scale * Q K^T ([Sq, Sk]):
//   S[i, j] += bias(b, h, i, j)               the mask: "add" adds the float mask, "bool" adds mask_true where the bool
//                                             mask is true and mask_false where it is false; broadcast (numpy, right
//                                             aligned) to [B, H, Sq, Sk]
//   S[i, j] = round(S[i, j])                  to score_dtype ("float32": no rounding; "float16" / "bfloat16" where the
//                                             graph added the mask in that type: a large finite fill such as -65504
//                                             then absorbs the score, as it did there)
//   S[i, j] = -inf where j > i                with causal = 1 (top-left aligned)
//   P = softmax over j (float), P = 0 where P is NaN (nan_to_zero = 1: the exporters' IsNaN / Where guard, which
//       turns a row whose every score is -inf into zeros)
//   O = P V
// Layouts (attributes q_layout, k_layout, v_layout, out_layout), D the head size (Dv for V and O):
//   "bhsd"  4-D [B, H, S, D]            (heads split and transposed)
//   "bshd"  4-D [B, S, H, D]            (heads split, token-major)
//   "bsd"   3-D [B, S, H * D]           (token-major; num_heads gives H): a projection's output as it is
// "bshd" and "bsd" are the same bytes, so a token-major operand is read without its head Transpose.
// packed_qkv = 1 (made by the fuse_qkv pass): Q, K and V are one value [B, S, 3 * H * D] whose last axis holds Q's
// heads, then K's, then V's (one GEMM projected all three); the three layouts are "bsd" and D == Dv.
// Attributes: scale (float), num_heads (int, needed when a layout is "bsd"), q/k/v/out_layout (strings), mask_mode
// ("none", "add", "bool"), mask_true / mask_false (floats, bool mode), score_dtype (string), causal (int),
// nan_to_zero (int), packed_qkv (int).
// Q, K and V have one float dtype (float32, float16, bfloat16); O has it too. The reference computes in float64
// (the oracle); the CUDA kernel in float32 with float16 / bfloat16 operands on the tensor cores.
#pragma once
#include <cstdint>
#include <string>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::ops::kattn {

inline constexpr const char* kDomain = "kiln";
inline constexpr const char* kOpType = "Attention";

enum class Layout { BHSD, BSHD, BSD };
enum class MaskMode { None, Add, Bool };

const char* layout_name(Layout l);
const char* mask_mode_name(MaskMode m);

struct Params {
  float scale = 1.0f;
  int64_t num_heads = 0;  // 0: from the 4-D shapes
  Layout q = Layout::BHSD, k = Layout::BHSD, v = Layout::BHSD, out = Layout::BHSD;
  MaskMode mask = MaskMode::None;
  float mask_true = 0.0f, mask_false = 0.0f;
  DType score_dtype = DType::Float32;
  bool causal = false;
  bool nan_to_zero = false;
  bool packed_qkv = false;
};

// Reads / writes the node's attributes; decode throws InvalidModel naming the node when they are malformed.
Params decode(const ir::Node& n);
void encode(const Params& p, ir::Node& n);

// Sizes of one call, from the input shapes (InvalidModel naming the node when they disagree).
struct Dims {
  int64_t B = 0, H = 0, Sq = 0, Sk = 0, D = 0, Dv = 0;
};
Dims dims(const ir::Node& n, const Params& p, const Shape& q, const Shape& k, const Shape& v);
Shape out_shape(const Params& p, const Dims& d);

// Element offsets of row s of head (b, h) in a tensor of this layout, and the step between consecutive rows s.
struct RowAddr {
  int64_t base = 0, row_stride = 0;
};
inline RowAddr row_addr(Layout l, int64_t b, int64_t h, int64_t H, int64_t S, int64_t D) {
  if (l == Layout::BHSD) return {(b * H + h) * S * D, D};
  return {b * S * H * D + h * D, H * D};
}
// Operand `which` (0 Q, 1 K, 2 V, 3 O) of a node with these params and sizes: row s of head (b, h) starts at
// base + s * row_stride in that operand's tensor (for packed Q / K / V: the shared [B, S, 3 * H * D] value).
inline RowAddr operand_addr(const Params& p, int which, int64_t b, int64_t h, const Dims& d) {
  if (p.packed_qkv && which < 3) {
    const int64_t HD = d.H * d.D, S = d.Sq;
    return {b * S * 3 * HD + which * HD + h * d.D, 3 * HD};
  }
  const Layout l = which == 0 ? p.q : which == 1 ? p.k : which == 2 ? p.v : p.out;
  const int64_t S = which == 0 || which == 3 ? d.Sq : d.Sk, D = which < 2 ? d.D : d.Dv;
  return row_addr(l, b, h, d.H, S, D);
}

// Strides (elements) of the mask aligned to [B, H, Sq, Sk]: 0 where it broadcasts. InvalidModel when its shape does
// not broadcast to that.
void mask_strides(const ir::Node& n, const Shape& mask, const Dims& d, int64_t out[4]);

void register_kiln_attention();  // called by ir::register_all_ops

}  // namespace kiln::ops::kattn
