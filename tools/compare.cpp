// kiln CLI — `run --expect` comparison, following the tolerance table of DESIGN.md / docs/.
// (A pure helper: when the library gains a public comparison for its correctness gate, use that.)
#include <cmath>
#include <sstream>

#include "common.h"

namespace kiln_cli {

Tolerance tolerance_for(const std::string& precision) {
  Tolerance t;
  if (precision == "fp16") {
    t.elementwise = false;
    t.l2 = 1e-2;
  } else if (precision == "bf16") {
    t.elementwise = false;
    t.l2 = 2e-2;
  }
  return t;
}

Comparison compare_tensors(const kiln::Tensor& a, const kiln::Tensor& b, const Tolerance& tol) {
  Comparison c;
  if (a.dtype() != b.dtype()) {
    c.reason = std::string("dtype ") + kiln::dtype_name(a.dtype()) + ", expected " + kiln::dtype_name(b.dtype());
    return c;
  }
  if (a.shape() != b.shape()) {
    c.reason = "shape " + kiln::shape_str(a.shape()) + ", expected " + kiln::shape_str(b.shape());
    return c;
  }
  c.count = a.numel();
  if (!kiln::dtype_is_float(a.dtype())) {
    for (int64_t i = 0; i < c.count; ++i) {
      int64_t x = a.at_int64(i), y = b.at_int64(i);
      if (x == y) continue;
      ++c.mismatches;
      double d = std::fabs(static_cast<double>(x) - static_cast<double>(y));
      c.max_abs = std::max(c.max_abs, d);
      if (y != 0) c.max_rel = std::max(c.max_rel, d / std::fabs(static_cast<double>(y)));
    }
    c.pass = c.mismatches == 0;
    if (!c.pass) c.reason = std::to_string(c.mismatches) + " of " + std::to_string(c.count) + " elements differ (exact)";
    return c;
  }
  int64_t nonfinite = 0;
  double sum_d2 = 0, sum_b2 = 0;
  for (int64_t i = 0; i < c.count; ++i) {
    double x = a.at_double(i), y = b.at_double(i);
    if (std::isnan(y)) {
      if (!std::isnan(x)) ++nonfinite;
      continue;
    }
    if (std::isinf(y)) {
      if (x != y) ++nonfinite;
      continue;
    }
    if (!std::isfinite(x)) {
      ++nonfinite;
      continue;
    }
    double d = std::fabs(x - y);
    c.max_abs = std::max(c.max_abs, d);
    if (y != 0) c.max_rel = std::max(c.max_rel, d / std::fabs(y));
    if (d > tol.atol + tol.rtol * std::fabs(y)) ++c.mismatches;
    sum_d2 += d * d;
    sum_b2 += y * y;
  }
  c.rel_l2 = sum_b2 > 0 ? std::sqrt(sum_d2 / sum_b2) : (sum_d2 > 0 ? INFINITY : 0.0);
  std::ostringstream os;
  if (nonfinite) {
    os << nonfinite << " NaN/Inf value(s) where the expected output has a different value";
  } else if (tol.elementwise && c.mismatches) {
    os << c.mismatches << " of " << c.count << " elements exceed atol " << tol.atol << " + rtol " << tol.rtol
       << " * |expected|";
  } else if (!tol.elementwise && c.rel_l2 > tol.l2) {
    os << "relative L2 error " << c.rel_l2 << " exceeds " << tol.l2;
  }
  c.reason = os.str();
  c.pass = c.reason.empty();
  return c;
}

}  // namespace kiln_cli
