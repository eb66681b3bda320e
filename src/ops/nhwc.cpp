// kiln.Conv, kiln.Pool and kiln.ToNhwc (domain "kiln", opset 1): channels-last 2-D convolution with fused bias /
// residual / ReLU, channels-last MaxPool / AveragePool, and the NCHW -> NHWC entry with zero channel padding
// (ops/nhwc.h). Inference and reference kernels permute to NCHW and run the
// ai.onnx op's own inference / reference kernel, then permute back.
#include "ops/nhwc.h"

#include <algorithm>
#include <cstring>

#include "ir/op_registry.h"
#include "ops/common.h"

namespace kiln::ops::nhwc {
namespace {

constexpr int64_t kPermToNchw[4] = {0, 3, 1, 2};  // [N, H, W, C] -> [N, C, H, W]; also KRSC -> KCRS
constexpr int64_t kPermToNhwc[4] = {0, 2, 3, 1};  // [N, C, H, W] -> [N, H, W, C]

ValueType permute_type(const ValueType& t, const int64_t (&perm)[4]) {
  if (!t.has_rank || t.dims.size() != 4) return t;
  ValueType r = t;
  for (size_t d = 0; d < 4; ++d) r.dims[d] = t.dims[static_cast<size_t>(perm[d])];
  return r;
}

Tensor permute(const Tensor& t, const int64_t (&perm)[4]) {
  const std::vector<int64_t> src = contiguous_strides(t.shape());
  std::vector<int64_t> strides(4);
  Shape out(4);
  for (size_t d = 0; d < 4; ++d) {
    strides[d] = src[static_cast<size_t>(perm[d])];
    out[d] = t.shape()[static_cast<size_t>(perm[d])];
  }
  return strided_copy(t, 0, strides, out);
}

void check_layout(const Node& n) {
  const std::string layout = n.attr_string("layout", "");
  if (layout != kLayout)
    KILN_THROW(InvalidModel, n.label() << ": layout '" << layout << "' is not supported (only \"NHWC\")");
}

void check_rank4(const Node& n, const ValueType& t, const char* what) {
  if (t.has_rank && t.dims.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " must have rank 4 (NHWC), got " << t.str());
}

const ir::OpDef& onnx_def(const Node& n, const std::string& op, int64_t opset) {
  const ir::OpDef* d = ir::OpRegistry::instance().find("", op, opset);
  if (!d) KILN_THROW(InvalidModel, n.label() << ": no ai.onnx " << op << " at opset " << opset);
  return *d;
}

std::string activation_of(const Node& n) {
  std::string a = n.attr_string("activation", "");
  if (!a.empty() && a != "Relu")
    KILN_THROW(InvalidModel, n.label() << ": activation '" << a << "' is not supported (\"\" or \"Relu\")");
  return a;
}

// ---- kiln.Conv -----------------------------------------------------------------------------------------------------
std::vector<ValueType> conv_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 4);
  check_layout(n);
  activation_of(n);
  const ValueType& x = ctx.input(0);
  const ValueType& w = ctx.input(1);
  check_rank4(n, x, "input");
  check_rank4(n, w, "weights");
  const Node onnx = onnx_conv_of(n);
  const ValueType xp = permute_type(x, kPermToNchw), wp = permute_type(w, kPermToNchw);
  InferContext c{onnx, {&xp, &wp, ctx.has(2) ? ctx.in[2] : nullptr}, {nullptr, nullptr, nullptr}};
  ValueType y = permute_type(onnx_def(n, "Conv", 22).infer(c).at(0), kPermToNhwc);
  if (y.has_rank && y.dims.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": only 2-D convolutions have a channels-last form, got " << y.str());
  if (ctx.has(3)) {
    const ValueType& z = *ctx.in[3];
    if (z.dtype != y.dtype) KILN_THROW(InvalidModel, n.label() << ": residual input must be " << dtype_name(y.dtype));
    check_rank4(n, z, "residual input");
    if (z.has_rank && y.has_rank)
      for (size_t d = 0; d < 4; ++d) y.dims[d] = merge_dim(y.dims[d], z.dims[d], n, "residual input");
    else if (z.has_rank)
      y = z;
  }
  return {y};
}

void conv_reference(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 4);
  check_layout(n);
  const std::string act = activation_of(n);
  const Tensor& x = in_tensor(n, in, 0);
  const Tensor& w = in_tensor(n, in, 1);
  if (x.rank() != 4 || w.rank() != 4)
    KILN_THROW(InvalidModel, n.label() << ": input and weights must have rank 4, got " << shape_str(x.shape())
                                       << " and " << shape_str(w.shape()));
  const Tensor xn = permute(x, kPermToNchw), wn = permute(w, kPermToNchw);
  const Node onnx = onnx_conv_of(n);
  std::vector<Tensor> r(1);
  onnx_def(n, "Conv", 22).reference(onnx, {&xn, &wn, in.size() > 2 ? in[2] : nullptr}, r);
  Tensor y = permute(r[0], kPermToNhwc);
  if (in.size() > 3 && in[3]) {
    if (in[3]->shape() != y.shape())
      KILN_THROW(InvalidModel, n.label() << ": residual input " << shape_str(in[3]->shape()) << " differs from the output "
                                         << shape_str(y.shape()));
    Node add;
    add.name = n.name, add.op_type = "Add", add.opset = 14, add.inputs = {"y", "z"}, add.outputs = {"s"};
    onnx_def(n, "Add", 14).reference(add, {&y, in[3]}, r);
    y = r[0];
  }
  if (act == "Relu") {
    Node relu;
    relu.name = n.name, relu.op_type = "Relu", relu.opset = 14, relu.inputs = {"y"}, relu.outputs = {"r"};
    onnx_def(n, "Relu", 14).reference(relu, {&y}, r);
    y = r[0];
  }
  out[0] = y;
}

