// kiln — version and build identity.
#pragma once

namespace kiln {
// Semantic version, e.g. "0.1.0".
const char* version();
// Identifies the exact build (git commit + build flavour); plans record it and refuse others.
const char* build_id();
// True when this build contains the CUDA sources.
bool built_with_cuda();
}  // namespace kiln
