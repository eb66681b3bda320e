// CudaExecutor: activation (device, stream, handles, weights, arena), instances per input-shape key, and the
// synchronous host-tensor run / asynchronous enqueue on caller buffers and streams.
#include "runtime/cuda/executor.h"

#include <mutex>
#include <sstream>

#include "ir/op_registry.h"
#include "kiln/device.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cuda/executor_impl.h"
#include "runtime/cuda/host_values.h"
#include "util/log.h"

namespace kiln::runtime::cuda {
namespace {

constexpr size_t kMaxInstances = 64;

// Library handles outlive their contexts: creating cuDNN / cuBLASLt handles costs milliseconds, and tests and the
// conformance runner make one short-lived executor per graph. Returned handles are reused per device.
struct Handles {
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
};
std::mutex g_handles_mu;
std::map<int, std::vector<Handles>>& handle_pool() {
  static auto* pool = new std::map<int, std::vector<Handles>>();  // never destroyed: the driver may be gone at exit
  return *pool;
}

Handles acquire_handles(int device) {
  {
    std::lock_guard<std::mutex> lock(g_handles_mu);
    auto& v = handle_pool()[device];
    if (!v.empty()) {
      Handles h = v.back();
      v.pop_back();
      return h;
    }
  }
  Handles h;
  if (cublasStatus_t s = cublasLtCreate(&h.lt); s != CUBLAS_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cuda:" << device << ": cublasLtCreate failed (status " << static_cast<int>(s) << ")");
  if (cudnnStatus_t s = cudnnCreate(&h.dnn); s != CUDNN_STATUS_SUCCESS) {
    cublasLtDestroy(h.lt);
    KILN_THROW(Cuda, "cuda:" << device << ": cudnnCreate failed: " << cudnnGetErrorString(s));
  }
  return h;
}

void release_handles(int device, cublasLtHandle_t lt, cudnnHandle_t dnn) {
  if (!lt || !dnn) {
    if (lt) cublasLtDestroy(lt);
    if (dnn) cudnnDestroy(dnn);
    return;
  }
  cudnnSetStream(dnn, nullptr);  // the context's stream is about to go
  std::lock_guard<std::mutex> lock(g_handles_mu);
  handle_pool()[device].push_back(Handles{lt, dnn});
}

// An input's shape at a profile's max, or its static shape; false when neither is known.
bool max_shape(const detail::EngineImpl& e, const Profile& p, const std::string& name, Shape& out) {
  if (p.has(name)) {
    out = p.at(name).max;
    return true;
  }
  if (const ir::ValueType* t = e.graph.type_of(name); t && t->is_static()) {
    out = t->static_shape();
    return true;
  }
  auto d = e.graph.input_defaults.find(name);
  if (d != e.graph.input_defaults.end()) {
    out = d->second.shape();
    return true;
  }
  return false;
}

// Per profile, copies of the graph's nodes carrying that profile's tactics (empty: one tactic per node). Copies are
// cheap: attributes' tensors and subgraphs are shared.
std::vector<std::vector<ir::Node>> nodes_per_profile(const detail::EngineImpl& e) {
  std::vector<std::vector<ir::Node>> out(e.profile_tactics.size());
  for (size_t p = 0; p < e.profile_tactics.size(); ++p) {
    out[p] = e.graph.nodes;
    for (size_t i = 0; i < out[p].size(); ++i) out[p][i].tactic = e.tactic_of(i, static_cast<int>(p));
  }
  return out;
}

// The node copies for a run at these input shapes: those of the profile it selects, null for node.tactic.
const std::vector<ir::Node>* nodes_for(const detail::EngineImpl& e, const std::vector<std::vector<ir::Node>>& per,
                                       const std::vector<Shape>& key) {
  if (per.empty()) return nullptr;
  const int p = detail::profile_for_shapes(e, key);
  return p >= 0 && static_cast<size_t>(p) < per.size() ? &per[static_cast<size_t>(p)] : nullptr;
}

}  // namespace

CudaExecutor::Impl::~Impl() {
  if (stream) {
    cudaSetDevice(device);
    cudaStreamSynchronize(stream);
  }
  clear_graphs();
  release_handles(device, lt, dnn);
  if (ev_in) cudaEventDestroy(ev_in);
  if (ev_out) cudaEventDestroy(ev_out);
  if (stream) cudaStreamDestroy(stream);
  cudaGetLastError();
}

void CudaExecutor::Impl::activate() {
  set_device(device);
  register_all_cuda_kernels();
  ir::register_all_ops();
  cpu::register_subgraph_runner();
  props = device_properties(device);
  KILN_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  KILN_CU(cudaEventCreateWithFlags(&ev_in, cudaEventDisableTiming));
  KILN_CU(cudaEventCreateWithFlags(&ev_out, cudaEventDisableTiming));
  const Handles h = acquire_handles(device);
  lt = h.lt;
  dnn = h.dnn;
  if (cudnnStatus_t s = cudnnSetStream(dnn, stream); s != CUDNN_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cuda:" << device << ": cudnnSetStream failed: " << cudnnGetErrorString(s));
  kctx.stream = stream;
  kctx.cublaslt = lt;
  kctx.cudnn = dnn;
  kctx.device = device;
  kctx.props = &props;
  kctx.allow_tf32 = target.tf32;
  kctx.alloc_dynamic = [this](size_t bytes) { return pool.alloc(bytes); };
  kctx.run_subgraph = [this](const ir::Graph& g, const std::vector<std::pair<std::string, DTensor>>& captured) {
    return run_subgraph(g, captured);
  };
  weights = engine_weights(*engine, device);
  st.device = "cuda:" + std::to_string(device);
  st.weight_bytes = weights->bytes;
  top = std::make_unique<GraphIndex>(engine->graph);
  nodes_by_profile = nodes_per_profile(*engine);
  for (const auto& name : engine->graph.inputs) {
    const ir::ValueType* t = engine->graph.type_of(name);
    auto d = engine->graph.input_defaults.find(name);
    input_dtype.push_back(t ? t->dtype : d != engine->graph.input_defaults.end() ? d->second.dtype() : DType::Float32);
    input_dtype_known.push_back(t || d != engine->graph.input_defaults.end());
  }

  // The arena: the largest liveness plan over the profiles' max shapes.
  size_t planned = 0;
  for (const Profile& p : engine->profiles) {
    ShapeKey key;
    bool known = true;
    for (const auto& name : engine->graph.inputs) {
      Shape s;
      known &= max_shape(*engine, p, name, s);
      key.push_back(s);
    }
    if (!known) continue;
    const Instance& inst = plan_for(key);
    planned = std::max(planned, inst.plan.total);
    st.activation_bytes = std::max(st.activation_bytes, inst.plan.sum);
    st.host_fallback_nodes = std::max(st.host_fallback_nodes, inst.host_fallbacks);
  }
  st.planned_arena_bytes = planned;
  if (planned > arena.size()) arena.allocate(planned, "the activation arena (largest plan over the profiles)");
}

void CudaExecutor::Impl::check_input_dtype(size_t k, DType given) {
  if (!input_dtype_known[k]) {
    input_dtype[k] = given;
    input_dtype_known[k] = 1;
  }
  if (given != input_dtype[k])
    KILN_THROW(InvalidArgument, "input '" << engine->graph.inputs[k] << "' has dtype " << dtype_name(given)
                                          << ", expected " << dtype_name(input_dtype[k]));
}

const Instance& CudaExecutor::Impl::plan_for(const ShapeKey& key) {
  auto it = instances.find(key);
  if (it == instances.end()) {
    if (instances.size() >= kMaxInstances) {
      // Bounded: start over (graphs point into instances' plans).
      clear_graphs();
      instances.clear();
    }
    std::vector<ir::ValueType> types;
    for (size_t k = 0; k < key.size(); ++k) types.push_back(ir::ValueType::of(input_dtype[k], key[k]));
    InstanceOptions o;
    o.workspace_cap = target.workspace_cap;
    o.nodes = nodes_for(*engine, nodes_by_profile, key);  // the tactics of the profile these shapes select
    it = instances.emplace(key, build_instance(*top, types, o)).first;
  }
  return *it->second;
}

const Instance& CudaExecutor::Impl::instance(const ShapeKey& key) {
  const Instance& inst = plan_for(key);
  if (inst.plan.total > arena.size()) {
    if (arena.size()) {
      ++st.arena_growths;
      KILN_WARN("cuda:" << device << ": the plan for input shapes needs " << inst.plan.total
                        << " arena bytes, more than the " << arena.size() << " planned at the profiles' max shapes; "
                        << "growing the arena");
    }
    clear_graphs();
    KILN_CU(cudaStreamSynchronize(stream));
    arena.allocate(inst.plan.total, "the activation arena");
  }
  return inst;
}

CudaExecutor::CudaExecutor(std::shared_ptr<const detail::EngineImpl> engine, const ExecutorOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.engine = std::move(engine);
  m.opts = options;
  m.device = options.device;
  m.target = parse_cuda_target(m.engine->target);
  m.activate();
}

CudaExecutor::~CudaExecutor() = default;

namespace {

// Runs the frame, through a CUDA graph when asked and possible.
void run_frame(CudaExecutor::Impl& m, Frame& f, const ShapeKey& key, bool graph_mode) {
  if (graph_mode && m.run_with_graph(f, key)) return;
  m.execute(f);
}

bool wants_graph(CudaExecutor::Impl& m, const Instance& inst, const ShapeKey& key) {
  if (!m.opts.use_cuda_graphs || m.opts.max_cuda_graphs == 0) return false;
  if (inst.capturable) return true;
  ++m.st.cuda_graph_fallbacks;
  if (m.not_captured.insert(key).second)
    KILN_WARN("cuda:" << m.device << ": CUDA graphs: the run at these input shapes cannot be captured (host fallback, "
                      << "data-dependent shapes or a non-capturable tactic); running it without a graph");
  return false;
}

}  // namespace

TensorMap CudaExecutor::run(const TensorMap& inputs) { return impl_->run_host(inputs, true); }

TensorMap CudaExecutor::Impl::run_host(const TensorMap& inputs, bool allow_graph) {
  Impl& m = *this;
  const ir::Graph& g = m.engine->graph;
  KILN_CU(cudaSetDevice(m.device));
  m.pool.reset();
  ShapeKey key;
  for (const auto& name : g.inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) KILN_THROW(InvalidArgument, "missing input '" << name << "'");
    m.check_input_dtype(key.size(), it->second.dtype());
    key.push_back(it->second.shape());
  }
  const Instance& inst = m.instance(key);
  Frame f;
  m.init_frame(f, inst, m.arena.bytes());
  const GraphIndex& idx = *m.top;
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const auto v = static_cast<size_t>(idx.inputs[k]);
    const Tensor& t = inputs.at(g.inputs[k]);
    DTensor& d = f.dv[v];
    if (t.nbytes()) KILN_CU(cudaMemcpyAsync(d.data, t.data(), t.nbytes(), cudaMemcpyHostToDevice, m.stream));
  }
  run_frame(m, f, key, allow_graph && wants_graph(m, inst, key));
  TensorMap out;
  for (int v : idx.outputs) {
    const auto u = static_cast<size_t>(v);
    const std::string& name = idx.names[u];
    if (out.count(name)) continue;
    if (const Tensor* h = f.host_of(u)) {
      out[name] = *h;
      continue;
    }
    const DTensor& d = f.dv[u];
    Tensor t(d.dtype, d.shape);
    if (d.nbytes()) KILN_CU(cudaMemcpyAsync(t.mutable_data(), d.data, d.nbytes(), cudaMemcpyDeviceToHost, m.stream));
    out[name] = t;
  }
  KILN_CU(cudaStreamSynchronize(m.stream));
  return out;
}

void CudaExecutor::enqueue(const DeviceTensorMap& inputs, DeviceTensorMap& outputs, void* stream) {
  Impl& m = *impl_;
  const ir::Graph& g = m.engine->graph;
  auto caller = static_cast<cudaStream_t>(stream);
  KILN_CU(cudaSetDevice(m.device));
  m.pool.reset();
  const GraphIndex& idx = *m.top;
  std::vector<DTensor> src(g.inputs.size());
  ShapeKey key;
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const std::string& name = g.inputs[k];
    auto it = inputs.find(name);
    if (it != inputs.end()) {
      src[k] = DTensor{it->second.dtype, it->second.shape, it->second.data};
      if (!src[k].data && src[k].nbytes())
        KILN_THROW(InvalidArgument, "input '" << name << "': device pointer is null");
    } else {
      auto d = g.input_defaults.find(name);
      if (d == g.input_defaults.end()) KILN_THROW(InvalidArgument, "missing input '" << name << "'");
      src[k] = DTensor{d->second.dtype(), d->second.shape(), m.weights->find(d->second)};
    }
    m.check_input_dtype(k, src[k].dtype);
    key.push_back(src[k].shape);
  }
  for (int v : idx.outputs)
    if (!outputs.count(idx.names[static_cast<size_t>(v)]))
      KILN_THROW(InvalidArgument, "enqueue: output '" << idx.names[static_cast<size_t>(v)] << "' is not given");

