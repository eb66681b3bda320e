// Elementwise fusion (CUDA engines; docs/passes.md).
// Matches: maximal groups of elementwise nodes (ops/fused_elementwise.h: fusable_op) computing float32 / float16 /
// bfloat16 values, grown from a root towards its producers, where every member's output has the root's shape (by
// the inferred types, or where they leave dims unknown, in every sample of concrete shapes the builder gives: each
// profile's min / opt / max) and every value a member produces, except the root's output, is read only by members
// (a tree, or a DAG where a value is read twice inside) and is not a graph output. Operands from outside become the
// fused node's inputs (deduplicated), except one-element float initializers (and a Pow's one-element numeric
// exponent), which become constants of the program. A Where's condition must come from outside (bool), Clip's
// bounds must be constants (opset >= 11); Max / Min take exactly two inputs.
// Rewrites: each group of two or more nodes becomes one kiln.FusedElementwise node at the root's position, producing
// the root's output. Valid because the fused node's reference runs every step with the original op's reference
// kernel on the same values, and no value the group hides is read anywhere else (so nothing outside can depend on
// the group except through the root: no cycle); the CUDA kernel evaluates the same program per element in float
// registers (no float16 rounding of the hidden intermediates: docs/passes.md).
// A group grows one producer at a time and keeps it only when the program still compiles to the CUDA kernel's
// accumulator code (at most 8 inputs, 48 instructions, 3 saved registers).
#include <algorithm>
#include <map>
#include <set>

#include "ops/common.h"
#include "ops/fused_elementwise.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_elementwise_detail {

namespace fused = ops::fused;

// A one-element initializer whose value a float holds exactly: an immediate constant of the program.
const Tensor* immediate(const ir::Graph& g, const std::string& v, bool any_numeric) {
  auto it = g.initializers.find(v);
  if (it == g.initializers.end() || it->second.numel() != 1) return nullptr;
  const Tensor& t = it->second;
  if (is_float3(t.dtype())) return &t;
  if (!any_numeric || t.dtype() == DType::Bool || t.dtype() == DType::Float64) return nullptr;
  const double d = t.at_double(0);
  return static_cast<double>(static_cast<float>(d)) == d ? &t : nullptr;
}

class Fuser {
 public:
  Fuser(ir::Graph& g, const std::vector<ValueShapes>& samples)
      : g_(g), samples_(samples), consumers_(g.consumers()), producers_(g.producers()) {
    outputs_.insert(g.outputs.begin(), g.outputs.end());
    for (const auto& [name, t] : g.initializers) init_types_[name] = ir::ValueType::of(t.dtype(), t.shape());
  }

  bool run() {
    const size_t N = g_.nodes.size();
    std::vector<bool> elig(N);
    for (size_t i = 0; i < N; ++i) elig[i] = eligible(g_.nodes[i]);
    std::vector<int> group_of(N, -1);
    std::vector<std::vector<size_t>> groups;
    for (size_t i = N; i-- > 0;) {
      if (!elig[i] || group_of[i] >= 0) continue;
      std::vector<size_t> members = grow(i, elig, group_of);
      if (members.size() < 2) continue;
      for (size_t m : members) group_of[m] = static_cast<int>(groups.size());
      groups.push_back(members);
    }
    if (groups.empty()) return false;
    std::vector<std::string> hidden;
    for (const auto& members : groups)
      for (size_t k = 0; k + 1 < members.size(); ++k) hidden.push_back(g_.nodes[members[k]].outputs[0]);
    std::vector<ir::Node> kept;
    size_t fused_nodes = 0;
    for (size_t i = 0; i < N; ++i) {
      if (group_of[i] < 0) {
        kept.push_back(std::move(g_.nodes[i]));
        continue;
      }
      const std::vector<size_t>& members = groups[static_cast<size_t>(group_of[i])];
      if (members.back() != i) continue;  // the root (last in topological order) stands for the group
      kept.push_back(make_node(members));
      fused_nodes += members.size();
    }
    for (const std::string& v : hidden) g_.types.erase(v);
    KILN_INFO("fuse_elementwise: " << fused_nodes << " nodes fused into " << groups.size() << " kernels ("
                                   << N << " -> " << kept.size() << " nodes)");
    g_.nodes = std::move(kept);
    return true;
  }

