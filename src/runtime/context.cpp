// ExecutionContext: input validation, first-match profile selection, CPU execution.
#include <sstream>

#include "kiln/engine.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/engine_impl.h"
#include "util/error.h"

namespace kiln {
namespace detail {
struct ContextImpl {
  Engine engine;
  std::unique_ptr<runtime::cpu::CpuExecutor> exec;
  int last_profile = -1;
};
}  // namespace detail

ExecutionContext::ExecutionContext(Engine engine) : impl_(std::make_unique<detail::ContextImpl>()) {
  if (!engine.impl()) KILN_THROW(InvalidState, "cannot create a context from an empty engine");
  impl_->engine = std::move(engine);
  impl_->exec = std::make_unique<runtime::cpu::CpuExecutor>(impl_->engine.impl());
}
ExecutionContext::~ExecutionContext() = default;
ExecutionContext::ExecutionContext(ExecutionContext&&) noexcept = default;
ExecutionContext& ExecutionContext::operator=(ExecutionContext&&) noexcept = default;

int ExecutionContext::last_profile() const { return impl_->last_profile; }
const Engine& ExecutionContext::engine() const { return impl_->engine; }

namespace {
std::string dims_str(const TensorInfo& ti) { return ti.str(); }
}  // namespace

TensorMap ExecutionContext::run(const TensorMap& inputs) {
  const detail::EngineImpl& e = *impl_->engine.impl();
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const auto& ti : e.inputs) known |= ti.name == name;
    if (!known) {
      std::ostringstream os;
      for (size_t i = 0; i < e.inputs.size(); ++i) os << (i ? ", " : "") << e.inputs[i].name;
      KILN_THROW(InvalidArgument, "unknown input '" << name << "'; the engine's inputs are: " << os.str());
    }
  }
  TensorMap with_defaults;
  const TensorMap* all = &inputs;
  if (!e.graph.input_defaults.empty()) {
    with_defaults = inputs;
    for (const auto& [name, t] : e.graph.input_defaults) with_defaults.emplace(name, t);
    all = &with_defaults;
  }
  for (const auto& ti : e.inputs) {
    auto it = all->find(ti.name);
    if (it == all->end()) KILN_THROW(InvalidArgument, "missing input '" << ti.name << "' (" << dims_str(ti) << ")");
    const Tensor& t = it->second;
    if (t.empty()) KILN_THROW(InvalidArgument, "input '" << ti.name << "' is an empty tensor");
    if (t.dtype() != ti.dtype)
      KILN_THROW(InvalidArgument, "input '" << ti.name << "' has dtype " << dtype_name(t.dtype()) << ", expected "
                                            << dtype_name(ti.dtype));
    if (t.rank() != static_cast<int64_t>(ti.dims.size()))
      KILN_THROW(InvalidArgument, "input '" << ti.name << "' has rank " << t.rank() << " (shape "
                                            << shape_str(t.shape()) << "), expected rank " << ti.dims.size() << " ("
                                            << dims_str(ti) << ")");
    for (size_t d = 0; d < ti.dims.size(); ++d)
      if (ti.dims[d].is_static() && ti.dims[d].value != t.shape()[d])
        KILN_THROW(InvalidArgument, "input '" << ti.name << "' has shape " << shape_str(t.shape())
                                              << ", but axis " << d << " is fixed to " << ti.dims[d].value << " ("
                                              << dims_str(ti) << ")");
    shapes[ti.name] = t.shape();
  }
  int chosen = -1;
  for (size_t p = 0; p < e.profiles.size(); ++p)
    if (e.profiles[p].contains(shapes)) {
      chosen = static_cast<int>(p);
      break;
    }
  if (chosen < 0) {
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
  impl_->last_profile = chosen;
  return impl_->exec->run(*all);
}

}  // namespace kiln
