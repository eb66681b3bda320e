#include "runtime/cuda/instance.h"

#include <algorithm>
#include <sstream>

#include "util/error.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

size_t tactic_workspace(const CudaTactic& t, const ir::Node& n, const std::vector<ir::ValueType>& in,
                        const std::vector<ir::ValueType>& out, size_t workspace_cap) {
  if (!t.workspace) return 0;
  const size_t ws = t.workspace(n, in, out);
  if (workspace_cap && ws > workspace_cap)
    KILN_THROW(OutOfMemory, n.label() << ": tactic '" << t.name << "' needs " << ws << " bytes of workspace, more than "
                                      << "the engine's workspace_size of " << workspace_cap << " bytes");
  return ws;
}

const CudaTactic* choose_tactic(const ir::Node& n, const std::vector<ir::ValueType>& in,
                                const std::vector<ir::ValueType>& out, size_t workspace_cap) {
  if (n.tactic == "host") return &host_fallback_tactic();
  if (!n.tactic.empty()) {
    const CudaTactic* t = find_cuda_tactic(n, n.tactic);
    if (!t)
      KILN_THROW(PlanMismatch, n.label() << ": the plan asks for CUDA tactic '" << n.tactic
                                         << "', which this kiln build does not have; rebuild the plan");
    if (!t->supports || t->supports(n, in)) return t;
    // Chosen at build time for the node's symbolic types; these concrete ones are outside what it handles.
    KILN_DEBUG(n.label() << ": tactic '" << n.tactic << "' does not support these input types; choosing again");
  }
  bool outs_static = true, ins_static = true;
  for (const auto& v : out) outs_static &= v.is_static();
  for (const auto& v : in) ins_static &= !v.has_rank || v.is_static();  // omitted inputs have no rank
  for (const CudaTactic* t : cuda_tactics_for(n, in)) {
    if (!t->workspace || !workspace_cap) return t;
    // Sized where it can be: static shapes, or static inputs for a dynamic_output tactic (see choose_step).
    const bool sized = outs_static || (t->dynamic_output && ins_static);
    if (!sized || t->workspace(n, in, out) <= workspace_cap) return t;
  }
  return &host_fallback_tactic();
}

StepChoice choose_step(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>& out,
                       size_t workspace_cap) {
  StepChoice c;
  c.tactic = choose_tactic(n, in, out, workspace_cap);
  bool outs_static = true;
  for (size_t o = 0; o < out.size() && o < n.outputs.size(); ++o)
    if (!n.outputs[o].empty()) outs_static &= out[o].is_static();
  // The host fallback sizes its outputs itself only when the executor cannot.
  c.presets_outputs = outs_static && (!c.tactic->dynamic_output || is_host_fallback(c.tactic));
  // A tactic that can run neither with preset outputs nor sizing them itself is the caller's error to report; its
  // WorkspaceFn is not asked about outputs it cannot handle.
  if (c.presets_outputs || c.tactic->dynamic_output)
    c.workspace_bytes = tactic_workspace(*c.tactic, n, in, out, workspace_cap);
  return c;
}

bool is_view_op(const ir::Node& n) {
  if (!n.domain.empty()) return false;
  const std::string& op = n.op_type;
  if (op == "Dropout") {
    // Inference only: no mask output, training_mode absent (a host-known true is refused by the kernel anyway).
    return (n.outputs.size() < 2 || n.outputs[1].empty()) && !n.has_input(2);
  }
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity";
}

