// Running one instance's steps: kernels with planned buffers, host-known values written to the device, and
// nodes past a data-dependent shape inferred again at run time (copying small integer inputs to the host when
// their values decide a shape).
#include <algorithm>
#include <sstream>

#include "runtime/cuda/executor_impl.h"
#include "runtime/cuda/host_values.h"
#include "runtime/cuda/spin.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

// ---- DynamicPool --------------------------------------------------------------------------------------------
void* DynamicPool::alloc(size_t bytes) {
  const size_t need = align_up(bytes ? bytes : 1);
  if (chunks_.empty() || used_ + need > chunks_.back().size()) {
    size_t size = chunks_.empty() ? size_t{1} << 20 : chunks_.back().size() * 2;
    if (size < need) size = need;
    DeviceBuffer b;
    b.allocate(size, "data-dependent outputs");
    chunks_.push_back(std::move(b));
    used_ = 0;
  }
  void* p = chunks_.back().bytes() + used_;
  used_ += need;
  run_total_ += need;
  return p;
}

void DynamicPool::reset() {
  if (chunks_.size() > 1) {
    size_t total = 0;
    for (const auto& c : chunks_) total += c.size();
    chunks_.clear();
    DeviceBuffer b;
    b.allocate(total, "data-dependent outputs");
    chunks_.push_back(std::move(b));
  }
  used_ = 0;
  run_total_ = 0;
}

size_t DynamicPool::capacity() const {
  size_t total = 0;
  for (const auto& c : chunks_) total += c.size();
  return total;
}

// ---- frames -------------------------------------------------------------------------------------------------
void CudaExecutor::Impl::init_frame(Frame& f, const Instance& inst, char* base) {
  const GraphIndex& idx = *inst.idx;
  f.inst = &inst;
  f.base = base;
  const size_t nv = idx.names.size();
  f.dv.assign(nv, DTensor{});
  if (!inst.all_static) f.host = inst.shapes.host;
  for (size_t v = 0; v < nv; ++v) {
    const ir::ValueType& t = inst.shapes.type[v];
    DTensor& d = f.dv[v];
    d.dtype = t.dtype;
    if (t.is_static()) d.shape = t.static_shape();
    if (inst.place[v] == Place::Weight) {
      const Tensor& h = *idx.initializer[v];
      d.dtype = h.dtype();
      d.shape = h.shape();
      d.data = weights->find(h);
    } else if (inst.request[v] >= 0) {
      d.data = base + inst.plan.offsets[static_cast<size_t>(inst.request[v])];
    }
  }
}

void CudaExecutor::Impl::materialize(Frame& f, size_t v) {
  DTensor& d = f.dv[v];
  if (d.data) return;
  const Tensor* h = f.host_of(v);
  if (!h) return;
  d.dtype = h->dtype();
  d.shape = h->shape();
  d.data = pool.alloc(h->nbytes());
  if (h->nbytes()) write_host_bytes(d.data, h->data(), h->nbytes(), stream);
}

void CudaExecutor::Impl::execute(Frame& f) {
  const Instance& inst = *f.inst;
  const std::vector<cudaEvent_t>* prof = inst.idx == top.get() ? prof_events : nullptr;
  // Profiling: the GPU first spins long enough for the host to enqueue every step (about 50 us each), so the events
  // around a step measure its device time, not the host's launch latency between steps (which CUDA graphs remove).
  if (prof) enqueue_spin(stream, std::max(2.0, 0.05 * static_cast<double>(inst.steps.size())));
  for (size_t i = 0; i < inst.steps.size(); ++i) {
    const Step& s = inst.steps[i];
    if (prof) KILN_CU(cudaEventRecord((*prof)[2 * i], stream));
    switch (s.kind) {
      case Step::Skip: break;
      case Step::Fill:
        for (int v : s.fill) {
          const Tensor* h = f.host_of(static_cast<size_t>(v));
          write_host_bytes(f.dv[static_cast<size_t>(v)].data, h->data(), h->nbytes(), stream);
        }
        break;
      case Step::Kernel: {
        void* ws = s.workspace >= 0 ? f.base + inst.plan.offsets[static_cast<size_t>(s.workspace)] : nullptr;
        launch(f, i, *s.tactic, ws, s.workspace_bytes, s.presets_outputs);
        break;
      }
      case Step::Dynamic: run_dynamic_step(f, i); break;
      case Step::Alias: {
        const GraphIndex& idx = *inst.idx;
        const auto in0 = static_cast<size_t>(idx.node_in[i][0]), out0 = static_cast<size_t>(idx.node_out[i][0]);
        materialize(f, in0);
        f.dv[out0].data = f.dv[in0].data;
        break;
      }
    }
    if (prof) KILN_CU(cudaEventRecord((*prof)[2 * i + 1], stream));
  }
}

