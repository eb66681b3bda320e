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
  std::string target = "cpu";        // "cpu" | "cuda:sm_90 [options]" (runtime/target.h)
  std::string precision = "fp32";
  std::string kiln_version;
  std::string build_id;
  std::string model_hash;            // content hash of the source model
  mutable EngineDeviceCache device_cache;
};

}  // namespace kiln::detail
