// CUDA kernels of the memory-bound channels-last ops against the CPU reference: kiln.Pool (nhwc_pool.cu) over every
// window attribute (pads, auto_pad, strides, dilations, ceil_mode, count_include_pad) in float16 / bfloat16 /
// float32, with channel counts that take the 16-byte vector path and ones that take the scalar path (and the scalar
// path forced with KILN_NHWC_POOL_VECTOR=0); kiln.ToNhwc (nhwc_entry.cu) against the reference of the Transpose + Pad
// pair it replaces, narrow and general kernels. Skips without a CUDA device.
#if KILN_WITH_CUDA
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <random>

#include "fuse_test_util.h"
#include "kiln/compare.h"
#include "kiln/device.h"
#include "ops/nhwc.h"
#include "runtime/cuda/executor.h"
#include "runtime/cuda/kernel.h"

namespace kiln::test_fuse {
namespace {

using ir::Attr;
Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

const char* tol_name(DType dt) {
  return dt == DType::BFloat16 ? "bf16" : dt == DType::Float16 ? "fp16" : "fp32";
}

// Random values; integer dtypes get random bytes (the entry kernel copies bits).
Tensor random_any(DType dt, const Shape& s, uint32_t seed) {
  if (dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float32) return random_tensor(dt, s, seed, -4, 4);
  Tensor t(dt, s);
  std::mt19937 rng(seed);
  auto* p = static_cast<unsigned char*>(t.mutable_data());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng() & 0xff);
  return t;
}

// Sets an environment variable for the scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* v) : name(n) { setenv(n, v, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

struct PoolCase {
  const char* name;
  const char* op;
  int64_t opset;
  std::map<std::string, Attr> attrs;
};

std::vector<PoolCase> pool_cases() {
  return {
      {"max 3x3/2 pad 1 (ResNet stem)", "MaxPool", 12,
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}},
      {"max 3x3/2 ceil_mode", "MaxPool", 12,
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"ceil_mode", int64_t(1)}}},
      {"max 2x3 dilations 2,1 asymmetric pads", "MaxPool", 12,
       {{"kernel_shape", ints({2, 3})}, {"dilations", ints({2, 1})}, {"pads", ints({1, 0, 0, 2})}}},
      {"max 3x3/2 SAME_UPPER", "MaxPool", 12,
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"auto_pad", std::string("SAME_UPPER")}}},
      {"max 2x2/2", "MaxPool", 12, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}},
      {"max 1x1/2", "MaxPool", 12, {{"kernel_shape", ints({1, 1})}, {"strides", ints({2, 2})}}},
      {"avg 3x3/2 pad 1 count_include_pad", "AveragePool", 19,
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
        {"count_include_pad", int64_t(1)}}},
      {"avg 3x3/2 pad 1 excluding pads", "AveragePool", 19,
       {{"kernel_shape", ints({3, 3})}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}},
      {"avg 3x2 asymmetric pads ceil_mode strides 2,3", "AveragePool", 19,
       {{"kernel_shape", ints({3, 2})}, {"pads", ints({0, 1, 2, 0})}, {"ceil_mode", int64_t(1)},
        {"strides", ints({2, 3})}}},
      {"avg 2x2 dilations 2 count_include_pad ceil_mode", "AveragePool", 19,
       {{"kernel_shape", ints({2, 2})}, {"dilations", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})},
        {"count_include_pad", int64_t(1)}, {"ceil_mode", int64_t(1)}, {"strides", ints({2, 2})}}},
      {"avg 3x3 SAME_LOWER count_include_pad", "AveragePool", 19,
       {{"kernel_shape", ints({3, 3})}, {"auto_pad", std::string("SAME_LOWER")}, {"count_include_pad", int64_t(1)}}},
      {"avg 2x2/2 (opset 11)", "AveragePool", 11, {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}}},
  };
}

// A one-node graph: kiln.Pool(case) on x [N, H, W, C].
ir::Graph kpool_graph(const PoolCase& c, DType dt, const Shape& xs) {
  GraphBuilder b;
  const std::string x = b.input("x", dt, xs);
  ir::Node n;
  n.name = "kpool", n.domain = ops::nhwc::kDomain, n.op_type = ops::nhwc::kPool, n.opset = 1;
  n.inputs = {x};
  n.outputs = {"y"};
  n.attrs = c.attrs;
  n.attrs["layout"] = std::string(ops::nhwc::kLayout);
  n.attrs["op"] = std::string(c.op);
  n.attrs["onnx_opset"] = c.opset;
  b.g.nodes.push_back(n);
  b.output("y");
  return b.typed();
}

