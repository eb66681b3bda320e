// kiln op registry: per op type, type/shape inference and the reference kernel (the oracle).
// One op's pieces live together in src/ops/<family>.cpp and register here.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// What inference sees of one node: input types and, where known, constant input values.
struct InferContext {
  const Node& node;
  std::vector<const ValueType*> in;    // nullptr for omitted optional inputs
  std::vector<const Tensor*> values;   // constant value or nullptr
  const ValueType& input(size_t i) const;  // InvalidModel if missing
  bool has(size_t i) const { return i < in.size() && in[i] != nullptr; }
};

// Returns one ValueType per node output. Unknown dims get value -1.
using InferFn = std::function<std::vector<ValueType>(const InferContext&)>;
// Computes outputs from inputs. Omitted optional inputs are nullptr. Fills `outputs` (one per node output).
using KernelFn = std::function<void(const Node&, const std::vector<const Tensor*>& inputs,
                                    std::vector<Tensor>& outputs)>;

struct OpDef {
  std::string op_type;
  std::string domain;           // "" = ai.onnx
  // Every ONNX since_version this kernel implements (ascending). A node is accepted at opset >= since[0] unless
  // ONNX defines a since_version of the op above since.back() and <= the node's opset (src/ir/onnx_op_versions.inc).
  std::vector<int> since;
  InferFn infer;
  KernelFn reference;
};

class OpRegistry {
 public:
  static OpRegistry& instance();
  void add(OpDef def);
  // nullptr when not registered, when `opset` is below the first supported since_version, or when ONNX defines a
  // newer since_version of the op (> since.back(), <= opset) that the kernel does not implement.
  const OpDef* find(const std::string& domain, const std::string& op_type, int64_t opset) const;
  bool known_op(const std::string& domain, const std::string& op_type) const;
  std::vector<const OpDef*> all() const;

 private:
  std::vector<OpDef> defs_;
};

// The since_versions ONNX defines for an op (ai.onnx and ai.onnx.ml, from the pinned onnx); nullptr if unknown.
const std::vector<int>* onnx_since_versions(const std::string& domain, const std::string& op_type);

// Registers every op family. Idempotent; called by the importer and the runtime.
void register_all_ops();

// Runs `infer` for every node of `g` in order, filling g.types for node outputs.
// Uses g.initializers as constant values. Throws InvalidModel naming the node on inconsistencies.
void infer_types(Graph& g);

}  // namespace kiln::ir
