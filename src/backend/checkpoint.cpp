// Checkpoints: one self-contained folder — the cache artifacts, backend.json (the state dict with relative paths)
// and SHA256SUMS (sha256sum format) — written atomically, verified file by file on load, valid wherever it is moved.
#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "backend/backend_impl.h"
#include "backend/state_dict.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"

namespace kiln {
namespace backend::checkpoint_impl {

namespace fs = std::filesystem;

const char* const kCopied[] = {"config.json", "build.log", "report.json", "model.onnx", "engine.kiln", "profiles.json"};
const char* const kRequired[] = {"backend.json", "engine.kiln", "profiles.json"};

bool inside(const fs::path& root, const fs::path& p) {
  auto rel = p.lexically_normal().lexically_relative(root.lexically_normal());
  return !rel.empty() && *rel.begin() != ".." && rel.is_relative();
}

// name -> sha256 from SHA256SUMS; Integrity on a malformed line or a name outside the folder.
std::map<std::string, std::string> read_sums(const fs::path& dir) {
  const fs::path sums = dir / "SHA256SUMS";
  if (!fs::exists(sums)) KILN_THROW(Integrity, "checkpoint '" << dir.string() << "' has no SHA256SUMS");
  std::istringstream in(util::read_file(sums.string()));
  std::map<std::string, std::string> out;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.empty()) continue;
    if (line.size() < 67 || line.find_first_not_of("0123456789abcdef") != 64 || line[64] != ' ' ||
        (line[65] != ' ' && line[65] != '*'))
      KILN_THROW(Integrity, "checkpoint '" << dir.string() << "': SHA256SUMS line " << no << " is malformed");
    const std::string name = line.substr(66);
    fs::path p(name);
    if (p.is_absolute() || !inside(dir, dir / p))
      KILN_THROW(Integrity, "checkpoint '" << dir.string() << "': '" << name << "' in SHA256SUMS resolves outside the checkpoint");
    out[name] = line.substr(0, 64);
  }
  return out;
}

}  // namespace backend::checkpoint_impl

void EngineBackend::save(const std::string& dir, bool overwrite) const {
  namespace fs = std::filesystem;
  using namespace backend::checkpoint_impl;
  if (!impl_) KILN_THROW(InvalidState, "EngineBackend was moved from");
  const Impl& m = *impl_;
  if (state() == BackendState::Init) KILN_THROW(InvalidState, "Cannot save backend " << name() << ", backend should be built first");
  if (dir.empty()) KILN_THROW(InvalidArgument, "save: the checkpoint folder is empty");
  const fs::path target = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  if (fs::exists(target, ec) && !overwrite)
    KILN_THROW(Io, "checkpoint folder '" << target.string() << "' already exists (save with overwrite to replace it)");
  if (target == fs::path(m.artifact_dir) || inside(target, m.artifact_dir) || inside(m.artifact_dir, target))
    KILN_THROW(InvalidArgument, "save: the checkpoint folder '" << target.string() << "' overlaps the artifact folder '"
                                                                 << m.artifact_dir << "'");
  const std::string staging = util::make_staging_dir(target.string());
  try {
    for (const char* f : kCopied) {
      const std::string src = util::join_path(m.artifact_dir, f);
      if (!util::file_exists(src)) {
        if (std::string(f) == "engine.kiln" || std::string(f) == "profiles.json")
          KILN_THROW(Io, "cannot save checkpoint: '" << src << "' is missing");
        continue;
      }
      std::string bytes = util::read_file(src);
      if (std::string(f) == "engine.kiln" && !m.engine_sha256.empty() && util::sha256_hex(bytes) != m.engine_sha256)
        KILN_THROW(Integrity, "cannot save checkpoint: '" << src << "' changed since this backend loaded it");
      util::write_file_atomic(util::join_path(staging, f), bytes);
    }
    util::write_file_atomic(util::join_path(staging, "backend.json"),
                            backend::pyjson::dumps(backend::state_to_json(m, /*relative=*/true), 2) + "\n");
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(staging)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    std::string sums;
    for (const auto& n : names) sums += util::sha256_hex(util::read_file(util::join_path(staging, n))) + "  " + n + "\n";
    util::write_file_atomic(util::join_path(staging, "SHA256SUMS"), sums);
    util::replace_dir_atomic(staging, target.string(), /*keep_foreign=*/false);
  } catch (...) {
    util::remove_tree_quiet(staging);
    throw;
  }
  KILN_INFO("saved checkpoint '" << target.string() << "'");
}

EngineBackend EngineBackend::load(const std::string& dir) {
  namespace fs = std::filesystem;
  using namespace backend::checkpoint_impl;
  const fs::path root = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  if (!fs::is_directory(root, ec)) KILN_THROW(Io, "checkpoint folder '" << root.string() << "' does not exist");
  const auto sums = read_sums(root);
  for (const auto& [name, want] : sums) {
    const fs::path p = root / name;
    if (!fs::is_regular_file(p, ec))
      KILN_THROW(Integrity, "checkpoint '" << root.string() << "': file '" << name << "' listed in SHA256SUMS is missing");
    const std::string got = util::sha256_hex(util::read_file(p.string()));
    if (got != want)
      KILN_THROW(Integrity, "checkpoint '" << root.string() << "': file '" << name << "' is corrupted or was modified (sha256 "
                                           << got << ", SHA256SUMS says " << want << ")");
  }
  for (const char* f : kRequired)
    if (!sums.count(f)) KILN_THROW(Integrity, "checkpoint '" << root.string() << "': '" << f << "' is not covered by SHA256SUMS");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    if (n != "SHA256SUMS" && !sums.count(n)) KILN_WARN("checkpoint '" << root.string() << "': '" << n << "' is not in SHA256SUMS: ignored");
  }
  EngineBackend b = from_dict(util::read_file((root / "backend.json").string()), root.string());
  Impl& m = *b.impl_;
  for (const std::string* p : {&m.engine_path, &m.profiles_path})
    if (!inside(root, *p)) KILN_THROW(Integrity, "checkpoint '" << root.string() << "': '" << *p << "' resolves outside the checkpoint");
  const std::string engine_rel = fs::path(m.engine_path).lexically_relative(root).string();
  if (!sums.count(engine_rel))
    KILN_THROW(Integrity, "checkpoint '" << root.string() << "': the engine '" << engine_rel << "' is not covered by SHA256SUMS");
  if (!m.engine_sha256.empty() && m.engine_sha256 != sums.at(engine_rel))
    KILN_THROW(Integrity, "checkpoint '" << root.string() << "': backend.json and SHA256SUMS disagree on the engine's sha256");
  m.engine_sha256 = sums.at(engine_rel);
  m.artifact_dir = root.string();
  return b;
}

}  // namespace kiln