 private:
  // The value's type (initializers included); nullptr when unknown.
  const ir::ValueType* type(const std::string& v) const {
    if (v.empty()) return nullptr;
    auto it = init_types_.find(v);
    return it != init_types_.end() ? &it->second : g_.type_of(v);
  }

  // Value v has the shape of value r: by their types, or (dims unknown there) in every sample.
  bool same_shape(const std::string& v, const std::string& r) const {
    return passes::same_shape(type(v), type(r), v, r, samples_);
  }

  bool typed_float(const std::string& v) const {
    const ir::ValueType* t = type(v);
    return t && is_float3(t->dtype);
  }

  // The node may be a member of a tree (independently of its neighbours).
  bool eligible(const ir::Node& n) const {
    if (n.domain != "" || !fused::fusable_op(n.op_type)) return false;
    if (n.outputs.size() != 1 || n.outputs[0].empty()) return false;
    const ir::ValueType* out = type(n.outputs[0]);
    if (!out || !out->has_rank || !is_float3(out->dtype) || out->dims.size() > 8) return false;
    const std::string& op = n.op_type;
    const size_t k = n.num_inputs();
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (!n.inputs[i].empty() && !type(n.inputs[i])) return false;
    if (op == "Where") return k == 3 && type(n.inputs[0])->dtype == DType::Bool && typed_float(n.inputs[1]) &&
                              typed_float(n.inputs[2]);
    if (op == "Clip") {
      if (n.opset < 11 || !typed_float(n.inputs[0])) return false;
      for (size_t b = 1; b < n.inputs.size(); ++b)
        if (!n.inputs[b].empty() && !immediate(g_, n.inputs[b], false)) return false;
      return true;
    }
    if (op == "Pow")
      return k == 2 && typed_float(n.inputs[0]) && (typed_float(n.inputs[1]) || immediate(g_, n.inputs[1], true));
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min" || op == "PRelu")
      return k == 2 && n.inputs.size() == 2 && typed_float(n.inputs[0]) && typed_float(n.inputs[1]);
    if (op == "Gelu") {
      const std::string a = n.attr_string("approximate", "none");
      if (a != "none" && a != "tanh") return false;
    }
    return k == 1 && n.inputs.size() == 1 && typed_float(n.inputs[0]);  // unary ops and Cast (float -> float)
  }

  // Operands of n that may be computed inside the tree (not a Where condition, not Clip bounds).
  static std::vector<size_t> value_operands(const ir::Node& n) {
    if (n.op_type == "Where") return {1, 2};
    if (n.op_type == "Clip") return {0};
    std::vector<size_t> v;
    for (size_t i = 0; i < n.inputs.size(); ++i) v.push_back(i);
    return v;
  }

  std::vector<size_t> grow(size_t root, const std::vector<bool>& elig, const std::vector<int>& group_of) {
    const std::string& root_out = g_.nodes[root].outputs[0];
    std::vector<size_t> members = {root};
    fused::Program prog;
    if (!build(members, prog)) return {};
    auto is_member = [&](size_t i) { return std::find(members.begin(), members.end(), i) != members.end(); };
    // Rounds until nothing joins: a value read twice inside the tree joins once both readers are members.
    for (bool grew = true; grew;) {
      grew = false;
      for (size_t at = 0; at < members.size(); ++at) {
        const ir::Node& m = g_.nodes[members[at]];
        for (size_t oi : value_operands(m)) {
          const std::string& v = m.inputs[oi];
          auto pit = producers_.find(v);
          if (v.empty() || pit == producers_.end() || outputs_.count(v)) continue;
          const size_t p = pit->second;
          if (!elig[p] || group_of[p] >= 0 || is_member(p)) continue;
          bool inside = true;
          for (size_t reader : consumers_[v]) inside = inside && is_member(reader);
          if (!inside || !same_shape(v, root_out)) continue;
          members.push_back(p);
          std::vector<size_t> sorted = members;
          std::sort(sorted.begin(), sorted.end());
          fused::Program trial;
          if (build(sorted, trial)) grew = true;
          else members.pop_back();
        }
      }
    }
    std::sort(members.begin(), members.end());
    return members;
  }

