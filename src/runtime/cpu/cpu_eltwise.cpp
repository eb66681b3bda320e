// "fast" elementwise CPU tactics, float32 only (other dtypes keep "ref"); also IsNaN / IsInf / Where on float32:
//  - Add, Sub, Mul, Div with numpy broadcasting: dims of size 1 are dropped and neighbouring dims merged where both
//    inputs are contiguous (or both broadcast) across them, leaving rows of one contiguous inner loop per case
//    (vector-vector, vector-scalar, scalar-vector); rows are split over kiln's threads.
//  - Pow with a one-element exponent: x^2, x^3, x^-1 as plain arithmetic, others through std::pow.
//  - Relu, LeakyRelu, Sigmoid, Tanh, Exp, Erf, Sqrt, Neg, Abs, Reciprocal, HardSigmoid, HardSwish, Gelu, Clip: one
//    flat loop, vectorized (exp / tanh / erf from cpu_math.h), split over the threads.
//  - IsNaN, IsInf (bool out) and Where (bool condition, float32 values; each operand the output's shape or one
//    element, else the reference): one flat loop split over the threads (the SDPA NaN guard of exported attention).
// Outputs are written without zero-filling first.
#include <cmath>
#include <limits>

#include "ops/common.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_eltwise {

constexpr int64_t kGrain = 1 << 15;  // elements per thread at least

// ---- binary ---------------------------------------------------------------------------------------------
enum class Bin { Add, Sub, Mul, Div };

template <class LA, class LB>
inline void bin_loop(Bin op, LA a, LB b, float* y, int64_t n) {
  switch (op) {
    case Bin::Add: for (int64_t i = 0; i < n; ++i) y[i] = a(i) + b(i); break;
    case Bin::Sub: for (int64_t i = 0; i < n; ++i) y[i] = a(i) - b(i); break;
    case Bin::Mul: for (int64_t i = 0; i < n; ++i) y[i] = a(i) * b(i); break;
    case Bin::Div: for (int64_t i = 0; i < n; ++i) y[i] = a(i) / b(i); break;
  }
}

KILN_CPU_CLONES void bin_vv(Bin op, const float* a, const float* b, float* y, int64_t n) {
  bin_loop(op, [a](int64_t i) { return a[i]; }, [b](int64_t i) { return b[i]; }, y, n);
}
KILN_CPU_CLONES void bin_vs(Bin op, const float* a, float b, float* y, int64_t n) {
  bin_loop(op, [a](int64_t i) { return a[i]; }, [b](int64_t) { return b; }, y, n);
}
KILN_CPU_CLONES void bin_sv(Bin op, float a, const float* b, float* y, int64_t n) {
  bin_loop(op, [a](int64_t) { return a; }, [b](int64_t i) { return b[i]; }, y, n);
}

// Broadcast geometry after dropping size-1 dims and merging mergeable neighbours: the last dim is the inner loop.
struct BinPlan {
  Shape out;                      // merged output dims (at least one)
  std::vector<int64_t> sa, sb;    // element strides of a and b per merged dim (0 = broadcast)
};

BinPlan plan(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  BinPlan p;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    if (!p.out.empty()) {
      const size_t k = p.out.size() - 1;
      // Dim k followed by d merge when each input walks them as one: stride_k == stride_d * size_d.
      const bool ma = p.sa[k] == sa[d] * out[d];
      const bool mb = p.sb[k] == sb[d] * out[d];
      if (ma && mb) {
        p.out[k] *= out[d];
        p.sa[k] = sa[d];
        p.sb[k] = sb[d];
        continue;
      }
    }
    p.out.push_back(out[d]);
    p.sa.push_back(sa[d]);
    p.sb.push_back(sb[d]);
  }
  if (p.out.empty()) p.out = {1}, p.sa = {0}, p.sb = {0};
  return p;
}

