// The immutable engine: what a plan file holds.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "kiln/profile.h"

namespace kiln::detail {

struct EngineImpl {
  ir::Graph graph;                   // optimized, every node has a tactic
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::vector<Profile> profiles;
  std::string target = "cpu";        // "cpu" | "cuda:sm_90"
  std::string precision = "fp32";
  std::string kiln_version;
  std::string build_id;
  std::string model_hash;            // content hash of the source model
};

}  // namespace kiln::detail
