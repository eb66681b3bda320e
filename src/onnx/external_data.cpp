// External tensor data (TensorProto.data_location = EXTERNAL): keys location / offset / length, the location
// relative to the model's folder. Only the tensor's own byte range is read (pread), so importing a model whose
// weights sit at a multi-GiB offset costs memory for the weights only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>

#include "onnx/tensor_proto.h"
#include "util/error.h"

namespace kiln::onnx_tensor::detail {

namespace external_data_impl {

// Closes a file descriptor on scope exit.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t parse_uint_key(const std::string& key, const std::string& value, const std::string& what) {
  uint64_t v = 0;
  const char* b = value.data();
  const char* e = b + value.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (value.empty() || ec != std::errc() || p != e)
    KILN_THROW(InvalidModel, what << ": external data key '" << key << "' is not a non-negative integer: '"
                                  << value << "'");
  return v;
}

// Validates `location` (relative, inside the model folder) and returns the normalized relative path.
std::filesystem::path checked_location(const std::string& location, const std::string& what) {
  if (location.empty()) KILN_THROW(InvalidModel, what << ": external data has no 'location'");
  if (location.find('\0') != std::string::npos)
    KILN_THROW(InvalidModel, what << ": external data location contains a NUL byte");
  std::filesystem::path p(location);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory())
    KILN_THROW(InvalidModel, what << ": external data location '" << location
                                  << "' is absolute; it must be relative to the model's folder");
  std::filesystem::path norm = p.lexically_normal();
  if (norm.empty() || norm == "." || *norm.begin() == "..")
    KILN_THROW(InvalidModel, what << ": external data location '" << location << "' escapes the model's folder");
  return norm;
}

}  // namespace external_data_impl

Tensor read_external(const ::onnx::TensorProto& tp, DType dt, const Shape& shape, size_t nbytes,
                     const ExternalData* ext, const std::string& what) {
  using namespace external_data_impl;
  std::string location;
  uint64_t offset = 0;
  bool has_length = false;
  uint64_t length = 0;
  bool has_location = false;
  for (const auto& kv : tp.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
      has_location = true;
    } else if (kv.key() == "offset") {
      offset = parse_uint_key("offset", kv.value(), what);
    } else if (kv.key() == "length") {
      length = parse_uint_key("length", kv.value(), what);
      has_length = true;
    }  // "checksum" and unknown keys are ignored
  }
  if (!has_location) KILN_THROW(InvalidModel, what << ": data_location is EXTERNAL but no 'location' key is given");
  const std::filesystem::path rel = checked_location(location, what);
  if (has_length && length != nbytes)
    KILN_THROW(InvalidModel, what << ": external data length " << length << " does not match " << dtype_name(dt)
                                  << shape_str(shape) << " (" << nbytes << " bytes)");
  if (!ext || ext->base_dir.empty())
    KILN_THROW(InvalidArgument, what << ": uses external data '" << location
                                     << "' but the model was loaded without a folder to resolve it (use a file path)");
  const uint64_t max_off = static_cast<uint64_t>(std::numeric_limits<off_t>::max());
  if (nbytes > max_off || offset > max_off - nbytes)
    KILN_THROW(InvalidModel, what << ": external data offset " << offset << " is out of range");

  const std::string file = (std::filesystem::path(ext->base_dir) / rel).string();
  FdGuard g;
  g.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (g.fd < 0)
    KILN_THROW(Io, what << ": cannot open external data file '" << file << "': " << std::strerror(errno));
  struct stat st {};
  if (::fstat(g.fd, &st) != 0)
    KILN_THROW(Io, what << ": cannot stat external data file '" << file << "': " << std::strerror(errno));
  if (!S_ISREG(st.st_mode)) KILN_THROW(Io, what << ": external data '" << file << "' is not a regular file");
  const uint64_t fsize = static_cast<uint64_t>(st.st_size);
  if (offset > fsize || nbytes > fsize - offset)
    KILN_THROW(Io, what << ": external data file '" << file << "' has " << fsize << " bytes, the tensor needs bytes ["
                        << offset << ", " << offset + nbytes << ")");

  Tensor t(dt, shape);
  char* dst = static_cast<char*>(t.mutable_data());
  size_t done = 0;
  while (done < nbytes) {
    const size_t chunk = std::min<size_t>(nbytes - done, size_t(1) << 30);
    ssize_t r = ::pread(g.fd, dst + done, chunk, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      KILN_THROW(Io, what << ": short read from external data file '" << file << "' at offset " << offset + done
                          << (r < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
    done += static_cast<size_t>(r);
  }
  if (dt == DType::Bool) {
    uint8_t* b = t.mutable_as<uint8_t>();
    for (size_t i = 0; i < nbytes; ++i) b[i] = b[i] ? 1 : 0;
  }
  if (ext->hash && nbytes) ext->hash->update(dst, nbytes);
  return t;
}

}  // namespace kiln::onnx_tensor::detail
