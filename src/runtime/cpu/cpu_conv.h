// Conv CPU tactics shared pieces: the geometry every Conv tactic reads (cpu_conv.cpp) and the "direct" tactic
// (cpu_conv_direct.cpp).
#pragma once
#include <optional>
#include <vector>

#include "ops/fused_ops.h"
#include "ops/spatial.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"

namespace kiln::runtime::cpu::cpu_conv {

struct ConvArgs {
  const Tensor* x = nullptr;
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;
  int64_t N = 0, C = 0, M = 0, G = 1, Cg = 0, Mg = 0;
  ops::Window3 win{};
  int64_t in_sp = 0, out_sp = 0, k_sp = 0;
  Shape y_shape;
};

// Reads the geometry; false when this tactic does not handle the inputs (the reference kernel then runs, and
// reports any malformed input with its own message).
bool conv_args(const ir::Node& n, const std::vector<const Tensor*>& in, ConvArgs& a);

// How "im2col_blas" splits a convolution of N images, G groups, Mg output channels per group, R = Cg * kernel
// taps and P output positions per image over `threads` threads: each image's P columns are cut into `tiles` tiles
// (unrolled tiles of at most 2^18 floats; a pointwise convolution reads its input in place), each tile's output
// channels into `mblocks` blocks, and the items (image, group, tile, block) run on `threads` threads
// (threads_for_work on the multiply-adds, thread_pool.h). Images and groups give the threads their items first.
struct Im2colSplit {
  int64_t threads = 1, tiles = 1, mblocks = 1;
};
Im2colSplit im2col_split(int64_t N, int64_t G, int64_t Mg, int64_t R, int64_t P, int64_t threads, bool pointwise);

// Float convolutions with input rank 3..5.
bool supports_conv(const ir::Node& n, const std::vector<const ir::ValueType*>& in);

// The epilogue of a kiln.FusedConv (ops/fused_ops.h): Z (input 3 as float32, laid out like the output; nullptr
// when absent) and the activation. An ai.onnx Conv has none.
struct ConvEpilogue {
  const float* z = nullptr;
  ops::fused_ops::ConvActivation act;
  std::vector<float> zbuf;  // Z converted to float32 when it is float16 / bfloat16
  bool active() const { return z || act.kind != ops::fused_ops::ConvActivation::None; }
};
// Reads node n's epilogue for output shape y; false when Z does not have that shape or X's dtype (the reference
// kernel then runs and reports it).
bool conv_epilogue(const ir::Node& n, const std::vector<const Tensor*>& in, const Shape& y, ConvEpilogue& e);
// What every Conv tactic starts and ends with: the arity check, the geometry, the epilogue, the output and float32
// views of X, W, B and Y (float16 / bfloat16 converted; Y written back by finish()). Not movable once opened.
struct ConvRun {
  ConvArgs a;
  ConvEpilogue ep;
  const float *x = nullptr, *w = nullptr, *b = nullptr;
  float* y = nullptr;
  // False when the tactic does not handle the node's inputs (the caller then runs the reference kernel).
  bool open(const ir::Node& n, const std::vector<const Tensor*>& in);
  // Commits Y and hands it out as output 0.
  void finish(std::vector<Tensor>& out);

 private:
  Tensor out_;
  std::vector<float> sx_, sw_, sb_;
  std::optional<F32Out> yo_;
};

// y[r * ld + j] = act(y[r * ld + j] + bias[r] + z[r * ld + j]) for r < rows, j < cols; bias and z may be nullptr (z
// points at the element matching y[0]). Relu maps NaN to 0 (as Relu); clip keeps NaN (as Clip).
void apply_epilogue(float* y, const float* z, const float* bias, int64_t rows, int64_t cols, int64_t ld,
                    const ops::fused_ops::ConvActivation& act);

// "direct" and "direct_dw" (depthwise): 1-D and 2-D convolutions (cpu_conv_direct.cpp).
void conv_direct(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out);
bool supports_direct(const ir::Node& n, const std::vector<const ir::ValueType*>& in);
void conv_direct_dw(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out);
bool supports_dw(const ir::Node& n, const std::vector<const ir::ValueType*>& in);

}  // namespace kiln::runtime::cpu::cpu_conv
