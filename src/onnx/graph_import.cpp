// GraphProto / NodeProto -> ir::Graph: initializers, inputs, outputs, value types, nodes (Constant nodes become
// initializers, calls of model-local functions are inlined), unique node names, single assignment.
#include <algorithm>
#include <unordered_set>

#include "ir/subgraph.h"
#include "onnx/import_impl.h"
#include "util/error.h"

namespace kiln::onnx_import {

namespace graph_import_impl {

ir::ValueType value_type_from(const ::onnx::TypeProto::Tensor& tt, DType dt) {
  ir::ValueType vt = ir::ValueType::unknown(dt);
  if (!tt.has_shape()) return vt;  // rank unknown
  vt.has_rank = true;
  vt.dims.reserve(static_cast<size_t>(tt.shape().dim_size()));
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) vt.dims.push_back(Dim{d.dim_value(), ""});
    else vt.dims.push_back(Dim{-1, d.has_dim_param() ? d.dim_param() : std::string()});
  }
  return vt;
}

const char* type_kind(const ::onnx::TypeProto& t) {
  if (t.has_sequence_type()) return "a sequence";
  if (t.has_map_type()) return "a map";
  if (t.has_optional_type()) return "an optional";
  if (t.has_sparse_tensor_type()) return "a sparse tensor";
  if (t.has_opaque_type()) return "an opaque value";
  return "not a tensor";
}

Tensor constant_value(const ir::Node& n, const std::string& label) {
  if (n.num_inputs() != 0) KILN_THROW(InvalidModel, label << ": Constant takes no inputs");
  if (n.outputs.size() != 1 || n.outputs[0].empty())
    KILN_THROW(InvalidModel, label << ": Constant must have exactly one output");
  if (n.attrs.size() != 1)
    KILN_THROW(InvalidModel, label << ": Constant needs exactly one value attribute, has " << n.attrs.size());
  const std::string& k = n.attrs.begin()->first;
  if (k == "value") return n.attr_tensor(k);
  if (k == "value_float") {
    float v = n.attr_float(k, 0.f);
    return Tensor::from_bytes(DType::Float32, {}, &v, sizeof v);
  }
  if (k == "value_floats") {
    std::vector<float> v = n.attr_floats(k, {});
    return Tensor::from_vector(DType::Float32, {static_cast<int64_t>(v.size())}, v);
  }
  if (k == "value_int") {
    int64_t v = n.attr_int(k);
    return Tensor::from_bytes(DType::Int64, {}, &v, sizeof v);
  }
  if (k == "value_ints") {
    std::vector<int64_t> v = n.attr_ints(k, {});
    return Tensor::from_vector(DType::Int64, {static_cast<int64_t>(v.size())}, v);
  }
  if (k == "value_string" || k == "value_strings")
    KILN_THROW(Unsupported, label << ": string constants ('" << k << "') are not supported");
  KILN_THROW(InvalidModel, label << ": unknown Constant attribute '" << k << "'");
}

// "<op>_<index>" for unnamed nodes and for every repeat of a name.
void uniquify_node_names(ir::Graph& g) {
  std::unordered_set<std::string> seen;
  seen.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (n.name.empty() || seen.count(n.name)) {
      const std::string base = n.op_type + "_" + std::to_string(i);
      std::string cand = base;
      for (int k = 1; seen.count(cand); ++k) cand = base + "_" + std::to_string(k);
      n.name = cand;
    }
    seen.insert(n.name);
  }
}

// Every value defined once: by an input, an initializer or one node output.
void check_single_assignment(const ir::Graph& g, bool top_level) {
  std::unordered_set<std::string> defined(g.inputs.begin(), g.inputs.end());
  for (const auto& [k, v] : g.initializers) defined.insert(k);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (!o.empty() && !defined.insert(o).second)
        KILN_THROW(InvalidModel, "value '" << o << "' is defined more than once (again by node " << n.label() << ")");
  if (!top_level) return;  // subgraph outputs may name outer-scope values
  for (const auto& o : g.outputs)
    if (!defined.count(o))
      KILN_THROW(InvalidModel, "graph output '" << o << "' is not produced by any node, input or initializer");
}

// Makes a subgraph-bearing node's outer-scope reads explicit (see ir/subgraph.h): the names its subgraphs
// read but do not define are appended to its inputs after the formal ones, and recorded with the formal count.
// Subgraphs are converted before their node, so nested nodes already list their own captures as inputs.
void bind_captures(ir::Node& n) {
  if (!ir::has_subgraphs(n)) return;
  std::vector<std::string> captured;
  std::unordered_set<std::string> seen;
  for (const auto& [k, a] : n.attrs)
    if (const ir::GraphPtr* sub = std::get_if<ir::GraphPtr>(&a); sub && *sub)
      for (const auto& v : ir::free_names(**sub))
        if (seen.insert(v).second) captured.push_back(v);
  n.attrs[ir::kNumFormalInputs] = static_cast<int64_t>(n.inputs.size());
  n.attrs[ir::kCapturedNames] = captured;
  n.inputs.insert(n.inputs.end(), captured.begin(), captured.end());
}

}  // namespace graph_import_impl

