// Bandwidth of the reduce / norm / softmax / pool kernels on >= 64 MB tensors, against a device-to-device copy of
// the same size (issue 5: >= 70% of copy bandwidth for softmax, the norms and last-axis reductions). Runs only with
// KILN_CUDA_BENCH=1 on a CUDA device; prints a markdown table and fails any bandwidth-bound case under 70%.
//   KILN_CUDA_BENCH=1 ./build/tests/kiln_tests --gtest_filter='CudaRowwiseBench.*'
#if KILN_WITH_CUDA
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cuda_red_test_util.h"

namespace kiln {
namespace {

using test_cured::NodeOnDevice;
using test_cured::rand_of;
using test_ops::Attrs;
using test_ops::Const;
using test_ops::In;

struct BenchCase {
  std::string label;
  std::string op;
  int64_t opset;
  std::vector<In> in;
  Attrs attrs;
  bool bound;  // a bandwidth-bound kernel the 70% target applies to
};

// Median milliseconds of `iters` timed runs of f on the test stream after `warm` untimed ones.
template <typename F>
double time_ms(F&& f, int warm = 3, int iters = 20) {
  cudaStream_t s = test_cured::env().stream;
  for (int i = 0; i < warm; ++i) f();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> t;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(a, s);
    f();
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

TEST(CudaRowwiseBench, BandwidthTable) {
  KILN_CURED_SKIP_WITHOUT_CUDA();
  if (!std::getenv("KILN_CUDA_BENCH")) GTEST_SKIP() << "set KILN_CUDA_BENCH=1 to measure bandwidth";
  const DType f32 = DType::Float32, f16 = DType::Float16, bf16 = DType::BFloat16;
  auto x = [](DType dt, Shape s) { return rand_of(dt, std::move(s), 7); };
  auto axes = [](std::vector<int64_t> v) { return Const(test_ops::i64({static_cast<int64_t>(v.size())}, v)); };
  const std::vector<BenchCase> cases = {
      {"Softmax f32 [16384,1024]", "Softmax", 13, {x(f32, {16384, 1024})}, {}, true},
      {"Softmax f32 [4096,4096]", "Softmax", 13, {x(f32, {4096, 4096})}, {}, true},
      {"Softmax f16 [8192,4096]", "Softmax", 13, {x(f16, {8192, 4096})}, {}, true},
      {"Softmax f32 [524288,32]", "Softmax", 13, {x(f32, {524288, 32})}, {}, true},
      {"Softmax f32 [1024,16384]", "Softmax", 13, {x(f32, {1024, 16384})}, {}, true},
      {"Softmax f32 [512,32768] (re-read)", "Softmax", 13, {x(f32, {512, 32768})}, {}, false},
      {"LogSoftmax bf16 [8192,4096]", "LogSoftmax", 13, {x(bf16, {8192, 4096})}, {}, true},
      {"LayerNorm f32 [4096,4096]", "LayerNormalization", 17,
       {x(f32, {4096, 4096}), x(f32, {4096}), x(f32, {4096})}, {}, true},
      {"LayerNorm f32 [16384,1024]", "LayerNormalization", 17,
       {x(f32, {16384, 1024}), x(f32, {1024}), x(f32, {1024})}, {}, true},
      {"LayerNorm f16 [8192,4096]", "LayerNormalization", 17,
       {x(f16, {8192, 4096}), x(f16, {4096}), x(f16, {4096})}, {}, true},
      {"RMSNorm f32 [4096,4096]", "RMSNormalization", 23, {x(f32, {4096, 4096}), x(f32, {4096})}, {}, true},
      {"RMSNorm bf16 [8192,4096]", "RMSNormalization", 23, {x(bf16, {8192, 4096}), x(bf16, {4096})}, {}, true},
      {"BatchNorm f32 [32,256,56,56]", "BatchNormalization", 15,
       {x(f32, {32, 256, 56, 56}), x(f32, {256}), x(f32, {256}), x(f32, {256}), x(f32, {256})},
       {},
       true},
      {"BatchNorm f16 [64,256,56,56]", "BatchNormalization", 15,
       {x(f16, {64, 256, 56, 56}), x(f32, {256}), x(f32, {256}), x(f32, {256}), x(f32, {256})},
       {},
       true},
      {"ReduceSum f32 [4096,4096] axis -1", "ReduceSum", 13, {x(f32, {4096, 4096}), axes({-1})}, {}, true},
      {"ReduceMean f16 [8192,4096] axis -1", "ReduceMean", 18, {x(f16, {8192, 4096}), axes({-1})}, {}, true},
      {"ReduceMax f32 [16384,1024] axis -1", "ReduceMax", 18, {x(f32, {16384, 1024}), axes({-1})}, {}, true},
      {"ReduceSum f32 [16777216] all", "ReduceSum", 13, {x(f32, {16777216})}, {}, true},
      {"ReduceMean f32 [4096,4096] axis 0", "ReduceMean", 18, {x(f32, {4096, 4096}), axes({0})}, {}, false},
      {"GlobalAveragePool f32 [32,512,32,32]", "GlobalAveragePool", 1, {x(f32, {32, 512, 32, 32})}, {}, false},
      {"MaxPool f32 [32,64,112,112] k3 s2", "MaxPool", 12, {x(f32, {32, 64, 112, 112})},
       {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"strides", std::vector<int64_t>{2, 2}},
        {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
       false},
  };
  // Copy bandwidth: a device-to-device copy of 256 MB (read + write).
  const size_t copy_bytes = size_t(256) << 20;
  test_cured::DeviceBuffers bufs;
  void* src = bufs.alloc(copy_bytes);
  void* dst = bufs.alloc(copy_bytes);
  const double copy_ms =
      time_ms([&] { cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice, test_cured::env().stream); });
  const double copy_gbs = 2.0 * static_cast<double>(copy_bytes) / (copy_ms * 1e6);
  std::ostringstream table;
  table << "device: " << test_cured::env().props.name << "; copy (D2D, 256 MB): " << std::fixed << std::setprecision(0)
        << copy_gbs << " GB/s\n\n| kernel | MB moved | ms | GB/s | % of copy |\n|---|---|---|---|---|\n";
  for (const BenchCase& c : cases) {
    ir::Graph g = test_ops::make_graph(c.op, c.opset, c.in, c.attrs, 1);
    ir::Graph typed = g;
    ir::infer_types(typed);
    const ir::ValueType* yt = typed.type_of("y0");
    ASSERT_TRUE(yt && yt->is_static()) << c.label;
    TensorMap feeds;
    double bytes = 0;
    for (size_t i = 0; i < c.in.size(); ++i) {
      bytes += static_cast<double>(c.in[i].t.nbytes());
      if (!c.in[i].constant) feeds[test_ops::vname('x', i)] = c.in[i].t;
    }
    const Tensor out_like(yt->dtype, yt->static_shape());
    bytes += static_cast<double>(out_like.nbytes());
    NodeOnDevice dev(g, feeds, {out_like});
    ASSERT_NE(dev.tactic, nullptr) << c.label;
    const double ms = time_ms([&] { dev.run(); });
    dev.download();
    const double gbs = bytes / (ms * 1e6), frac = gbs / copy_gbs;
    table << "| " << c.label << " | " << std::setprecision(0) << bytes / 1e6 << " | " << std::setprecision(3) << ms
          << " | " << std::setprecision(0) << gbs << " | " << std::setprecision(0) << 100 * frac << "% |\n";
    if (c.bound) {
      EXPECT_GE(frac, 0.7) << c.label << ": " << gbs << " GB/s vs copy " << copy_gbs;
    }
  }
  std::cout << table.str() << std::flush;
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
