#include "ir/subgraph.h"

#include <mutex>
#include <set>

#include "util/error.h"

namespace kiln::ir {

namespace subgraph_detail {
std::mutex& runner_mutex() {
  static std::mutex m;
  return m;
}
SubgraphRunner& runner_slot() {
  static SubgraphRunner r;
  return r;
}
}  // namespace subgraph_detail

std::vector<std::string> free_names(const Graph& g) {
  std::set<std::string> defined(g.inputs.begin(), g.inputs.end());
  for (const auto& [k, v] : g.initializers) defined.insert(k);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (!o.empty()) defined.insert(o);
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto use = [&](const std::string& v) {
    if (!v.empty() && !defined.count(v) && seen.insert(v).second) out.push_back(v);
  };
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs) use(in);
  for (const auto& o : g.outputs) use(o);
  return out;
}

bool has_subgraphs(const Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (std::holds_alternative<GraphPtr>(a)) return true;
  return false;
}

size_t num_formal_inputs(const Node& n) {
  if (!n.has_attr(kNumFormalInputs)) return n.inputs.size();
  const int64_t f = n.attr_int(kNumFormalInputs);
  if (f < 0 || static_cast<size_t>(f) > n.inputs.size())
    KILN_THROW(InvalidModel, n.label() << ": attribute " << kNumFormalInputs << " = " << f << " but the node has "
                                       << n.inputs.size() << " inputs");
  return static_cast<size_t>(f);
}

TensorMap captured_values(const Node& n, const std::vector<const Tensor*>& inputs) {
  const size_t formal = num_formal_inputs(n);
  std::vector<std::string> names;
  if (n.has_attr(kCapturedNames)) {
    const Attr& a = n.attrs.at(kCapturedNames);
    const auto* v = std::get_if<std::vector<std::string>>(&a);
    if (!v) KILN_THROW(InvalidModel, n.label() << ": attribute " << kCapturedNames << " must be a string list");
    names = *v;
  }
  if (formal + names.size() != n.inputs.size() || inputs.size() != n.inputs.size())
    KILN_THROW(InvalidModel, n.label() << ": " << formal << " formal inputs + " << names.size()
                                       << " captured names, but the node has " << n.inputs.size() << " inputs and "
                                       << inputs.size() << " values were given");
  TensorMap m;
  for (size_t k = 0; k < names.size(); ++k) {
    const Tensor* t = inputs[formal + k];
    if (!t) KILN_THROW(InvalidModel, n.label() << ": captured value '" << names[k] << "' is missing");
    m[names[k]] = *t;
  }
  return m;
}

void set_subgraph_runner(SubgraphRunner fn) {
  std::lock_guard<std::mutex> lock(subgraph_detail::runner_mutex());
  subgraph_detail::runner_slot() = std::move(fn);
}

TensorMap run_subgraph(const Graph& g, const TensorMap& captured) {
  SubgraphRunner r;
  {
    std::lock_guard<std::mutex> lock(subgraph_detail::runner_mutex());
    r = subgraph_detail::runner_slot();
  }
  if (!r) KILN_THROW(InvalidState, "no subgraph runner is registered (graph '" << g.name << "')");
  return r(g, captured);
}

}  // namespace kiln::ir
