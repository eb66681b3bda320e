// Graph passes. Each pass lives in its own file, states what it matches and why it is valid,
// and returns whether it changed the graph.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

struct Pass {
  const char* name;
  bool (*run)(ir::Graph&);
};

bool eliminate_dead_code(ir::Graph& g);   // dce.cpp
bool fold_constants(ir::Graph& g);        // constant_folding.cpp (also folds Shape of static values)
bool fold_batchnorm_into_conv(ir::Graph& g);  // batchnorm_folding.cpp

// The ordered pipeline for the CPU target at `optimization_level` (0 = DCE and folding only).
std::vector<Pass> cpu_pipeline(int optimization_level);
// Runs the passes, re-running type inference after each change. Returns names of passes that changed something.
std::vector<std::string> run_pipeline(ir::Graph& g, const std::vector<Pass>& passes);

}  // namespace kiln::passes
