#include "runtime/cpu/cpu_executor.h"

#include <chrono>
#include <mutex>
#include <set>
#include <unordered_map>

#include "ir/subgraph.h"
#include "runtime/cpu/cpu_tactics.h"
#include "util/error.h"

namespace kiln::runtime::cpu {

std::vector<std::vector<std::string>> plan_frees(const ir::Graph& g) {
  std::set<std::string> keep(g.outputs.begin(), g.outputs.end());
  std::map<std::string, size_t> last_use;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (!in.empty()) last_use[in] = i;
  std::vector<std::vector<std::string>> frees(g.nodes.size());
  for (const auto& [v, i] : last_use)
    if (!keep.count(v) && !g.is_constant(v)) frees[i].push_back(v);
  return frees;
}

void gather_inputs(const ir::Graph& g, const ir::Node& n, const std::unordered_map<std::string, Tensor>& env,
                   std::vector<const Tensor*>& ins) {
  ins.clear();
  for (const auto& in : n.inputs) {
    if (in.empty()) {
      ins.push_back(nullptr);
      continue;
    }
    auto c = g.initializers.find(in);
    if (c != g.initializers.end()) {
      ins.push_back(&c->second);
      continue;
    }
    auto it = env.find(in);
    if (it == env.end()) KILN_THROW(InvalidModel, n.label() << ": input '" << in << "' was not computed");
    ins.push_back(&it->second);
  }
}

namespace {

// `outer`: values of enclosing graphs a subgraph reads by name (nullptr for a top-level graph).
TensorMap execute(const ir::Graph& g, const std::vector<ir::KernelFn>& kernels,
                  const std::vector<std::vector<std::string>>& frees, const TensorMap& inputs,
                  const TensorMap* outer = nullptr) {
  std::unordered_map<std::string, Tensor> env;
  if (outer)
    for (const auto& [name, t] : *outer) env[name] = t;
  for (const auto& name : g.inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) KILN_THROW(InvalidArgument, "missing input '" << name << "'");
    env[name] = it->second;
  }
  std::vector<const Tensor*> ins;
  std::vector<Tensor> outs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    gather_inputs(g, n, env, ins);
    outs.assign(n.outputs.size(), Tensor());
    kernels[i](n, ins, outs);
    for (size_t o = 0; o < n.outputs.size(); ++o)
      if (!n.outputs[o].empty()) env[n.outputs[o]] = std::move(outs[o]);
    for (const auto& v : frees[i]) env.erase(v);
  }
  TensorMap result;
  for (const auto& name : g.outputs) {
    auto c = g.initializers.find(name);
    if (c != g.initializers.end()) {
      result[name] = c->second;
      continue;
    }
    auto it = env.find(name);
    if (it == env.end()) KILN_THROW(InvalidModel, "graph output '" << name << "' was not computed");
    result[name] = it->second;
  }
  return result;
}

}  // namespace

namespace cpu_executor_detail {
std::vector<ir::KernelFn> reference_kernels(const ir::Graph& g) {
  std::vector<ir::KernelFn> kernels;
  for (const auto& n : g.nodes) {
    const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
    if (!def || !def->reference) KILN_THROW(Unsupported, n.label() << ": no reference kernel");
    kernels.push_back(def->reference);
  }
  return kernels;
}
}  // namespace cpu_executor_detail

TensorMap run_subgraph_reference(const ir::Graph& g, const TensorMap& captured) {
  return execute(g, cpu_executor_detail::reference_kernels(g), plan_frees(g), captured, &captured);
}

void register_subgraph_runner() {
  static std::once_flag once;
  std::call_once(once, [] { ir::set_subgraph_runner(run_subgraph_reference); });
}

