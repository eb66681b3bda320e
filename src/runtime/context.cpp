// ExecutionContext: input validation, first-match profile selection, and execution on the engine's target
// (the CPU executor, or the CUDA executor for "cuda:..." plans).
#include <optional>
#include <sstream>

#include "kiln/engine.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/engine_impl.h"
#include "runtime/shape_instance.h"
#include "runtime/target.h"
#include "util/error.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/executor.h"
#endif

namespace kiln {
namespace detail {
struct ContextImpl {
  Engine engine;
  ContextOptions options;
  std::unique_ptr<runtime::cpu::CpuExecutor> exec;
#if KILN_WITH_CUDA
  std::unique_ptr<runtime::cuda::CudaExecutor> cuda;
#endif
  int last_profile = -1;
};
}  // namespace detail

ExecutionContext::ExecutionContext(Engine engine, const ContextOptions& options)
    : impl_(std::make_unique<detail::ContextImpl>()) {
  if (!engine.impl()) KILN_THROW(InvalidState, "cannot create a context from an empty engine");
  impl_->engine = std::move(engine);
  impl_->options = options;
  const auto& e = impl_->engine.impl();
  if (runtime::is_cuda_target(e->target)) {
#if KILN_WITH_CUDA
    runtime::cuda::ExecutorOptions o;
    o.device = options.device < 0 ? 0 : options.device;
    o.use_cuda_graphs = options.use_cuda_graphs;
    o.max_cuda_graphs = options.max_cuda_graphs;
    impl_->cuda = std::make_unique<runtime::cuda::CudaExecutor>(e, o);
#else
    KILN_THROW(Unsupported, "engine target '" << e->target << "': this kiln build has no CUDA support");
#endif
  } else {
    if (options.device > 0) KILN_THROW(InvalidArgument, "a cpu engine has no device " << options.device);
    impl_->exec = std::make_unique<runtime::cpu::CpuExecutor>(e);
  }
}
ExecutionContext::~ExecutionContext() = default;
ExecutionContext::ExecutionContext(ExecutionContext&&) noexcept = default;
ExecutionContext& ExecutionContext::operator=(ExecutionContext&&) noexcept = default;

int ExecutionContext::last_profile() const { return impl_->last_profile; }
const Engine& ExecutionContext::engine() const { return impl_->engine; }

namespace {

struct Given {
  std::optional<DType> dtype;  // unknown for output_shapes()
  Shape shape;
};

// Checks names, dtypes, ranks and fixed axes; returns the first profile containing the shapes
// (ShapeOutOfProfile otherwise). `given` holds every input, defaults included.
int select_profile(const detail::EngineImpl& e, const std::map<std::string, Given>& given) {
  for (const auto& [name, g] : given) {
    bool known = false;
    for (const auto& ti : e.inputs) known |= ti.name == name;
    if (!known) {
      std::ostringstream os;
      for (size_t i = 0; i < e.inputs.size(); ++i) os << (i ? ", " : "") << e.inputs[i].name;
      KILN_THROW(InvalidArgument, "unknown input '" << name << "'; the engine's inputs are: " << os.str());
    }
  }
  std::map<std::string, Shape> shapes;
  for (const auto& ti : e.inputs) {
    auto it = given.find(ti.name);
    if (it == given.end()) KILN_THROW(InvalidArgument, "missing input '" << ti.name << "' (" << ti.str() << ")");
    const Given& t = it->second;
    if (t.dtype && *t.dtype != ti.dtype)
      KILN_THROW(InvalidArgument, "input '" << ti.name << "' has dtype " << dtype_name(*t.dtype) << ", expected "
                                            << dtype_name(ti.dtype));
    if (t.shape.size() != ti.dims.size())
      KILN_THROW(InvalidArgument, "input '" << ti.name << "' has rank " << t.shape.size() << " (shape "
                                            << shape_str(t.shape) << "), expected rank " << ti.dims.size() << " ("
                                            << ti.str() << ")");
    for (size_t d = 0; d < ti.dims.size(); ++d)
      if (ti.dims[d].is_static() && ti.dims[d].value != t.shape[d])
        KILN_THROW(InvalidArgument, "input '" << ti.name << "' has shape " << shape_str(t.shape) << ", but axis "
                                              << d << " is fixed to " << ti.dims[d].value << " (" << ti.str() << ")");
    shapes[ti.name] = t.shape;
  }
  for (size_t p = 0; p < e.profiles.size(); ++p)
    if (e.profiles[p].contains(shapes)) return static_cast<int>(p);
  // Name the first input that does not fit profile 0, and list every profile's range.
  std::ostringstream os;
  for (const auto& [name, s] : shapes) {
    bool fits_any = false;
    for (const auto& p : e.profiles) fits_any |= !p.has(name) || p.at(name).contains(s);
    if (!fits_any) {
      os << "input '" << name << "' shape " << shape_str(s) << " is outside every profile";
      break;
    }
  }
  if (os.str().empty()) os << "input shapes fit no single profile";
  os << "; profiles:";
  for (size_t p = 0; p < e.profiles.size(); ++p) os << " [" << p << "] " << e.profiles[p].str();
  throw Error(ErrorCode::ShapeOutOfProfile, os.str());
}

void add_defaults(const detail::EngineImpl& e, std::map<std::string, Given>& given) {
  for (const auto& [name, t] : e.graph.input_defaults) given.emplace(name, Given{t.dtype(), t.shape()});
}

}  // namespace

TensorMap ExecutionContext::run(const TensorMap& inputs) {
  const detail::EngineImpl& e = *impl_->engine.impl();
  std::map<std::string, Given> given;
  for (const auto& [name, t] : inputs) given[name] = Given{t.dtype(), t.shape()};
  add_defaults(e, given);
  for (const auto& [name, t] : inputs)
    if (t.empty()) KILN_THROW(InvalidArgument, "input '" << name << "' is an empty tensor");
  TensorMap with_defaults;
  const TensorMap* all = &inputs;
  if (!e.graph.input_defaults.empty()) {
    with_defaults = inputs;
    for (const auto& [name, t] : e.graph.input_defaults) with_defaults.emplace(name, t);
    all = &with_defaults;
  }
  impl_->last_profile = select_profile(e, given);
#if KILN_WITH_CUDA
  if (impl_->cuda) return impl_->cuda->run(*all);
#endif
  return impl_->exec->run(*all);
}

void ExecutionContext::enqueue(const DeviceTensorMap& inputs, DeviceTensorMap& outputs, void* stream) {
#if KILN_WITH_CUDA
  if (impl_->cuda) {
    const detail::EngineImpl& e = *impl_->engine.impl();
    std::map<std::string, Given> given;
    for (const auto& [name, t] : inputs) given[name] = Given{t.dtype, t.shape};
    add_defaults(e, given);
    impl_->last_profile = select_profile(e, given);
    impl_->cuda->enqueue(inputs, outputs, stream);
    return;
  }
#endif
  (void)inputs, (void)outputs, (void)stream;
  KILN_THROW(InvalidState, "enqueue needs a CUDA engine; this engine's target is '" << impl_->engine.target()
                                                                                   << "' (use run)");
}

std::map<std::string, Shape> ExecutionContext::output_shapes(const std::map<std::string, Shape>& input_shapes) {
  const detail::EngineImpl& e = *impl_->engine.impl();
  std::map<std::string, Given> given;
  for (const auto& [name, s] : input_shapes) given[name] = Given{std::nullopt, s};
  add_defaults(e, given);
  select_profile(e, given);
#if KILN_WITH_CUDA
  if (impl_->cuda) return impl_->cuda->output_shapes(input_shapes);
#endif
  // CPU engines: the same host inference the CUDA executor plans with.
  runtime::GraphIndex idx(e.graph);
  std::vector<ir::ValueType> types;
  for (const auto& name : e.graph.inputs) {
    const ir::ValueType* t = e.graph.type_of(name);
    types.push_back(ir::ValueType::of(t ? t->dtype : DType::Float32, given.at(name).shape));
  }
  const runtime::InstanceShapes inst = runtime::infer_instance(idx, types);
  std::map<std::string, Shape> out;
  for (int v : idx.outputs) {
    const ir::ValueType& t = inst.type[static_cast<size_t>(v)];
    Shape s;
    if (t.has_rank)
      for (const auto& d : t.dims) s.push_back(d.is_static() ? d.value : -1);
    out[idx.names[static_cast<size_t>(v)]] = s;
  }
  return out;
}

ContextStats ExecutionContext::stats() const {
#if KILN_WITH_CUDA
  if (impl_->cuda) return impl_->cuda->stats();
#endif
  ContextStats s;
  s.device = "cpu";
  return s;
}

}  // namespace kiln
