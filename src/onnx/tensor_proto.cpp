// onnx.TensorProto <-> kiln::Tensor. Every size is checked before anything is allocated: the importer is fuzzed.
#include "onnx/tensor_proto.h"

#include "ir/dtype_codes.h"

#include <google/protobuf/io/coded_stream.h>

#include <bit>
#include <climits>
#include <cstring>
#include <limits>
#include <vector>

#include "util/error.h"
#include "util/half.h"

static_assert(std::endian::native == std::endian::little, "kiln assumes a little-endian host (ONNX raw_data is LE)");

namespace kiln::onnx_tensor {

namespace tensor_proto_impl {

struct CodeName {
  int32_t code;
  const char* name;
};
constexpr CodeName kOnnxTypeNames[] = {
    {0, "UNDEFINED"},     {1, "FLOAT"},           {2, "UINT8"},          {3, "INT8"},
    {4, "UINT16"},        {5, "INT16"},           {6, "INT32"},          {7, "INT64"},
    {8, "STRING"},        {9, "BOOL"},            {10, "FLOAT16"},       {11, "DOUBLE"},
    {12, "UINT32"},       {13, "UINT64"},         {14, "COMPLEX64"},     {15, "COMPLEX128"},
    {16, "BFLOAT16"},     {17, "FLOAT8E4M3FN"},   {18, "FLOAT8E4M3FNUZ"}, {19, "FLOAT8E5M2"},
    {20, "FLOAT8E5M2FNUZ"}, {21, "UINT4"},        {22, "INT4"},          {23, "FLOAT4E2M1"},
    {24, "FLOAT8E8M0"},   {25, "UINT2"},          {26, "INT2"},          {27, "FLOAT6E2M3"},
    {28, "FLOAT6E3M2"},
};

// Shape from dims with overflow checks; returns numel * element size in bytes.
size_t checked_shape(const ::onnx::TensorProto& tp, DType dt, Shape& shape, int64_t& numel, const std::string& what) {
  shape.clear();
  shape.reserve(static_cast<size_t>(tp.dims_size()));
  numel = 1;
  for (int64_t d : tp.dims()) {
    if (d < 0) KILN_THROW(InvalidModel, what << ": negative dimension " << d);
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / d)
      KILN_THROW(InvalidModel, what << ": element count overflows (dims too large)");
    numel *= d;
    shape.push_back(d);
  }
  const int64_t esz = static_cast<int64_t>(dtype_size(dt));
  if (numel > std::numeric_limits<int64_t>::max() / esz)
    KILN_THROW(InvalidModel, what << ": byte size overflows (dims too large)");
  return static_cast<size_t>(numel * esz);
}

std::string shape_text(const Shape& s) { return shape_str(s); }

// Copies an int32_data field into a narrower element type (the ONNX rule for int8/16, uint8, bool, fp16, bf16).
template <typename T>
void narrow_int32(const ::onnx::TensorProto& tp, Tensor& t) {
  T* out = t.mutable_as<T>();
  for (int i = 0; i < tp.int32_data_size(); ++i) out[i] = static_cast<T>(tp.int32_data(i));
}

}  // namespace tensor_proto_impl

std::optional<DType> dtype_from_onnx(int32_t code) { return ir::dtype_from_onnx_code(code); }

int32_t dtype_to_onnx(DType t) { return static_cast<int32_t>(ir::dtype_to_onnx_code(t)); }

std::string onnx_dtype_name(int32_t code) {
  for (const auto& cn : tensor_proto_impl::kOnnxTypeNames)
    if (cn.code == code) return cn.name;
  return "code " + std::to_string(code);
}

DType require_dtype(int32_t code, const std::string& what) {
  if (auto dt = dtype_from_onnx(code)) return *dt;
  if (code == 0) KILN_THROW(InvalidModel, what << ": element type is UNDEFINED");
  if (code < 0 || code > 28) KILN_THROW(InvalidModel, what << ": unknown element type code " << code);
  KILN_THROW(Unsupported, what << ": element type " << onnx_dtype_name(code) << " is not supported by kiln");
}

