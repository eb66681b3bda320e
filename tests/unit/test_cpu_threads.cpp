// The CPU thread rule (threads_for_work): how many threads a convolution gets for its shapes, how im2col_blas splits
// its work, that a small CNN at batch 1 runs entirely on the calling thread while batch 8 uses the pool, and the
// builder's timing not dropping a candidate for one slow warm-up run.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "builder/tactic_timing.h"
#include "kiln/kiln.h"
#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/thread_pool.h"

using namespace kiln;
using runtime::cpu::threads_for_work;

namespace {

// Multiply-adds of a 2-D convolution: N images, M output channels of OH x OW, C/G input channels, k x k kernel.
double conv_macs(int64_t N, int64_t M, int64_t OH, int64_t OW, int64_t Cg, int64_t k) {
  return static_cast<double>(N) * M * OH * OW * Cg * k * k;
}

}  // namespace

TEST(CpuThreads, ThreadsForWorkIsOneBelowTwiceTheMinimumAndCappedByTheThreads) {
  const double m = runtime::cpu::min_macs_per_thread();
  EXPECT_EQ(threads_for_work(0, m, 8), 1);
  EXPECT_EQ(threads_for_work(1.99 * m, m, 8), 1);  // two threads would each get less than the minimum
  EXPECT_EQ(threads_for_work(2.0 * m, m, 8), 2);
  EXPECT_EQ(threads_for_work(5.5 * m, m, 8), 5);
  EXPECT_EQ(threads_for_work(100 * m, m, 8), 8);
  EXPECT_EQ(threads_for_work(100 * m, m, 1), 1);
  EXPECT_EQ(threads_for_work(100 * m, 0, 4), 1);  // a nonsensical minimum: inline
}

// KILN_MIN_MACS_PER_THREAD: a number >= 1 overrides the rule's minimum; anything else keeps it (with a warning).
TEST(CpuThreads, MinMacsOverrideParsesOrKeepsTheDefault) {
  using runtime::cpu::kMinMacsPerThread;
  using runtime::cpu::min_macs_from;
  EXPECT_EQ(min_macs_from(nullptr), kMinMacsPerThread);
  EXPECT_EQ(min_macs_from("262144"), 262144.0);
  EXPECT_EQ(min_macs_from("1e6"), 1e6);
  for (const char* bad : {"", "abc", "12x", "0", "-5", "nan"}) EXPECT_EQ(min_macs_from(bad), kMinMacsPerThread) << bad;
}

// ResNet-18 as committed in tests/models/real_arch (64x64 input, widths 12/24/48/96): at batch 1 every convolution
// but the 7x7 stem (1.8 M multiply-adds) is a few microseconds and runs on one thread; at batch 8 each gets two.
TEST(CpuThreads, ResNet18ConvolutionsOneThreadAtBatch1TwoAtBatch8) {
  struct Layer {
    const char* name;
    int64_t M, OH, Cg, k;
  };
  const Layer layers[] = {{"conv1 7x7/2", 12, 32, 3, 7}, {"layer1 3x3", 12, 16, 12, 3}, {"layer2 3x3", 24, 8, 24, 3},
                          {"layer3 3x3", 48, 4, 48, 3},  {"layer4 3x3", 96, 2, 96, 3}};
  const double m = runtime::cpu::min_macs_per_thread();
  for (const Layer& l : layers) {
    SCOPED_TRACE(l.name);
    EXPECT_EQ(threads_for_work(conv_macs(1, l.M, l.OH, l.OH, l.Cg, l.k), m, 2), l.k == 7 ? 2 : 1);
    EXPECT_EQ(threads_for_work(conv_macs(8, l.M, l.OH, l.OH, l.Cg, l.k), m, 2), 2);
  }
}

TEST(CpuThreads, Im2colSplitGivesImagesThenTilesOrChannelBlocksToTheThreads) {
  using runtime::cpu::cpu_conv::im2col_split;
  // layer4 (96 channels, 2x2 maps, R = 96 * 9): batch 1 on one thread, one item.
  auto s = im2col_split(1, 1, 96, 864, 4, 2, false);
  EXPECT_EQ(s.threads, 1);
  EXPECT_EQ(s.tiles, 1);
  EXPECT_EQ(s.mblocks, 1);
  // Batch 8: two threads, the images are the items.
  s = im2col_split(8, 1, 96, 864, 4, 2, false);
  EXPECT_EQ(s.threads, 2);
  EXPECT_EQ(s.tiles, 1);
  EXPECT_EQ(s.mblocks, 1);
  // One image of a small map with many channels: the threads take blocks of output channels.
  s = im2col_split(1, 1, 512, 4608, 4, 4, false);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.tiles, 1);
  EXPECT_EQ(s.mblocks, 4);
  // A wide map: tiles of at most 2^18 unrolled floats, no channel blocks.
  s = im2col_split(1, 1, 64, 576, 3136, 2, false);
  EXPECT_EQ(s.threads, 2);
  EXPECT_GE(s.tiles, 7);
  EXPECT_LE(576 * ((3136 + s.tiles - 1) / s.tiles), 1 << 18);
  EXPECT_EQ(s.mblocks, 1);
  // ... read in place when pointwise: one tile unless the threads need more.
  s = im2col_split(1, 1, 64, 576, 3136, 2, true);
  EXPECT_EQ(s.tiles, 2);
  // Groups give the threads their items first.
  s = im2col_split(8, 4, 24, 216, 64, 4, false);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.tiles * s.mblocks, 1);
  // One thread whatever the size when only one is available.
  s = im2col_split(64, 1, 256, 2304, 3136, 1, false);
  EXPECT_EQ(s.threads, 1);
}

