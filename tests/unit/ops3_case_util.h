// Runs the single-op cases of tests/models/gen_ops3_models.py (the gen_ops3_models fixture test): each model goes through
// kiln's importer, whole-graph type inference and the reference kernels; every output is compared with the
// expected one (onnxruntime 1.23.2, or the onnx reference evaluator where cases.txt says "ref") using the FP32 row
// of the tolerance table (integer / bool outputs exact), and inferred types must agree with the computed outputs.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/compare.h"
#include "kiln/io.h"
#include "kiln/model.h"
#include "onnx/model_impl.h"
#include "runtime/cpu/cpu_executor.h"

namespace kiln::test_ops3 {

inline std::string ops3_dir() { return std::string(KILN_TEST_MODELS) + "/ops3"; }

// Names of the generated cases starting with `prefix`, in generation order.
inline std::vector<std::string> ops3_cases(const std::string& prefix) {
  std::ifstream f(ops3_dir() + "/cases.txt");
  EXPECT_TRUE(f.good()) << "missing " << ops3_dir() << "/cases.txt (run ctest: fixture test gen_ops3_models)";
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

inline void check_ops3_case(const std::string& name) {
  SCOPED_TRACE("ops3 case " + name);
  const std::string dir = ops3_dir() + "/" + name;
  Model model = Model::load(dir + "/model.onnx");
  ir::Graph g = model.impl()->m.graph;
  ir::infer_types(g);
  TensorMap feeds;
  for (const auto& ti : model.inputs()) feeds[ti.name] = load_npy(dir + "/in_" + ti.name + ".npy");
  TensorMap res = runtime::cpu::run_graph_reference(g, feeds);
  for (const auto& ti : model.outputs()) {
    const Tensor want = load_npy(dir + "/out_" + ti.name + ".npy");
    ASSERT_TRUE(res.count(ti.name)) << ti.name;
    const Tensor& got = res.at(ti.name);
    Comparison c = compare(got, want, tolerance_for("fp32"));
    EXPECT_TRUE(c.passed) << "output " << ti.name << ": " << c.reason << " (max abs " << c.max_abs << "; got "
                          << got.type_str() << ", want " << want.type_str() << ")";
    const ir::ValueType* t = g.type_of(ti.name);
    ASSERT_NE(t, nullptr) << "no inferred type for " << ti.name;
    EXPECT_EQ(t->dtype, got.dtype()) << ti.name;
    ASSERT_TRUE(t->has_rank) << ti.name << " inferred " << t->str();
    ASSERT_EQ(t->dims.size(), got.shape().size()) << ti.name << " inferred " << t->str();
    for (size_t d = 0; d < t->dims.size(); ++d) {
      if (t->dims[d].is_static()) {
        EXPECT_EQ(t->dims[d].value, got.shape()[d]) << ti.name << " inferred " << t->str();
      }
    }
  }
}

// Every generated case of a family; `expected` pins the count so a lost case is noticed.
inline void check_ops3_family(const std::string& prefix, size_t expected) {
  const std::vector<std::string> cases = ops3_cases(prefix);
  EXPECT_EQ(cases.size(), expected) << "cases named " << prefix << "*";
  for (const auto& c : cases) check_ops3_case(c);
}

}  // namespace kiln::test_ops3