  KILN_CU(cudaEventRecord(m.ev_in, caller));
  KILN_CU(cudaStreamWaitEvent(m.stream, m.ev_in, 0));
  const Instance& inst = m.instance(key);
  const bool graph_mode = wants_graph(m, inst, key);
  Frame f;
  m.init_frame(f, inst, m.arena.bytes());
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    DTensor& d = f.dv[static_cast<size_t>(idx.inputs[k])];
    if (graph_mode) {
      // Captured graphs read fixed addresses: the inputs' arena slots.
      if (src[k].nbytes())
        KILN_CU(cudaMemcpyAsync(d.data, src[k].data, src[k].nbytes(), cudaMemcpyDeviceToDevice, m.stream));
    } else {
      d.data = src[k].data;
    }
  }
  auto capacity = [](const DeviceTensor& o) {
    return o.capacity ? o.capacity : static_cast<size_t>(shape_numel(o.shape)) * dtype_size(o.dtype);
  };
  if (!graph_mode) {
    // Planned outputs are written straight into the caller's buffers.
    for (int v : idx.outputs) {
      const auto u = static_cast<size_t>(v);
      if (inst.place[u] != Place::Arena || inst.shapes.host[u].nbytes()) continue;
      DeviceTensor& o = outputs[idx.names[u]];
      if (o.data && capacity(o) >= f.dv[u].nbytes()) f.dv[u].data = o.data;
    }
  }
  run_frame(m, f, key, graph_mode);
  for (int v : idx.outputs) {
    const auto u = static_cast<size_t>(v);
    DeviceTensor& o = outputs[idx.names[u]];
    const Tensor* h = inst.place[u] == Place::Weight ? nullptr : f.host_of(u);
    const DTensor& d = f.dv[u];
    const size_t bytes = h ? h->nbytes() : d.nbytes();
    if (bytes > capacity(o) || (!o.data && bytes))
      KILN_THROW(InvalidArgument, "output '" << idx.names[u] << "' needs " << bytes << " bytes ("
                                             << dtype_name(d.dtype) << shape_str(h ? h->shape() : d.shape) << "), the "
                                             << "buffer given holds " << (o.data ? capacity(o) : 0));
    if (o.dtype != d.dtype)
      KILN_THROW(InvalidArgument, "output '" << idx.names[u] << "' is " << dtype_name(d.dtype) << ", the buffer given "
                                             << "is declared " << dtype_name(o.dtype));
    if (h) {
      if (bytes) write_host_bytes(o.data, h->data(), bytes, m.stream);
      o.shape = h->shape();
      continue;
    }
    if (d.data != o.data && bytes)
      KILN_CU(cudaMemcpyAsync(o.data, d.data, bytes, cudaMemcpyDeviceToDevice, m.stream));
    o.shape = d.shape;
  }
  KILN_CU(cudaEventRecord(m.ev_out, m.stream));
  KILN_CU(cudaStreamWaitEvent(caller, m.ev_out, 0));
}

