// Tensor files: NumPy .npy (format versions 1-3, little-endian, C order) and one serialized onnx.TensorProto
// (.pb, converted by the importer's own TensorProto code). Writes are atomic.
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kiln/io.h"
#include "onnx/tensor_proto.h"
#include "util/error.h"
#include "util/fs.h"

namespace kiln {

namespace tensor_files_impl {

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"<f4", DType::Float32}, {"<f2", DType::Float16}, {"<f8", DType::Float64}, {"<i8", DType::Int64},
    {"<i4", DType::Int32},   {"<i2", DType::Int16},   {"|i1", DType::Int8},    {"|u1", DType::UInt8},
    {"|b1", DType::Bool},
};

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') break;
      std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        descr = str();
        has_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        has_order = true;
      } else if (key == "shape") {
        shape = tuple();
        has_shape = true;
      } else {
        fail("unknown key '" + key + "'");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    if (!has_descr || !has_order || !has_shape) fail("needs the keys 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    KILN_THROW(InvalidArgument, "'" << path_ << "': bad .npy header (" << why << ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string str() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a string");
    size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return v;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  Shape tuple() {
    Shape out;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      if (peek() < '0' || peek() > '9') fail("expected a dimension");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        int d = peek() - '0';
        if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("dimension too large");
        v = v * 10 + d;
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix
      out.push_back(v);
      if (out.size() > 64) fail("too many dimensions");
      ws();
      if (peek() == ',') ++i_;
      else if (peek() != ')') fail("expected ',' or ')'");
    }
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

uint32_t read_le(const std::string& b, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint32_t(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

// numel * element size, InvalidArgument on overflow.
size_t checked_nbytes(const Shape& shape, DType dt, const std::string& path) {
  uint64_t n = dtype_size(dt);
  for (int64_t d : shape) {
    if (d < 0) KILN_THROW(InvalidArgument, "'" << path << "': negative dimension");
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / 2 / static_cast<uint64_t>(d))
      KILN_THROW(InvalidArgument, "'" << path << "': shape " << shape_str(shape) << " is too large");
    n *= static_cast<uint64_t>(d);
  }
  return static_cast<size_t>(n);
}

}  // namespace tensor_files_impl

Tensor load_npy(const std::string& path) {
  using namespace tensor_files_impl;
  const std::string b = util::read_file(path);
  static const char kMagic[] = "\x93NUMPY";
  if (b.size() < 10 || b.compare(0, 6, kMagic, 6) != 0)
    KILN_THROW(InvalidArgument, "'" << path << "' is not a .npy file (bad magic)");
  const int major = static_cast<uint8_t>(b[6]);
  size_t hlen = 0, start = 0;
  if (major == 1) {
    hlen = read_le(b, 8, 2);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) KILN_THROW(InvalidArgument, "'" << path << "': truncated .npy header");
    hlen = read_le(b, 8, 4);
    start = 12;
  } else {
    KILN_THROW(InvalidArgument, "'" << path << "': unsupported .npy format version " << major);
  }
  if (hlen > b.size() - start) KILN_THROW(InvalidArgument, "'" << path << "': truncated .npy header");
  const std::string header = b.substr(start, hlen);
  std::string descr;
  bool fortran = false;
  Shape shape;
  NpyHeaderParser(header, path).parse(descr, fortran, shape);
  if (fortran) KILN_THROW(InvalidArgument, "'" << path << "': Fortran-order .npy files are not supported");
  const NpyType* type = nullptr;
  for (const auto& t : kNpyTypes)
    if (descr == t.descr) type = &t;
  if (!type) KILN_THROW(InvalidArgument, "'" << path << "': unsupported .npy dtype '" << descr << "'");
  const size_t nbytes = checked_nbytes(shape, type->dtype, path);
  const size_t avail = b.size() - start - hlen;
  if (avail != nbytes)
    KILN_THROW(InvalidArgument, "'" << path << "': " << descr << shape_str(shape) << " needs " << nbytes
                                    << " data bytes, the file has " << avail);
  Tensor t = Tensor::from_bytes(type->dtype, shape, b.data() + start + hlen, nbytes);
  if (type->dtype == DType::Bool) {
    uint8_t* p = t.mutable_as<uint8_t>();
    for (size_t i = 0; i < nbytes; ++i) p[i] = p[i] ? 1 : 0;
  }
  return t;
}

void save_npy(const std::string& path, const Tensor& t) {
  using namespace tensor_files_impl;
  const char* descr = nullptr;
  for (const auto& nt : kNpyTypes)
    if (nt.dtype == t.dtype()) descr = nt.descr;
  if (!descr) KILN_THROW(InvalidArgument, "cannot save '" << path << "': " << dtype_name(t.dtype())
                                                          << " is not a NumPy type");
  if (t.empty() && t.numel() != 0) KILN_THROW(InvalidArgument, "cannot save '" << path << "': tensor has no data");
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) dict += ", ";
    dict += std::to_string(t.shape()[i]);
  }
  if (t.shape().size() == 1) dict += ",";
  dict += "), }";
  // Version 1 (2-byte length) unless the header is too long; total header size a multiple of 64, ending in '\n'.
  const bool v2 = dict.size() + 1 + 64 > 65535;
  const size_t pre = v2 ? 12 : 10;
  size_t total = pre + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  dict.append(total - pre - dict.size() - 1, ' ');
  dict += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  const uint32_t hl = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < (v2 ? 4u : 2u); ++i) out += static_cast<char>((hl >> (8 * i)) & 0xff);
  out += dict;
  if (t.nbytes()) out.append(static_cast<const char*>(t.data()), t.nbytes());
  util::write_file_atomic(path, out);
}

Tensor load_tensor_pb(const std::string& path, std::string* name) {
  const std::string b = util::read_file(path);
  ::onnx::TensorProto tp;
  if (!onnx_tensor::parse_message(tp, b.data(), b.size()))
    KILN_THROW(InvalidArgument, "'" << path << "' is not a serialized onnx.TensorProto (truncated or corrupt)");
  onnx_tensor::ExternalData ext{util::dirname_of(path), nullptr};
  Tensor t;
  try {
    t = onnx_tensor::tensor_from_proto(tp, &ext, "tensor '" + tp.name() + "'");
  } catch (const Error& e) {
    ErrorCode c = e.code() == ErrorCode::InvalidModel ? ErrorCode::InvalidArgument : e.code();
    throw Error(c, "'" + path + "': " + e.what());
  }
  if (name) *name = tp.name();
  return t;
}

void save_tensor_pb(const std::string& path, const Tensor& t, const std::string& name) {
  ::onnx::TensorProto tp;
  onnx_tensor::tensor_to_proto(t, name, &tp);
  std::string bytes;
  if (!tp.SerializeToString(&bytes)) KILN_THROW(InvalidArgument, "cannot serialize tensor '" << name << "'");
  util::write_file_atomic(path, bytes);
}

}  // namespace kiln