std::optional<ir::ValueType> tensor_type_of(const ::onnx::ValueInfoProto& vi) {
  if (!vi.has_type() || !vi.type().has_tensor_type()) return std::nullopt;
  const auto& tt = vi.type().tensor_type();
  auto dt = onnx_tensor::dtype_from_onnx(tt.elem_type());
  if (!dt) return std::nullopt;
  return graph_import_impl::value_type_from(tt, *dt);
}

ir::ValueType require_tensor_type(const ::onnx::ValueInfoProto& vi, const std::string& what) {
  if (!vi.has_type()) KILN_THROW(InvalidModel, what << " has no type");
  if (!vi.type().has_tensor_type())
    KILN_THROW(Unsupported, what << " is " << graph_import_impl::type_kind(vi.type()) << "; kiln supports tensors only");
  const auto& tt = vi.type().tensor_type();
  return graph_import_impl::value_type_from(tt, onnx_tensor::require_dtype(tt.elem_type(), what));
}

std::string Importer::map_name(const Scope& s, const std::string& name) {
  if (name.empty() || !s.rename) return name;
  auto& m = s.rename->names;
  auto it = m.find(name);
  if (it != m.end()) return it->second;
  const std::string base = s.rename->prefix + "/" + name;
  std::string fresh = base;
  if (used_names_.count(fresh)) {  // "_k" suffixes; remembering k keeps repeated bases linear
    size_t& k = next_suffix_[base];
    do fresh = base + "_" + std::to_string(++k);
    while (used_names_.count(fresh));
  }
  used_names_.insert(fresh);
  m.emplace(name, fresh);
  return fresh;
}

int64_t Importer::opset_for(const Scope& s, const std::string& domain, const std::string& label) const {
  if (s.opsets) {
    auto it = s.opsets->find(domain);
    if (it != s.opsets->end()) return it->second;
  }
  auto it = model_opsets_.find(domain);
  if (it != model_opsets_.end()) return it->second;
  KILN_THROW(InvalidModel, label << ": domain '" << (domain.empty() ? "ai.onnx" : domain)
                                 << "' is not in the model's opset_import");
}

void Importer::collect_names(const ::onnx::GraphProto& gp, int depth) {
  if (depth > kMaxNesting) KILN_THROW(InvalidModel, "subgraphs nested deeper than " << kMaxNesting);
  for (const auto& t : gp.initializer()) used_names_.insert(t.name());
  for (const auto& v : gp.input()) used_names_.insert(v.name());
  for (const auto& v : gp.output()) used_names_.insert(v.name());
  for (const auto& v : gp.value_info()) used_names_.insert(v.name());
  proto_nodes_ += static_cast<size_t>(gp.node_size());
  for (const auto& n : gp.node()) {
    for (const auto& s : n.input()) used_names_.insert(s);
    for (const auto& s : n.output()) used_names_.insert(s);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collect_names(a.g(), depth + 1);
      for (const auto& sub : a.graphs()) collect_names(sub, depth + 1);
    }
  }
}

void Importer::convert_graph(const ::onnx::GraphProto& gp, const Scope& s, ir::Graph& g, bool top_level) {
  using namespace graph_import_impl;
  g.name = gp.name();
  if (gp.sparse_initializer_size() > 0) {
    const auto& sp = gp.sparse_initializer(0);
    KILN_THROW(Unsupported, "sparse initializer '" << (sp.values().name().empty() ? sp.indices().name() : sp.values().name())
                                                   << "' is not supported");
  }
  for (int i = 0; i < gp.initializer_size(); ++i) {
    const auto& tp = gp.initializer(i);
    if (tp.name().empty()) KILN_THROW(InvalidModel, "initializer #" << i << " has no name");
    const std::string name = map_name(s, tp.name());
    if (g.initializers.count(name)) KILN_THROW(InvalidModel, "initializer '" << tp.name() << "' is defined twice");
    g.initializers.emplace(name, onnx_tensor::tensor_from_proto(tp, &ext_, "initializer '" + tp.name() + "'"));
  }

  // Inputs. An input that is also an initializer: IR < 4 lists every initializer among the inputs, so it is a
  // constant; IR >= 4 means "overridable, with the initializer as default" — at the top level it becomes a runtime
  // input with a default (ir::Graph::input_defaults); in subgraphs it stays a constant.
  std::unordered_set<std::string> seen_inputs;
  for (int i = 0; i < gp.input_size(); ++i) {
    const auto& vi = gp.input(i);
    if (vi.name().empty()) KILN_THROW(InvalidModel, "graph input #" << i << " has no name");
    const std::string name = map_name(s, vi.name());
    if (!seen_inputs.insert(name).second) KILN_THROW(InvalidModel, "graph input '" << vi.name() << "' is listed twice");
    if (auto init = g.initializers.find(name); init != g.initializers.end()) {
      if (!top_level || ir_version_ < 4) continue;
      g.input_defaults.emplace(name, init->second);
      g.initializers.erase(init);
    }
    g.inputs.push_back(name);
    if (top_level) {
      g.types[name] = require_tensor_type(vi, "input '" + vi.name() + "'");
    } else if (auto vt = tensor_type_of(vi)) {
      g.types[name] = *vt;
    }
  }
  for (const auto& vi : gp.value_info()) {
    if (vi.name().empty()) continue;
    if (auto vt = tensor_type_of(vi)) g.types.emplace(map_name(s, vi.name()), *vt);
  }
  for (int i = 0; i < gp.output_size(); ++i) {
    const auto& vi = gp.output(i);
    if (vi.name().empty()) KILN_THROW(InvalidModel, "graph output #" << i << " has no name");
    const std::string name = map_name(s, vi.name());
    g.outputs.push_back(name);
    const bool declared = vi.has_type() && (!vi.type().has_tensor_type() || vi.type().tensor_type().elem_type() != 0);
    if (top_level && declared) {
      g.types[name] = require_tensor_type(vi, "output '" + vi.name() + "'");
    } else if (auto vt = tensor_type_of(vi)) {
      g.types[name] = *vt;
    }
  }

  for (const auto& np : gp.node()) emit_node(np, s, g);
  uniquify_node_names(g);
  check_single_assignment(g, top_level);
}

