// The immutable engine: what a plan file holds.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "kiln/profile.h"

namespace kiln::detail {

// State an executor attaches to an engine and shares between the engine's contexts: the CUDA executor keeps
// each device's copy of the weights here (uploaded once per engine and device). A copy of an EngineImpl starts
// with an empty cache (its weights may be changed).
struct EngineDeviceCache {
  EngineDeviceCache() = default;
  EngineDeviceCache(const EngineDeviceCache&) {}
  EngineDeviceCache& operator=(const EngineDeviceCache&) {
    std::lock_guard<std::mutex> lock(mu);
    per_device.clear();
    return *this;
  }
  std::mutex mu;
  std::map<int, std::shared_ptr<void>> per_device;  // device ordinal -> executor-defined state
};

struct EngineImpl {
  ir::Graph graph;                   // optimized, every node has a tactic
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::vector<Profile> profiles;
  // Per profile, per node of `graph`: the tactic chosen at that profile's opt shapes (plan format 3). Empty when every
  // profile runs node.tactic (one profile, or all profiles chose alike); otherwise one list per profile, each with one
  // entry per node, and profile_tactics[0][i] == graph.nodes[i].tactic.
  std::vector<std::vector<std::string>> profile_tactics;
  std::string target = "cpu";        // "cpu" | "cuda:sm_90 [options]" (runtime/target.h)
  std::string precision = "fp32";
  std::string kiln_version;
  std::string build_id;
  std::string model_hash;            // content hash of the source model
  mutable EngineDeviceCache device_cache;

  // Node i's tactic under profile p (node.tactic when p < 0, there is no per-profile table or it lacks the node).
  const std::string& tactic_of(size_t node, int profile) const {
    if (profile >= 0 && static_cast<size_t>(profile) < profile_tactics.size() &&
        node < profile_tactics[static_cast<size_t>(profile)].size())
      return profile_tactics[static_cast<size_t>(profile)][node];
    return graph.nodes[node].tactic;
  }
};

// The profile a run with these input shapes uses (one per graph.inputs, defaults included): the first profile that
// contains them, as ExecutionContext selects it; -1 when none does (a bare graph without profiles). Executors call it
// to run the active profile's tactics.
int profile_for_shapes(const EngineImpl& e, const std::vector<Shape>& by_graph_input);

}  // namespace kiln::detail
