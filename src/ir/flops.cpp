// FLOP accounting (see flops.h). Shapes come from g.types / initializers; nothing is executed.
#include "ir/flops.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "ir/op_registry.h"
#include "util/error.h"

namespace kiln::ir {
namespace flops_detail {

std::optional<Shape> shape_of(const Graph& g, const std::string& v) {
  if (v.empty()) return std::nullopt;
  auto c = g.initializers.find(v);
  if (c != g.initializers.end()) return c->second.shape();
  const ValueType* t = g.type_of(v);
  if (!t || !t->is_static()) return std::nullopt;
  return t->static_shape();
}

const std::set<std::string>& free_ops() {
  static const std::set<std::string> s = {
      "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Size", "Concat", "Slice",
      "Gather", "GatherElements", "GatherND", "Expand", "Tile", "Split", "Pad", "Cast", "CastLike", "Constant",
      "ConstantOfShape", "Dropout", "DepthToSpace", "SpaceToDepth", "ScatterND", "NonZero", "Range", "Trilu"};
  return s;
}

int64_t einsum_flops(const Graph& g, const Node& n) {
  std::string eq = n.attr_string("equation", "");
  if (eq.find("...") != std::string::npos) return -1;
  std::string lhs = eq.substr(0, eq.find("->"));
  std::map<char, int64_t> size;
  size_t term = 0, pos = 0;
  for (size_t i = 0; i <= lhs.size(); ++i) {
    if (i < lhs.size() && lhs[i] != ',') continue;
    if (term >= n.inputs.size()) return -1;
    auto s = shape_of(g, n.inputs[term]);
    if (!s) return -1;
    size_t d = 0;
    for (size_t k = pos; k < i; ++k) {
      if (lhs[k] == ' ') continue;
      if (d >= s->size()) return -1;
      size[lhs[k]] = std::max(size[lhs[k]], (*s)[d++]);
    }
    ++term;
    pos = i + 1;
  }
  int64_t f = 2;
  for (const auto& [c, v] : size) f *= v;
  return f;
}

// Shape / Size of a value with a static type, as constant folding computes them.
bool eval_shape_op(Graph& g, const Node& n) {
  if ((n.op_type != "Shape" && n.op_type != "Size") || !n.has_input(0) || n.outputs.empty()) return false;
  auto s = shape_of(g, n.inputs[0]);
  if (!s) return false;
  if (n.op_type == "Size") {
    g.initializers[n.outputs[0]] = Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{shape_numel(*s)});
    return true;
  }
  const int64_t r = static_cast<int64_t>(s->size());
  int64_t start = n.attr_int("start", 0), end = n.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> v(s->begin() + start, s->begin() + std::max(start, end));
  g.initializers[n.outputs[0]] = Tensor::from_vector(DType::Int64, {static_cast<int64_t>(v.size())}, v);
  return true;
}

// Small integer results of constant inputs (the Gather / Concat / Unsqueeze of a shape computation).
void eval_small_integer_op(Graph& g, const Node& n, const OpDef& def) {
  if (!def.reference) return;
  for (const auto& [k, a] : n.attrs)
    if (std::holds_alternative<GraphPtr>(a)) return;
  std::vector<const Tensor*> ins;
  for (const auto& in : n.inputs) {
    if (in.empty()) {
      ins.push_back(nullptr);
      continue;
    }
    auto c = g.initializers.find(in);
    if (c == g.initializers.end()) return;
    ins.push_back(&c->second);
  }
  for (const auto& o : n.outputs) {
    if (o.empty()) continue;
    const ValueType* t = g.type_of(o);
    if (!t || !t->is_static() || dtype_is_float(t->dtype) || shape_numel(t->static_shape()) > 4096) return;
  }
  std::vector<Tensor> outs(n.outputs.size());
  def.reference(n, ins, outs);
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) g.initializers[n.outputs[i]] = std::move(outs[i]);
}

}  // namespace flops_detail

Graph with_input_shapes(const Graph& g, const std::map<std::string, Shape>& shapes) {
  using namespace flops_detail;
  Graph s = g;
  for (const auto& [name, shape] : shapes)
    if (const ValueType* t = s.type_of(name)) s.types[name] = ValueType::of(t->dtype, shape);
  auto& reg = OpRegistry::instance();
  for (const Node& n : s.nodes) {
    const OpDef* def = reg.find(n.domain, n.op_type, n.opset);
    if (!def) KILN_THROW(Unsupported, "no kernel for " << n.label());
    std::vector<ValueType> types;
    types.reserve(n.inputs.size());
    InferContext ctx{n, {}, {}};
    for (const auto& in : n.inputs) {
      auto c = in.empty() ? s.initializers.end() : s.initializers.find(in);
      const ValueType* t = in.empty() ? nullptr : s.type_of(in);
      if (c != s.initializers.end()) types.push_back(ValueType::of(c->second.dtype(), c->second.shape()));
      else if (t) types.push_back(*t);
      else if (!in.empty()) KILN_THROW(InvalidModel, n.label() << ": input '" << in << "' has no known type");
      else types.emplace_back();
      ctx.in.push_back(in.empty() ? nullptr : &types.back());
      ctx.values.push_back(c != s.initializers.end() ? &c->second : nullptr);
    }
    std::vector<ValueType> outs = def->infer(ctx);
    for (size_t i = 0; i < n.outputs.size() && i < outs.size(); ++i)
      if (!n.outputs[i].empty()) s.types[n.outputs[i]] = outs[i];
    if (!eval_shape_op(s, n)) eval_small_integer_op(s, n, *def);
  }
  return s;
}

