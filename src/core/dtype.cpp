#include "kiln/dtype.h"

#include <limits>

#include "util/error.h"

namespace kiln {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Int32: return 4;
    case DType::Int16: return 2;
    case DType::Int8: return 1;
    case DType::UInt8: return 1;
    case DType::Bool: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Int32: return "int32";
    case DType::Int16: return "int16";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "?";
}

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                                       DType::Int64,   DType::Int32,   DType::Int16,    DType::Int8,
                                       DType::UInt8,   DType::Bool};
  return v;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : all_dtypes())
    if (name == dtype_name(t)) return t;
  if (name == "float" || name == "fp32") return DType::Float32;
  if (name == "half" || name == "fp16") return DType::Float16;
  if (name == "bf16") return DType::BFloat16;
  if (name == "double") return DType::Float64;
  return std::nullopt;
}

bool dtype_is_float(DType t) {
  return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 || t == DType::Float64;
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) KILN_THROW(InvalidArgument, "negative dimension in shape " << shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      KILN_THROW(InvalidArgument, "shape " << shape_str(s) << " has too many elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

}  // namespace kiln