std::unique_ptr<Instance> build_instance(const GraphIndex& idx, const std::vector<ir::ValueType>& input_types,
                                         const InstanceOptions& opts) {
  const ir::Graph& g = *idx.graph;
  auto inst = std::make_unique<Instance>();
  Instance& I = *inst;
  I.idx = &idx;
  if (opts.nodes && opts.nodes->size() == g.nodes.size()) I.nodes = opts.nodes;
  I.shapes = infer_instance(idx, input_types);
  const size_t nv = idx.names.size(), nn = g.nodes.size();
  const int64_t end = static_cast<int64_t>(nn) + 1;  // time of the outputs' read-back
  I.place.assign(nv, Place::None);
  I.request.assign(nv, -1);
  I.steps.resize(nn);

  // View ops with static shapes take their input's buffer (no kernel; their other inputs are not read).
  std::vector<uint8_t> alias(nn, 0);
  for (size_t i = 0; i < nn; ++i) {
    const ir::Node& n = I.node(i);
    if (I.shapes.host_node[i] || !I.shapes.static_node[i] || !is_view_op(n) || idx.node_in[i].empty() ||
        idx.node_in[i][0] < 0 || idx.node_out[i].empty() || idx.node_out[i][0] < 0)
      continue;
    const ir::ValueType& a = I.shapes.type[static_cast<size_t>(idx.node_in[i][0])];
    const ir::ValueType& b = I.shapes.type[static_cast<size_t>(idx.node_out[i][0])];
    alias[i] = a.is_static() && b.is_static() && a.dtype == b.dtype &&
               shape_numel(a.static_shape()) == shape_numel(b.static_shape());
  }
  // Which values a device step (or the caller, for outputs) reads.
  std::vector<uint8_t> device_use(nv, 0);
  for (size_t i = 0; i < nn; ++i)
    if (!I.shapes.host_node[i])
      for (size_t k = 0; k < idx.node_in[i].size() && (!alias[i] || k == 0); ++k)
        if (idx.node_in[i][k] >= 0) device_use[static_cast<size_t>(idx.node_in[i][k])] = 1;
  for (int v : idx.outputs) device_use[static_cast<size_t>(v)] = 1;

  auto last_time = [&](size_t v, int64_t first) {
    int64_t t = idx.last_use[v] >= 0 ? idx.last_use[v] + 1 : first;
    if (idx.is_output[v]) t = end;
    return t < first ? first : t;
  };
  auto add_request = [&](size_t v, int64_t first) {
    const ir::ValueType& t = I.shapes.type[v];
    I.request[v] = static_cast<int>(I.requests.size());
    I.requests.push_back({static_cast<size_t>(shape_numel(t.static_shape())) * dtype_size(t.dtype), first,
                          last_time(v, first)});
    I.place[v] = Place::Arena;
  };

  for (size_t v = 0; v < nv; ++v)
    if (idx.initializer[v]) I.place[v] = Place::Weight;
  for (int v : idx.inputs) {
    const auto u = static_cast<size_t>(v);
    if (I.place[u] == Place::Weight) continue;
    if (opts.inputs_in_arena) add_request(u, 0);
    I.place[u] = Place::Bound;
  }

  // Aliases share their root's buffer: the root's request lives as long as the last alias is read.
  std::vector<int> alias_root(nv, -1);
  auto root_of = [&](int v) {
    while (alias_root[static_cast<size_t>(v)] >= 0) v = alias_root[static_cast<size_t>(v)];
    return v;
  };
  std::vector<ir::ValueType> in_t, out_t;
  for (size_t i = 0; i < nn; ++i) {
    const ir::Node& n = I.node(i);
    Step& s = I.steps[i];
    const int64_t t = static_cast<int64_t>(i) + 1;
    if (I.shapes.host_node[i]) {
      s.kind = Step::Skip;
      for (int v : idx.node_out[i]) {
        if (v < 0) continue;
        const auto u = static_cast<size_t>(v);
        I.place[u] = Place::Host;
        if (device_use[u] && I.shapes.host[u].nbytes() > 0) {
          add_request(u, t);
          s.kind = Step::Fill;
          s.fill.push_back(v);
        }
      }
      continue;
    }
    in_t.clear();
    out_t.clear();
    bool inputs_static = true;
    for (int v : idx.node_in[i]) {
      in_t.push_back(v < 0 ? ir::ValueType{} : I.shapes.type[static_cast<size_t>(v)]);
      inputs_static &= v < 0 || in_t.back().is_static();
    }
    for (int v : idx.node_out[i]) out_t.push_back(v < 0 ? ir::ValueType{} : I.shapes.type[static_cast<size_t>(v)]);
    StepChoice c;
    if (!I.shapes.static_node[i]) {
      // Output shapes unknown. With static inputs and a dynamic_output tactic (NonZero, If) the node is a kernel
      // step like any other: tactic and workspace planned here, only the outputs found while it runs. Otherwise
      // (inputs of unknown shape, or a tactic that needs its output shapes) it is inferred again at run time.
      if (inputs_static) c = choose_step(n, in_t, out_t, opts.workspace_cap);
      if (!c.tactic || !c.tactic->dynamic_output || is_host_fallback(c.tactic)) {
        s.kind = Step::Dynamic;
        I.all_static = false;
        I.capturable = false;
        for (int v : idx.node_out[i])
          if (v >= 0) I.place[static_cast<size_t>(v)] = Place::Dynamic;
        continue;
      }
    }
    if (alias[i]) {
      const auto in0 = static_cast<size_t>(idx.node_in[i][0]), out0 = static_cast<size_t>(idx.node_out[i][0]);
      s.kind = Step::Alias;
      ++I.aliases;
      I.place[out0] = Place::Alias;
      alias_root[out0] = static_cast<int>(in0);
      const int root = root_of(static_cast<int>(in0));
      const int req = I.request[static_cast<size_t>(root)];
      if (req >= 0) {
        BufferRequest& r = I.requests[static_cast<size_t>(req)];
        r.last = std::max(r.last, last_time(out0, t));
      }
      continue;
    }
    if (!c.tactic) c = choose_step(n, in_t, out_t, opts.workspace_cap);
    s.kind = Step::Kernel;
    s.tactic = c.tactic;
    const bool host = is_host_fallback(s.tactic);
    I.host_fallbacks += host;
    s.presets_outputs = c.presets_outputs;
    if (!s.tactic->capturable || s.tactic->dynamic_output || host) I.capturable = false;
    if (!s.presets_outputs) I.all_static = false;
    for (int v : idx.node_out[i]) {
      if (v < 0) continue;
      if (s.presets_outputs) add_request(static_cast<size_t>(v), t);
      else I.place[static_cast<size_t>(v)] = Place::Dynamic;
    }
    s.workspace_bytes = c.workspace_bytes;
    if (s.workspace_bytes) {
      s.workspace = static_cast<int>(I.requests.size());
      I.requests.push_back({s.workspace_bytes, t, t});
      I.workspace_bytes += s.workspace_bytes;
    }
  }
  I.plan = plan_memory(I.requests);
  return inst;
}

}  // namespace kiln::runtime::cuda
