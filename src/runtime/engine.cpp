#include "kiln/engine.h"

#include "ir/flops.h"
#include "ir/op_registry.h"
#include "plan/plan.h"
#include "runtime/engine_impl.h"
#include "runtime/target.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/executor.h"
#endif
#include "util/error.h"
#include "util/fs.h"

namespace kiln {

namespace detail {
int profile_for_shapes(const EngineImpl& e, const std::vector<Shape>& by_graph_input) {
  if (e.profiles.empty()) return -1;
  std::map<std::string, Shape> shapes;
  for (size_t k = 0; k < e.graph.inputs.size() && k < by_graph_input.size(); ++k)
    shapes[e.graph.inputs[k]] = by_graph_input[k];
  for (size_t p = 0; p < e.profiles.size(); ++p)
    if (e.profiles[p].contains(shapes)) return static_cast<int>(p);
  return -1;
}
}  // namespace detail

Engine Engine::load(const std::string& path) {
  ir::register_all_ops();
  // The weight tensors view this one buffer: memory stays near the plan size.
  return Engine(plan::deserialize(std::make_shared<const std::string>(util::read_file(path)), path));
}

Engine Engine::deserialize(const std::string& bytes, const std::string& origin) {
  ir::register_all_ops();
  return Engine(plan::deserialize(bytes, origin));
}

std::string Engine::serialize() const {
  KILN_CHECK(impl_, InvalidState, "engine is empty");
  return plan::serialize(*impl_);
}

void Engine::save(const std::string& path) const { util::write_file_atomic(path, serialize()); }

#define KILN_ENGINE_IMPL() \
  if (!impl_) KILN_THROW(InvalidState, "engine is empty (default-constructed)")

const std::vector<TensorInfo>& Engine::inputs() const { KILN_ENGINE_IMPL(); return impl_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { KILN_ENGINE_IMPL(); return impl_->outputs; }
const std::vector<Profile>& Engine::profiles() const { KILN_ENGINE_IMPL(); return impl_->profiles; }
std::string Engine::target() const { KILN_ENGINE_IMPL(); return impl_->target; }
std::string Engine::precision() const { KILN_ENGINE_IMPL(); return impl_->precision; }
std::string Engine::kiln_version() const { KILN_ENGINE_IMPL(); return impl_->kiln_version; }
std::string Engine::build_id() const { KILN_ENGINE_IMPL(); return impl_->build_id; }

size_t Engine::weights_bytes() const {
  KILN_ENGINE_IMPL();
  size_t n = 0;
  for (const auto& [k, t] : impl_->graph.initializers) n += t.nbytes();
  return n;
}

MemoryInfo Engine::memory_info() const {
  KILN_ENGINE_IMPL();
  MemoryInfo m;
  for (const auto& n : impl_->graph.nodes) m.host_fallback_nodes += n.tactic == "host";
#if KILN_WITH_CUDA
  if (runtime::is_cuda_target(impl_->target)) {
    MemoryInfo p = runtime::cuda::plan_memory_info(*impl_);
    p.host_fallback_nodes = m.host_fallback_nodes;
    return p;
  }
#endif
  return m;
}

std::vector<NodeInfo> Engine::nodes() const {
  KILN_ENGINE_IMPL();
  // FLOPs at profile 0's opt shapes: a copy of the graph (weights are shared) with those input shapes.
  ir::Graph sized;
  bool have_shapes = false;
  try {
    std::map<std::string, Shape> opt;
    if (!impl_->profiles.empty())
      for (const auto& [name, r] : impl_->profiles.front().shapes()) opt[name] = r.opt;
    sized = ir::with_input_shapes(impl_->graph, opt);
    have_shapes = true;
  } catch (const Error&) {
    // Unknown FLOPs (-1) rather than a failing inspect.
  }
  std::vector<NodeInfo> v;
  for (size_t i = 0; i < impl_->graph.nodes.size(); ++i) {
    const ir::Node& n = impl_->graph.nodes[i];
    NodeInfo ni;
    ni.name = n.name;
    ni.op = n.op_type;
    ni.tactic = n.tactic;
    for (size_t p = 0; p < impl_->profile_tactics.size(); ++p)
      ni.profile_tactics.push_back(impl_->tactic_of(i, static_cast<int>(p)));
    if (!n.outputs.empty())
      if (const ir::ValueType* t = impl_->graph.type_of(n.outputs[0])) ni.dtype = dtype_name(t->dtype);
    ni.gemm_like = ir::is_gemm_like(n);
    if (have_shapes) ni.flops = ir::node_flops(sized, sized.nodes[i]);
    v.push_back(std::move(ni));
  }
  return v;
}

ExecutionContext Engine::create_context(const ContextOptions& options) const {
  KILN_ENGINE_IMPL();
  return ExecutionContext(*this, options);
}

}  // namespace kiln