void run_binary(Bin op, const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 2);
  const Tensor& a = ops::in_tensor(n, in, 0);
  const Tensor& b = ops::in_tensor(n, in, 1);
  if (a.dtype() != DType::Float32 || b.dtype() != DType::Float32) return run_reference(n, in, out);
  const Shape ys = ops::broadcast_shape(a.shape(), b.shape(), n);
  Tensor y = uninit_tensor(DType::Float32, ys);
  const int64_t total = y.numel();
  if (total > 0) {
    const BinPlan p = plan(ys, ops::broadcast_strides(a.shape(), ys), ops::broadcast_strides(b.shape(), ys));
    const size_t r = p.out.size();
    const int64_t inner = p.out[r - 1], rows = total / inner;
    const int64_t ia = p.sa[r - 1], ib = p.sb[r - 1];  // 0 or 1
    const float* pa = a.as<float>();
    const float* pb = b.as<float>();
    float* py = y.mutable_as<float>();
    parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t lo, int64_t hi) {
      // Offsets of row `lo`, then an odometer over the outer dims.
      std::vector<int64_t> idx(r, 0);
      int64_t oa = 0, ob = 0, rem = lo;
      for (size_t d = r - 1; d-- > 0;) {
        idx[d] = rem % p.out[d];
        rem /= p.out[d];
        oa += idx[d] * p.sa[d];
        ob += idx[d] * p.sb[d];
      }
      for (int64_t row = lo; row < hi; ++row) {
        float* yr = py + row * inner;
        if (ia && ib)
          bin_vv(op, pa + oa, pb + ob, yr, inner);
        else if (ia)
          bin_vs(op, pa + oa, pb[ob], yr, inner);
        else if (ib)
          bin_sv(op, pa[oa], pb + ob, yr, inner);
        else
          bin_vs(op, pa + oa, pb[ob], yr, 1);
        for (size_t d = r - 1; d-- > 0;) {
          oa += p.sa[d];
          ob += p.sb[d];
          if (++idx[d] < p.out[d]) break;
          oa -= p.sa[d] * p.out[d];
          ob -= p.sb[d] * p.out[d];
          idx[d] = 0;
        }
      }
    });
  }
  out[0] = y;
}

// ---- unary ----------------------------------------------------------------------------------------------
enum class Un { Relu, LeakyRelu, Sigmoid, Tanh, Exp, Erf, Sqrt, Neg, Abs, Reciprocal, HardSigmoid, HardSwish, Gelu,
                GeluTanh, Clip };

KILN_CPU_CLONES void unary_f32(Un op, float p0, float p1, const float* x, float* y, int64_t n) {
  switch (op) {
    case Un::Relu: for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    case Un::LeakyRelu: for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? p0 * x[i] : x[i]; break;
    case Un::Sigmoid: for (int64_t i = 0; i < n; ++i) y[i] = fast_sigmoid(x[i]); break;
    case Un::Tanh: for (int64_t i = 0; i < n; ++i) y[i] = fast_tanh(x[i]); break;
    case Un::Exp: for (int64_t i = 0; i < n; ++i) y[i] = fast_exp(x[i]); break;
    case Un::Erf: for (int64_t i = 0; i < n; ++i) y[i] = fast_erf(x[i]); break;
    case Un::Sqrt: for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]); break;
    case Un::Neg: for (int64_t i = 0; i < n; ++i) y[i] = -x[i]; break;
    case Un::Abs: for (int64_t i = 0; i < n; ++i) y[i] = std::abs(x[i]); break;
    case Un::Reciprocal: for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / x[i]; break;
    case Un::HardSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(0.0f, std::min(1.0f, p0 * x[i] + p1));
      break;
    case Un::HardSwish:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::max(0.0f, std::min(1.0f, x[i] / 6.0f + 0.5f));
      break;
    case Un::Gelu:
      for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + fast_erf(x[i] * 0.7071067811865476f));
      break;
    case Un::GeluTanh:
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + fast_tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
      }
      break;
    case Un::Clip:
      for (int64_t i = 0; i < n; ++i) {
        float v = x[i];
        v = v < p0 ? p0 : v;  // NaN stays NaN, as in the reference
        y[i] = v > p1 ? p1 : v;
      }
      break;
  }
}

