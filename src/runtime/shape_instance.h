// Shape instances: for concrete input shapes, every value's shape inferred on the host with each node's
// OpDef::infer, plus the values the host can know without running the device: initializers, Shape / Size
// outputs (from shapes alone) and small integer tensors computed from host-known inputs with the reference
// kernels (the shape arithmetic exporters emit: Shape -> Gather -> Concat -> Reshape). Pure host code; the CUDA
// executor builds its per-shape execution plans on it, and tests run it on the CPU.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"

namespace kiln::runtime {

// Largest host-evaluated tensor (elements); larger results are computed on the device.
constexpr int64_t kHostValueMaxElems = 1024;

// Value names of a graph as dense ids, with each node's input / output ids (-1 for an omitted one).
struct GraphIndex {
  // `extra_inputs`: names bound from outside besides g.inputs (a subgraph's outer-scope captures).
  explicit GraphIndex(const ir::Graph& g, const std::vector<std::string>& extra_inputs = {});
  const ir::Graph* graph = nullptr;
  std::unordered_map<std::string, int> id;
  std::vector<std::string> names;
  std::vector<std::vector<int>> node_in, node_out;
  std::vector<int> inputs;   // g.inputs then extra_inputs
  std::vector<int> outputs;  // g.outputs
  std::vector<int> producer;          // per value: producing node, -1 for inputs / initializers
  std::vector<int> last_use;          // per value: last consuming node, -1 when none
  std::vector<uint8_t> is_output;     // per value
  std::vector<const Tensor*> initializer;  // per value: g.initializers entry or nullptr
  int lookup(const std::string& name) const;  // -1 when unknown
};

struct InstanceShapes {
  std::vector<ir::ValueType> type;  // per value; is_static() when the shape is known for these inputs
  std::vector<Tensor> host;         // per value: host value when known (initializers included), else empty
  std::vector<uint8_t> host_node;   // per node: evaluated on the host (every output host-known)
  std::vector<uint8_t> static_node; // per node: every output's shape is static
};

// Infers every value for the given input types (one per idx.inputs, static for a shape instance) and, where
// known, host input values (nullptr or one per idx.inputs). Values downstream of data-dependent shapes stay
// non-static. Errors of a node whose inputs are all static propagate (kiln::Error naming the node).
InstanceShapes infer_instance(const GraphIndex& idx, const std::vector<ir::ValueType>& input_types,
                              const std::vector<const Tensor*>& input_host = {});

// Runs one node's inference with these input types / host values (nullptr when unknown). When every present
// input is static and the node is host-evaluable (see above), fills `host_out` with its computed outputs and
// returns their types. Used for whole instances and, at run time, for nodes past a data-dependent shape.
std::vector<ir::ValueType> infer_node(const ir::Node& n, const std::vector<const ir::ValueType*>& in,
                                      const std::vector<const Tensor*>& host_in, std::vector<Tensor>* host_out);

// Whether the host may evaluate a node of this kind whose inputs are host-known (integer / bool outputs of
// at most kHostValueMaxElems elements, no subgraphs).
bool host_evaluable_dtype(DType t);

}  // namespace kiln::runtime
