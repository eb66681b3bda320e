// Writes the plan fuzzing seeds (fuzz/corpus/plan/) when KILN_WRITE_PLAN_SEEDS names a folder:
//   KILN_WRITE_PLAN_SEEDS=fuzz/corpus/plan build/tests/kiln_tests --gtest_filter=PlanSeeds.*
// Otherwise it only checks that the seeds can be made and stay small.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "unit/plan_test_util.h"
#include "util/fs.h"

namespace kiln::test_plan_seeds_cpp {

std::vector<std::pair<std::string, detail::EngineImpl>> seeds() {
  std::vector<std::pair<std::string, detail::EngineImpl>> v;
  v.emplace_back("full.kiln", plan_test::make_engine());
  detail::EngineImpl per = plan_test::make_engine();  // per-profile tactics (format 3)
  for (size_t p = 0; p < per.profiles.size(); ++p) {
    std::vector<std::string> t;
    for (const auto& n : per.graph.nodes) t.push_back(p == 0 ? n.tactic : n.tactic + "#p1");
    per.profile_tactics.push_back(t);
  }
  v.emplace_back("profile_tactics.kiln", per);
  v.emplace_back("empty.kiln", plan_test::make_empty_engine());
  detail::EngineImpl sub = plan_test::make_empty_engine();
  sub.graph = *plan_test::branch_graph("nest", 4);
  sub.graph.inputs = {"a"};
  sub.inputs = {TensorInfo{"a", DType::Int64, {Dim{-1, "n"}, Dim{2, ""}}}};
  sub.outputs = {TensorInfo{"nest_out", DType::Float32, {Dim{2, ""}}}};
  Profile p;
  p.add_input_shape("a", {1, 2}, {3, 2}, {5, 2});
  sub.profiles = {p};
  sub.precision = "fp16";
  sub.model_hash = "abc";
  v.emplace_back("nested.kiln", sub);
  detail::EngineImpl w = plan_test::make_empty_engine();
  for (DType dt : all_dtypes())
    w.graph.initializers[std::string("w_") + dtype_name(dt)] = plan_test::iota_tensor(dt, {3}, static_cast<int>(dt));
  w.graph.initializers["zero"] = Tensor(DType::Int8, {0});
  v.emplace_back("weights.kiln", w);
  return v;
}

TEST(PlanSeeds, Write) {
  const char* dir = std::getenv("KILN_WRITE_PLAN_SEEDS");
  for (auto& [name, e] : seeds()) {
    std::string bytes = plan::serialize(e);
    EXPECT_LT(bytes.size(), 64u * 1024) << name;
    EXPECT_NO_THROW(plan::deserialize(bytes, name)) << name;
    if (dir) {
      std::filesystem::create_directories(dir);
      util::write_file_atomic(util::join_path(dir, name), bytes);
    }
  }
}

}  // namespace kiln::test_plan_seeds_cpp
