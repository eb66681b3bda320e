// An exclusive advisory lock on a lock file (flock), held for the object's lifetime. Excludes other processes and
// other threads of this process (each lock opens its own file description).
#pragma once
#include <string>

namespace kiln::util {

class FileLock {
 public:
  // Creates `path` if needed and waits up to `timeout_s` seconds for the lock. Io on failure or timeout.
  FileLock(const std::string& path, double timeout_s);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace kiln::util
