// Internals of the ONNX importer, shared by importer.cpp, graph_import.cpp, attributes.cpp and functions.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "kiln/model.h"
#include "onnx/onnx.pb.h"
#include "onnx/tensor_proto.h"

namespace kiln::onnx_import {

// Domain -> opset version; the default domain is "" ("ai.onnx" is normalized to "").
using OpsetMap = std::map<std::string, int64_t>;

inline std::string normalize_domain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

struct Scope;

// An attribute value bound to a function's attribute name, with the scope its value was written in.
struct BoundAttr {
  const ::onnx::AttributeProto* proto = nullptr;
  const Scope* scope = nullptr;
};
using AttrBindings = std::map<std::string, BoundAttr>;

// Renaming of one inlined function body: formal inputs/outputs -> the call's actual names, every other
// name -> a fresh graph-unique name "<call path>/<name>".
struct NameMap {
  std::map<std::string, std::string> names;
  std::string prefix;
};

// Where a node is being converted: in a graph (no renaming, no attribute references) or in a function body.
struct Scope {
  NameMap* rename = nullptr;            // nullptr: names as written
  const AttrBindings* attrs = nullptr;  // nullptr: attribute references are invalid here
  const OpsetMap* opsets = nullptr;     // function's opset_import (falls back to the model's); nullptr: model's
  std::string path;                     // node-name prefix of inlined nodes ("call/"), "" in graphs
};

// Limits that keep hostile inputs from exhausting memory or stack (the importer is fuzzed).
// Nodes after inlining, all graphs together: at most kMaxNodes, and at most kNodeFloor + kMaxExpansion x the
// nodes written in the file (graphs and function bodies), so nested functions cannot blow a small file up.
constexpr size_t kMaxNodes = size_t(1) << 22;
constexpr size_t kNodeFloor = size_t(1) << 16;
constexpr size_t kMaxExpansion = 64;
constexpr int kMaxNesting = 64;                // function calls + subgraphs nested

// Tensor type of a ValueInfo; nullopt when it has none, is not a tensor, or has an element type kiln lacks.
std::optional<ir::ValueType> tensor_type_of(const ::onnx::ValueInfoProto& vi);
// Same, strict (graph inputs/outputs): InvalidModel when the type is missing, Unsupported for non-tensor types
// (sequence, map, optional, sparse) and element types kiln lacks. `what` names the value.
ir::ValueType require_tensor_type(const ::onnx::ValueInfoProto& vi, const std::string& what);

class Importer {
 public:
  Importer(const ::onnx::ModelProto& model, const onnx_tensor::ExternalData& ext, OpsetMap model_opsets);

  // Converts the main graph; fills the runtime inputs / outputs of the model.
  void import_main(ir::Graph& g, std::vector<TensorInfo>& inputs, std::vector<TensorInfo>& outputs);

  // ---- graph_import.cpp
  // Converts a graph body (main graph or a subgraph attribute) in scope `s`.
  void convert_graph(const ::onnx::GraphProto& gp, const Scope& s, ir::Graph& g, bool top_level);
  // Converts one node (inlining model-local functions, turning Constant into an initializer) into `g`.
  void emit_node(const ::onnx::NodeProto& np, const Scope& s, ir::Graph& g);

  // ---- attributes.cpp
  // Converts the node's attributes; references resolve through s.attrs (unbound references are left out).
  void convert_attrs(const ::onnx::NodeProto& np, const Scope& s, const std::string& label,
                     std::map<std::string, ir::Attr>& out);
  // One attribute value (never a reference), written in scope `s`.
  ir::Attr convert_attr_value(const ::onnx::AttributeProto& a, const Scope& s, const std::string& label,
                              const std::string& attr_name);

  // ---- functions.cpp
  const ::onnx::FunctionProto* find_function(const std::string& domain, const std::string& name,
                                             const std::string& overload) const;
  void inline_call(const ::onnx::FunctionProto& f, const ::onnx::NodeProto& call, const Scope& caller,
                   const std::string& call_path, ir::Graph& g);

  // ---- names and opsets (graph_import.cpp)
  std::string map_name(const Scope& s, const std::string& name);
  int64_t opset_for(const Scope& s, const std::string& domain, const std::string& label) const;
  // Counts one emitted node; InvalidModel past the node limit.
  void count_node();

 private:
  void index_functions();
  void collect_names(const ::onnx::GraphProto& gp, int depth);

  const ::onnx::ModelProto& model_;
  onnx_tensor::ExternalData ext_;
  OpsetMap model_opsets_;
  int64_t ir_version_ = 0;
  std::map<std::string, const ::onnx::FunctionProto*> functions_;  // key: domain \n name \n overload
  std::unordered_set<std::string> used_names_;  // every value name in the model and every fresh one
  std::unordered_map<std::string, size_t> next_suffix_;  // fresh-name base -> next "_k" to try
  std::set<std::string> active_calls_;           // functions being inlined (recursion check)
  size_t node_count_ = 0;
  size_t max_nodes_ = kMaxNodes;
  size_t proto_nodes_ = 0;  // nodes written in the file (for max_nodes_)
  int nesting_ = 0;
};

}  // namespace kiln::onnx_import
