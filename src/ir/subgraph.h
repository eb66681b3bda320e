// Subgraphs (If branches; Loop/Scan bodies later): how nodes that carry graph attributes see the values of the
// enclosing graph, and the hook through which kernels run a subgraph without depending on the runtime layer.
//
// Outer-scope captures. ONNX subgraphs read values of enclosing graphs implicitly, by name. At import, every
// node with graph attributes gets those names made explicit (onnx/graph_import.cpp): the names its subgraphs
// read, recursively, that they do not define themselves (as subgraph inputs, initializers or node outputs) are
// appended to node.inputs after the op's formal inputs. Two attributes record the split:
//   kNumFormalInputs ("__num_formal_inputs", int)      how many of node.inputs are the op's own inputs;
//   kCapturedNames   ("__captured_names", strings)     the names the subgraphs use for the captures, in order.
// node.inputs[formal + k] is the outer value bound to the subgraph name kCapturedNames[k]. The two lists start
// out equal; a pass that renames the outer value rewires node.inputs as for any other input and the binding
// still holds. Because the captures are ordinary inputs, DCE, topological sort, liveness and the plan see the
// true dependencies. Nested subgraphs compose: an inner node's captures are inputs of that node, hence names
// its own graph reads and, unless defined there, captures of the outer node too.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::ir {

inline constexpr const char* kNumFormalInputs = "__num_formal_inputs";
inline constexpr const char* kCapturedNames = "__captured_names";

// Names `g` reads without defining them (its outer-scope captures), in first-use order. Nested subgraphs are
// covered through their nodes' capture inputs.
std::vector<std::string> free_names(const Graph& g);
bool has_subgraphs(const Node& n);
// Number of formal inputs of `n` (node.inputs.size() when it has no captures).
size_t num_formal_inputs(const Node& n);
// For a node with captures: subgraph name -> value, from the kernel's input tensors. InvalidModel (naming the
// node) when the capture attributes and the inputs disagree.
TensorMap captured_values(const Node& n, const std::vector<const Tensor*>& inputs);

// Runs a subgraph whose free names are bound by `captured` (its own graph inputs, if any, too) and returns its
// outputs by name. The runtime registers the implementation (runtime/cpu: the reference executor); the ops
// layer only calls through this hook.
using SubgraphRunner = std::function<TensorMap(const Graph&, const TensorMap& captured)>;
void set_subgraph_runner(SubgraphRunner fn);
// InvalidState when no runner is registered.
TensorMap run_subgraph(const Graph& g, const TensorMap& captured);

}  // namespace kiln::ir
