// kiln — comparing outputs with the tolerance table (docs/tolerances.md). Used by tests, `kiln run --expect`
// and the correctness gate.
#pragma once
#include <string>

#include "kiln/tensor.h"

namespace kiln {

enum class Metric { ElementWise, RelativeL2, Exact };

struct Tolerance {
  Metric metric = Metric::ElementWise;
  double rtol = 1e-4;  // ElementWise
  double atol = 1e-5;  // ElementWise
  double bound = 0;    // RelativeL2
  std::string str() const;
};

// The table's rows. `precision`: "fp32", "tf32", "fp16", "bf16", "node-test".
// Integer and bool tensors are always compared exactly, whatever the row.
Tolerance tolerance_for(const std::string& precision);

struct Comparison {
  bool passed = false;
  double max_abs = 0;  // max |a - b|
  double max_rel = 0;  // max |a - b| / |b| over elements with b != 0
  double rel_l2 = 0;   // ||a - b|| / ||b||
  int64_t mismatches = 0;  // elements outside the element-wise bound
  std::string reason;  // why it failed ("" when passed)
};

// Compares `actual` against `expected` (the reference). Dtype or shape mismatch, and NaN/Inf in `actual` where
// `expected` is finite, always fail.
Comparison compare(const Tensor& actual, const Tensor& expected, const Tolerance& tol);

}  // namespace kiln
