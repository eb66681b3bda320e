#include "kiln/version.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif
#include "kiln_build_id.h"  // generated at build time (cmake/KilnBuildId.cmake)

namespace kiln {
const char* version() { return KILN_VERSION; }
const char* build_id() { return KILN_BUILD_ID; }
bool built_with_cuda() {
#ifdef KILN_WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace kiln
