// Little-endian binary writer and a hardened, bounds-checked reader for the plan file.
// Every read checks the bytes that are left; a short read throws kiln::Error(Integrity) naming the
// file, the field and the absolute offset. Counts are validated against the remaining bytes before
// anything is allocated from them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "util/error.h"

namespace kiln::plan::codec {

class Writer {
 public:
  void u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    u32(bits);
  }
  // A u32 element count; InvalidArgument when it does not fit.
  void count(size_t n, const char* what) {
    if (n > 0xffffffffu) KILN_THROW(InvalidArgument, "plan: too many " << what << " (" << n << ")");
    u32(static_cast<uint32_t>(n));
  }
  // u32 length + bytes.
  void str(const std::string& s) {
    count(s.size(), "bytes in a string");
    buf_.append(s);
  }
  void raw(const void* p, size_t n) {
    if (n) buf_.append(static_cast<const char*>(p), n);
  }
  // Overwrites 8 bytes at `pos` (which must already be written).
  void patch_u64(size_t pos, uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_[pos + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
  }
  size_t size() const { return buf_.size(); }
  std::string& bytes() { return buf_; }

 private:
  std::string buf_;
};

inline uint32_t load_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t load_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

class Reader {
 public:
  // Reads [data, data + size); `base` is the absolute file offset of `data` (for messages);
  // `section` names the part of the file ("header", "metadata").
  Reader(const char* data, size_t size, size_t base, const std::string& origin, const char* section)
      : p_(data), end_(data + size), base_(base), start_(data), origin_(origin), section_(section) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  size_t offset() const { return base_ + static_cast<size_t>(p_ - start_); }
  bool at_end() const { return p_ == end_; }

  [[noreturn]] void fail(const std::string& what) const {
    KILN_THROW(Integrity, "corrupt kiln plan '" << origin_ << "': " << section_ << " at offset " << offset()
                                                << ": " << what);
  }

  uint8_t u8(const char* what) {
    need(1, what);
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = load_u32(p_);
    p_ += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    need(8, what);
    uint64_t v = load_u64(p_);
    p_ += 8;
    return v;
  }
  int64_t i64(const char* what) { return static_cast<int64_t>(u64(what)); }
  float f32(const char* what) {
    uint32_t bits = u32(what);
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  // A u32 count of elements that each take at least `min_elem_bytes` in the file.
  size_t count(const char* what, size_t min_elem_bytes) {
    size_t n = u32(what);
    size_t min_bytes = min_elem_bytes == 0 ? 1 : min_elem_bytes;
    if (n > remaining() / min_bytes) {
      std::ostringstream os;
      os << "count of " << what << " is " << n << ", but only " << remaining() << " bytes are left (each needs >= "
         << min_bytes << ")";
      fail(os.str());
    }
    return n;
  }
  std::string str(const char* what) {
    size_t n = u32(what);
    need(n, what);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  const char* raw(size_t n, const char* what) {
    need(n, what);
    const char* q = p_;
    p_ += n;
    return q;
  }
  void expect_end() const {
    if (!at_end()) {
      std::ostringstream os;
      os << remaining() << " unexpected trailing bytes";
      fail(os.str());
    }
  }

 private:
  void need(size_t n, const char* what) const {
    if (n > remaining()) {
      std::ostringstream os;
      os << "truncated " << what << ": needs " << n << " bytes, " << remaining() << " left";
      fail(os.str());
    }
  }

  const char* p_;
  const char* end_;
  size_t base_;
  const char* start_;
  const std::string& origin_;
  const char* section_;
};

}  // namespace kiln::plan::codec