void run_unary(Un op, const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const Tensor& x = ops::in_tensor(n, in, 0);
  if (x.dtype() != DType::Float32) return run_reference(n, in, out);
  float p0 = 0, p1 = 0;
  switch (op) {
    case Un::LeakyRelu: p0 = n.attr_float("alpha", 0.01f); break;
    case Un::HardSigmoid: p0 = n.attr_float("alpha", 0.2f), p1 = n.attr_float("beta", 0.5f); break;
    case Un::Gelu: {
      const std::string a = n.attr_string("approximate", "none");
      if (a != "none" && a != "tanh") return run_reference(n, in, out);
      if (a == "tanh") op = Un::GeluTanh;
      break;
    }
    case Un::Clip:
      p0 = -std::numeric_limits<float>::infinity();
      p1 = std::numeric_limits<float>::infinity();
      if (n.opset < 11) {
        if (in.size() > 1) return run_reference(n, in, out);
        p0 = n.attr_float("min", p0);
        p1 = n.attr_float("max", p1);
      } else {
        if (in.size() > 3) return run_reference(n, in, out);
        for (size_t i = 1; i < in.size(); ++i)
          if (in[i] && (in[i]->dtype() != DType::Float32 || in[i]->numel() != 1)) return run_reference(n, in, out);
        if (in.size() > 1 && in[1]) p0 = in[1]->as<float>()[0];
        if (in.size() > 2 && in[2]) p1 = in[2]->as<float>()[0];
      }
      break;
    default:
      if (in.size() != 1) return run_reference(n, in, out);
  }
  Tensor y = uninit_tensor(DType::Float32, x.shape());
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t lo, int64_t hi) { unary_f32(op, p0, p1, px + lo, py + lo, hi - lo); });
  out[0] = y;
}

// ---- Pow with one exponent for the whole tensor ---------------------------------------------------------
KILN_CPU_CLONES void pow_f32(const float* x, float* y, int64_t n, double e) {
  if (e == 2.0) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
  } else if (e == 3.0) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i] * x[i];
  } else if (e == 1.0) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i];
  } else if (e == -1.0) {
    for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / x[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::pow(static_cast<double>(x[i]), e));
  }
}

// float32 base, one-element exponent of any numeric dtype (x^2, x^3 in decomposed norms and GELU). The special
// cases are float32 arithmetic: exact (x^2, x^1, x^-1 are correctly rounded, like pow's result) or within an ulp
// (x^3). (Not x^0.5 as sqrt: pow(-inf, 0.5) is +inf.)
void pow_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 2 || !in[0] || !in[1] || in[0]->dtype() != DType::Float32 || in[1]->numel() != 1 ||
      in[1]->dtype() == DType::Bool || in[1]->rank() > in[0]->rank())
    return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const double e = in[1]->at_double(0);
  Tensor y = uninit_tensor(DType::Float32, x.shape());
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t lo, int64_t hi) { pow_f32(px + lo, py + lo, hi - lo, e); });
  out[0] = y;
}

// ---- IsNaN / IsInf on float32 (bool out), Where on float32 operands that are whole or one element ------------------
void isnan_isinf_fast(bool is_inf, const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 1 || !in[0] || in[0]->dtype() != DType::Float32) return run_reference(n, in, out);
  const bool pos = !is_inf || n.attr_int("detect_positive", 1) != 0;
  const bool neg = !is_inf || n.attr_int("detect_negative", 1) != 0;
  const Tensor& x = *in[0];
  Tensor y = uninit_tensor(DType::Bool, x.shape());
  const float* px = x.as<float>();
  uint8_t* py = y.mutable_as<uint8_t>();
  const float inf = std::numeric_limits<float>::infinity();
  parallel_for(x.numel(), kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float v = px[i];
      py[i] = is_inf ? static_cast<uint8_t>((pos && v == inf) || (neg && v == -inf)) : static_cast<uint8_t>(std::isnan(v));
    }
  });
  out[0] = y;
}