void Importer::emit_node(const ::onnx::NodeProto& np, const Scope& s, ir::Graph& g) {
  const std::string domain = normalize_domain(np.domain());
  const std::string path = s.path + (np.name().empty() ? np.op_type() : np.name());
  const std::string label = np.op_type() + " '" + path + "'";
  if (np.op_type().empty()) KILN_THROW(InvalidModel, "node '" << path << "' has no op_type");

  if (const ::onnx::FunctionProto* f = find_function(domain, np.op_type(), np.overload())) {
    inline_call(*f, np, s, path, g);
    return;
  }
  count_node();

  ir::Node n;
  n.name = s.path.empty() ? np.name() : path;  // unnamed graph nodes get "<op>_<index>" later
  n.op_type = np.op_type();
  n.domain = domain;
  n.opset = opset_for(s, domain, label);
  n.inputs.reserve(static_cast<size_t>(np.input_size()));
  for (const auto& in : np.input()) n.inputs.push_back(map_name(s, in));
  n.outputs.reserve(static_cast<size_t>(np.output_size()));
  for (const auto& out : np.output()) n.outputs.push_back(map_name(s, out));
  convert_attrs(np, s, label, n.attrs);
  graph_import_impl::bind_captures(n);

  if (domain.empty() && n.op_type == "Constant") {
    Tensor t = graph_import_impl::constant_value(n, label);
    if (!g.initializers.emplace(n.outputs[0], std::move(t)).second)
      KILN_THROW(InvalidModel, label << ": value '" << n.outputs[0] << "' is defined more than once");
    return;
  }
  g.nodes.push_back(std::move(n));
}

Importer::Importer(const ::onnx::ModelProto& model, const onnx_tensor::ExternalData& ext, OpsetMap model_opsets)
    : model_(model), ext_(ext), model_opsets_(std::move(model_opsets)), ir_version_(model.ir_version()) {
  index_functions();
  collect_names(model_.graph(), 0);
  for (const auto& f : model_.functions()) proto_nodes_ += static_cast<size_t>(f.node_size());
  max_nodes_ = std::min(kMaxNodes, kNodeFloor + kMaxExpansion * proto_nodes_);
}

void Importer::count_node() {
  if (++node_count_ > max_nodes_)
    KILN_THROW(InvalidModel, "model has more than " << max_nodes_ << " nodes after function inlining ("
                                                    << proto_nodes_ << " in the file)");
}

void Importer::import_main(ir::Graph& g, std::vector<TensorInfo>& inputs, std::vector<TensorInfo>& outputs) {
  Scope top;
  convert_graph(model_.graph(), top, g, true);
  auto info = [&](const std::string& name) {
    TensorInfo ti;
    ti.name = name;
    if (const ir::ValueType* t = g.type_of(name)) {
      ti.dtype = t->dtype;
      ti.dims = t->dims;
    } else if (auto it = g.initializers.find(name); it != g.initializers.end()) {
      ti.dtype = it->second.dtype();
      for (int64_t d : it->second.shape()) ti.dims.push_back(Dim{d, ""});
    }
    if (auto d = g.input_defaults.find(name); d != g.input_defaults.end()) {
      ti.has_default = true;
      if (!g.type_of(name)) {
        ti.dtype = d->second.dtype();
        for (int64_t v : d->second.shape()) ti.dims.push_back(Dim{v, ""});
        g.types[name] = ir::ValueType::of(ti.dtype, d->second.shape());
      }
    }
    return ti;
  };
  for (const auto& n : g.inputs) inputs.push_back(info(n));
  for (const auto& n : g.outputs) outputs.push_back(info(n));
}

}  // namespace kiln::onnx_import
