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

// Folder-level atomic writes: build the contents in a staging folder, then move it into place.
// A fresh empty folder beside `dir` ("<dir>.tmp.<pid>.<n>"); its parent folders are created. Io on failure.
std::string make_staging_dir(const std::string& dir);
// Puts the folder `staged` at `dir`: a plain rename when `dir` does not exist, else an atomic exchange of the two
// (renameat2 RENAME_EXCHANGE; where the file system lacks it, `dir` is renamed aside first) after which the old
// contents are deleted. With `keep_foreign`, entries of the old folder that `staged` does not have are moved into
// the new one before the old one is deleted. Io on failure (then `dir` is unchanged).
void replace_dir_atomic(const std::string& staged, const std::string& dir, bool keep_foreign);
// Deletes a file or folder tree; never throws.
void remove_tree_quiet(const std::string& path) noexcept;

}  // namespace kiln::util
