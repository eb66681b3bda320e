// The correctness gate run after every fresh build: the engine against a different executor (the oracle — the
// reference kernels on the unoptimized model graph — for a CPU build) on the samples, sliced to batch <= 2, and on
// inputs at each profile's min and max shapes made by slicing or repeating a sample (never random data).
#pragma once
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "kiln/engine.h"
#include "kiln/graph_spec.h"
#include "kiln/model.h"

namespace kiln::backend {

struct GateSummary {
  size_t cases = 0;                // input sets compared
  std::vector<std::string> notes;  // skipped cases and why
};

// Throws Correctness naming the case, the output, max abs / rel error and the bound when an output is out of
// bounds, has NaN/Inf, or has the wrong dtype or shape.
GateSummary run_correctness_gate(const Model& model, const Engine& engine, const GraphSpec& spec,
                                 const std::vector<Sample>& samples, const Tolerance& tol);

// `t` resized to `shape` by taking, along every axis, index i of the source at i mod its size (slicing when
// smaller, repeating when larger). InvalidArgument when an axis of `t` is empty but the target's is not.
Tensor resize_by_tiling(const Tensor& t, const Shape& shape);

}  // namespace kiln::backend
