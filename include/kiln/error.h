// kiln — public error type. Every failure on user input surfaces as kiln::Error with a code.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

enum class ErrorCode {
  InvalidModel,       // the model file is malformed or violates ONNX
  Unsupported,        // valid ONNX that kiln cannot run (yet)
  InvalidArgument,    // a bad argument from the caller (API or CLI)
  ShapeOutOfProfile,  // input shapes fit no optimization profile
  InvalidState,       // call not allowed in the current lifecycle state
  PlanMismatch,       // plan from another kiln build / target / format version
  Integrity,          // checksum or sha256 mismatch, truncated file
  Correctness,        // the correctness gate or an --expect comparison failed
  Io,                 // file system errors
  Cuda,               // CUDA runtime / library errors
  OutOfMemory,        // allocation failed (message names the size)
};

// Stable name, e.g. "InvalidModel".
const char* error_code_name(ErrorCode code);
// Process exit code the CLI uses for this error (see docs/errors.md).
int exit_code(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace kiln