  // The program of the tree `members` (sorted, the root last); false when it does not compile or its inputs do not
  // broadcast to the root's shape by themselves.
  bool build(const std::vector<size_t>& members, fused::Program& p, std::vector<std::string>* inputs = nullptr) const {
    std::vector<std::string> ins;
    std::map<std::string, int64_t> step_slot;
    struct Pending {
      size_t step;
      size_t operand;
      enum { Input, Const, Step } kind;
      size_t index;
    };
    std::vector<Pending> refs;
    for (size_t j = 0; j < members.size(); ++j) {
      const ir::Node& n = g_.nodes[members[j]];
      fused::Step s;
      s.op = n.op_type;
      s.opset = n.opset;
      s.dtype = type(n.outputs[0])->dtype;
      if (s.op == "LeakyRelu") s.alpha = n.attr_float("alpha", 0.01f);
      if (s.op == "Elu") s.alpha = n.attr_float("alpha", 1.0f);
      if (s.op == "HardSigmoid") {
        s.alpha = n.attr_float("alpha", 0.2f);
        s.beta = n.attr_float("beta", 0.5f);
      }
      if (s.op == "Gelu") s.mode = n.attr_string("approximate", "none") == "tanh" ? 1 : 0;
      for (size_t o = 0; o < n.inputs.size() && o < 3; ++o) {
        const std::string& v = n.inputs[o];
        if (v.empty()) continue;
        auto st = step_slot.find(v);
        if (st != step_slot.end()) {
          refs.push_back({j, o, Pending::Step, static_cast<size_t>(st->second)});
        } else if (const Tensor* c = immediate(g_, v, s.op == "Pow" && o == 1)) {
          refs.push_back({j, o, Pending::Const, p.constants.size()});
          p.constants.push_back(static_cast<float>(c->at_double(0)));
          p.constant_dtypes.push_back(c->dtype());
        } else {
          auto it = std::find(ins.begin(), ins.end(), v);
          refs.push_back({j, o, Pending::Input, static_cast<size_t>(it - ins.begin())});
          if (it == ins.end()) ins.push_back(v);
        }
      }
      step_slot[n.outputs[0]] = static_cast<int64_t>(j);
      p.steps.push_back(s);
    }
    p.num_inputs = ins.size();
    for (const Pending& r : refs) {
      const size_t base = r.kind == Pending::Input ? 0 : r.kind == Pending::Const ? ins.size() : p.first_step_slot();
      p.steps[r.step].operands[r.operand] = static_cast<int64_t>(base + r.index);
    }
    std::vector<fused::FusedInst> code;
    if (!fused::compile(p, code)) return false;
    // The inputs alone must give the root's rank (the fused node's shape is their broadcast; a one-element
    // constant could only add leading dims).
    size_t rank = 0;
    for (const std::string& v : ins) {
      if (!type(v)->has_rank) return false;
      rank = std::max(rank, type(v)->dims.size());
    }
    if (rank != type(g_.nodes[members.back()].outputs[0])->dims.size()) return false;
    if (inputs) *inputs = ins;
    return true;
  }

  ir::Node make_node(const std::vector<size_t>& members) {
    fused::Program p;
    std::vector<std::string> ins;
    if (!build(members, p, &ins)) KILN_THROW(InvalidState, "fuse_elementwise: a grown tree no longer compiles");
    const ir::Node& root = g_.nodes[members.back()];
    ir::Node n;
    n.name = g_.unique_name("fused_" + root.name);
    n.op_type = fused::kOpType;
    n.domain = fused::kDomain;
    n.opset = 1;
    n.inputs = ins;
    n.outputs = {root.outputs[0]};
    fused::encode(p, n);
    KILN_DEBUG("fuse_elementwise: " << n.name << " = " << fused::describe(p));
    return n;
  }

  ir::Graph& g_;
  const std::vector<ValueShapes>& samples_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::map<std::string, size_t> producers_;
  std::set<std::string> outputs_;
  std::map<std::string, ir::ValueType> init_types_;
};

}  // namespace fuse_elementwise_detail

bool fuse_elementwise(ir::Graph& g) {
  static const std::vector<ValueShapes> none;
  return fuse_elementwise_detail::Fuser(g, none).run();
}
bool fuse_elementwise(ir::Graph& g, const std::vector<ValueShapes>& samples) {
  return fuse_elementwise_detail::Fuser(g, samples).run();
}

}  // namespace kiln::passes
