// kiln — element types.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class DType : uint8_t {
  Float32,
  Float16,
  BFloat16,
  Float64,
  Int64,
  Int32,
  Int16,
  Int8,
  UInt8,
  Bool,
};

// Bytes per element.
size_t dtype_size(DType t);
// Lower-case name: "float32", "float16", "bfloat16", "float64", "int64", ... "bool".
const char* dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_float(DType t);
// Every dtype, in enum order.
const std::vector<DType>& all_dtypes();

// A concrete shape. Dimensions are >= 0.
using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
// "[1,3,224,224]"
std::string shape_str(const Shape& s);

}  // namespace kiln