bool is_gemm_like(const Node& n) {
  if (n.domain.empty()) return is_gemm_like(n.op_type);
  return n.domain == "kiln" && (n.op_type == "FusedMatMul" || n.op_type == "Conv" || n.op_type == "FusedConv");
}

bool is_gemm_like(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "MatMul" || op == "Gemm" || op == "Einsum" ||
         op == "Attention";
}

int64_t node_flops(const Graph& g, const Node& n) {
  using namespace flops_detail;
  if (n.domain == "kiln" && n.op_type == "FusedMatMul") {  // a MatMul with its bias / activation epilogue
    auto a = n.inputs.empty() ? std::nullopt : shape_of(g, n.inputs[0]);
    auto y = n.outputs.empty() ? std::nullopt : shape_of(g, n.outputs[0]);
    if (!a || !y || a->empty()) return -1;
    return 2 * shape_numel(*y) * a->back();
  }
  if (n.domain == "kiln" && n.op_type == "ToNhwc") return 0;  // data movement, like Transpose / Pad
  // kiln.Conv / kiln.Pool (channels-last, ops/nhwc.h) count as Conv / MaxPool: the same products of the same dims;
  // kiln.FusedConv (ops/fused_ops.h) as Conv (its epilogue is not counted, as FusedMatMul's is not).
  const bool kiln_conv = n.domain == "kiln" && (n.op_type == "Conv" || n.op_type == "Pool" || n.op_type == "FusedConv");
  if ((n.domain != "" && !kiln_conv) || n.op_type == "If" || n.op_type == "Loop") return -1;  // branches: not counted
  const std::string op = n.domain == "kiln" && n.op_type == "Pool"        ? std::string("MaxPool")
                         : n.domain == "kiln" && n.op_type == "FusedConv" ? std::string("Conv")
                                                                         : n.op_type;
  if (free_ops().count(op)) return 0;
  auto in = [&](size_t i) { return i < n.inputs.size() ? shape_of(g, n.inputs[i]) : std::nullopt; };
  auto out = n.outputs.empty() ? std::nullopt : shape_of(g, n.outputs[0]);
  if (op == "Einsum") return einsum_flops(g, n);
  if (is_gemm_like(op) || op == "AveragePool" || op == "MaxPool" || op == "LpPool") {
    auto a = in(0), b = in(1);
    if (!a || !out) return -1;
    const int64_t y = shape_numel(*out);
    if (op == "AveragePool" || op == "MaxPool" || op == "LpPool") {
      auto k = n.attr_ints("kernel_shape", {});
      int64_t kk = 1;
      for (int64_t v : k) kk *= v;
      return y * kk;
    }
    if (!b) return -1;
    if (op == "Conv") {  // Y = N x M x spatial, W = M x C/group x kernel
      return b->size() < 2 ? -1 : 2 * y * (shape_numel(*b) / std::max<int64_t>((*b)[0], 1));
    }
    if (op == "ConvTranspose") {  // X = N x C x spatial, W = C x M/group x kernel
      return b->size() < 2 ? -1 : 2 * shape_numel(*a) * (shape_numel(*b) / std::max<int64_t>((*b)[0], 1));
    }
    if (op == "MatMul") {
      if (a->empty()) return -1;
      return 2 * y * a->back();
    }
    if (op == "Gemm") {
      if (a->size() != 2) return -1;
      return 2 * y * (n.attr_int("transA", 0) ? (*a)[0] : (*a)[1]);
    }
    // Attention: Q·Kᵀ and P·V, 3-D or 4-D: 2·Lk·(numel(Q) + numel(Y)), Lk = K's second-to-last dim.
    if (b->size() < 2) return -1;
    return 2 * (*b)[b->size() - 2] * (shape_numel(*a) + y);
  }
  int64_t m = -1;
  for (const auto& v : n.inputs) {
    if (v.empty()) continue;
    auto s = shape_of(g, v);
    if (!s) return -1;
    m = std::max(m, shape_numel(*s));
  }
  for (const auto& v : n.outputs) {
    if (v.empty()) continue;
    auto s = shape_of(g, v);
    if (!s) return -1;
    m = std::max(m, shape_numel(*s));
  }
  return m;
}

}  // namespace kiln::ir
