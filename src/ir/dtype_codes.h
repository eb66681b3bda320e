// ONNX TensorProto.DataType codes <-> kiln DType. The IR keeps ONNX's attribute vocabulary (e.g. Cast's `to`),
// so the importer and the op kernels share this one table.
#pragma once
#include <cstdint>
#include <optional>

#include "kiln/dtype.h"

namespace kiln::ir {
// The DType for an ONNX data type code, or nullopt when kiln has no such type (or the code is unknown).
std::optional<DType> dtype_from_onnx_code(int64_t code);
// The ONNX data type code of a kiln DType (Cast's `to`, TensorProto.data_type).
int64_t dtype_to_onnx_code(DType t);
}  // namespace kiln::ir
