// Real architectures (issue 3 part 5; docs/models.md): ResNet-18, MobileNetV2, EfficientNet-B0, ViT, Swin, BERT,
// GPT-2 and a T5 encoder in small configurations, each exported by PyTorch's dynamo and TorchScript exporters with a
// dynamic batch dim (tests/models/real_arch/, made by tests/models/gen_real_arch.py). The fixture gen_real_arch_refs
// writes seeded inputs and ONNX Runtime reference outputs at batch 1 and 3, and batch 3 with row 0 changed.
// Each test builds one engine (profile batch min 1 / opt 2 / max 4) for one target and precision and checks:
//  - every output at batch 1, 3 and the changed batch 3 against ONNX Runtime's float32 output, within the
//    tolerance table's row for the engine's precision (FP16 / BF16 engines against the FP32 reference);
//  - spread: every output's std >= 1e-2 (a dead network cannot pass);
//  - input sensitivity: changing row 0's input changes row 0's outputs (rel L2 > 1e-2) and leaves rows 1 and 2 as
//    they were; for GPT-2 (causal) the changed last token leaves the earlier positions of row 0 as they were.
// Filter: --gtest_filter='RealArch*'. CUDA engines run where KILN_WITH_CUDA and a device exist, else skip.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "real_arch_test_util.h"
#include "kiln/compare.h"
#include "kiln/device.h"
#include "kiln/io.h"
#include "kiln/kiln.h"

