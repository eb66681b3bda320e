// Device copies of an engine's constant tensors (initializers, subgraph initializers, input defaults): uploaded
// once per engine and device into one allocation, shared by every context of the engine (EngineDeviceCache).
#pragma once
#include <cuda_runtime_api.h>

#include <memory>
#include <unordered_map>

#include "runtime/cuda/device_memory.h"
#include "runtime/engine_impl.h"

namespace kiln::runtime::cuda {

struct DeviceWeights {
  int device = 0;
  DeviceBuffer block;
  size_t bytes = 0;
  std::unordered_map<const void*, void*> by_host;  // host data pointer -> its device copy
  // Device copy of a constant tensor of the engine; nullptr when it has none (or the tensor is empty).
  void* find(const Tensor& t) const;
};

// The engine's weights on `device` (current device must be `device`), uploading them on first use.
// Thread-safe; OutOfMemory names the weight bytes.
std::shared_ptr<const DeviceWeights> engine_weights(const detail::EngineImpl& e, int device);

}  // namespace kiln::runtime::cuda
