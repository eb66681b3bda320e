// The fuzz entry points, shared by the libFuzzer targets (fuzz/*.cpp) and the plain regression
// test that replays the corpora and every crasher (tests/unit/test_fuzz_regressions.cpp).
// Only kiln::Error may escape the library; anything else (another exception, a sanitizer report,
// a crash) is a bug.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "kiln/error.h"
#include "onnx/importer.h"
#include "plan/plan.h"

namespace kiln::fuzz_entries {

// Plan loader: once as Engine::load would (magic, version, build id, target, checksum, body) and
// once with the build id and checksum checks off, so mutated inputs reach the metadata parser.
// A plan that loads must re-serialize to bytes that load back to the same serialization.
inline void plan_loader(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)plan::deserialize(bytes, "fuzz.kiln");
  } catch (const Error&) {
  }
  plan::ReadOptions lax;
  lax.check_build_id = false;
  lax.verify_checksum = false;
  std::shared_ptr<detail::EngineImpl> e;
  try {
    e = plan::deserialize(std::make_shared<const std::string>(std::move(bytes)), "fuzz.kiln", lax);
  } catch (const Error&) {
    return;
  }
  std::string once = plan::serialize(*e);
  std::string twice = plan::serialize(*plan::deserialize(std::make_shared<const std::string>(once), "again", lax));
  if (once != twice) throw std::logic_error("plan re-serialization is not stable");
}

// ONNX importer on raw ModelProto bytes, no external data allowed.
inline void onnx_importer(const uint8_t* data, size_t size) {
  try {
    (void)onnx_import::import_model_bytes(std::string(reinterpret_cast<const char*>(data), size), "");
  } catch (const Error&) {
  }
}

}  // namespace kiln::fuzz_entries
