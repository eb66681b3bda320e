// Force-included into every test binary (tests/CMakeLists.txt: -include). The paths tests read come from the
// environment when set, else from the build tree (the *_BUILTIN definitions), so binaries carried elsewhere (the GPU
// bundle, docs/cuda-testing.md) find their data:
//   KILN_TEST_MODELS  generated test models      KILN_SOURCE_DIR  the repository root (docs/, models/, fuzz/)
//   KILN_CLI          the kiln command-line tool  KILN_PYTHON      Python with numpy / onnx / onnxruntime
// Each macro is an expression of type const char* (not a string literal: no literal concatenation).
#pragma once
#include <cstdlib>

namespace kiln_test_paths {
inline const char* path(const char* env, const char* builtin) {
  const char* v = std::getenv(env);
  return (v != nullptr && *v != '\0') ? v : builtin;
}
}  // namespace kiln_test_paths

#ifdef KILN_TEST_MODELS_BUILTIN
#define KILN_TEST_MODELS (::kiln_test_paths::path("KILN_TEST_MODELS", KILN_TEST_MODELS_BUILTIN))
#endif
#ifdef KILN_SOURCE_DIR_BUILTIN
#define KILN_SOURCE_DIR (::kiln_test_paths::path("KILN_SOURCE_DIR", KILN_SOURCE_DIR_BUILTIN))
#endif
#ifdef KILN_CLI_BUILTIN
#define KILN_CLI (::kiln_test_paths::path("KILN_CLI", KILN_CLI_BUILTIN))
#endif
#ifdef KILN_PYTHON_BUILTIN
#define KILN_PYTHON (::kiln_test_paths::path("KILN_PYTHON", KILN_PYTHON_BUILTIN))
#endif
