#include "ir/op_registry.h"

#include <algorithm>

#include "util/error.h"

namespace kiln::ir {
namespace op_registry_cpp {

struct OnnxOpVersions {
  const char* domain;
  const char* op_type;
  std::vector<int> since;
};

// Every since_version ONNX defines per op (generated from the pinned onnx package).
const std::vector<OnnxOpVersions>& onnx_versions() {
  static const std::vector<OnnxOpVersions> table = {
#include "ir/onnx_op_versions.inc"
  };
  return table;
}

}  // namespace op_registry_cpp

const std::vector<int>* onnx_since_versions(const std::string& domain, const std::string& op_type) {
  const std::string dom = domain == "ai.onnx" ? "" : domain;
  for (const auto& e : op_registry_cpp::onnx_versions())
    if (e.op_type == op_type && e.domain == dom) return &e.since;
  return nullptr;
}

const ValueType& InferContext::input(size_t i) const {
  if (!has(i)) KILN_THROW(InvalidModel, node.label() << ": input " << i << " is required");
  return *in[i];
}

OpRegistry& OpRegistry::instance() {
  static OpRegistry r;
  return r;
}

void OpRegistry::add(OpDef def) {
  for (auto& d : defs_)
    if (d.op_type == def.op_type && d.domain == def.domain) {
      d = std::move(def);
      return;
    }
  defs_.push_back(std::move(def));
}

const OpDef* OpRegistry::find(const std::string& domain, const std::string& op_type, int64_t opset) const {
  std::string dom = domain == "ai.onnx" ? "" : domain;
  for (const auto& d : defs_)
    if (d.op_type == op_type && d.domain == dom) {
      if (!d.since.empty() && opset < d.since.front()) return nullptr;
      // Refuse an opset that reaches an ONNX version of the op newer than every version the kernel implements:
      // the op may have changed meaning there (e.g. SpaceToDepth-28 added mode=CRD).
      if (!d.since.empty())
        if (const std::vector<int>* onnx = onnx_since_versions(dom, op_type))
          for (int v : *onnx)
            if (v > d.since.back() && v <= opset) return nullptr;
      return &d;
    }
  return nullptr;
}

bool OpRegistry::known_op(const std::string& domain, const std::string& op_type) const {
  std::string dom = domain == "ai.onnx" ? "" : domain;
  return std::any_of(defs_.begin(), defs_.end(),
                     [&](const OpDef& d) { return d.op_type == op_type && d.domain == dom; });
}

std::vector<const OpDef*> OpRegistry::all() const {
  std::vector<const OpDef*> v;
  for (const auto& d : defs_) v.push_back(&d);
  // By op type, then domain (ai.onnx first): a total order, so listings (docs/operators.md) do not depend on the
  // order of registration.
  std::sort(v.begin(), v.end(), [](const OpDef* a, const OpDef* b) {
    return a->op_type != b->op_type ? a->op_type < b->op_type : a->domain < b->domain;
  });
  return v;
}

void infer_types(Graph& g) {
  auto& reg = OpRegistry::instance();
  for (const Node& n : g.nodes) {
    const OpDef* def = reg.find(n.domain, n.op_type, n.opset);
    if (!def) KILN_THROW(Unsupported, "no kernel for " << n.label() << " (domain '" << n.domain << "', opset " << n.opset << ")");
    InferContext ctx{n, {}, {}};
    std::vector<ValueType> const_types;  // keep storage stable
    const_types.reserve(n.inputs.size());
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        ctx.in.push_back(nullptr);
        ctx.values.push_back(nullptr);
        continue;
      }
      auto c = g.initializers.find(in);
      const ValueType* t = g.type_of(in);
      if (c != g.initializers.end()) {
        const_types.push_back(ValueType::of(c->second.dtype(), c->second.shape()));
        t = &const_types.back();
      }
      if (!t) KILN_THROW(InvalidModel, n.label() << ": input '" << in << "' has no known type");
      ctx.in.push_back(t);
      ctx.values.push_back(c != g.initializers.end() ? &c->second : nullptr);
    }
    std::vector<ValueType> outs = def->infer(ctx);
    if (outs.size() < n.outputs.size())
      KILN_THROW(InvalidModel, n.label() << ": has " << n.outputs.size() << " outputs, op defines " << outs.size());
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) g.types[n.outputs[i]] = outs[i];
  }
}

}  // namespace kiln::ir
