// kiln.FusedMatMul and kiln.AddLayerNormalization (ops/fused_ops.h): inference and reference kernels. Each reference
// kernel runs the ONNX ops the fused node replaced (MatMul, Add, Relu / Gelu; Add, LayerNormalization) with their own
// reference kernels, in the original order and dtype, so the fused node equals the unfused nodes bit for bit.
#include "ops/fused_ops.h"

#include "ir/op_registry.h"
#include "ops/common.h"

namespace kiln::ops::fused_ops {
namespace {

// A one-node ONNX graph step: op_type at opset, inputs named a, b, c, d ("" for omitted ones), one output per `outs`.
ir::Node step(const ir::Node& fused, const char* op, int64_t opset, size_t inputs, size_t outs = 1) {
  ir::Node n;
  n.name.reserve(fused.name.size() + 24);
  n.name.append(fused.name).append(1, '/').append(op);  // (an operator+ chain trips GCC 12's -Wrestrict)
  n.op_type = op;
  n.opset = opset;
  static const char* const kIn[] = {"a", "b", "c", "d"};
  static const char* const kOut[] = {"y0", "y1", "y2"};
  for (size_t k = 0; k < inputs && k < 4; ++k) n.inputs.emplace_back(kIn[k]);
  for (size_t k = 0; k < outs && k < 3; ++k) n.outputs.emplace_back(kOut[k]);
  return n;
}

const ir::OpDef& def_of(const ir::Node& fused, const ir::Node& s) {
  const ir::OpDef* d = ir::OpRegistry::instance().find("", s.op_type, s.opset);
  if (!d) KILN_THROW(Unsupported, fused.label() << ": no reference kernel for " << s.op_type << "-" << s.opset);
  return *d;
}

Tensor run_step(const ir::Node& fused, const ir::Node& s, std::vector<const Tensor*> args) {
  std::vector<Tensor> res(s.outputs.size());
  def_of(fused, s).reference(s, args, res);
  return std::move(res[0]);
}

std::string activation(const ir::Node& n) {
  const std::string a = n.attr_string("activation", "none");
  if (!valid_activation(a))
    KILN_THROW(InvalidModel, n.label() << ": activation must be none, relu, gelu or gelu_tanh, got '" << a << "'");
  return a;
}

// ---- kiln.FusedMatMul ----------------------------------------------------------------------------------------------
std::vector<ValueType> fused_matmul_infer(const InferContext& ctx) {
  const ir::Node& n = ctx.node;
  check_arity(n, 2, 3);
  activation(n);
  const ValueType& a = ctx.input(0);
  const ValueType& b = ctx.input(1);
  check_dtype(FloatTypes{}, a.dtype, n, "A");
  if (a.dtype == DType::Float64) KILN_THROW(InvalidModel, n.label() << ": A must be float32, float16 or bfloat16");
  if (b.dtype != a.dtype || (ctx.has(2) && ctx.in[2]->dtype != a.dtype))
    KILN_THROW(InvalidModel, n.label() << ": A, B and bias must share a dtype");
  if (!a.has_rank || !b.has_rank) return {ValueType::unknown(a.dtype)};
  if (a.dims.empty()) KILN_THROW(InvalidModel, n.label() << ": A must have rank >= 1");
  if (b.dims.size() != 2) KILN_THROW(InvalidModel, n.label() << ": B must be 2-D [K, N], got " << b.str());
  merge_dim(a.dims.back(), b.dims[0], n, "inner dimensions of A and B");
  std::vector<Dim> y(a.dims.begin(), a.dims.end() - 1);
  y.push_back(b.dims[1]);
  if (ctx.has(2) && ctx.in[2]->has_rank) {
    const ValueType& c = *ctx.in[2];
    if (c.dims.empty() || c.dims.size() > y.size())
      KILN_THROW(InvalidModel, n.label() << ": bias must be [N] or [1, ..., 1, N], got " << c.str());
    for (size_t d = 0; d + 1 < c.dims.size(); ++d)
      if (!c.dims[d].is_static() || c.dims[d].value != 1)
        KILN_THROW(InvalidModel, n.label() << ": bias must be [N] or [1, ..., 1, N], got " << c.str());
    merge_dim(c.dims.back(), b.dims[1], n, "bias length and N");
  }
  return {make_type(a.dtype, y)};
}

void fused_matmul_reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 3);
  const std::string act = activation(n);
  const Tensor& a = in_tensor(n, in, 0);
  const Tensor& b = in_tensor(n, in, 1);
  if (b.rank() != 2) KILN_THROW(InvalidModel, n.label() << ": B must be 2-D [K, N], got " << b.type_str());
  Tensor y = run_step(n, step(n, "MatMul", 13, 2), {&a, &b});
  if (in.size() > 2 && in[2]) y = run_step(n, step(n, "Add", 14, 2), {&y, in[2]});
  if (act == "relu") {
    y = run_step(n, step(n, "Relu", 14, 1), {&y});
  } else if (act != "none") {
    ir::Node g = step(n, "Gelu", 20, 1);
    g.attrs["approximate"] = std::string(act == "gelu_tanh" ? "tanh" : "none");
    y = run_step(n, g, {&y});
  }
  out[0] = std::move(y);
}

