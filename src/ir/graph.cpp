#include "ir/graph.h"

#include <set>
#include <sstream>

#include "util/error.h"

namespace kiln::ir {

ValueType ValueType::of(DType dt, const Shape& s) {
  ValueType t{dt, true, {}};
  for (int64_t d : s) t.dims.push_back(Dim{d, ""});
  return t;
}

bool ValueType::is_static() const {
  if (!has_rank) return false;
  for (const Dim& d : dims)
    if (!d.is_static()) return false;
  return true;
}

Shape ValueType::static_shape() const {
  Shape s;
  for (const Dim& d : dims) s.push_back(d.value);
  return s;
}

std::string ValueType::str() const {
  std::string out = dtype_name(dtype);
  if (!has_rank) return out + "[?]";
  out += "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ",";
    if (dims[i].is_static()) out += std::to_string(dims[i].value);
    else out += dims[i].symbol.empty() ? "?" : dims[i].symbol;
  }
  return out + "]";
}

namespace {
const char* attr_kind(const Attr& a) {
  switch (a.index()) {
    case 0: return "int";
    case 1: return "float";
    case 2: return "string";
    case 3: return "ints";
    case 4: return "floats";
    case 5: return "strings";
    case 6: return "tensor";
    case 7: return "graph";
  }
  return "?";
}
template <typename T>
const T& get_attr(const Node& n, const std::string& k, const char* want) {
  const Attr& a = n.attrs.at(k);
  if (const T* v = std::get_if<T>(&a)) return *v;
  KILN_THROW(InvalidModel, n.label() << ": attribute '" << k << "' should be " << want << ", got " << attr_kind(a));
}
}  // namespace

std::string Node::label() const {
  return op_type + " '" + name + "'";
}

int64_t Node::attr_int(const std::string& k, int64_t dflt) const {
  return has_attr(k) ? get_attr<int64_t>(*this, k, "int") : dflt;
}
int64_t Node::attr_int(const std::string& k) const {
  if (!has_attr(k)) KILN_THROW(InvalidModel, label() << ": required attribute '" << k << "' is missing");
  return get_attr<int64_t>(*this, k, "int");
}
float Node::attr_float(const std::string& k, float dflt) const {
  if (!has_attr(k)) return dflt;
  if (const int64_t* i = std::get_if<int64_t>(&attrs.at(k))) return static_cast<float>(*i);
  return get_attr<float>(*this, k, "float");
}
std::string Node::attr_string(const std::string& k, const std::string& dflt) const {
  return has_attr(k) ? get_attr<std::string>(*this, k, "string") : dflt;
}
std::vector<int64_t> Node::attr_ints(const std::string& k, const std::vector<int64_t>& dflt) const {
  return has_attr(k) ? get_attr<std::vector<int64_t>>(*this, k, "ints") : dflt;
}
std::vector<float> Node::attr_floats(const std::string& k, const std::vector<float>& dflt) const {
  return has_attr(k) ? get_attr<std::vector<float>>(*this, k, "floats") : dflt;
}
const Tensor& Node::attr_tensor(const std::string& k) const {
  if (!has_attr(k)) KILN_THROW(InvalidModel, label() << ": required attribute '" << k << "' is missing");
  return get_attr<Tensor>(*this, k, "tensor");
}
size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

const ValueType* Graph::type_of(const std::string& v) const {
  auto it = types.find(v);
  return it == types.end() ? nullptr : &it->second;
}

std::map<std::string, size_t> Graph::producers() const {
  std::map<std::string, size_t> p;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& o : nodes[i].outputs)
      if (!o.empty()) p[o] = i;
  return p;
}

std::map<std::string, std::vector<size_t>> Graph::consumers() const {
  std::map<std::string, std::vector<size_t>> c;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& in : nodes[i].inputs)
      if (!in.empty()) c[in].push_back(i);
  return c;
}

void Graph::topo_sort() {
  // Kahn's algorithm, stable: among ready nodes the original order wins. O(nodes + edges).
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& o : nodes[i].outputs)
      if (!o.empty()) producer.emplace(o, i);
  std::set<std::string> available(inputs.begin(), inputs.end());
  for (const auto& [k, v] : initializers) available.insert(k);
  std::vector<size_t> pending(nodes.size(), 0);
  std::vector<std::vector<size_t>> users(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<size_t> deps;
    for (const auto& in : nodes[i].inputs) {
      if (in.empty() || available.count(in)) continue;
      auto p = producer.find(in);
      if (p == producer.end())
        KILN_THROW(InvalidModel, "node " << nodes[i].label() << " reads '" << in
                                         << "', which no node, input or initializer provides");
      deps.insert(p->second);
    }
    pending[i] = deps.size();
    for (size_t d : deps) users[d].push_back(i);
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  order.reserve(nodes.size());
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t u : users[i])
      if (--pending[u] == 0) ready.insert(u);
  }
  if (order.size() < nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (pending[i] != 0)
        KILN_THROW(InvalidModel, "graph has a cycle through node " << nodes[i].label());
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (size_t i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
}

std::string Graph::unique_name(const std::string& prefix) const {
  std::set<std::string> used;
  for (const auto& n : nodes) {
    used.insert(n.name);
    for (const auto& o : n.outputs) used.insert(o);
  }
  for (const auto& [k, v] : initializers) used.insert(k);
  for (const auto& i : inputs) used.insert(i);
  if (!used.count(prefix)) return prefix;
  for (int i = 1;; ++i) {
    std::string s = prefix + "_" + std::to_string(i);
    if (!used.count(s)) return s;
  }
}

}  // namespace kiln::ir
