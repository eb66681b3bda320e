// CUDA Conv / ConvTranspose kernels (src/runtime/cuda/kernels/conv.cu) against the CPU reference: tactic "cudnn"
// (float32 with TF32 off and on, float16, bfloat16, float64) and tactic "cuda" (kiln's direct kernels), over 1-D /
// 2-D / 3-D geometries with groups, strides, dilations, symmetric and asymmetric pads, auto_pad, output_padding and
// output_shape. Skips without a CUDA device; the tactic-registration test runs everywhere.
#if KILN_WITH_CUDA
#include <iterator>

#include "cuda_op_test_util.h"
#include "runtime/cuda/kernels/families.h"

namespace kiln {
namespace {

using ir::Attr;
using test_cuda::check_cuda_op;
using test_cuda::precision_of;
using test_cuda::rand_tensor;
using test_ops::Attrs;
using test_ops::In;

const DType kConvTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};

struct ConvCase {
  const char* name;
  Shape x, w;
  Attrs attrs;
  bool bias;
};

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }
Attr one(int64_t v) { return Attr{v}; }
Attr str(const char* s) { return Attr{std::string(s)}; }

std::vector<ConvCase> conv_cases() {
  return {
      {"2d pads 1 + bias", {2, 3, 9, 10}, {4, 3, 3, 3}, {{"pads", ints({1, 1, 1, 1})}}, true},
      {"2d stride 2 dilation 2 asymmetric pads", {1, 3, 11, 12}, {5, 3, 3, 2},
       {{"strides", ints({2, 2})}, {"dilations", ints({2, 1})}, {"pads", ints({0, 1, 2, 0})}}, true},
      {"2d asymmetric pads, end pad unused", {1, 2, 7, 7}, {3, 2, 3, 3},
       {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 2, 2})}}, false},
      {"2d SAME_UPPER stride 2", {2, 4, 8, 7}, {6, 4, 3, 3}, {{"auto_pad", str("SAME_UPPER")}, {"strides", ints({2, 2})}},
       true},
      {"2d SAME_LOWER", {1, 3, 7, 6}, {2, 3, 4, 2}, {{"auto_pad", str("SAME_LOWER")}}, false},
      {"2d VALID stride 3", {1, 3, 13, 11}, {4, 3, 2, 3}, {{"auto_pad", str("VALID")}, {"strides", ints({3, 3})}}, true},
      {"2d group 2", {2, 4, 7, 9}, {6, 2, 3, 3}, {{"group", one(2)}, {"pads", ints({1, 0, 1, 0})}}, true},
      {"2d depthwise", {2, 8, 10, 9}, {8, 1, 3, 3}, {{"group", one(8)}, {"pads", ints({1, 1, 1, 1})}}, true},
      {"2d 1x1", {3, 16, 5, 7}, {9, 16, 1, 1}, {}, true},
      {"1d group 2 stride 3", {2, 4, 17}, {6, 2, 5}, {{"group", one(2)}, {"strides", ints({3})}, {"pads", ints({2, 1})}},
       true},
      {"1d plain", {1, 3, 31}, {2, 3, 4}, {}, false},
      {"3d", {1, 2, 5, 6, 7}, {3, 2, 2, 3, 2}, {{"strides", ints({1, 2, 1})}, {"pads", ints({1, 1, 0, 1, 1, 0})}}, true},
      {"3d asymmetric", {2, 2, 4, 5, 6}, {4, 1, 3, 2, 3},
       {{"group", one(2)}, {"pads", ints({0, 1, 2, 1, 0, 0})}, {"dilations", ints({1, 2, 1})}}, false},
  };
}

