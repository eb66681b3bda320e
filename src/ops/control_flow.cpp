// If (opset 1 .. 25): evaluates then_branch or else_branch. The branches read values of the enclosing graph;
// the importer turned those reads into extra node inputs after the formal `cond` (ir/subgraph.h), so here they
// are ordinary inputs: inference types the branch graphs with the captured values' types (and constant values),
// and the kernel runs the chosen branch through ir::run_subgraph (the runtime's reference executor).
#include "ir/subgraph.h"
#include "ops/common.h"

namespace kiln::ops::control_flow_detail {

const ir::Graph& branch(const Node& n, const char* name) {
  if (!n.has_attr(name)) KILN_THROW(InvalidModel, n.label() << ": required attribute '" << name << "' is missing");
  const auto* g = std::get_if<ir::GraphPtr>(&n.attrs.at(name));
  if (!g || !*g) KILN_THROW(InvalidModel, n.label() << ": attribute '" << name << "' must be a graph");
  if ((*g)->outputs.size() != n.outputs.size())
    KILN_THROW(InvalidModel, n.label() << ": " << name << " has " << (*g)->outputs.size() << " outputs, the node has "
                                       << n.outputs.size());
  if (!(*g)->inputs.empty())
    KILN_THROW(InvalidModel, n.label() << ": " << name << " must have no inputs, has " << (*g)->inputs.size());
  return **g;
}

void check_if_arity(const Node& n) {
  if (ir::num_formal_inputs(n) != 1 || !n.has_input(0))
    KILN_THROW(InvalidModel, n.label() << ": expects exactly 1 formal input (cond), got " << ir::num_formal_inputs(n));
  if (n.outputs.empty()) KILN_THROW(InvalidModel, n.label() << ": expects at least 1 output");
}

// The subgraph names of the captures, in input order (empty when the node has none).
std::vector<std::string> capture_names(const Node& n) {
  if (!n.has_attr(ir::kCapturedNames)) return {};
  const auto* v = std::get_if<std::vector<std::string>>(&n.attrs.at(ir::kCapturedNames));
  if (!v) KILN_THROW(InvalidModel, n.label() << ": attribute " << ir::kCapturedNames << " must be a string list");
  return *v;
}

// Declared type refined by the inferred one: inferred static dims win, declared ones fill the gaps.
ValueType refine(const ValueType* declared, const ValueType& inferred) {
  if (!declared || !declared->has_rank) return inferred;
  if (!inferred.has_rank) return ValueType{inferred.dtype, true, declared->dims};
  if (inferred.dims.size() != declared->dims.size()) return inferred;
  ValueType t = inferred;
  for (size_t i = 0; i < t.dims.size(); ++i)
    if (!t.dims[i].is_static() && t.dims[i].symbol.empty()) t.dims[i] = declared->dims[i];
  return t;
}

// Output types of one branch, with the captured values' types (and constants) bound.
std::vector<ValueType> branch_types(const InferContext& ctx, const char* name) {
  const Node& n = ctx.node;
  const ir::Graph& src = branch(n, name);
  ir::Graph g = src;
  const size_t formal = ir::num_formal_inputs(n);
  const std::vector<std::string> names = capture_names(n);
  if (formal + names.size() != n.inputs.size())
    KILN_THROW(InvalidModel, n.label() << ": " << names.size() << " captured names for " << n.inputs.size() - formal
                                       << " captured inputs");
  for (size_t k = 0; k < names.size(); ++k) {
    if (const Tensor* v = const_input(ctx, formal + k)) g.initializers[names[k]] = *v;
    else g.types[names[k]] = ctx.input(formal + k);
  }
  try {
    ir::infer_types(g);
  } catch (const Error& e) {
    throw Error(e.code(), n.label() + ": " + name + ": " + e.what());
  }
  std::vector<ValueType> out;
  for (const auto& o : g.outputs) {
    auto c = g.initializers.find(o);
    if (c != g.initializers.end()) {
      out.push_back(ValueType::of(c->second.dtype(), c->second.shape()));
      continue;
    }
    const ValueType* t = g.type_of(o);
    if (!t) KILN_THROW(InvalidModel, n.label() << ": " << name << " output '" << o << "' has no known type");
    out.push_back(refine(src.type_of(o), *t));
  }
  return out;
}

std::vector<ValueType> if_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_if_arity(n);
  const ValueType& cond = ctx.input(0);
  if (cond.dtype != DType::Bool)
    KILN_THROW(InvalidModel, n.label() << ": cond must be bool, got " << dtype_name(cond.dtype));
  if (cond.has_rank && dims_product(cond.dims, 0, cond.dims.size()) > 1)
    KILN_THROW(InvalidModel, n.label() << ": cond must hold a single element, got " << cond.str());
  // A constant cond: only the taken branch is typed (the other may not even be valid for these inputs, e.g.
  // AffineGrid's body splits a 5-element size into 4 in its 2-D branch).
  if (const Tensor* c = const_input(ctx, 0); c && c->numel() == 1)
    return branch_types(ctx, c->at_int64(0) != 0 ? "then_branch" : "else_branch");
  std::vector<ValueType> then_t = branch_types(ctx, "then_branch");
  std::vector<ValueType> else_t = branch_types(ctx, "else_branch");
  std::vector<ValueType> out;
  for (size_t i = 0; i < then_t.size(); ++i) {
    const ValueType &a = then_t[i], &b = else_t[i];
    if (a.dtype != b.dtype)
      KILN_THROW(InvalidModel, n.label() << ": output " << i << " is " << dtype_name(a.dtype) << " in then_branch but "
                                         << dtype_name(b.dtype) << " in else_branch");
    if (!a.has_rank || !b.has_rank || a.dims.size() != b.dims.size()) {
      out.push_back(ValueType::unknown(a.dtype));
      continue;
    }
    std::vector<Dim> dims;
    for (size_t d = 0; d < a.dims.size(); ++d) dims.push_back(same_dim(a.dims[d], b.dims[d]) ? a.dims[d] : unknown_dim());
    out.push_back(make_type(a.dtype, dims));
  }
  return out;
}

void if_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_if_arity(n);
  const Tensor& cond = in_tensor(n, in, 0);
  if (cond.dtype() != DType::Bool)
    KILN_THROW(InvalidModel, n.label() << ": cond must be bool, got " << cond.type_str());
  if (cond.numel() != 1)
    KILN_THROW(InvalidArgument, n.label() << ": cond must hold a single element, got " << cond.type_str());
  const char* which = cond.at_int64(0) != 0 ? "then_branch" : "else_branch";
  const ir::Graph& g = branch(n, which);
  const TensorMap captured = ir::captured_values(n, in);
  TensorMap res = ir::run_subgraph(g, captured);
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i].empty()) continue;
    auto it = res.find(g.outputs[i]);
    if (it == res.end()) KILN_THROW(InvalidModel, n.label() << ": " << which << " did not produce '" << g.outputs[i] << "'");
    // A branch output that is a captured value or a branch constant would alias it: return a fresh buffer.
    bool aliases = false;
    for (const auto& [k, t] : captured) aliases |= t.data() == it->second.data();
    for (const auto& [k, t] : g.initializers) aliases |= t.data() == it->second.data();
    out[i] = aliases ? it->second.clone() : it->second;
  }
}

}  // namespace kiln::ops::control_flow_detail

namespace kiln::ops {
void register_control_flow() {
  ir::OpRegistry::instance().add(ir::OpDef{"If", "", {1, 11, 13, 16, 19, 21, 23, 24, 25},
                                           control_flow_detail::if_infer, control_flow_detail::if_kernel});
}
}  // namespace kiln::ops
