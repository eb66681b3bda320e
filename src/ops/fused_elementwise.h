// kiln.FusedElementwise: a chain (tree) of elementwise ops evaluated as one node, made by the fuse_elementwise pass
// (src/passes/fuse_elementwise.cpp) for CUDA engines. This header holds the program model shared by the pass, the
// op's inference and reference kernel (src/ops/fused_elementwise.cpp) and the CUDA kernel
// (src/runtime/cuda/kernels/elementwise_fused.cu).
//
// Attributes of the node (S steps, I node inputs, C constants; a *slot* names a value: 0..I-1 the node's inputs,
// I..I+C-1 the constants, I+C+j the result of step j):
//   ops             strings[S]  ONNX op type of each step (Add, Erf, Cast, Where, Clip, ...; see fusable_op())
//   opsets          ints[S]     the ai.onnx opset of the node each step came from
//   operands        ints[3*S]   the step's input slots in ONNX input order, -1 for none / an omitted input
//   dtypes          ints[S]     ONNX TensorProto code of each step's result (Cast's `to`)
//   alphas, betas   floats[S]   LeakyRelu / Elu / HardSigmoid attributes (0 where unused)
//   modes           ints[S]     Gelu: 1 for approximate="tanh", else 0
//   constants       floats[C]   scalar constants (float32 / float16 / bfloat16 values are exact in float)
//   constant_dtypes ints[C]     their ONNX codes
// The node's output is the last step's result. Step j reads only slots < I+C+j, so the program is in topological
// order. The reference kernel runs each step with that op's own reference kernel, so a fused node computes exactly
// what the unfused nodes did.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/dtype.h"

namespace kiln::ops::fused {

inline constexpr const char* kDomain = "kiln";
inline constexpr const char* kOpType = "FusedElementwise";

struct Step {
  std::string op;
  int64_t opset = 0;
  int64_t operands[3] = {-1, -1, -1};
  DType dtype = DType::Float32;
  float alpha = 0, beta = 0;
  int64_t mode = 0;
};

struct Program {
  size_t num_inputs = 0;
  std::vector<float> constants;
  std::vector<DType> constant_dtypes;
  std::vector<Step> steps;
  size_t first_step_slot() const { return num_inputs + constants.size(); }
};

// Reads the attributes of a FusedElementwise node (num_inputs = its input count); InvalidModel naming the node when
// they are malformed (lengths, slots out of range or not yet computed, unknown dtype codes, ops not fusable).
Program decode(const ir::Node& n);
// Writes the program's attributes onto `n` (inputs are not touched).
void encode(const Program& p, ir::Node& n);

// The ONNX ops a program may hold (float math on float32 / float16 / bfloat16 values).
bool fusable_op(const std::string& op);

// ---- accumulator code: what the CUDA kernel interprets ------------------------------------------------------------
// A program is compiled to a straight list of instructions on an accumulator `acc` (one value per element), a second
// operand B (a node input, a constant or a saved register) and up to kMaxSaved saved registers, all in float. Steps
// read more than once are computed first, each into a register of its own; the rest is evaluated as a tree
// (Sethi-Ullman order, temporaries in the registers left).
enum FusedOp : uint8_t {
  kOpLoad = 0,  // acc = B
  kOpSave,      // R[aux] = acc
  kOpAdd, kOpSub, kOpRSub, kOpMul, kOpDiv, kOpRDiv, kOpPow, kOpRPow, kOpMax, kOpMin, kOpPRelu, kOpRPRelu,
  kOpWhere,   // acc = cond(input aux) ? acc : B
  kOpRWhere,  // acc = cond(input aux) ? B : acc
  kOpClipLo,  // acc = acc < B ? B : acc
  kOpClipHi,  // acc = acc > B ? B : acc
  kOpRelu, kOpSigmoid, kOpTanh, kOpErf, kOpExp, kOpLog, kOpSqrt, kOpNeg, kOpAbs, kOpReciprocal, kOpGelu,
  kOpGeluTanh, kOpHardSwish, kOpHardSigmoid /* imm alpha, imm2 beta */, kOpLeakyRelu /* imm alpha */,
  kOpElu /* imm alpha */, kOpSoftplus, kOpMish, kOpCeil, kOpFloor, kOpSign,
  kOpRoundF16,   // acc = float(half(acc)): a Cast to float16
  kOpRoundBF16,  // a Cast to bfloat16
  kOpCount
};
enum FusedSrc : uint8_t { kSrcNone = 0, kSrcInput = 1, kSrcConst = 2, kSrcSaved = 3 };

struct FusedInst {
  uint8_t op = kOpLoad;
  uint8_t src = kSrcNone;  // what B is
  uint8_t idx = 0;         // B's input index (kSrcInput) or register (kSrcSaved)
  uint8_t aux = 0;         // kOpSave: register; kOpWhere / kOpRWhere: the condition's input index
  float imm = 0;           // B for kSrcConst; the unary ops' alpha
  float imm2 = 0;          // HardSigmoid's beta
};

inline constexpr int kMaxSaved = 3;   // saved registers
inline constexpr int kMaxInsts = 48;  // instructions per program
inline constexpr int kMaxInputs = 8;  // node inputs

// Compiles `p` to accumulator code. Returns false (and why) when the CUDA kernel cannot run it: a step nobody reads,
// a Where condition that is not a node input, a Clip bound computed in place, more than kMaxSaved registers (shared
// steps plus temporaries), kMaxInsts instructions or kMaxInputs inputs.
bool compile(const Program& p, std::vector<FusedInst>& code, std::string* why = nullptr);

// Readable form of a program for logs and messages: "y = Mul(Add(x0, 1), x0)".
std::string describe(const Program& p);

void register_fused_elementwise();  // called by ir::register_all_ops

}  // namespace kiln::ops::fused