std::map<std::string, Shape> CudaExecutor::output_shapes(const std::map<std::string, Shape>& input_shapes) {
  Impl& m = *impl_;
  const ir::Graph& g = m.engine->graph;
  KILN_CU(cudaSetDevice(m.device));
  ShapeKey key;
  for (const auto& name : g.inputs) {
    auto it = input_shapes.find(name);
    if (it != input_shapes.end()) {
      key.push_back(it->second);
      continue;
    }
    auto d = g.input_defaults.find(name);
    if (d == g.input_defaults.end()) KILN_THROW(InvalidArgument, "missing input '" << name << "'");
    key.push_back(d->second.shape());
  }
  const Instance& inst = m.plan_for(key);
  std::map<std::string, Shape> out;
  for (int v : m.top->outputs) {
    const ir::ValueType& t = inst.shapes.type[static_cast<size_t>(v)];
    Shape s;
    if (t.has_rank)
      for (const auto& d : t.dims) s.push_back(d.is_static() ? d.value : -1);
    out[m.top->names[static_cast<size_t>(v)]] = s;
  }
  return out;
}

std::vector<std::vector<double>> CudaExecutor::profile_nodes(const TensorMap& inputs, int warmup, int iterations) {
  Impl& m = *impl_;
  KILN_CU(cudaSetDevice(m.device));
  const size_t nn = m.engine->graph.nodes.size();
  std::vector<cudaEvent_t> events(2 * nn, nullptr);
  struct Release {
    std::vector<cudaEvent_t>& ev;
    Impl& m;
    ~Release() {
      m.prof_events = nullptr;
      for (cudaEvent_t e : ev)
        if (e) cudaEventDestroy(e);
    }
  } release{events, m};
  for (cudaEvent_t& e : events) KILN_CU(cudaEventCreate(&e));
  for (int w = 0; w < warmup; ++w) m.run_host(inputs, false);
  std::vector<std::vector<double>> out;
  for (int it = 0; it < iterations; ++it) {
    m.prof_events = &events;
    m.run_host(inputs, false);  // synchronizes the stream at the end
    m.prof_events = nullptr;
    std::vector<double> ms(nn, 0.0);
    for (size_t i = 0; i < nn; ++i) {
      float t = 0;
      // A step the plan skipped still recorded both events; an error here means it never ran (0).
      if (cudaEventElapsedTime(&t, events[2 * i], events[2 * i + 1]) == cudaSuccess) ms[i] = t;
      else cudaGetLastError();
    }
    out.push_back(std::move(ms));
  }
  return out;
}

