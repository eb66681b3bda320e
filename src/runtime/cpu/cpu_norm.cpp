// "fast" normalization CPU tactics, float32 only:
//  - Softmax / LogSoftmax: per row along the axis, max, vectorized exp (cpu_math.h), sum in 16 float lanes, scale; rows of
//    a non-innermost axis are handled as [len, inner] blocks. Rows are split over kiln's threads.
//  - LayerNormalization with Scale / B over exactly the normalized dims (the form every exporter emits) and
//    without the optional Mean / InvStdDev outputs: two passes per row (mean, then variance), sums in 16 float lanes.
// Anything else (other dtypes, other stash types, broadcast Scale) runs the reference kernel.
#include <cmath>
#include <limits>

#include "ops/common.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_norm {

// One contiguous row: y = softmax(x) or log_softmax(x).
KILN_CPU_CLONES void softmax_row(const float* x, float* y, int64_t len, bool log_form) {
  const float mx = lane_max(x, len);
  if (log_form) {
    const double sum = lane_sum(len, [x, mx](int64_t k) { return fast_exp(x[k] - mx); });
    const float shift = mx + static_cast<float>(std::log(sum));
    for (int64_t k = 0; k < len; ++k) y[k] = x[k] - shift;
  } else {
    for (int64_t k = 0; k < len; ++k) y[k] = fast_exp(x[k] - mx);
    const float inv = static_cast<float>(1.0 / lane_sum(len, [y](int64_t k) { return y[k]; }));
    for (int64_t k = 0; k < len; ++k) y[k] *= inv;
  }
}

// A [len, inner] block, softmax along len for each of the inner columns.
void softmax_block(const float* x, float* y, int64_t len, int64_t inner, bool log_form, std::vector<float>& mx,
                   std::vector<double>& sum) {
  mx.assign(static_cast<size_t>(inner), -std::numeric_limits<float>::infinity());
  sum.assign(static_cast<size_t>(inner), 0.0);
  for (int64_t k = 0; k < len; ++k)
    for (int64_t i = 0; i < inner; ++i) mx[i] = x[k * inner + i] > mx[i] ? x[k * inner + i] : mx[i];
  for (int64_t k = 0; k < len; ++k)
    for (int64_t i = 0; i < inner; ++i) {
      const float e = fast_exp(x[k * inner + i] - mx[i]);
      if (!log_form) y[k * inner + i] = e;
      sum[i] += e;
    }
  for (int64_t i = 0; i < inner; ++i) {
    if (log_form)
      mx[i] += static_cast<float>(std::log(sum[i]));
    else
      sum[i] = 1.0 / sum[i];
  }
  for (int64_t k = 0; k < len; ++k)
    for (int64_t i = 0; i < inner; ++i)
      y[k * inner + i] = log_form ? x[k * inner + i] - mx[i] : y[k * inner + i] * static_cast<float>(sum[i]);
}

void softmax_fast(bool log_form, const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 1 || !in[0] || in[0]->dtype() != DType::Float32) return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const int64_t axis = ops::normalize_axis(n.attr_int("axis", n.opset >= 13 ? -1 : 1), x.rank(), n);
  const Shape& s = x.shape();
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  if (n.opset >= 13) {
    len = s[axis];
    for (int64_t i = axis + 1; i < x.rank(); ++i) inner *= s[i];
  } else {
    for (int64_t i = axis; i < x.rank(); ++i) len *= s[i];
  }
  Tensor y = uninit_tensor(DType::Float32, s);
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  if (len > 0 && inner > 0)
    parallel_for(outer, std::max<int64_t>(1, 8192 / (len * inner)), [&](int64_t lo, int64_t hi) {
      std::vector<float> mx;
      std::vector<double> sum;
      for (int64_t o = lo; o < hi; ++o) {
        if (inner == 1)
          softmax_row(px + o * len, py + o * len, len, log_form);
        else
          softmax_block(px + o * len * inner, py + o * len * inner, len, inner, log_form, mx, sum);
      }
    });
  out[0] = y;
}

KILN_CPU_CLONES void layer_norm_row(const float* x, float* y, const float* scale, const float* bias, int64_t len,
                                    float eps) {
  const float m = static_cast<float>(lane_sum(len, [x](int64_t k) { return x[k]; }) / static_cast<double>(len));
  const double var = lane_sum(len, [x, m](int64_t k) { return (x[k] - m) * (x[k] - m); }) / static_cast<double>(len);
  const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
  if (bias)
    for (int64_t k = 0; k < len; ++k) y[k] = (x[k] - m) * is * scale[k] + bias[k];
  else
    for (int64_t k = 0; k < len; ++k) y[k] = (x[k] - m) * is * scale[k];
}

void layer_norm_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const bool stats = (out.size() > 1 && n.outputs.size() > 1 && !n.outputs[1].empty()) ||
                     (out.size() > 2 && n.outputs.size() > 2 && !n.outputs[2].empty());
  if (stats || in.size() < 2 || in.size() > 3 || !in[0] || !in[1] || n.attr_int("stash_type", 1) != 1)
    return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const Tensor& scale = *in[1];
  const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
  if (x.dtype() != DType::Float32 || scale.dtype() != DType::Float32 || (bias && bias->dtype() != DType::Float32))
    return run_reference(n, in, out);
  const int64_t axis = ops::normalize_axis(n.attr_int("axis", -1), x.rank(), n);
  const Shape& s = x.shape();
  const Shape tail(s.begin() + axis, s.end());
  // Scale / B must be exactly the normalized dims (possibly with leading 1s).
  auto exact = [&](const Tensor& t) {
    if (t.rank() > x.rank()) return false;
    Shape ts = t.shape();
    while (ts.size() > tail.size() && ts.front() == 1) ts.erase(ts.begin());
    return ts == tail;
  };
  if (!exact(scale) || (bias && !exact(*bias))) return run_reference(n, in, out);
  int64_t outer = 1, len = 1;
  for (int64_t d = 0; d < x.rank(); ++d) (d < axis ? outer : len) *= s[d];
  Tensor y = uninit_tensor(DType::Float32, s);
  const float eps = n.attr_float("epsilon", 1e-5f);
  const float* px = x.as<float>();
  const float* ps = scale.as<float>();
  const float* pb = bias ? bias->as<float>() : nullptr;
  float* py = y.mutable_as<float>();
  if (len > 0)
    parallel_for(outer, std::max<int64_t>(1, 8192 / len), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) layer_norm_row(px + o * len, py + o * len, ps, pb, len, eps);
    });
  out[0] = y;
}

bool supports_f32(const ir::Node&, const std::vector<const ir::ValueType*>& in) {
  return !in.empty() && in[0] && in[0]->dtype == DType::Float32;
}

}  // namespace cpu_norm

void register_norm_tactics() {
  using namespace cpu_norm;
  register_cpu_tactic("", "Softmax",
                      {"fast",
                       [](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                         softmax_fast(false, n, in, out);
                       },
                       supports_f32});
  register_cpu_tactic("", "LogSoftmax",
                      {"fast",
                       [](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                         softmax_fast(true, n, in, out);
                       },
                       supports_f32});
  register_cpu_tactic("", "LayerNormalization", {"fast", layer_norm_fast, supports_f32});
}

}  // namespace kiln::runtime::cpu
