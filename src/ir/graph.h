// kiln IR: values, nodes, graphs. Plain data; passes rewrite it, the plan serializes it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/model.h"
#include "kiln/tensor.h"

namespace kiln::ir {

using kiln::Dim;

// Type of a value: dtype plus shape. `has_rank` false means the rank is unknown.
struct ValueType {
  DType dtype = DType::Float32;
  bool has_rank = false;
  std::vector<Dim> dims;

  static ValueType of(DType dt, const Shape& s);
  static ValueType unknown(DType dt) { return ValueType{dt, false, {}}; }
  bool is_static() const;  // rank and every dim known
  Shape static_shape() const;  // requires is_static()
  std::string str() const;
};

struct Graph;
using GraphPtr = std::shared_ptr<Graph>;

// ONNX attribute value. A float list is stored as std::vector<float>; a graph as GraphPtr.
using Attr = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                          std::vector<std::string>, Tensor, GraphPtr>;

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for ai.onnx
  int64_t opset = 0;   // opset version of `domain` in force for this node
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attr> attrs;
  std::string tactic;  // chosen by the builder ("" before)

  bool has_attr(const std::string& k) const { return attrs.count(k) != 0; }
  // Typed getters. A present attribute of the wrong kind is InvalidModel naming node and attribute.
  int64_t attr_int(const std::string& k, int64_t dflt) const;
  int64_t attr_int(const std::string& k) const;  // required
  float attr_float(const std::string& k, float dflt) const;
  std::string attr_string(const std::string& k, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& k, const std::vector<int64_t>& dflt) const;
  std::vector<float> attr_floats(const std::string& k, const std::vector<float>& dflt) const;
  const Tensor& attr_tensor(const std::string& k) const;  // required
  // Number of present (non-empty) inputs counting from the front, i.e. index of last present + 1.
  size_t num_inputs() const;
  bool has_input(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  // "Conv 'conv1'" for messages.
  std::string label() const;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;              // topologically sorted
  std::vector<std::string> inputs;      // runtime inputs (non-initializer)
  std::vector<std::string> outputs;
  std::map<std::string, ValueType> types;       // known value types (inputs, outputs, inferred)
  std::map<std::string, Tensor> initializers;   // constant values (weights, folded constants)
  // Runtime inputs with a default value (ONNX IR >= 4: a graph input that is also an initializer).
  // The caller may override them; when omitted the default is used. Never folded as constants.
  std::map<std::string, Tensor> input_defaults;

  bool is_constant(const std::string& v) const { return initializers.count(v) != 0; }
  const ValueType* type_of(const std::string& v) const;
  // Producer index of each value, consumers of each value.
  std::map<std::string, size_t> producers() const;
  std::map<std::string, std::vector<size_t>> consumers() const;
  // Re-sorts nodes topologically; InvalidModel on cycles or values with no producer.
  void topo_sort();
  // Fresh name with the given prefix that no value or node uses.
  std::string unique_name(const std::string& prefix) const;
};

}  // namespace kiln::ir