TEST(CudaNhwcMove, PoolMatchesTheReferenceForEveryAttributeCombination) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // C = 64 and 16: 16-byte vectors in every dtype; 12: vectors in float32 only; 6: scalar everywhere.
  const std::vector<Shape> shapes = {{2, 9, 11, 16}, {2, 17, 16, 64}, {1, 10, 9, 12}, {3, 7, 8, 6}};
  uint32_t seed = 900;
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32})
    for (const PoolCase& c : pool_cases())
      for (const Shape& xs : shapes)
        for (bool scalar : {false, true}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " " + c.name + " x " + shape_str(xs) +
                       (scalar ? " (scalar forced)" : ""));
          const ir::Graph g = kpool_graph(c, dt, xs);
          const TensorMap feeds = {{"x", random_tensor(dt, xs, seed++, -3, 3)}};
          const Tensor want = runtime::cpu::run_graph_reference(g, feeds).at("y");
          std::unique_ptr<ScopedEnv> env;
          if (scalar) env = std::make_unique<ScopedEnv>("KILN_NHWC_POOL_VECTOR", "0");
          const Tensor got = runtime::cuda::run_graph_cuda(g, feeds).at("y");
          ASSERT_EQ(got.shape(), want.shape());
          if (std::string(c.op) == "MaxPool") {
            EXPECT_TRUE(bit_equal(got, want)) << "MaxPool selects elements: bit-exact";
          } else {
            const Comparison cmp = compare(got, want, tolerance_for(tol_name(dt)));
            EXPECT_TRUE(cmp.passed) << cmp.reason << " (max abs " << cmp.max_abs << ")";
          }
        }
}

// A view whose base is not 16-byte aligned is not possible through the executor, so the vector path's other
// precondition is the channel count: the stem shape at a batch that still runs quickly, both paths bit-equal.
TEST(CudaNhwcMove, StemMaxPoolVectorAndScalarPathsAgree) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const PoolCase c = pool_cases()[0];
  const Shape xs{4, 112, 112, 64};
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    const ir::Graph g = kpool_graph(c, dt, xs);
    const TensorMap feeds = {{"x", random_tensor(dt, xs, 77, -5, 5)}};
    const Tensor vec = runtime::cuda::run_graph_cuda(g, feeds).at("y");
    Tensor sca;
    {
      ScopedEnv env("KILN_NHWC_POOL_VECTOR", "0");
      sca = runtime::cuda::run_graph_cuda(g, feeds).at("y");
    }
    EXPECT_EQ(vec.shape(), (Shape{4, 56, 56, 64}));
    EXPECT_TRUE(bit_equal(vec, sca));
    EXPECT_TRUE(bit_equal(vec, runtime::cpu::run_graph_reference(g, feeds).at("y")));
  }
}

// kiln.ToNhwc against the reference of Transpose(perm 0,2,3,1) + Pad(channels), bit-exact, narrow and general
// kernels.
TEST(CudaNhwcMove, ToNhwcMatchesTransposeAndPad) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  struct Case {
    Shape x;
    int64_t channels;  // 0: attribute absent
  };
  const std::vector<Case> cases = {{{2, 3, 17, 19}, 8},  {{2, 3, 17, 19}, 4}, {{1, 3, 9, 9}, 16}, {{2, 1, 5, 7}, 8},
                                   {{2, 4, 6, 6}, 4},    {{2, 3, 7, 5}, 5},   {{2, 3, 7, 5}, 0},  {{1, 24, 9, 10}, 32},
                                   {{3, 8, 11, 13}, 8}};
  uint32_t seed = 40;
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float32, DType::UInt8, DType::Int64})
    for (const Case& c : cases)
      for (bool general : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " x " + shape_str(c.x) + " channels " +
                     std::to_string(c.channels) + (general ? " (general kernel)" : ""));
        GraphBuilder b;
        const std::string x = b.input("x", dt, c.x);
        ir::Node n;
        n.name = "entry", n.domain = ops::nhwc::kDomain, n.op_type = ops::nhwc::kToNhwc, n.opset = 1;
        n.inputs = {x};
        n.outputs = {"y"};
        if (c.channels) n.attrs["channels"] = c.channels;
        b.g.nodes.push_back(n);
        b.output("y");
        const ir::Graph g = b.typed();
        // The pair it replaces.
        GraphBuilder p;
        const std::string px = p.input("x", dt, c.x);
        const std::string t = p.node("Transpose", {px}, {{"perm", ints({0, 2, 3, 1})}}, 13);
        const int64_t extra = c.channels ? c.channels - c.x[1] : 0;
        p.output(p.node("Pad", {t, p.constant("pads", Tensor::from_vector<int64_t>(
                                                          DType::Int64, {8}, {0, 0, 0, 0, 0, 0, 0, extra}))},
                        {}, 13));
        const TensorMap feeds = {{"x", random_any(dt, c.x, seed++)}};
        const Tensor want = runtime::cpu::run_graph_reference(p.typed(), feeds).at(p.g.outputs[0]);
        std::unique_ptr<ScopedEnv> env;
        if (general) env = std::make_unique<ScopedEnv>("KILN_NHWC_ENTRY_NARROW", "0");
        const Tensor got = runtime::cuda::run_graph_cuda(g, feeds).at("y");
        EXPECT_TRUE(bit_equal(got, want));
      }
}

TEST(CudaNhwcMove, TacticsAreRegistered) {
  runtime::cuda::register_all_cuda_kernels();
  EXPECT_EQ(runtime::cuda::cuda_tactics("kiln", "Pool").size(), 1u);
  EXPECT_EQ(runtime::cuda::cuda_tactics("kiln", "ToNhwc").size(), 1u);
}

}  // namespace
}  // namespace kiln::test_fuse
#endif
