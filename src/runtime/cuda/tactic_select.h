// The builder's CUDA tactic choice (host code, needs no GPU): per node the candidate CUDA tactics in heuristic
// order, whose workspace at every profile's max shapes fits the cap, then "host" (the reference-kernel fallback).
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/dtype.h"

namespace kiln::runtime::cuda {

// One list per node of `g`: candidate tactic names, heuristic choice first; the last is always "host".
// `max_shapes`: per profile, the max shape of every graph input.
std::vector<std::vector<std::string>> cuda_tactic_candidates(const ir::Graph& g,
                                                             const std::vector<std::map<std::string, Shape>>& max_shapes,
                                                             size_t workspace_cap);

// "cuBLASLt 130100, cuDNN 91900": the library versions loaded in this process (part of the CUDA timing-cache target:
// an algorithm's speed, and whether a "cublaslt#<algo>" variant runs at all, depend on them).
std::string cuda_library_versions();

}  // namespace kiln::runtime::cuda
