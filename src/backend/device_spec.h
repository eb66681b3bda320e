// The backend's device argument: "cpu", "cuda" or "cuda:N".
#pragma once
#include <string>

#include "kiln/builder.h"

namespace kiln::backend {

struct DeviceSpec {
  Target target = Target::Cpu;
  int ordinal = 0;
  std::string str() const;  // "cpu" / "cuda:N"
};

// InvalidArgument "Device <x> is not supported by the backend EngineBackend" for anything else.
DeviceSpec parse_device(const std::string& device);
// AITune's _assert_device: Unsupported when this kiln build has no CUDA, InvalidArgument when the GPU does not exist.
void assert_device(const DeviceSpec& d);
// The target part of the engine reuse key: "cpu", or "cuda:<GPU name (sm_XX)>".
std::string target_identity(const DeviceSpec& d);
// -1 for the CPU, else the CUDA ordinal (for device memory readings).
inline int memory_device(const DeviceSpec& d) { return d.target == Target::Cuda ? d.ordinal : -1; }

}  // namespace kiln::backend
