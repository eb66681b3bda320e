// kiln — tensor file I/O: NumPy .npy and ONNX TensorProto (.pb) files.
#pragma once
#include <string>

#include "kiln/tensor.h"

namespace kiln {

// .npy version 1/2/3, little-endian, C order; dtypes as in DType (bfloat16 is not a NumPy type: rejected).
Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& t);  // atomic write

// One serialized onnx.TensorProto (the conformance test-data layout: input_N.pb / output_N.pb).
// Handles raw_data and the typed fields. `name` receives the TensorProto's name when non-null.
Tensor load_tensor_pb(const std::string& path, std::string* name = nullptr);
void save_tensor_pb(const std::string& path, const Tensor& t, const std::string& name);

}  // namespace kiln