std::vector<ConvCase> convt_cases() {
  return {
      {"2d stride 2 pads 1 output_padding 1", {2, 3, 5, 4}, {3, 4, 3, 3},
       {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}, {"output_padding", ints({1, 1})}}, true},
      {"2d plain", {1, 2, 4, 5}, {2, 3, 3, 2}, {}, true},
      {"2d asymmetric pads", {1, 2, 5, 5}, {2, 3, 3, 3}, {{"strides", ints({2, 1})}, {"pads", ints({1, 0, 0, 2})}}, false},
      {"2d group 2 dilation 2", {2, 4, 4, 5}, {4, 3, 3, 2},
       {{"group", one(2)}, {"dilations", ints({2, 2})}, {"strides", ints({1, 2})}}, true},
      {"2d depthwise stride 2", {1, 6, 5, 5}, {6, 1, 4, 4}, {{"group", one(6)}, {"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}},
       true},
      {"2d output_shape larger than full", {1, 2, 3, 3}, {2, 3, 3, 3},
       {{"strides", ints({2, 2})}, {"output_shape", ints({8, 9})}}, true},
      {"2d output_shape SAME_UPPER (negative begin pad)", {1, 2, 3, 3}, {2, 3, 3, 3},
       {{"strides", ints({2, 2})}, {"output_shape", ints({8, 8})}, {"auto_pad", str("SAME_UPPER")}}, true},
      {"2d SAME_UPPER", {1, 3, 4, 5}, {3, 2, 3, 3}, {{"auto_pad", str("SAME_UPPER")}, {"strides", ints({2, 2})}}, false},
      {"2d SAME_LOWER", {1, 3, 4, 5}, {3, 2, 4, 3}, {{"auto_pad", str("SAME_LOWER")}, {"strides", ints({2, 2})}}, true},
      {"1d stride 3 output_padding 2", {2, 3, 7}, {3, 2, 4}, {{"strides", ints({3})}, {"output_padding", ints({2})}}, true},
      {"3d", {1, 2, 3, 4, 3}, {2, 2, 2, 3, 2},
       {{"strides", ints({2, 1, 2})}, {"pads", ints({0, 1, 1, 0, 1, 0})}}, true},
  };
}

void run_cases(const std::string& op, const std::vector<ConvCase>& cases, const std::string& tactic,
               std::vector<DType> types = {std::begin(kConvTypes), std::end(kConvTypes)}) {
  uint32_t seed = 10;
  for (DType dt : types)
    for (const ConvCase& c : cases) {
      std::vector<In> in = {rand_tensor(dt, c.x, seed), test_ops::Const(rand_tensor(dt, c.w, seed + 1))};
      const int64_t m = op == "Conv" ? c.w[0] : c.w[1] * (c.attrs.count("group") ? std::get<int64_t>(c.attrs.at("group")) : 1);
      if (c.bias) in.push_back(test_ops::Const(rand_tensor(dt, {m}, seed + 2)));
      check_cuda_op(op, 11, in, c.attrs, 1, tactic, precision_of(dt), false, std::string(dtype_name(dt)) + " " + c.name);
      seed += 3;
    }
}

TEST(CudaConv, TacticsAreRegistered) {
  for (const char* op : {"Conv", "ConvTranspose"})
    for (DType dt : kConvTypes) {
      ir::Graph g = test_ops::make_graph(op, 11, {rand_tensor(dt, {1, 2, 5, 5}, 1), rand_tensor(dt, {2, 2, 3, 3}, 2)},
                                         {}, 1);
      std::vector<std::string> want = {"cudnn", "cuda"};
      const bool low = dt == DType::Float16 || dt == DType::BFloat16;
      if (std::string(op) == "Conv" && low) want.push_back("cudnn_nhwc");
      if (std::string(op) == "ConvTranspose" && low) want.insert(want.begin(), "cudnn_nhwc");  // the default there
      EXPECT_EQ(test_cuda::tactic_names(g), want) << op << " " << dtype_name(dt);
    }
}

TEST(CudaConv, ConvCudnn) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("Conv", conv_cases(), "cudnn");
}

TEST(CudaConv, ConvDirectKernel) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("Conv", conv_cases(), "cuda");
}

TEST(CudaConv, ConvCudnnChannelsLast) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("Conv", conv_cases(), "cudnn_nhwc", {DType::Float16, DType::BFloat16});
}

TEST(CudaConv, ConvTransposeCudnn) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("ConvTranspose", convt_cases(), "cudnn");
}

TEST(CudaConv, ConvTransposeCudnnChannelsLast) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("ConvTranspose", convt_cases(), "cudnn_nhwc", {DType::Float16, DType::BFloat16});
  // A decoder-sized case (channels multiple of 8: cuDNN's tensor-core NHWC kernels) with bias: it must take the
  // channels-last path, not the NCHW fallback.
  const uint64_t before = runtime::cuda::conv_transpose_nhwc_runs();
  check_cuda_op("ConvTranspose", 11,
                {rand_tensor(DType::Float16, {2, 64, 14, 14}, 7), test_ops::Const(rand_tensor(DType::Float16, {64, 32, 4, 4}, 8)),
                 test_ops::Const(rand_tensor(DType::Float16, {32}, 9))},
                {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}, 1, "cudnn_nhwc", "fp16", false,
                "fp16 decoder convtranspose");
  EXPECT_GT(runtime::cuda::conv_transpose_nhwc_runs(), before) << "cudnn_nhwc fell back to NCHW";
}

TEST(CudaConv, ConvTransposeDirectKernel) {
  KILN_SKIP_WITHOUT_CUDA();
  run_cases("ConvTranspose", convt_cases(), "cuda");
}

TEST(CudaConv, Tf32) {
  KILN_SKIP_WITHOUT_CUDA();
  check_cuda_op("Conv", 11,
                {rand_tensor(DType::Float32, {4, 32, 14, 14}, 1), test_ops::Const(rand_tensor(DType::Float32, {64, 32, 3, 3}, 2)),
                 test_ops::Const(rand_tensor(DType::Float32, {64}, 3))},
                {{"pads", ints({1, 1, 1, 1})}}, 1, "cudnn", "tf32", true, "tf32 conv");
  check_cuda_op("ConvTranspose", 11,
                {rand_tensor(DType::Float32, {2, 32, 7, 7}, 4), test_ops::Const(rand_tensor(DType::Float32, {32, 16, 4, 4}, 5))},
                {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}}, 1, "cudnn", "tf32", true, "tf32 convtranspose");
}

TEST(CudaConv, WeightsAsRuntimeInputs) {
  KILN_SKIP_WITHOUT_CUDA();
  // Weights and bias fed at run time (not initializers), batch of 5, odd sizes.
  for (DType dt : {DType::Float32, DType::Float16})
    check_cuda_op("Conv", 11,
                  {rand_tensor(dt, {5, 3, 11, 13}, 7), rand_tensor(dt, {7, 3, 5, 3}, 8), rand_tensor(dt, {7}, 9)},
                  {{"pads", ints({2, 1, 2, 1})}, {"strides", ints({2, 1})}}, 1, "cudnn", precision_of(dt), false,
                  std::string(dtype_name(dt)) + " runtime weights");
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