CpuExecutor::CpuExecutor(std::shared_ptr<const detail::EngineImpl> engine) : engine_(std::move(engine)) {
  register_subgraph_runner();
  const ir::Graph& g = engine_->graph;
  for (const auto& n : g.nodes) kernels_.push_back(find_tactic(n));
  // Engines whose profiles chose differently: one kernel table per profile (run() picks the one its shapes select).
  for (size_t p = 0; p < engine_->profile_tactics.size(); ++p) {
    std::vector<ir::KernelFn> ks;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      ir::Node n = g.nodes[i];
      n.tactic = engine_->tactic_of(i, static_cast<int>(p));
      ks.push_back(find_tactic(n));
    }
    profile_kernels_.push_back(std::move(ks));
  }
  std::unordered_map<std::string, int> slot;
  auto slot_of = [&](const std::string& name) {
    auto it = slot.find(name);
    if (it != slot.end()) return it->second;
    const int s = static_cast<int>(slots_++);
    slot.emplace(name, s);
    return s;
  };
  for (const auto& name : g.inputs) inputs_.emplace_back(name, slot_of(name));
  const auto frees = plan_frees(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    Step st;
    for (const auto& in : n.inputs) {
      Operand op;
      if (!in.empty()) {
        auto c = g.initializers.find(in);
        if (c != g.initializers.end()) {
          op.constant = &c->second;
        } else {
          auto it = slot.find(in);
          if (it == slot.end()) KILN_THROW(InvalidModel, n.label() << ": input '" << in << "' is not computed before it");
          op.slot = it->second;
        }
      }
      st.ins.push_back(op);
    }
    for (const auto& o : n.outputs) st.outs.push_back(o.empty() ? -1 : slot_of(o));
    for (const auto& v : frees[i]) st.frees.push_back(slot.at(v));
    steps_.push_back(std::move(st));
  }
  for (const auto& name : g.outputs) {
    Operand op;
    auto c = g.initializers.find(name);
    if (c != g.initializers.end()) {
      op.constant = &c->second;
    } else {
      auto it = slot.find(name);
      if (it == slot.end()) KILN_THROW(InvalidModel, "graph output '" << name << "' is not computed");
      op.slot = it->second;
    }
    outputs_.emplace_back(name, op);
  }
}

TensorMap CpuExecutor::run(const TensorMap& inputs) {
  const ir::Graph& g = engine_->graph;
  if (profiling_) node_ms_.resize(g.nodes.size(), 0.0);
  std::vector<Tensor> env(slots_);
  for (const auto& [name, s] : inputs_) {
    auto it = inputs.find(name);
    if (it == inputs.end()) KILN_THROW(InvalidArgument, "missing input '" << name << "'");
    env[static_cast<size_t>(s)] = it->second;
  }
  const std::vector<ir::KernelFn>* kernels = &kernels_;
  if (!profile_kernels_.empty()) {
    std::vector<Shape> key;
    for (const auto& [name, s] : inputs_) key.push_back(env[static_cast<size_t>(s)].shape());
    const int p = detail::profile_for_shapes(*engine_, key);
    if (p >= 0 && static_cast<size_t>(p) < profile_kernels_.size()) kernels = &profile_kernels_[static_cast<size_t>(p)];
  }
  std::vector<const Tensor*> ins;
  std::vector<Tensor> outs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const Step& st = steps_[i];
    ins.clear();
    for (const Operand& op : st.ins) {
      if (op.constant) {
        ins.push_back(op.constant);
      } else if (op.slot < 0) {
        ins.push_back(nullptr);
      } else {
        const Tensor& t = env[static_cast<size_t>(op.slot)];
        if (t.empty()) KILN_THROW(InvalidModel, n.label() << ": an input was not computed");
        ins.push_back(&t);
      }
    }
    outs.assign(n.outputs.size(), Tensor());
    if (profiling_) {
      const auto t0 = std::chrono::steady_clock::now();
      (*kernels)[i](n, ins, outs);
      node_ms_[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    } else {
      (*kernels)[i](n, ins, outs);
    }
    for (size_t o = 0; o < st.outs.size(); ++o)
      if (st.outs[o] >= 0) env[static_cast<size_t>(st.outs[o])] = std::move(outs[o]);
    for (int s : st.frees) env[static_cast<size_t>(s)] = Tensor();
  }
  TensorMap result;
  for (const auto& [name, op] : outputs_) {
    if (op.constant) {
      result[name] = *op.constant;
      continue;
    }
    const Tensor& t = env[static_cast<size_t>(op.slot)];
    if (t.empty()) KILN_THROW(InvalidModel, "graph output '" << name << "' was not computed");
    result[name] = t;
  }
  return result;
}

void CpuExecutor::set_profiling(bool on) {
  profiling_ = on;
  node_ms_.assign(on ? engine_->graph.nodes.size() : 0, 0.0);
}

TensorMap run_graph_reference(const ir::Graph& g, const TensorMap& inputs) {
  register_subgraph_runner();
  return execute(g, cpu_executor_detail::reference_kernels(g), plan_frees(g), inputs);
}

}  // namespace kiln::runtime::cpu
