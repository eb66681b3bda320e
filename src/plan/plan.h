// Engine plan file format (see docs/plan-format.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/engine_impl.h"

namespace kiln::plan {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
constexpr uint32_t kFormatVersion = 3;  // 2: input defaults (ONNX IR >= 4 overridable inputs); 3: per-profile tactics
constexpr uint32_t kOldestFormatVersion = 2;  // the oldest format this kiln still reads
constexpr size_t kWeightAlignment = 64;
// Fixed preamble: magic (8), u32 format version, u32 header length, u64 file size.
constexpr size_t kPreambleSize = 24;
constexpr size_t kChecksumSize = 32;  // raw SHA-256 at the end of the file
// Deepest subgraph nesting (If/Loop/Scan bodies) the reader accepts.
constexpr int kMaxGraphDepth = 32;
// Highest tensor / value rank the reader accepts.
constexpr uint32_t kMaxRank = 64;

// The header section, readable before anything else.
struct Header {
  uint32_t format_version = 0;
  uint64_t file_size = 0;  // as recorded in the preamble
  std::string kiln_version;
  std::string build_id;
  std::string target;
  std::string precision;
};

// Checks for the loader. The defaults are what Engine::load uses; turning checks off is for
// inspection tools and fuzzing only (the body parser stays fully bounds-checked either way).
struct ReadOptions {
  bool check_build_id = true;
  bool verify_checksum = true;
};

// Writes e.kiln_version / e.build_id into the header (kiln::version() / kiln::build_id() when empty).
// `format_version` kOldestFormatVersion..kFormatVersion (older formats for compatibility tests; InvalidArgument when
// the engine holds what that format cannot, such as per-profile tactics in format 2).
std::string serialize(const detail::EngineImpl& e, uint32_t format_version = kFormatVersion);
// `origin` (a path or "<memory>") is named in errors. Integrity on truncation/corruption/checksum,
// PlanMismatch on foreign magic, format version (outside kOldestFormatVersion..kFormatVersion), kiln build id or
// target.
// This overload copies `bytes` once into a 64-byte aligned buffer that the weight tensors view.
std::shared_ptr<detail::EngineImpl> deserialize(const std::string& bytes, const std::string& origin);
// Weight tensors view `bytes` directly (no copy): keep memory near the plan size.
std::shared_ptr<detail::EngineImpl> deserialize(std::shared_ptr<const std::string> bytes, const std::string& origin,
                                                const ReadOptions& opts = {});
// Magic, format version and header only (no build id / target / checksum checks).
Header read_header(const std::string& bytes, const std::string& origin);
// True when this kiln build can run plans for `target` ("cpu", "cuda:sm_XX ..." when built with CUDA).
bool target_supported(const std::string& target);

}  // namespace kiln::plan
