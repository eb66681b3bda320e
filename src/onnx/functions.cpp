// Model-local functions (ModelProto.functions, as PyTorch's dynamo exporter emits them): inlined at each call,
// recursively. Internal values get fresh graph-unique names, formal inputs/outputs map to the call's names,
// attribute references bind to the call's attributes or the function's defaults (attribute_proto), and the body's
// nodes use the function's own opset_import.
#include <algorithm>

#include "onnx/import_impl.h"
#include "util/error.h"

namespace kiln::onnx_import {

namespace functions_impl {

std::string function_key(const std::string& domain, const std::string& name, const std::string& overload) {
  return normalize_domain(domain) + "\n" + name + "\n" + overload;
}

std::string function_label(const ::onnx::FunctionProto& f) {
  std::string s = "function '" + (f.domain().empty() ? std::string() : f.domain() + "::") + f.name();
  if (!f.overload().empty()) s += ":" + f.overload();
  return s + "'";
}

}  // namespace functions_impl

void Importer::index_functions() {
  using namespace functions_impl;
  for (const auto& f : model_.functions()) {
    if (f.name().empty()) KILN_THROW(InvalidModel, "a model-local function has no name");
    std::string key = function_key(f.domain(), f.name(), f.overload());
    if (!functions_.emplace(key, &f).second) KILN_THROW(InvalidModel, function_label(f) << " is defined twice");
  }
}

const ::onnx::FunctionProto* Importer::find_function(const std::string& domain, const std::string& name,
                                                     const std::string& overload) const {
  if (functions_.empty()) return nullptr;
  auto it = functions_.find(functions_impl::function_key(domain, name, overload));
  return it == functions_.end() ? nullptr : it->second;
}

void Importer::inline_call(const ::onnx::FunctionProto& f, const ::onnx::NodeProto& call, const Scope& caller,
                           const std::string& call_path, ir::Graph& g) {
  using namespace functions_impl;
  const std::string label = "node '" + call_path + "' (call of " + function_label(f) + ")";
  const std::string key = function_key(f.domain(), f.name(), f.overload());
  if (active_calls_.count(key)) KILN_THROW(InvalidModel, label << ": " << function_label(f) << " calls itself");
  if (nesting_ >= kMaxNesting) KILN_THROW(InvalidModel, label << ": functions nested deeper than " << kMaxNesting);
  if (call.input_size() > f.input_size())
    KILN_THROW(InvalidModel, label << ": " << call.input_size() << " inputs given, the function declares "
                                   << f.input_size());
  if (call.output_size() > f.output_size())
    KILN_THROW(InvalidModel, label << ": " << call.output_size() << " outputs given, the function declares "
                                   << f.output_size());

  // Names: formal inputs -> actual (omitted ones -> ""), formal outputs -> actual, the rest fresh on first use.
  NameMap nm;
  nm.prefix = call_path;
  std::vector<std::pair<std::string, std::string>> passthrough;  // formal output that is a formal input
  for (int i = 0; i < f.input_size(); ++i) {
    if (f.input(i).empty()) KILN_THROW(InvalidModel, function_label(f) << ": input " << i << " has no name");
    std::string actual = i < call.input_size() ? map_name(caller, call.input(i)) : std::string();
    if (!nm.names.emplace(f.input(i), actual).second)
      KILN_THROW(InvalidModel, function_label(f) << ": input '" << f.input(i) << "' is declared twice");
  }
  for (int i = 0; i < f.output_size(); ++i) {
    if (i >= call.output_size() || call.output(i).empty()) continue;  // unused output: fresh name on first use
    std::string actual = map_name(caller, call.output(i));
    auto [it, inserted] = nm.names.emplace(f.output(i), actual);
    if (!inserted) passthrough.emplace_back(it->second, actual);
  }

  // Attribute bindings: the function's defaults, overridden by the call's attributes (references resolved).
  AttrBindings bindings;
  Scope callee;
  for (const auto& ap : f.attribute_proto()) bindings[ap.name()] = BoundAttr{&ap, &callee};
  for (const auto& ap : call.attribute()) {
    if (ap.ref_attr_name().empty()) {
      bindings[ap.name()] = BoundAttr{&ap, &caller};
      continue;
    }
    if (!caller.attrs)
      KILN_THROW(InvalidModel, label << ": attribute '" << ap.name() << "' refers to '" << ap.ref_attr_name()
                                     << "', but references are only allowed inside functions");
    auto it = caller.attrs->find(ap.ref_attr_name());
    if (it != caller.attrs->end()) bindings[ap.name()] = it->second;
  }

  OpsetMap fopsets;
  for (const auto& os : f.opset_import()) {
    int64_t& v = fopsets[normalize_domain(os.domain())];
    v = std::max(v, static_cast<int64_t>(os.version()));
  }
  callee.rename = &nm;
  callee.attrs = &bindings;
  callee.opsets = &fopsets;
  callee.path = call_path + "/";

  active_calls_.insert(key);
  ++nesting_;
  try {
    for (const auto& vi : f.value_info()) {  // IR 10: types of the body's values
      auto vt = tensor_type_of(vi);
      std::string name = vt ? map_name(callee, vi.name()) : std::string();
      if (!name.empty()) g.types.emplace(name, *vt);
    }
    for (const auto& node : f.node()) emit_node(node, callee, g);
  } catch (...) {
    --nesting_;
    active_calls_.erase(key);
    throw;
  }
  --nesting_;
  active_calls_.erase(key);

  // A formal output that is directly a formal input: copy it with an Identity node.
  for (const auto& [from, to] : passthrough) {
    count_node();
    ir::Node n;
    n.name = call_path + "/Identity";
    n.op_type = "Identity";
    n.opset = opset_for(callee, "", label);
    n.inputs = {from};
    n.outputs = {to};
    g.nodes.push_back(std::move(n));
  }
}

}  // namespace kiln::onnx_import
