// SHA-256 (OpenSSL), hex-encoded.
#pragma once
#include <cstddef>
#include <string>

namespace kiln::util {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finalizes
 private:
  void* ctx_;
};

std::string sha256_hex(const void* data, size_t n);
inline std::string sha256_hex(const std::string& s) { return sha256_hex(s.data(), s.size()); }

}  // namespace kiln::util
