#include "backend/testing_hooks.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>

#include "ir/op_registry.h"
#include "runtime/engine_impl.h"
#include "util/error.h"

namespace kiln::backend::testing {
namespace testing_hooks_impl {

std::atomic<int> g_fault{0};
std::mutex g_hook_mu;
std::function<void()> g_hook;
std::atomic<bool> g_hook_set{false};

void faulty_kernel(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const Tensor& x = *in.at(0);
  Tensor y = x.clone();
  const auto mode = static_cast<Fault>(n.attr_int("mode", 0));
  if (y.numel() > 0 && (mode == Fault::WrongValue || mode == Fault::NaN)) {
    if (y.dtype() == DType::Float32) {
      float& v = y.mutable_as<float>()[0];
      v = mode == Fault::NaN ? std::numeric_limits<float>::quiet_NaN() : v + 1e-2f * (1.0f + std::fabs(v));
    } else if (y.dtype() == DType::Int64) {
      y.mutable_as<int64_t>()[0] += 1;
    }
  }
  if (mode == Fault::WrongShape) y = y.reshaped({y.numel()});
  out.at(0) = y;
}

void register_fault_op() {
  static std::once_flag once;
  std::call_once(once, [] {
    ir::register_all_ops();
    ir::OpDef d;
    d.op_type = "KilnFault";
    d.domain = "kiln.testing";
    d.since = {1};
    d.infer = [](const ir::InferContext& c) { return std::vector<ir::ValueType>{c.input(0)}; };
    d.reference = faulty_kernel;
    ir::OpRegistry::instance().add(d);
  });
}

}  // namespace testing_hooks_impl

void set_fault(Fault f) { testing_hooks_impl::g_fault = static_cast<int>(f); }
Fault fault() { return static_cast<Fault>(testing_hooks_impl::g_fault.load()); }

Engine inject_fault(const Engine& engine, Fault f) {
  if (f == Fault::None || !engine.impl() || engine.impl()->graph.outputs.empty()) return engine;
  testing_hooks_impl::register_fault_op();
  auto impl = std::make_shared<detail::EngineImpl>(*engine.impl());
  ir::Graph& g = impl->graph;
  const std::string out = g.outputs[0];
  const std::string pre = g.unique_name(out + "__kiln_fault_in");
  bool produced = false;
  for (auto& n : g.nodes) {
    for (auto& o : n.outputs)
      if (o == out) o = pre, produced = true;
    for (auto& i : n.inputs)
      if (i == out) i = pre;
  }
  if (!produced) return engine;
  if (const ir::ValueType* t = g.type_of(out)) g.types[pre] = *t;
  ir::Node fault_node;
  fault_node.name = "kiln_fault";
  fault_node.op_type = "KilnFault";
  fault_node.domain = "kiln.testing";
  fault_node.opset = 1;
  fault_node.inputs = {pre};
  fault_node.outputs = {out};
  fault_node.attrs["mode"] = static_cast<int64_t>(f);
  // The reference kernel: "ref" on the CPU, the counted host fallback ("host") on CUDA engines.
  fault_node.tactic = impl->target.rfind("cuda", 0) == 0 ? "host" : "ref";
  g.nodes.push_back(fault_node);
  for (auto& per : impl->profile_tactics) per.push_back(fault_node.tactic);  // every profile runs it alike
  return Engine(impl);
}

void set_infer_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lk(testing_hooks_impl::g_hook_mu);
  testing_hooks_impl::g_hook = std::move(hook);
  testing_hooks_impl::g_hook_set = static_cast<bool>(testing_hooks_impl::g_hook);
}

void run_infer_hook() {
  if (!testing_hooks_impl::g_hook_set.load()) return;
  std::function<void()> h;
  {
    std::lock_guard<std::mutex> lk(testing_hooks_impl::g_hook_mu);
    h = testing_hooks_impl::g_hook;
  }
  if (h) h();
}

}  // namespace kiln::backend::testing
