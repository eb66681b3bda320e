#include "kiln/error.h"

namespace kiln {

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidModel: return "InvalidModel";
    case ErrorCode::Unsupported: return "Unsupported";
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::ShapeOutOfProfile: return "ShapeOutOfProfile";
    case ErrorCode::InvalidState: return "InvalidState";
    case ErrorCode::PlanMismatch: return "PlanMismatch";
    case ErrorCode::Integrity: return "Integrity";
    case ErrorCode::Correctness: return "Correctness";
    case ErrorCode::Io: return "Io";
    case ErrorCode::Cuda: return "Cuda";
    case ErrorCode::OutOfMemory: return "OutOfMemory";
  }
  return "Unknown";
}

// Exit codes: 0 success, 1 unexpected internal error, 2 usage; kiln errors from 10 (docs/errors.md).
int exit_code(ErrorCode c) { return 10 + static_cast<int>(c); }

}  // namespace kiln
