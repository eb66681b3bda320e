#include "util/fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "util/error.h"

namespace kiln::util {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) KILN_THROW(Io, "cannot read '" << path << "': is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) KILN_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) KILN_THROW(Io, "error reading '" << path << "'");
  return s;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  static std::atomic<unsigned> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) KILN_THROW(Io, "cannot write '" << path << "': " << std::strerror(errno));
  size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = n == bytes.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (::fsync(::fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    int e = errno;
    std::remove(tmp.c_str());
    KILN_THROW(Io, "cannot write '" << path << "': " << std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    KILN_THROW(Io, "cannot write '" << path << "': " << std::strerror(e));
  }
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

std::string dirname_of(const std::string& path) {
  std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

std::string join_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

namespace fs_staging {
std::atomic<unsigned> g_staging_counter{0};
}  // namespace fs_staging
using fs_staging::g_staging_counter;

std::string make_staging_dir(const std::string& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = p.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_staging_counter++);
    if (std::filesystem::create_directory(tmp, ec)) return tmp;
    if (ec && ec != std::errc::file_exists)
      KILN_THROW(Io, "cannot create folder '" << tmp << "': " << ec.message());
  }
  KILN_THROW(Io, "cannot create a staging folder beside '" << dir << "'");
}

void replace_dir_atomic(const std::string& staged, const std::string& dir, bool keep_foreign) {
  namespace fs = std::filesystem;
  fs::path target = fs::absolute(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    if (std::rename(staged.c_str(), target.c_str()) == 0) return;
    if (errno != EEXIST && errno != ENOTEMPTY) KILN_THROW(Io, "cannot move '" << staged << "' to '" << target.string() << "': " << std::strerror(errno));
    // Someone created it in between: exchange below.
  }
  if (!fs::is_directory(target, ec)) KILN_THROW(Io, "cannot replace '" << target.string() << "': not a folder");
  std::string old;  // where the previous contents end up
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    old = staged;
  } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
    old = target.string() + ".old." + std::to_string(::getpid()) + "." + std::to_string(g_staging_counter++);
    if (std::rename(target.c_str(), old.c_str()) != 0)
      KILN_THROW(Io, "cannot move '" << target.string() << "' aside: " << std::strerror(errno));
    if (std::rename(staged.c_str(), target.c_str()) != 0) {
      int e = errno;
      std::rename(old.c_str(), target.c_str());
      KILN_THROW(Io, "cannot move '" << staged << "' to '" << target.string() << "': " << std::strerror(e));
    }
  } else {
    KILN_THROW(Io, "cannot replace '" << target.string() << "' with '" << staged << "': " << std::strerror(errno));
  }
  if (keep_foreign) {
    for (const auto& e : fs::directory_iterator(old, ec)) {
      fs::path dst = target / e.path().filename();
      std::error_code ec2;
      if (!fs::exists(dst, ec2)) fs::rename(e.path(), dst, ec2);
    }
  }
  remove_tree_quiet(old);
}

void remove_tree_quiet(const std::string& path) noexcept {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace kiln::util