Tensor tensor_from_proto(const ::onnx::TensorProto& tp, const ExternalData* ext, const std::string& what) {
  using namespace tensor_proto_impl;
  if (tp.has_segment()) KILN_THROW(Unsupported, what << ": segmented tensors are not supported");
  const DType dt = require_dtype(tp.data_type(), what);
  Shape shape;
  int64_t numel = 0;
  const size_t nbytes = checked_shape(tp, dt, shape, numel, what);

  if (tp.data_location() == ::onnx::TensorProto::EXTERNAL)
    return detail::read_external(tp, dt, shape, nbytes, ext, what);

  if (tp.has_raw_data()) {
    const std::string& raw = tp.raw_data();
    if (raw.size() != nbytes)
      KILN_THROW(InvalidModel, what << ": raw_data has " << raw.size() << " bytes, " << dtype_name(dt)
                                    << shape_text(shape) << " needs " << nbytes);
    Tensor t(dt, shape);
    if (nbytes) std::memcpy(t.mutable_data(), raw.data(), nbytes);
    if (dt == DType::Bool) {  // normalize any non-zero byte to 1
      uint8_t* b = t.mutable_as<uint8_t>();
      for (size_t i = 0; i < nbytes; ++i) b[i] = b[i] ? 1 : 0;
    }
    return t;
  }

  // Typed fields: exactly the one that belongs to the dtype, with one entry per element.
  int64_t count = 0;
  const char* field = "";
  switch (dt) {
    case DType::Float32: count = tp.float_data_size(); field = "float_data"; break;
    case DType::Float64: count = tp.double_data_size(); field = "double_data"; break;
    case DType::Int64: count = tp.int64_data_size(); field = "int64_data"; break;
    default: count = tp.int32_data_size(); field = "int32_data"; break;
  }
  if (count != numel) {
    const int64_t others = tp.float_data_size() + tp.double_data_size() + tp.int64_data_size() +
                           tp.int32_data_size() + tp.uint64_data_size() + tp.string_data_size();
    if (numel > 0 && count == 0 && others == 0) KILN_THROW(InvalidModel, what << ": tensor has no data");
    if (count == 0)
      KILN_THROW(InvalidModel, what << ": " << dtype_name(dt) << " data must be in raw_data or " << field);
    KILN_THROW(InvalidModel, what << ": " << field << " has " << count << " values, " << dtype_name(dt)
                                  << shape_text(shape) << " needs " << numel);
  }
  Tensor t(dt, shape);
  if (numel == 0) return t;
  switch (dt) {
    case DType::Float32: std::memcpy(t.mutable_data(), tp.float_data().data(), nbytes); break;
    case DType::Float64: std::memcpy(t.mutable_data(), tp.double_data().data(), nbytes); break;
    case DType::Int64: std::memcpy(t.mutable_data(), tp.int64_data().data(), nbytes); break;
    case DType::Int32: std::memcpy(t.mutable_data(), tp.int32_data().data(), nbytes); break;
    case DType::Int16: narrow_int32<int16_t>(tp, t); break;
    case DType::Int8: narrow_int32<int8_t>(tp, t); break;
    case DType::UInt8: narrow_int32<uint8_t>(tp, t); break;
    case DType::Float16:  // bit patterns in the low 16 bits
    case DType::BFloat16: narrow_int32<uint16_t>(tp, t); break;
    case DType::Bool: {
      uint8_t* b = t.mutable_as<uint8_t>();
      for (int i = 0; i < tp.int32_data_size(); ++i) b[i] = tp.int32_data(i) != 0 ? 1 : 0;
      break;
    }
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, ::onnx::TensorProto* out) {
  out->Clear();
  out->set_name(name);
  out->set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) out->add_dims(d);
  if (t.empty()) {
    if (t.numel() != 0) KILN_THROW(InvalidArgument, "tensor '" << name << "' has no data");
    out->set_raw_data(std::string());
    return;
  }
  out->set_raw_data(static_cast<const char*>(t.data()), t.nbytes());
}

bool parse_message(::google::protobuf::MessageLite& msg, const void* data, size_t size) {
  if (size > static_cast<size_t>(INT_MAX)) return false;
  ::google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data), static_cast<int>(size));
  in.SetTotalBytesLimit(INT_MAX);
  if (!msg.ParseFromCodedStream(&in)) return false;
  return in.ConsumedEntireMessage();
}

}  // namespace kiln::onnx_tensor