namespace kiln {
namespace test_real_arch_cpp {

using namespace real_arch_test;


const std::vector<std::string> kArchs = {"resnet18", "mobilenet_v2", "efficientnet_b0", "vit",
                                         "swin",     "bert",         "gpt2",            "t5_encoder"};
const std::vector<std::string> kExporters = {"dynamo", "torchscript"};

struct Param {
  std::string arch, exporter;
  Target target;
  std::string prec;  // tolerance row: fp32, tf32 (CUDA only), fp16, bf16
};

// Readable parameter in gtest / ctest listings (instead of the bytes of the struct).
void PrintTo(const Param& p, std::ostream* os) {
  *os << p.arch << " " << p.exporter << " " << p.prec << " " << target_name(p.target);
}

std::string param_name(const testing::TestParamInfo<Param>& p) {
  return p.param.arch + "_" + p.param.exporter + "_" + p.param.prec + "_" + target_name(p.param.target);
}

std::vector<Param> all_params() {
  std::vector<Param> v;
  for (Target t : {Target::Cpu, Target::Cuda})
    for (const auto& a : kArchs)
      for (const auto& e : kExporters)
        for (const char* p : {"fp32", "tf32", "fp16", "bf16"})
          if (t == Target::Cuda || std::string(p) != "tf32") v.push_back({a, e, t, p});
  return v;
}

// Rows [begin, end) of axis 0, copied.
Tensor rows(const Tensor& t, int64_t begin, int64_t end) {
  Shape s = t.shape();
  const int64_t per = s[0] ? t.numel() / s[0] : 0;
  const size_t esz = dtype_size(t.dtype());
  s[0] = end - begin;
  return Tensor::from_bytes(t.dtype(), s, static_cast<const char*>(t.data()) + begin * per * esz,
                            static_cast<size_t>((end - begin) * per) * esz);
}

double stddev(const Tensor& t) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.at_double(i), s2 += t.at_double(i) * t.at_double(i);
  const double m = s / static_cast<double>(t.numel());
  return std::sqrt(std::max(0.0, s2 / static_cast<double>(t.numel()) - m * m));
}



class RealArchModel : public testing::TestWithParam<Param> {};

TEST_P(RealArchModel, MatchesOnnxRuntimeWithSpreadAndSensitivity) {
  const Param& p = GetParam();
  if (p.target == Target::Cuda) {
#if KILN_WITH_CUDA
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
#else
    GTEST_SKIP() << "no CUDA device (built without CUDA)";
#endif
  }
  const std::string tag = p.arch + "_" + p.exporter;
  const std::string refs = kRefs + "/" + tag;
  Model model = Model::load(kModels + "/" + tag + ".onnx");
  BuildConfig cfg;
  cfg.target = p.target;
  cfg.precision = p.prec == "fp16" ? Precision::FP16 : p.prec == "bf16" ? Precision::BF16 : Precision::FP32;
  cfg.enable_tf32 = p.prec == "tf32";
  cfg.profiles.push_back(batch_profile(model));
  const auto t0 = std::chrono::steady_clock::now();
  Engine engine = build_engine(model, cfg);
  const auto t1 = std::chrono::steady_clock::now();
  // Every node of these architectures has a CUDA kernel: none may run with the host fallback (which also stops
  // CUDA graph capture).
  if (p.target == Target::Cuda) {
    std::string host_nodes;
    for (const NodeInfo& n : engine.nodes())
      if (n.tactic == "host") host_nodes += " " + n.name + " (" + n.op + " " + n.dtype + ")";
    EXPECT_EQ(engine.memory_info().host_fallback_nodes, 0u) << "host fallback:" << host_nodes;
  }
  ExecutionContext ctx = engine.create_context();
  const Tolerance tol = tolerance_for(p.prec);

  std::map<std::string, TensorMap> got;
  std::ostringstream errs;
  for (const char* c : {"b1", "b3", "b3_alt"}) {
    SCOPED_TRACE(std::string("case ") + c);
    const std::string dir = refs + "/" + c;
    got[c] = ctx.run(load_case(dir, model.inputs(), "in_"));
    const TensorMap want = load_case(dir, model.outputs(), "out_");
    for (const auto& o : model.outputs()) {
      ASSERT_TRUE(got[c].count(o.name)) << o.name;
      const Tensor& g = got[c].at(o.name);
      const Comparison cmp = compare(g, want.at(o.name), tol);
      EXPECT_TRUE(cmp.passed) << tag << " " << p.prec << " output " << o.name << ": " << cmp.reason << " (max abs "
                              << cmp.max_abs << ", rel L2 " << cmp.rel_l2 << ")";
      EXPECT_GE(stddev(g), 1e-2) << o.name << " is (nearly) constant";
      errs << " " << c << ":" << o.name << " maxabs " << cmp.max_abs << " relL2 " << cmp.rel_l2;
    }
  }
  const auto t2 = std::chrono::steady_clock::now();

  // Sensitivity: b3_alt differs from b3 only in row 0 (the fixture's perturb()).
  for (const auto& o : model.outputs()) {
    SCOPED_TRACE("output " + o.name);
    const Tensor& a = got["b3"].at(o.name);
    const Tensor& b = got["b3_alt"].at(o.name);
    ASSERT_EQ(a.shape().size(), b.shape().size());
    ASSERT_EQ(a.shape()[0], 3);
    const Comparison same = compare(rows(b, 1, 3), rows(a, 1, 3), tolerance_for("fp32"));
    EXPECT_TRUE(same.passed) << "rows 1-2 changed although only row 0's input did: " << same.reason;
    Tensor a0 = rows(a, 0, 1), b0 = rows(b, 0, 1);
    if (p.arch == "gpt2") {  // [batch, seq, hidden]: the last token of row 0 changed
      const int64_t seq = a.shape()[1];
      a0 = a0.reshaped(Shape(a.shape().begin() + 1, a.shape().end()));
      b0 = b0.reshaped(Shape(b.shape().begin() + 1, b.shape().end()));
      const Comparison before = compare(rows(b0, 0, seq - 1), rows(a0, 0, seq - 1), tolerance_for("fp32"));
      EXPECT_TRUE(before.passed) << "causal decoder: positions before the changed token changed: " << before.reason;
      a0 = rows(a0, seq - 1, seq), b0 = rows(b0, seq - 1, seq);
    }
    const double moved = compare(b0, a0, tolerance_for("fp32")).rel_l2;
    EXPECT_GT(moved, 1e-2) << "row 0's output did not follow its changed input";
  }
  std::cout << "[real_arch] " << tag << " " << p.prec << " " << target_name(p.target) << ": build "
            << std::chrono::duration<double>(t1 - t0).count() << " s, 3 runs "
            << std::chrono::duration<double>(t2 - t1).count() << " s;" << errs.str() << "\n";
}

INSTANTIATE_TEST_SUITE_P(RealArch, RealArchModel, testing::ValuesIn(all_params()), param_name);

// The committed models and the fixture's cases are the ones the parametrized tests expect, and each export is
// what its exporter makes (the opsets the issue names, the dynamic batch dim).
TEST(RealArchFiles, EveryArchitectureHasBothExportsAndReferences) {
  std::ifstream f(kRefs + "/cases.txt");
  ASSERT_TRUE(f.good()) << "missing " << kRefs << "/cases.txt (run ctest: fixture test gen_real_arch_refs)";
  std::set<std::string> cases;
  for (std::string line; std::getline(f, line);) cases.insert(line);
  EXPECT_EQ(cases.size(), kArchs.size() * kExporters.size());
  for (const auto& a : kArchs) {
    for (const auto& e : kExporters) {
      const std::string tag = a + "_" + e;
      SCOPED_TRACE(tag);
      EXPECT_TRUE(cases.count(tag));
      Model m = Model::load(kModels + "/" + tag + ".onnx");
      if (e == "dynamo") {
        EXPECT_GE(m.opset(), 18);
        EXPECT_EQ(m.ir_version(), 10);
      } else {
        EXPECT_EQ(m.opset(), 17);
      }
      EXPECT_EQ(m.producer().rfind("pytorch", 0), 0u) << m.producer();
      for (const auto& ti : m.inputs()) EXPECT_FALSE(ti.dims.at(0).is_static()) << ti.str();
    }
  }
}

}  // namespace test_real_arch_cpp
}  // namespace kiln