ContextStats CudaExecutor::stats() const {
  ContextStats s = impl_->st;
  s.arena_bytes = impl_->arena.size();
  s.dynamic_pool_bytes = impl_->pool.capacity();
  return s;
}

MemoryInfo plan_memory_info(const detail::EngineImpl& e) {
  ir::register_all_ops();
  register_all_cuda_kernels();
  const CudaTarget target = parse_cuda_target(e.target);
  const GraphIndex idx(e.graph);
  const std::vector<std::vector<ir::Node>> per = nodes_per_profile(e);
  MemoryInfo info;
  for (const Profile& p : e.profiles) {
    std::vector<ir::ValueType> types;
    std::vector<Shape> key;
    bool known = true;
    for (const auto& name : e.graph.inputs) {
      Shape s;
      known &= max_shape(e, p, name, s);
      const ir::ValueType* t = e.graph.type_of(name);
      types.push_back(ir::ValueType::of(t ? t->dtype : DType::Float32, s));
      key.push_back(s);
    }
    if (!known) continue;
    InstanceOptions o;
    o.workspace_cap = target.workspace_cap;
    o.nodes = nodes_for(e, per, key);
    auto inst = build_instance(idx, types, o);
    info.planned_arena_bytes = std::max(info.planned_arena_bytes, inst->plan.total);
    info.activation_bytes = std::max(info.activation_bytes, inst->plan.sum);
    info.workspace_bytes = std::max(info.workspace_bytes, inst->workspace_bytes);
  }
  return info;
}

TensorMap run_graph_cuda(const ir::Graph& g, const TensorMap& inputs, int device, bool allow_tf32) {
  ir::register_all_ops();
  auto e = std::make_shared<detail::EngineImpl>();
  e->graph = g;
  CudaTarget t;
  t.tf32 = allow_tf32;
  e->target = cuda_target_string(t);
  ExecutorOptions o;
  o.device = device;
  CudaExecutor ex(e, o);
  TensorMap all = inputs;
  for (const auto& [name, t0] : g.input_defaults) all.emplace(name, t0);
  return ex.run(all);
}

}  // namespace kiln::runtime::cuda