void where_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 3 || !in[0] || !in[1] || !in[2] || in[0]->dtype() != DType::Bool ||
      in[1]->dtype() != DType::Float32 || in[2]->dtype() != DType::Float32)
    return run_reference(n, in, out);
  // The output's shape is the largest operand's; every operand must be that shape or one element.
  const Tensor* big = in[0];
  for (const Tensor* t : in)
    if (t->rank() > big->rank() || (t->rank() == big->rank() && t->numel() > big->numel())) big = t;
  for (const Tensor* t : in)
    if (t->numel() != 1 && t->shape() != big->shape()) return run_reference(n, in, out);
  if (big->numel() == 1 && big->rank() > 0)  // every operand one element: leave rank broadcasting to the reference
    for (const Tensor* t : in)
      if (t->rank() != big->rank()) return run_reference(n, in, out);
  Tensor y = uninit_tensor(DType::Float32, big->shape());
  const uint8_t* c = in[0]->as<uint8_t>();
  const float* a = in[1]->as<float>();
  const float* b = in[2]->as<float>();
  const int64_t sc = in[0]->numel() == 1 ? 0 : 1, sa = in[1]->numel() == 1 ? 0 : 1, sb = in[2]->numel() == 1 ? 0 : 1;
  float* py = y.mutable_as<float>();
  parallel_for(y.numel(), kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) py[i] = c[i * sc] ? a[i * sa] : b[i * sb];
  });
  out[0] = y;
}

bool supports_f32(const ir::Node&, const std::vector<const ir::ValueType*>& in) {
  return !in.empty() && in[0] && in[0]->dtype == DType::Float32 && (in.size() < 2 || !in[1] || in[1]->dtype == DType::Float32);
}

}  // namespace cpu_eltwise

void register_eltwise_tactics() {
  using namespace cpu_eltwise;
  const std::pair<const char*, Bin> bins[] = {{"Add", Bin::Add}, {"Sub", Bin::Sub}, {"Mul", Bin::Mul}, {"Div", Bin::Div}};
  register_cpu_tactic("", "Pow", {"fast", pow_fast, [](const ir::Node&, const std::vector<const ir::ValueType*>& in) {
                                    return in.size() == 2 && in[0] && in[0]->dtype == DType::Float32 && in[1] &&
                                           in[1]->is_static() && shape_numel(in[1]->static_shape()) == 1;
                                  }});
  for (const auto& b : bins) {
    const Bin op = b.second;
    register_cpu_tactic("", b.first,
                        {"fast",
                         [op](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                           run_binary(op, n, in, out);
                         },
                         supports_f32});
  }
  for (const bool is_inf : {false, true})
    register_cpu_tactic("", is_inf ? "IsInf" : "IsNaN",
                        {"fast",
                         [is_inf](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                           isnan_isinf_fast(is_inf, n, in, out);
                         },
                         supports_f32});
  register_cpu_tactic("", "Where",
                      {"fast", where_fast, [](const ir::Node&, const std::vector<const ir::ValueType*>& in) {
                         return in.size() == 3 && in[0] && in[1] && in[2] && in[0]->dtype == DType::Bool &&
                                in[1]->dtype == DType::Float32 && in[2]->dtype == DType::Float32;
                       }});
  const std::pair<const char*, Un> uns[] = {
      {"Relu", Un::Relu},       {"LeakyRelu", Un::LeakyRelu},   {"Sigmoid", Un::Sigmoid},     {"Tanh", Un::Tanh},
      {"Exp", Un::Exp},         {"Erf", Un::Erf},               {"Sqrt", Un::Sqrt},           {"Neg", Un::Neg},
      {"Abs", Un::Abs},         {"Reciprocal", Un::Reciprocal}, {"HardSigmoid", Un::HardSigmoid},
      {"HardSwish", Un::HardSwish}, {"Gelu", Un::Gelu},         {"Clip", Un::Clip}};
  for (const auto& u : uns) {
    const Un op = u.second;
    register_cpu_tactic("", u.first,
                        {"fast",
                         [op](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                           run_unary(op, n, in, out);
                         },
                         supports_f32});
  }
}

}  // namespace kiln::runtime::cpu
