// Replays every fuzz seed (fuzz/corpus/**) and every crasher (fuzz/crashers/**) through the fuzz
// entry points in a plain build: only kiln::Error may come out, nothing may crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <exception>
#include <filesystem>

#include "fuzz_entries.h"
#include "plan/plan.h"
#include "util/fs.h"

namespace kiln::test_fuzz_regressions_cpp {

std::vector<std::string> files_under(const std::string& rel) {
  std::vector<std::string> v;
  std::filesystem::path dir = std::filesystem::path(KILN_SOURCE_DIR) / rel;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return v;
  for (const auto& ent : std::filesystem::recursive_directory_iterator(dir))
    if (ent.is_regular_file()) v.push_back(ent.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

void replay(const std::string& path) {
  std::string bytes = util::read_file(path);
  auto data = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    fuzz_entries::plan_loader(data, bytes.size());
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": plan loader let through: " << e.what();
  }
  try {
    fuzz_entries::onnx_importer(data, bytes.size());
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": ONNX importer let through: " << e.what();
  }
}

TEST(FuzzRegressions, CorporaAndCrashersReplayCleanly) {
  std::vector<std::string> files = files_under("fuzz/corpus");
  std::vector<std::string> crashers = files_under("fuzz/crashers");
  files.insert(files.end(), crashers.begin(), crashers.end());
  EXPECT_GE(files.size(), 6u);
  for (const auto& f : files) replay(f);
}

// The plan seeds are valid plans (of whatever build wrote them).
TEST(FuzzRegressions, PlanSeedsAreValidPlans) {
  std::vector<std::string> seeds = files_under("fuzz/corpus/plan");
  EXPECT_GE(seeds.size(), 3u);
  plan::ReadOptions opts;
  opts.check_build_id = false;
  for (const auto& f : seeds) {
    try {
      auto e = plan::deserialize(std::make_shared<const std::string>(util::read_file(f)), f, opts);
      EXPECT_EQ(e->target, "cpu") << f;
    } catch (const Error& err) {
      ADD_FAILURE() << f << ": " << err.what();
    }
  }
}

}  // namespace kiln::test_fuzz_regressions_cpp
