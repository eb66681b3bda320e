#include "runtime/shape_instance.h"

#include "ir/op_registry.h"
#include "ir/subgraph.h"
#include "util/error.h"

namespace kiln::runtime {

GraphIndex::GraphIndex(const ir::Graph& g, const std::vector<std::string>& extra_inputs) : graph(&g) {
  auto add = [&](const std::string& name) {
    auto it = id.find(name);
    if (it != id.end()) return it->second;
    const int v = static_cast<int>(names.size());
    id.emplace(name, v);
    names.push_back(name);
    producer.push_back(-1);
    last_use.push_back(-1);
    is_output.push_back(0);
    auto c = g.initializers.find(name);
    initializer.push_back(c == g.initializers.end() ? nullptr : &c->second);
    return v;
  };
  for (const auto& n : g.inputs) inputs.push_back(add(n));
  for (const auto& n : extra_inputs) inputs.push_back(add(n));
  for (int v : inputs) initializer[static_cast<size_t>(v)] = nullptr;  // a bound input overrides a constant
  node_in.resize(g.nodes.size());
  node_out.resize(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    for (const auto& in : n.inputs) {
      if (in.empty()) {
        node_in[i].push_back(-1);
        continue;
      }
      const int v = add(in);
      last_use[static_cast<size_t>(v)] = static_cast<int>(i);
      node_in[i].push_back(v);
    }
    for (const auto& out : n.outputs) {
      if (out.empty()) {
        node_out[i].push_back(-1);
        continue;
      }
      const int v = add(out);
      producer[static_cast<size_t>(v)] = static_cast<int>(i);
      node_out[i].push_back(v);
    }
  }
  for (const auto& o : g.outputs) {
    const int v = add(o);
    is_output[static_cast<size_t>(v)] = 1;
    outputs.push_back(v);
  }
}

int GraphIndex::lookup(const std::string& name) const {
  auto it = id.find(name);
  return it == id.end() ? -1 : it->second;
}

bool host_evaluable_dtype(DType t) {
  switch (t) {
    case DType::Int64:
    case DType::Int32:
    case DType::Int16:
    case DType::Int8:
    case DType::UInt8:
    case DType::Bool: return true;
    default: return false;
  }
}

namespace {

bool is_shape_op(const ir::Node& n) { return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size"); }

std::vector<ir::ValueType> types_of(const std::vector<Tensor>& ts) {
  std::vector<ir::ValueType> v;
  for (const Tensor& t : ts) v.push_back(ir::ValueType::of(t.dtype(), t.shape()));
  return v;
}

}  // namespace

std::vector<ir::ValueType> infer_node(const ir::Node& n, const std::vector<const ir::ValueType*>& in,
                                      const std::vector<const Tensor*>& host_in, std::vector<Tensor>* host_out) {
  const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
  if (!def) KILN_THROW(Unsupported, n.label() << ": op is not supported by this kiln build (opset " << n.opset << ")");
  if (host_out) host_out->clear();
  // Shape / Size read only the shape of their input.
  if (host_out && is_shape_op(n) && !in.empty() && in[0] && in[0]->is_static() && def->reference) {
    static const char dummy = 0;
    Tensor x = Tensor::view(in[0]->dtype, in[0]->static_shape(), nullptr, &dummy);
    std::vector<const Tensor*> ins{&x};
    std::vector<Tensor> outs(n.outputs.size());
    def->reference(n, ins, outs);
    *host_out = outs;
    return types_of(outs);
  }
  ir::InferContext ctx{n, in, host_in};
  std::vector<ir::ValueType> out = def->infer(ctx);
  if (out.size() < n.outputs.size())
    KILN_THROW(InvalidModel, n.label() << ": has " << n.outputs.size() << " outputs, op defines " << out.size());
  if (!host_out || !def->reference || ir::has_subgraphs(n)) return out;
  bool all_host = true, inputs_small = true;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) continue;
    const Tensor* h = i < host_in.size() ? host_in[i] : nullptr;
    if (!h) {
      all_host = false;
      break;
    }
    if (h->numel() > kHostValueMaxElems) inputs_small = false;
  }
  if (!all_host) return out;
  for (size_t o = 0; o < n.outputs.size(); ++o) {
    if (!host_evaluable_dtype(out[o].dtype)) return out;
    if (out[o].is_static() ? shape_numel(out[o].static_shape()) > kHostValueMaxElems : !inputs_small) return out;
  }
  std::vector<Tensor> outs(n.outputs.size());
  def->reference(n, host_in, outs);
  for (size_t o = 0; o < n.outputs.size(); ++o)
    if (outs[o].empty() || outs[o].numel() > kHostValueMaxElems || !host_evaluable_dtype(outs[o].dtype())) return out;
  *host_out = std::move(outs);
  return types_of(*host_out);
}

InstanceShapes infer_instance(const GraphIndex& idx, const std::vector<ir::ValueType>& input_types,
                              const std::vector<const Tensor*>& input_host) {
  const ir::Graph& g = *idx.graph;
  const size_t nv = idx.names.size();
  InstanceShapes s;
  s.type.resize(nv);
  s.host.resize(nv);
  s.host_node.assign(g.nodes.size(), 0);
  s.static_node.assign(g.nodes.size(), 0);
  for (size_t v = 0; v < nv; ++v)
    if (const Tensor* c = idx.initializer[v]) {
      s.type[v] = ir::ValueType::of(c->dtype(), c->shape());
      s.host[v] = *c;
    }
  if (input_types.size() != idx.inputs.size())
    KILN_THROW(InvalidArgument, "shape instance: " << input_types.size() << " input types for " << idx.inputs.size()
                                                   << " inputs");
  for (size_t k = 0; k < idx.inputs.size(); ++k) {
    const auto v = static_cast<size_t>(idx.inputs[k]);
    s.type[v] = input_types[k];
    if (k < input_host.size() && input_host[k]) s.host[v] = *input_host[k];
  }
  std::vector<const ir::ValueType*> in;
  std::vector<const Tensor*> host_in;
  std::vector<Tensor> host_out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    in.clear();
    host_in.clear();
    bool all_static = true;
    for (int v : idx.node_in[i]) {
      if (v < 0) {
        in.push_back(nullptr);
        host_in.push_back(nullptr);
        continue;
      }
      const auto u = static_cast<size_t>(v);
      in.push_back(&s.type[u]);
      host_in.push_back(s.host[u].empty() ? nullptr : &s.host[u]);
      all_static &= s.type[u].is_static();
    }
    std::vector<ir::ValueType> out;
    host_out.clear();
    try {
      out = infer_node(n, in, host_in, all_static ? &host_out : nullptr);
    } catch (const Error&) {
      if (all_static) throw;
      // Past a data-dependent shape an op's inference may not cope with unknown ranks: unknown outputs.
      out.clear();
      for (const auto& o : n.outputs) {
        const ir::ValueType* t = o.empty() ? nullptr : g.type_of(o);
        out.push_back(ir::ValueType::unknown(t ? t->dtype : DType::Float32));
      }
    }
    bool st = true;
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      const int v = idx.node_out[i][o];
      if (v < 0) continue;
      s.type[static_cast<size_t>(v)] = out[o];
      st &= out[o].is_static();
    }
    s.static_node[i] = st;
    if (all_static && !host_out.empty()) {
      s.host_node[i] = 1;
      for (size_t o = 0; o < n.outputs.size(); ++o) {
        const int v = idx.node_out[i][o];
        if (v >= 0) s.host[static_cast<size_t>(v)] = host_out[o];
      }
    }
  }
  return s;
}

}  // namespace kiln::runtime
