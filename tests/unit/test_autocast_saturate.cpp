// Autocast converts float32 initializers to float16 / bfloat16 saturating: a finite value beyond the low type's range
// becomes its largest finite value, not Inf. Hugging Face T5 (both PyTorch exporters) masks attention with
// Mul(1 - mask, float32 min): with float32 min turned into -Inf, 0 * -Inf = NaN at every unmasked position, and the
// whole FP16 / BF16 engine output was NaN (tests/unit/test_real_arch.cpp, t5_encoder). This is that pattern alone.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/op_registry.h"
#include "kiln/compare.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_executor.h"
#include "util/half.h"

namespace kiln {
namespace test_autocast_saturate_cpp {

Tensor f32(Shape s, std::vector<float> v) { return Tensor::from_vector(DType::Float32, std::move(s), v); }

ir::Node node(const std::string& op, std::vector<std::string> in, const std::string& out) {
  ir::Node n;
  n.name = out;
  n.op_type = op;
  n.opset = 17;
  n.inputs = std::move(in);
  n.outputs = {out};
  return n;
}

// p = Softmax(MatMul(x, w) + (1 - mask) * float32_min), float32 [2, 4].
ir::Graph masked_softmax() {
  ir::register_all_ops();
  ir::Graph g;
  g.name = "t5_mask";
  g.inputs = {"x", "mask"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 4});
  g.types["mask"] = ir::ValueType::of(DType::Float32, {2, 4});
  g.initializers["w"] = f32({4, 4}, {0.5f, -1, 2, 0.25f, 1, 0.5f, -0.5f, 1.5f, -2, 1, 0.75f, 0.5f, 0.3f, -0.2f, 1, -1});
  g.initializers["one"] = f32({}, {1.0f});
  g.initializers["min"] = f32({}, {std::numeric_limits<float>::lowest()});
  g.nodes = {node("MatMul", {"x", "w"}, "scores"), node("Sub", {"one", "mask"}, "inv"),
             node("Mul", {"inv", "min"}, "bias"), node("Add", {"scores", "bias"}, "z"),
             node("Softmax", {"z"}, "p")};
  g.outputs = {"p"};
  ir::infer_types(g);
  return g;
}

TEST(AutocastSaturate, Float32MinMaskStaysFiniteInFp16AndBf16) {
  const TensorMap feeds{{"x", f32({2, 4}, {1, -0.5f, 0.25f, 2, -1, 0.5f, 1.5f, -2})},
                        {"mask", f32({2, 4}, {1, 1, 1, 1, 1, 1, 0, 0})}};
  ir::Graph ref_g = masked_softmax();
  const Tensor ref = runtime::cpu::run_graph_reference(ref_g, feeds).at("p");
  EXPECT_EQ(ref.as<float>()[6], 0.0f);  // masked
  for (DType low : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(low));
    ir::Graph g = masked_softmax();
    passes::AutocastOptions o;
    o.low = low;
    ASSERT_TRUE(passes::autocast(g, o));
    ir::infer_types(g);
    // The converted float32 min is the low type's lowest finite value.
    bool found = false;
    for (const auto& [name, t] : g.initializers) {
      if (t.dtype() != low || t.numel() != 1) continue;
      const uint16_t bits = t.as<uint16_t>()[0];
      const float v = low == DType::Float16 ? util::half_to_float(bits) : util::bf16_to_float(bits);
      if (v < -1e4f) {
        found = true;
        EXPECT_TRUE(std::isfinite(v)) << name;
        EXPECT_EQ(bits, low == DType::Float16 ? 0xFBFF : 0xFF7F) << name;
      }
    }
    EXPECT_TRUE(found) << "no converted float32-min initializer";
    const Tensor got = runtime::cpu::run_graph_reference(g, feeds).at("p");
    const Comparison c = compare(got, ref, tolerance_for(low == DType::Float16 ? "fp16" : "bf16"));
    EXPECT_TRUE(c.passed) << c.reason;
  }
}

TEST(AutocastSaturate, InfinityAndNaNWeightsStayAsTheyAre) {
  ir::register_all_ops();
  ir::Graph g;
  g.inputs = {"x"};
  g.types["x"] = ir::ValueType::of(DType::Float32, {3});
  g.initializers["c"] = f32({3}, {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                  1e6f});
  g.nodes = {node("Mul", {"x", "c"}, "y")};
  g.outputs = {"y"};
  ir::infer_types(g);
  passes::AutocastOptions o;
  ASSERT_TRUE(passes::autocast(g, o));
  int checked = 0;
  for (const auto& [name, t] : g.initializers) {
    if (t.dtype() != DType::Float16) continue;
    EXPECT_TRUE(std::isinf(util::half_to_float(t.as<uint16_t>()[0]))) << name;
    EXPECT_TRUE(std::isnan(util::half_to_float(t.as<uint16_t>()[1]))) << name;
    EXPECT_EQ(util::half_to_float(t.as<uint16_t>()[2]), 65504.0f) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 1);
}

}  // namespace test_autocast_saturate_cpp
}  // namespace kiln