// ---- kiln.Pool -----------------------------------------------------------------------------------------------------
std::string pool_op(const Node& n) {
  std::string op = n.attr_string("op", "");
  if (op != "MaxPool" && op != "AveragePool")
    KILN_THROW(InvalidModel, n.label() << ": op '" << op << "' is not supported (MaxPool or AveragePool)");
  return op;
}

std::vector<ValueType> pool_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  check_layout(n);
  const ValueType& x = ctx.input(0);
  check_rank4(n, x, "input");
  const Node onnx = onnx_pool_of(n);
  const ValueType xp = permute_type(x, kPermToNchw);
  InferContext c{onnx, {&xp}, {nullptr}};
  return {permute_type(onnx_def(n, onnx.op_type, onnx.opset).infer(c).at(0), kPermToNhwc)};
}

void pool_reference(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  check_layout(n);
  const Tensor& x = in_tensor(n, in, 0);
  if (x.rank() != 4) KILN_THROW(InvalidModel, n.label() << ": input must have rank 4, got " << shape_str(x.shape()));
  const Tensor xn = permute(x, kPermToNchw);
  const Node onnx = onnx_pool_of(n);
  std::vector<Tensor> r(1);
  onnx_def(n, onnx.op_type, onnx.opset).reference(onnx, {&xn}, r);
  out[0] = permute(r[0], kPermToNhwc);
}

// ---- kiln.ToNhwc ---------------------------------------------------------------------------------------------------
// The output channel count for an input of `c` channels (-1: not known), checking the attribute.
int64_t to_nhwc_channels(const Node& n, int64_t c) {
  if (!n.has_attr("channels")) return c;
  const int64_t want = n.attr_int("channels", 0);
  if (want < 1 || (c >= 0 && want < c))
    KILN_THROW(InvalidModel, n.label() << ": channels = " << want << " must be >= the input's " << c << " channels");
  return want;
}

std::vector<ValueType> to_nhwc_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  const ValueType& x = ctx.input(0);
  if (x.has_rank && x.dims.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank 4 (NCHW), got " << x.str());
  ValueType y = permute_type(x, kPermToNhwc);
  if (y.has_rank) {
    const int64_t c = x.dims[1].is_static() ? x.dims[1].value : -1;
    if (n.has_attr("channels")) y.dims[3] = static_dim(to_nhwc_channels(n, c));
  }
  return {y};
}

void to_nhwc_reference(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  if (x.rank() != 4) KILN_THROW(InvalidModel, n.label() << ": input must have rank 4, got " << shape_str(x.shape()));
  const Shape& s = x.shape();
  const int64_t c = s[1], cp = to_nhwc_channels(n, c);
  const Tensor t = permute(x, kPermToNhwc);
  if (cp == c) {
    out[0] = t;
    return;
  }
  Tensor y(x.dtype(), {s[0], s[2], s[3], cp});
  std::fill_n(static_cast<char*>(y.mutable_data()), y.nbytes(), 0);
  const size_t es = dtype_size(x.dtype());
  const int64_t pixels = s[0] * s[2] * s[3];
  for (int64_t p = 0; p < pixels; ++p)
    std::memcpy(static_cast<char*>(y.mutable_data()) + static_cast<size_t>(p * cp) * es,
                static_cast<const char*>(t.data()) + static_cast<size_t>(p * c) * es, static_cast<size_t>(c) * es);
  out[0] = y;
}

}  // namespace

bool is_to_nhwc(const ir::Node& n) { return n.domain == kDomain && n.op_type == kToNhwc; }

bool is_conv(const ir::Node& n) { return n.domain == kDomain && n.op_type == kConv; }
bool is_pool(const ir::Node& n) { return n.domain == kDomain && n.op_type == kPool; }

ir::Node onnx_conv_of(const ir::Node& n) {
  ir::Node c;
  c.name = n.name, c.op_type = "Conv", c.opset = 22;
  c.attrs = n.attrs;
  c.attrs.erase("layout"), c.attrs.erase("activation");
  c.inputs = {n.inputs.size() > 0 ? n.inputs[0] : "", n.inputs.size() > 1 ? n.inputs[1] : ""};
  if (n.has_input(2)) c.inputs.push_back(n.inputs[2]);
  c.outputs = n.outputs;
  return c;
}

ir::Node onnx_pool_of(const ir::Node& n) {
  ir::Node c;
  c.name = n.name, c.op_type = pool_op(n), c.opset = n.attr_int("onnx_opset", 22);
  c.attrs = n.attrs;
  c.attrs.erase("layout"), c.attrs.erase("op"), c.attrs.erase("onnx_opset");
  c.inputs = n.inputs;
  c.outputs = n.outputs;
  return c;
}

void register_nhwc_ops() {
  ir::OpRegistry& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{kConv, kDomain, {1}, conv_infer, conv_reference});
  reg.add(ir::OpDef{kPool, kDomain, {1}, pool_infer, pool_reference});
  reg.add(ir::OpDef{kToNhwc, kDomain, {1}, to_nhwc_infer, to_nhwc_reference});
}

}  // namespace kiln::ops::nhwc
