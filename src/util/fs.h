// File helpers: whole-file reads and atomic writes (temp file + rename). Errors are kiln::Error(Io).
#pragma once
#include <string>

namespace kiln::util {

std::string read_file(const std::string& path);
// Writes to "<path>.tmp.<pid>.<n>" then renames; no partial file is left on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);
std::string dirname_of(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace kiln::util