void CudaExecutor::Impl::launch(Frame& f, size_t i, const CudaTactic& t, void* ws, size_t ws_bytes, bool presets) {
  const GraphIndex& idx = *f.inst->idx;
  const ir::Node& n = f.inst->node(i);  // with the active profile's tactic
  KernelArgs args{n, {}, {}, {}};
  for (int v : idx.node_in[i]) {
    if (v < 0) {
      args.in.push_back(nullptr);
      args.host_in.push_back(nullptr);
      continue;
    }
    const auto u = static_cast<size_t>(v);
    if (!f.dv[u].data) materialize(f, u);
    args.in.push_back(&f.dv[u]);
    args.host_in.push_back(f.host_of(u));
  }
  for (int v : idx.node_out[i]) {
    if (v < 0) {
      args.out.emplace_back();
      continue;
    }
    const auto u = static_cast<size_t>(v);
    if (presets) {
      args.out.push_back(f.dv[u]);
    } else {
      DTensor d;
      d.dtype = f.dv[u].dtype;
      args.out.push_back(d);
    }
  }
  KernelContext k = kctx;
  k.workspace = ws;
  k.workspace_size = ws_bytes;
  try {
    t.run(k, args);
  } catch (const Error& e) {
    throw Error(e.code(), "cuda:" + std::to_string(device) + ": " + n.label() + " (tactic " + t.name + "): " + e.what());
  }
  for (size_t o = 0; o < idx.node_out[i].size(); ++o) {
    const int v = idx.node_out[i][o];
    if (v < 0) continue;
    DTensor& d = f.dv[static_cast<size_t>(v)];
    if (!presets) {
      if (!args.out[o].data && args.out[o].numel() != 0)
        KILN_THROW(Cuda, n.label() << " (tactic " << t.name << ") did not produce output " << o);
      d = args.out[o];
    }
  }
}

void CudaExecutor::Impl::run_dynamic_step(Frame& f, size_t i) {
  const GraphIndex& idx = *f.inst->idx;
  const ir::Node& n = f.inst->node(i);  // with the active profile's tactic
  const auto& ins = idx.node_in[i];
  std::vector<ir::ValueType> in_t(ins.size());
  std::vector<const ir::ValueType*> in_p(ins.size(), nullptr);
  std::vector<const Tensor*> host_in(ins.size(), nullptr);
  auto gather = [&] {
    for (size_t k = 0; k < ins.size(); ++k) {
      if (ins[k] < 0) continue;
      const auto u = static_cast<size_t>(ins[k]);
      const DTensor& d = f.dv[u];
      const Tensor* h = f.host_of(u);
      in_t[k] = h ? ir::ValueType::of(h->dtype(), h->shape()) : ir::ValueType::of(d.dtype, d.shape);
      in_p[k] = &in_t[k];
      host_in[k] = h;
    }
  };
  gather();
  std::vector<Tensor> host_out;
  std::vector<ir::ValueType> out_t = infer_node(n, in_p, host_in, &host_out);
  auto all_static = [&] {
    for (size_t o = 0; o < n.outputs.size(); ++o)
      if (!n.outputs[o].empty() && !out_t[o].is_static()) return false;
    return true;
  };
  if (host_out.empty() && !all_static()) {
    // A shape decided by values that live on the device: copy the small ones to the host, infer again. Any dtype:
    // a Range's float start / limit / delta and a Resize's float scales decide shapes too (the host evaluates only
    // integer results, infer_node reads the rest).
    bool copied = false;
    for (size_t k = 0; k < ins.size(); ++k) {
      if (ins[k] < 0 || host_in[k]) continue;
      const auto u = static_cast<size_t>(ins[k]);
      const DTensor& d = f.dv[u];
      if (d.numel() > kHostValueMaxElems || !d.data) continue;
      Tensor h(d.dtype, d.shape);
      if (d.nbytes()) KILN_CU(cudaMemcpyAsync(h.mutable_data(), d.data, d.nbytes(), cudaMemcpyDeviceToHost, stream));
      f.host[u] = h;
      copied = true;
    }
    if (copied) {
      KILN_CU(cudaStreamSynchronize(stream));
      gather();
      out_t = infer_node(n, in_p, host_in, &host_out);
    }
  }
  if (!host_out.empty()) {
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      const int v = idx.node_out[i][o];
      if (v < 0) continue;
      f.host[static_cast<size_t>(v)] = host_out[o];
      f.dv[static_cast<size_t>(v)] = DTensor{host_out[o].dtype(), host_out[o].shape(), nullptr};
      materialize(f, static_cast<size_t>(v));
    }
    return;
  }
  // Inputs are static here (actual device shapes); outputs may not be (a dynamic_output tactic sizes them). The
  // tactic gets its workspace either way, from the dynamic pool (no allocation once the pool has grown to a
  // steady run's size).
  const StepChoice c = choose_step(n, in_t, out_t, target.workspace_cap);
  const CudaTactic* t = c.tactic;
  const bool statics = all_static();
  const bool presets = c.presets_outputs;
  if (!presets && !t->dynamic_output)
    KILN_THROW(Unsupported, n.label() << ": output shapes are unknown after run-time inference (inputs "
                                      << [&] {
                                           std::ostringstream os;
                                           for (size_t k = 0; k < in_t.size(); ++k)
                                             os << (k ? ", " : "") << (in_p[k] ? in_t[k].str() : "-");
                                           return os.str();
                                         }()
                                      << ") and tactic '" << t->name << "' cannot size them while running");
  for (size_t o = 0; o < n.outputs.size(); ++o) {
    const int v = idx.node_out[i][o];
    if (v < 0) continue;
    DTensor& d = f.dv[static_cast<size_t>(v)];
    d.dtype = out_t[o].dtype;
    d.shape = statics ? out_t[o].static_shape() : Shape{};
    d.data = presets ? pool.alloc(d.nbytes()) : nullptr;
  }
  const size_t ws_bytes = c.workspace_bytes;
  void* ws = ws_bytes ? pool.alloc(ws_bytes) : nullptr;
  launch(f, i, *t, ws, ws_bytes, presets);
}

