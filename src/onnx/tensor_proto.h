// onnx.TensorProto <-> kiln::Tensor, shared by the importer and the .pb tensor files.
// Handles raw_data, every typed field (float_data, int32_data, int64_data, double_data) and external data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "kiln/tensor.h"
#include "onnx/onnx.pb.h"
#include "util/sha256.h"

namespace kiln::onnx_tensor {

// ONNX TensorProto.DataType code -> kiln dtype; nullopt for codes kiln has no type for.
std::optional<DType> dtype_from_onnx(int32_t code);
int32_t dtype_to_onnx(DType t);
// "FLOAT", "STRING", "FLOAT8E4M3FN", ... or "code N" for unknown codes.
std::string onnx_dtype_name(int32_t code);
// As dtype_from_onnx, but throws: InvalidModel for UNDEFINED / unknown codes, Unsupported for valid ONNX
// types kiln lacks (string, complex, float8, int4, uint16/32/64). `what` names the tensor or value.
DType require_dtype(int32_t code, const std::string& what);

// Where external data lives and what sees the bytes read.
struct ExternalData {
  std::string base_dir;          // folder of the model; "" = external data not allowed
  util::Sha256* hash = nullptr;  // fed with every byte range read (content hash), may be null
};

// Converts one TensorProto. `what` names it in errors ("initializer 'conv.weight'").
// Errors: InvalidModel (malformed: negative dims, size mismatch, wrong field for the dtype, bad external keys,
// external path absolute or escaping the model folder), Unsupported (dtype, segment), InvalidArgument
// (external data without a base folder), Io (external file missing or too short).
// `ext` may be null: external data is then refused like an empty base_dir.
Tensor tensor_from_proto(const ::onnx::TensorProto& tp, const ExternalData* ext, const std::string& what);

// Fills `out` with dims, data_type and raw_data (little-endian).
void tensor_to_proto(const Tensor& t, const std::string& name, ::onnx::TensorProto* out);

// Parses a serialized message (at most 2 GiB, protobuf's own limit). False when malformed or truncated.
bool parse_message(::google::protobuf::MessageLite& msg, const void* data, size_t size);

}  // namespace kiln::onnx_tensor

namespace kiln::onnx_tensor::detail {
// Reads the tensor's bytes from its external file (external_data.cpp). `nbytes` = numel * dtype size.
Tensor read_external(const ::onnx::TensorProto& tp, DType dt, const Shape& shape, size_t nbytes,
                     const ExternalData* ext, const std::string& what);
}  // namespace kiln::onnx_tensor::detail
