#include "kiln/compare.h"

#include <cmath>
#include <sstream>

#include "util/error.h"

namespace kiln {

std::string Tolerance::str() const {
  std::ostringstream os;
  switch (metric) {
    case Metric::ElementWise: os << "element-wise rtol " << rtol << " atol " << atol; break;
    case Metric::RelativeL2: os << "relative L2 <= " << bound; break;
    case Metric::Exact: os << "exact"; break;
  }
  return os.str();
}

Tolerance tolerance_for(const std::string& p) {
  if (p == "fp32") return {Metric::ElementWise, 1e-4, 1e-5, 0};
  if (p == "tf32") return {Metric::RelativeL2, 0, 0, 3e-3};
  if (p == "fp16") return {Metric::RelativeL2, 0, 0, 1e-2};
  if (p == "bf16") return {Metric::RelativeL2, 0, 0, 2e-2};
  if (p == "node-test") return {Metric::ElementWise, 1e-3, 1e-7, 0};
  if (p == "exact") return {Metric::Exact, 0, 0, 0};
  KILN_THROW(InvalidArgument, "unknown tolerance row '" << p << "' (fp32, tf32, fp16, bf16, node-test, exact)");
}

Comparison compare(const Tensor& a, const Tensor& b, const Tolerance& tol) {
  Comparison c;
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
    c.reason = "type mismatch: got " + a.type_str() + ", expected " + b.type_str();
    return c;
  }
  const bool exact = tol.metric == Metric::Exact || !dtype_is_float(a.dtype());
  const int64_t n = a.numel();
  double diff2 = 0, ref2 = 0;
  int64_t nonfinite = 0;
  for (int64_t i = 0; i < n; ++i) {
    double x = a.at_double(i), y = b.at_double(i);
    if (exact) {
      bool eq = !dtype_is_float(a.dtype()) ? a.at_int64(i) == b.at_int64(i) : (x == y || (std::isnan(x) && std::isnan(y)));
      if (!eq) {
        ++c.mismatches;
        c.max_abs = std::max(c.max_abs, std::fabs(x - y));
      }
      continue;
    }
    if (!std::isfinite(x) || !std::isfinite(y)) {
      bool same = (std::isnan(x) && std::isnan(y)) || x == y;
      if (!same) ++nonfinite;
      continue;
    }
    double d = std::fabs(x - y);
    c.max_abs = std::max(c.max_abs, d);
    if (y != 0) c.max_rel = std::max(c.max_rel, d / std::fabs(y));
    diff2 += d * d;
    ref2 += y * y;
    if (d > tol.atol + tol.rtol * std::fabs(y)) ++c.mismatches;
  }
  c.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  std::ostringstream os;
  if (nonfinite) {
    os << nonfinite << " non-finite values differ from the reference";
  } else if (exact) {
    if (c.mismatches) os << c.mismatches << " of " << n << " elements differ (exact comparison)";
  } else if (tol.metric == Metric::ElementWise) {
    if (c.mismatches) os << c.mismatches << " of " << n << " elements outside " << tol.str();
  } else if (!(c.rel_l2 <= tol.bound)) {
    os << "relative L2 error " << c.rel_l2 << " > " << tol.bound;
  }
  c.reason = os.str();
  c.passed = c.reason.empty();
  return c;
}

}  // namespace kiln
