// Autocast over every single-op and end-to-end case of tests/models/gen_ops3_models.py (Attention, ConvTranspose,
// Einsum, Resize, Pad, TopK, NonZero, If, ...): each model builds as an FP16 and a BF16 engine and its float outputs
// match the expected float32 outputs within the tolerance table's row for that precision. Integer outputs (indices,
// shapes) are not compared: rounding the values they are computed from may legitimately flip ties.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "kiln/io.h"
#include "kiln/kiln.h"

using namespace kiln;

namespace {

std::vector<std::string> all_ops3_cases() {
  std::ifstream f(std::string(KILN_TEST_MODELS) + "/ops3/cases.txt");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string name;
    if (ls >> name) out.push_back(name);
  }
  return out;
}

}  // namespace

TEST(AutocastOps, Ops3CasesInFp16AndBf16) {
  const std::vector<std::string> cases = all_ops3_cases();
  ASSERT_GE(cases.size(), 100u) << "ops3 cases.txt missing or short (fixture test gen_ops3_models)";
  size_t low_nodes = 0, float_outputs = 0;
  for (const std::string& name : cases) {
    const std::string dir = std::string(KILN_TEST_MODELS) + "/ops3/" + name;
    Model model = Model::load(dir + "/model.onnx");
    TensorMap feeds;
    Profile profile;
    for (const auto& ti : model.inputs()) {
      feeds[ti.name] = load_npy(dir + "/in_" + ti.name + ".npy");
      profile.add_input_shape(ti.name, feeds[ti.name].shape(), feeds[ti.name].shape(), feeds[ti.name].shape());
    }
    for (Precision p : {Precision::FP16, Precision::BF16}) {
      SCOPED_TRACE(name + " " + precision_name(p));
      BuildConfig cfg;
      cfg.precision = p;
      cfg.profiles = {profile};
      Engine e;
      ASSERT_NO_THROW(e = build_engine(model, cfg));
      for (const auto& n : e.nodes()) low_nodes += n.dtype == "float16" || n.dtype == "bfloat16";
      ExecutionContext ctx = e.create_context();
      TensorMap out;
      ASSERT_NO_THROW(out = ctx.run(feeds));
      for (const auto& ti : model.outputs()) {
        const Tensor want = load_npy(dir + "/out_" + ti.name + ".npy");
        const Tensor& got = out.at(ti.name);
        EXPECT_EQ(got.dtype(), want.dtype()) << ti.name;
        if (!dtype_is_float(want.dtype())) continue;
        ++float_outputs;
        Comparison c = compare(got, want, tolerance_for(precision_name(p)));
        EXPECT_TRUE(c.passed) << "output " << ti.name << ": " << c.reason;
      }
    }
  }
  std::cout << "[autocast] ops3: " << cases.size() << " cases, " << float_outputs << " float outputs compared, "
            << low_nodes << " low-precision nodes\n";
  EXPECT_GT(low_nodes, cases.size());  // the low type ran (most cases have one or more low-precision nodes)
  EXPECT_GT(float_outputs, cases.size());
}