std::vector<DTensor> CudaExecutor::Impl::run_subgraph(const ir::Graph& g,
                                                      const std::vector<std::pair<std::string, DTensor>>& captured) {
  auto& index = sub_index[&g];
  if (!index) {
    std::vector<std::string> extra;
    for (const auto& c : captured)
      if (std::find(g.inputs.begin(), g.inputs.end(), c.first) == g.inputs.end()) extra.push_back(c.first);
    index = std::make_unique<GraphIndex>(g, extra);
  }
  const GraphIndex& idx = *index;
  std::vector<const DTensor*> bound(idx.inputs.size(), nullptr);
  for (const auto& c : captured) {
    const int v = idx.lookup(c.first);
    for (size_t k = 0; k < idx.inputs.size(); ++k)
      if (idx.inputs[k] == v) bound[k] = &c.second;
  }
  ShapeKey key;
  std::vector<ir::ValueType> types;
  for (size_t k = 0; k < idx.inputs.size(); ++k) {
    if (!bound[k] && !idx.initializer[static_cast<size_t>(idx.inputs[k])])
      KILN_THROW(InvalidModel, "subgraph '" << g.name << "': input '" << idx.names[static_cast<size_t>(idx.inputs[k])]
                                            << "' is not bound");
    const DTensor* d = bound[k];
    key.push_back(d ? d->shape : Shape{});
    types.push_back(d ? ir::ValueType::of(d->dtype, d->shape) : ir::ValueType{});
  }
  auto& inst = sub_instances[{&g, key}];
  if (!inst) {
    InstanceOptions o;
    o.workspace_cap = target.workspace_cap;
    o.inputs_in_arena = false;
    inst = build_instance(idx, types, o);
  }
  Frame f;
  init_frame(f, *inst, static_cast<char*>(inst->plan.total ? pool.alloc(inst->plan.total) : nullptr));
  for (size_t k = 0; k < idx.inputs.size(); ++k)
    if (bound[k]) f.dv[static_cast<size_t>(idx.inputs[k])] = *bound[k];
  execute(f);
  std::vector<DTensor> out;
  for (int v : idx.outputs) {
    const auto u = static_cast<size_t>(v);
    materialize(f, u);
    DTensor d = f.dv[u];
    if (inst->place[u] == Place::Weight || inst->place[u] == Place::Bound) {
      // Never hand out the caller's or the engine's buffer as a fresh output.
      void* p = pool.alloc(d.nbytes());
      if (d.nbytes()) KILN_CU(cudaMemcpyAsync(p, d.data, d.nbytes(), cudaMemcpyDeviceToDevice, stream));
      d.data = p;
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace kiln::runtime::cuda