// ---- kiln.AddLayerNormalization ------------------------------------------------------------------------------------
ir::Node ln_step(const ir::Node& n) {
  ir::Node s = step(n, "LayerNormalization", 17, n.inputs.size() > 3 && !n.inputs[3].empty() ? 3 : 2);
  for (const char* k : {"axis", "epsilon", "stash_type"})
    if (auto it = n.attrs.find(k); it != n.attrs.end()) s.attrs[k] = it->second;
  return s;
}

std::vector<ValueType> add_ln_infer(const InferContext& ctx) {
  const ir::Node& n = ctx.node;
  check_arity(n, 3, 4, 2);
  const ValueType& a = ctx.input(0);
  const ValueType& b = ctx.input(1);
  check_dtype(FloatTypes{}, a.dtype, n, "A");
  if (b.dtype != a.dtype) KILN_THROW(InvalidModel, n.label() << ": A and B must share a dtype");
  ValueType sum = a;
  if (a.has_rank && b.has_rank) {
    if (a.dims.size() != b.dims.size())
      KILN_THROW(InvalidModel, n.label() << ": A " << a.str() << " and B " << b.str() << " must have one shape");
    for (size_t d = 0; d < a.dims.size(); ++d) sum.dims[d] = merge_dim(a.dims[d], b.dims[d], n, "A and B");
  } else if (b.has_rank) {
    sum = b;
  }
  const ir::Node s = ln_step(n);
  std::vector<const ValueType*> ins = {&sum};
  std::vector<const Tensor*> vals = {nullptr};
  for (size_t i = 2; i < n.inputs.size(); ++i) {
    ins.push_back(ctx.has(i) ? ctx.in[i] : nullptr);
    vals.push_back(i < ctx.values.size() ? ctx.values[i] : nullptr);
  }
  InferContext lc{s, ins, vals};
  std::vector<ValueType> ln = def_of(n, s).infer(lc);
  return {ln[0], sum};
}

void add_ln_reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 3, 4, 2);
  const Tensor& a = in_tensor(n, in, 0);
  const Tensor& b = in_tensor(n, in, 1);
  if (a.shape() != b.shape())
    KILN_THROW(InvalidModel, n.label() << ": A " << a.type_str() << " and B " << b.type_str() << " must have one shape");
  Tensor sum = run_step(n, step(n, "Add", 14, 2), {&a, &b});
  const ir::Node s = ln_step(n);
  std::vector<const Tensor*> args = {&sum, in.at(2)};
  if (s.inputs.size() > 2) args.push_back(in[3]);
  out[0] = run_step(n, s, args);
  if (out.size() > 1) out[1] = std::move(sum);
}

}  // namespace

bool valid_activation(const std::string& a) {
  return a == "none" || a == "relu" || a == "gelu" || a == "gelu_tanh";
}

void register_fused_ops() {
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{kFusedMatMul, kDomain, {1}, fused_matmul_infer, fused_matmul_reference});
  reg.add(ir::OpDef{kAddLayerNorm, kDomain, {1}, add_ln_infer, add_ln_reference});
  register_fused_conv();
}

}  // namespace kiln::ops::fused_ops
