// kiln.FusedConv (ops/fused_ops.h): inference and reference kernel. The reference runs the ONNX ops the fused node
// replaced (Conv, Add, Relu / Clip) with their own reference kernels in the original order and dtype, so the fused
// node equals the unfused nodes bit for bit.
#include <limits>

#include "ir/op_registry.h"
#include "ops/common.h"
#include "ops/fused_ops.h"

namespace kiln::ops::fused_ops {
namespace {

const ir::OpDef& onnx(const ir::Node& n, const char* op, int64_t opset) {
  const ir::OpDef* d = ir::OpRegistry::instance().find("", op, opset);
  if (!d) KILN_THROW(Unsupported, n.label() << ": no reference kernel for " << op << "-" << opset);
  return *d;
}

// The ai.onnx Conv the node computes: its attributes less the fusion's, inputs x, w, b.
ir::Node conv_of(const ir::Node& n) {
  ir::Node c;
  c.name = n.name + "/Conv";
  c.op_type = "Conv";
  c.opset = 11;
  c.attrs = n.attrs;
  for (const char* k : {"activation", "clip_min", "clip_max"}) c.attrs.erase(k);
  c.inputs = {"x", "w", n.inputs.size() > 2 && !n.inputs[2].empty() ? "b" : ""};
  c.outputs = {"y"};
  return c;
}

ir::Node unary(const ir::Node& n, const char* op, int64_t opset) {
  ir::Node u;
  u.name = n.name + "/" + op;
  u.op_type = op;
  u.opset = opset;
  u.inputs = {"a"};
  u.outputs = {"y"};
  return u;
}

std::vector<ValueType> fused_conv_infer(const InferContext& ctx) {
  const ir::Node& n = ctx.node;
  check_arity(n, 2, 4);
  conv_activation(n);
  const ir::Node c = conv_of(n);
  InferContext cc{c, {ctx.in[0], ctx.in[1], ctx.has(2) ? ctx.in[2] : nullptr}, {nullptr, nullptr, nullptr}};
  ValueType y = onnx(n, "Conv", 11).infer(cc).at(0);
  if (ctx.has(3)) {
    const ValueType& z = *ctx.in[3];
    if (z.dtype != y.dtype)
      KILN_THROW(InvalidModel, n.label() << ": Z must be " << dtype_name(y.dtype) << ", got " << dtype_name(z.dtype));
    if (z.has_rank && y.has_rank) {
      if (z.dims.size() != y.dims.size())
        KILN_THROW(InvalidModel, n.label() << ": Z " << z.str() << " must have the output's shape " << y.str());
      for (size_t d = 0; d < y.dims.size(); ++d) y.dims[d] = merge_dim(y.dims[d], z.dims[d], n, "Z and the output");
    } else if (z.has_rank) {
      y = z;
    }
  }
  return {y};
}

void fused_conv_reference(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 4);
  const ConvActivation act = conv_activation(n);
  std::vector<Tensor> r(1);
  onnx(n, "Conv", 11).reference(conv_of(n), {in.at(0), in.at(1), in.size() > 2 ? in[2] : nullptr}, r);
  if (in.size() > 3 && in[3]) {
    if (in[3]->shape() != r[0].shape())
      KILN_THROW(InvalidModel, n.label() << ": Z " << in[3]->type_str() << " must have the output's shape "
                                         << r[0].type_str());
    ir::Node add = unary(n, "Add", 14);
    add.inputs = {"a", "b"};
    std::vector<Tensor> s(1);
    onnx(n, "Add", 14).reference(add, {&r[0], in[3]}, s);
    r[0] = std::move(s[0]);
  }
  if (act.kind != ConvActivation::None) {
    ir::Node u = unary(n, act.kind == ConvActivation::Relu ? "Relu" : "Clip", act.kind == ConvActivation::Relu ? 14 : 6);
    if (act.kind == ConvActivation::Clip) u.attrs["min"] = act.lo, u.attrs["max"] = act.hi;
    std::vector<Tensor> s(1);
    onnx(n, u.op_type.c_str(), u.opset).reference(u, {&r[0]}, s);
    r[0] = std::move(s[0]);
  }
  out[0] = std::move(r[0]);
}

}  // namespace

ConvActivation conv_activation(const ir::Node& n) {
  const std::string a = n.attr_string("activation", "none");
  ConvActivation c;
  if (a == "relu") {
    c.kind = ConvActivation::Relu;
    c.lo = 0.0f;
  } else if (a == "clip") {
    c.kind = ConvActivation::Clip;
    c.lo = n.attr_float("clip_min", -std::numeric_limits<float>::infinity());
    c.hi = n.attr_float("clip_max", std::numeric_limits<float>::infinity());
  } else if (a != "none") {
    KILN_THROW(InvalidModel, n.label() << ": activation must be none, relu or clip, got '" << a << "'");
  }
  return c;
}

void register_fused_conv() {
  ir::OpRegistry::instance().add(ir::OpDef{kFusedConv, kDomain, {1}, fused_conv_infer, fused_conv_reference});
}

}  // namespace kiln::ops::fused_ops
