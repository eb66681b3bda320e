// Device discovery in a build without CUDA: there are no CUDA devices.
#ifndef KILN_WITH_CUDA
#include "kiln/device.h"
#include "util/error.h"

namespace kiln {
int cuda_device_count() { return 0; }
uint64_t cuda_allocation_count() { return 0; }
std::string cuda_device_name(int ordinal) {
  KILN_THROW(InvalidArgument, "cuda:" << ordinal << " does not exist: this kiln was built without CUDA");
}
}  // namespace kiln
#endif
