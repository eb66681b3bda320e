#include "kiln/version.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif
#ifndef KILN_BUILD_ID
#define KILN_BUILD_ID "unknown"
#endif

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
