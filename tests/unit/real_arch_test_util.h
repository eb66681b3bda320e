// Helpers for the tests that run the committed real-architecture models (tests/models/real_arch, docs/models.md):
// their paths, the batch profile every test builds them with, the ONNX Runtime reference cases the fixture test
// gen_real_arch_refs writes, and the (architecture, exporter) parameter of the parametrized tests.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/kiln.h"
#include "runtime/cpu/cpu_executor.h"

namespace kiln::real_arch_test {

inline const std::string kModels = std::string(KILN_SOURCE_DIR) + "/tests/models/real_arch";
inline const std::string kRefs = std::string(KILN_TEST_MODELS) + "/real_arch";

// Profile for every input: batch (dim 0, dynamic in the model) mn / opt / mx, the other dims as declared.
inline Profile batch_profile(const Model& model, int64_t mn = 1, int64_t opt = 2, int64_t mx = 4) {
  Profile p;
  for (const auto& ti : model.inputs()) {
    EXPECT_FALSE(ti.dims.empty() || ti.dims[0].is_static()) << ti.str() << ": the batch dim should be dynamic";
    Shape lo{mn}, o{opt}, hi{mx};
    for (size_t d = 1; d < ti.dims.size(); ++d) {
      EXPECT_TRUE(ti.dims[d].is_static()) << ti.str();
      lo.push_back(ti.dims[d].value), o.push_back(ti.dims[d].value), hi.push_back(ti.dims[d].value);
    }
    p.add_input_shape(ti.name, lo, o, hi);
  }
  return p;
}

// The tensors DIR/PREFIX<name>.npy for each of `infos` (the fixture's "in_" inputs and "out_" ONNX Runtime outputs).
inline TensorMap load_case(const std::string& dir, const std::vector<TensorInfo>& infos, const char* prefix) {
  TensorMap m;
  for (const auto& ti : infos) m[ti.name] = load_npy(dir + "/" + prefix + ti.name + ".npy");
  return m;
}

// Graph g (an engine's graph), run by the reference kernels on each of the fixture's `cases` of model `tag`, matches
// ONNX Runtime's outputs within the tolerance row of `prec` ("fp32", "fp16", "bf16").
inline void expect_reference_run_matches(const ir::Graph& g, const Model& m, const std::string& tag, const char* prec,
                                         const std::vector<std::string>& cases = {"b1", "b3"}) {
  for (const std::string& c : cases) {
    const std::string dir = kRefs + "/" + tag + "/" + c;
    const TensorMap got = runtime::cpu::run_graph_reference(g, load_case(dir, m.inputs(), "in_"));
    const TensorMap want = load_case(dir, m.outputs(), "out_");
    for (const auto& o : m.outputs()) {
      const Comparison cmp = compare(got.at(o.name), want.at(o.name), tolerance_for(prec));
      EXPECT_TRUE(cmp.passed) << tag << " " << prec << " " << c << " " << o.name << ": " << cmp.reason;
    }
  }
}

struct Arch {
  std::string arch, exporter;
};
inline std::string arch_name(const testing::TestParamInfo<Arch>& p) { return p.param.arch + "_" + p.param.exporter; }

}  // namespace kiln::real_arch_test
