// BatchNormalization (inference form: training_mode 0, optional training outputs absent), Softmax and LogSoftmax
// (opset < 13: coerce to 2-D at `axis`, default 1; opset >= 13: along `axis`, default -1).
// Reference kernels accumulate in float64.
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::norm_detail {

// Rejects training-only usage: training_mode=1, spatial=0 (opset 7) or present running/saved-stat outputs.
void check_bn_inference(const Node& n) {
  check_arity(n, 5, 5, 5);
  if (n.attr_int("training_mode", 0) != 0)
    KILN_THROW(Unsupported, n.label() << ": training_mode=1 is not supported (inference only)");
  if (n.opset < 9 && n.attr_int("spatial", 1) != 1)
    KILN_THROW(Unsupported, n.label() << ": spatial=0 is not supported");
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty())
      KILN_THROW(Unsupported, n.label() << ": training output " << i << " ('" << n.outputs[i]
                                        << "') is not supported (inference only)");
}

std::vector<ValueType> bn_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_bn_inference(n);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, n, "input");
  if (x.has_rank && x.dims.size() < 2)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2 (N, C, ...), got " << x.dims.size());
  static const char* names[] = {"", "scale", "B", "mean", "var"};
  for (size_t i = 1; i < 5; ++i) {
    const ValueType& p = ctx.input(i);
    check_dtype(FloatTypes{}, p.dtype, n, names[i]);
    if (!p.has_rank) continue;
    if (p.dims.size() != 1)
      KILN_THROW(InvalidModel, n.label() << ": " << names[i] << " must be 1-D, got " << p.str());
    if (x.has_rank) merge_dim(p.dims[0], x.dims[1], n, names[i]);
  }
  std::vector<ValueType> out(n.outputs.size(), ValueType::unknown(x.dtype));
  out[0] = x;
  return out;
}

void bn_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_bn_inference(n);
  const Tensor& x = in_tensor(n, in, 0);
  if (x.rank() < 2)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2 (N, C, ...), got " << x.type_str());
  const int64_t N = x.shape()[0], C = x.shape()[1];
  const int64_t inner = N * C == 0 ? 0 : x.numel() / (N * C);
  std::vector<double> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  {
    const Tensor* p[5];
    static const char* names[] = {"", "scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i) {
      p[i] = &in_tensor(n, in, i);
      check_dtype(FloatTypes{}, p[i]->dtype(), n, names[i]);
      if (p[i]->rank() != 1 || p[i]->shape()[0] != C)
        KILN_THROW(InvalidModel, n.label() << ": " << names[i] << " must be [" << C << "], got " << p[i]->type_str());
    }
    const double eps = n.attr_float("epsilon", 1e-5f);
    for (int64_t c = 0; c < C; ++c) {
      // y = (x - mean) / sqrt(var + eps) * scale + B  ==  x * a + b
      a[c] = p[1]->at_double(c) / std::sqrt(p[4]->at_double(c) + eps);
      b[c] = p[2]->at_double(c) - p[3]->at_double(c) * a[c];
    }
  }
  Tensor y(x.dtype(), x.shape());
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t bn = 0; bn < N; ++bn)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t base = (bn * C + c) * inner;
        for (int64_t i = 0; i < inner; ++i)
          py[base + i] = T::store(static_cast<typename T::C>(static_cast<double>(T::load(px[base + i])) * a[c] + b[c]));
      }
  });
  out[0] = y;
}

// ---- Softmax ------------------------------------------------------------------------------------------
int64_t softmax_axis(const Node& n, int64_t rank) {
  return normalize_axis(n.attr_int("axis", n.opset >= 13 ? -1 : 1), rank, n);
}

std::vector<ValueType> softmax_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, ctx.node, "input");
  if (x.has_rank) softmax_axis(ctx.node, static_cast<int64_t>(x.dims.size()));
  return {x};
}

void softmax_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, bool log_form) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  const int64_t axis = softmax_axis(n, x.rank());
  const Shape& s = x.shape();
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  if (n.opset >= 13) {
    len = s[axis];
    for (int64_t i = axis + 1; i < x.rank(); ++i) inner *= s[i];
  } else {
    for (int64_t i = axis; i < x.rank(); ++i) len *= s[i];  // coerced to [outer, len]
  }
  Tensor y(x.dtype(), s);
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    std::vector<double> e(static_cast<size_t>(len));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * len * inner + i;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < len; ++k) mx = std::max(mx, static_cast<double>(T::load(px[base + k * inner])));
        double sum = 0;
        for (int64_t k = 0; k < len; ++k) {
          e[k] = std::exp(static_cast<double>(T::load(px[base + k * inner])) - mx);
          sum += e[k];
        }
        const double log_sum = std::log(sum);
        for (int64_t k = 0; k < len; ++k) {
          const double v = log_form ? static_cast<double>(T::load(px[base + k * inner])) - mx - log_sum : e[k] / sum;
          py[base + k * inner] = T::store(static_cast<typename T::C>(v));
        }
      }
  });
  out[0] = y;
}

}  // namespace kiln::ops::norm_detail

namespace kiln::ops {
void register_normalization() {
  using namespace norm_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"BatchNormalization", "", {7, 9, 14, 15}, bn_infer, bn_kernel});
  reg.add(ir::OpDef{"Softmax", "", {1, 11, 13}, softmax_infer,
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      softmax_kernel(n, in, out, false);
                    }});
  reg.add(ir::OpDef{"LogSoftmax", "", {1, 11, 13}, softmax_infer,
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      softmax_kernel(n, in, out, true);
                    }});
}
}  // namespace kiln::ops