// The whole model: at batch 1 with two threads only the stem convolution's loop reaches the pool (the small ones run
// inline, so they cost nothing over one thread); at batch 8 the convolutions do.
TEST(CpuThreads, ResNet18Batch1RunsSmallConvsInlineBatch8UsesThePool) {
  Model m = Model::load(std::string(KILN_SOURCE_DIR) + "/tests/models/real_arch/resnet18_torchscript.onnx");
  BuildConfig cfg;
  cfg.profiles.push_back(Profile().add_input_shape("input", {1, 3, 64, 64}, {1, 3, 64, 64}, {8, 3, 64, 64}));
  cfg.optimization_level = 0;  // heuristic tactics: the rule, not the timing, is under test
  Engine e = build_engine(m, cfg);
  set_cpu_threads(2);
  ExecutionContext ctx = e.create_context();
  auto loops_for = [&](int64_t batch) {
    Tensor x(DType::Float32, {batch, 3, 64, 64});
    for (int64_t i = 0; i < x.numel(); ++i) x.mutable_as<float>()[i] = static_cast<float>(i % 17) / 17.0f - 0.5f;
    ctx.run({{"input", x}});  // warm-up
    const uint64_t before = runtime::cpu::pool_loops_run();
    ctx.run({{"input", x}});
    return runtime::cpu::pool_loops_run() - before;
  };
  EXPECT_EQ(loops_for(1), 1u);  // the 7x7 stem
  EXPECT_GE(loops_for(8), 10u);
  set_cpu_threads(0);
}

// A candidate whose first run is slow (a preemption on a busy machine) is timed again before it is cut off, and then
// wins on its real speed.
TEST(CpuThreads, TimingRetriesASlowWarmUpBeforeCuttingACandidateOff) {
  using namespace std::chrono_literals;
  ir::Node n;
  n.op_type = "Fake";
  n.name = "fake";
  n.outputs = {"y"};
  int fast_runs = 0;
  auto sleeper = [](std::chrono::microseconds d) {
    return [d](const ir::Node&, const std::vector<const Tensor*>&, std::vector<Tensor>& out) {
      std::this_thread::sleep_for(d);
      out[0] = Tensor(DType::Float32, {1});
    };
  };
  std::vector<runtime::cpu::Tactic> cands = {
      {"slow", sleeper(4000us), nullptr},
      {"fast",
       [&](const ir::Node&, const std::vector<const Tensor*>&, std::vector<Tensor>& out) {
         std::this_thread::sleep_for(fast_runs++ == 0 ? 60ms : 300us);
         out[0] = Tensor(DType::Float32, {1});
       },
       nullptr}};
  builder::TacticTimingOptions opt;
  opt.min_total_ms = 0;
  auto c = builder::tactic_timing_impl::time_candidates(n, cands, {}, opt);
  EXPECT_EQ(c.best, 1u) << "slow " << c.ms[0] << " ms, fast " << c.ms[1] << " ms";
  EXPECT_GT(fast_runs, 2);  // timed in rounds, not cut off after its warm-up
}

// Candidates are timed on one thread whatever the pool's count: their loops run inline.
TEST(CpuThreads, TimingRunsCandidatesOnOneThread) {
  set_cpu_threads(2);
  ir::Node n;
  n.op_type = "Fake";
  n.name = "fake";
  n.outputs = {"y"};
  std::vector<int64_t> chunks;
  auto probe = [&](const ir::Node&, const std::vector<const Tensor*>&, std::vector<Tensor>& out) {
    chunks.push_back(runtime::cpu::parallel_chunks(1 << 20, 1));
    out[0] = Tensor(DType::Float32, {1});
  };
  std::vector<runtime::cpu::Tactic> cands = {{"a", probe, nullptr}, {"b", probe, nullptr}};
  EXPECT_GT(runtime::cpu::parallel_chunks(1 << 20, 1), 1);  // outside the timing: split
  builder::TacticTimingOptions opt;
  opt.min_total_ms = 0;
  builder::tactic_timing_impl::time_candidates(n, cands, {}, opt);
  ASSERT_FALSE(chunks.empty());
  for (int64_t c : chunks) EXPECT_EQ(c, 1);
  EXPECT_GT(runtime::cpu::parallel_chunks(1 << 20, 1), 1);  // and split again after it
  set_cpu_threads(0);
}
