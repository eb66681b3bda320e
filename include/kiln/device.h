// kiln — devices visible to this build.
#pragma once
#include <string>

namespace kiln {
// Number of CUDA devices (0 in a CPU-only build or when no driver / GPU is present).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3 (sm_90)"; InvalidArgument when `ordinal` is out of range.
std::string cuda_device_name(int ordinal);
}  // namespace kiln
