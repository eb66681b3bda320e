// The fast CPU tactics against the reference kernels (the oracle): every candidate of a node is run on the same
// inputs and compared with "ref" using the tolerance table (FP32 element-wise; FP16 / BF16 relative L2), over odd
// sizes, batch broadcasting, groups, strides, dilations, pads and thread counts. Plus the thread pool itself.
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

#include "cpu_tactics_test_util.h"

namespace kiln::test_ops {
namespace {

using namespace cpu_tactics_test;

Attrs conv_attrs(std::vector<int64_t> strides, std::vector<int64_t> pads, std::vector<int64_t> dil, int64_t group) {
  Attrs a{{"strides", strides}, {"pads", pads}, {"dilations", dil}};
  if (group != 1) a["group"] = group;
  return a;
}

TEST(CpuTactics, MatMulBlasOddShapesAndBroadcasting) {
  for_thread_counts([](int) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      SCOPED_TRACE(dtype_name(dt));
      check_tactics("MatMul", 13, {rand_of(dt, {7, 13}, 1), rand_of(dt, {13, 5}, 2)}, {}, {"blas"});
      // B one matrix: A's batch folds into rows; big enough to be split over threads.
      check_tactics("MatMul", 13, {rand_of(dt, {2, 3, 67, 91}, 3), rand_of(dt, {91, 45}, 4)}, {}, {"blas"});
      // Batch broadcasting both ways: [2,1,3,4] x [5,4,2] -> [2,5,3,2]; [5,7] x [3,7,4].
      check_tactics("MatMul", 13, {rand_of(dt, {2, 1, 3, 4}, 5), rand_of(dt, {5, 4, 2}, 6)}, {}, {"blas"});
      check_tactics("MatMul", 13, {rand_of(dt, {5, 7}, 7), rand_of(dt, {3, 7, 4}, 8)}, {}, {"blas"});
      check_tactics("MatMul", 13, {rand_of(dt, {12, 33, 17}, 9), rand_of(dt, {12, 17, 29}, 10)}, {}, {"blas"});
      // 1-D operands.
      check_tactics("MatMul", 13, {rand_of(dt, {9}, 11), rand_of(dt, {3, 9, 4}, 12)}, {}, {"blas"});
      check_tactics("MatMul", 13, {rand_of(dt, {3, 2, 9}, 13), rand_of(dt, {9}, 14)}, {}, {"blas"});
      check_tactics("MatMul", 13, {rand_of(dt, {9}, 15), rand_of(dt, {9}, 16)}, {}, {"blas"});
      // Constant weights, and an empty inner dimension (all zeros).
      check_tactics("MatMul", 13, {rand_of(dt, {4, 130, 64}, 17), Const(rand_of(dt, {64, 70}, 18))}, {}, {"blas"});
      check_tactics("MatMul", 13, {rand_of(dt, {3, 0}, 19), rand_of(dt, {0, 4}, 20)}, {}, {"blas"});
    }
  });
}

TEST(CpuTactics, MatMulIntegersHaveOnlyRef) {
  auto names = check_tactics("MatMul", 13, {i32({2, 2}, {1, 2, 3, 4}), i32({2, 2}, {5, 6, 7, 8})}, {}, {});
  EXPECT_EQ(names, std::vector<std::string>{"ref"});
}

TEST(CpuTactics, GemmBlasTransposesAlphaBetaAndC) {
  for_thread_counts([](int) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      SCOPED_TRACE(dtype_name(dt));
      Tensor a = rand_of(dt, {37, 29}, 1), at = rand_of(dt, {29, 37}, 2);
      Tensor b = rand_of(dt, {29, 41}, 3), bt = rand_of(dt, {41, 29}, 4);
      for (int64_t ta : {0, 1})
        for (int64_t tb : {0, 1}) {
          Attrs attrs{{"transA", ta}, {"transB", tb}, {"alpha", 0.75f}, {"beta", -1.5f}};
          const Tensor& A = ta ? at : a;
          const Tensor& B = tb ? bt : b;
          check_tactics("Gemm", 13, {A, B}, attrs, {"blas"});
          check_tactics("Gemm", 13, {A, B, rand_of(dt, {41}, 5)}, attrs, {"blas"});
          check_tactics("Gemm", 13, {A, B, rand_of(dt, {37, 1}, 6)}, attrs, {"blas"});
          check_tactics("Gemm", 13, {A, B, Const(rand_of(dt, {37, 41}, 7))}, attrs, {"blas"});
          check_tactics("Gemm", 11, {A, B, rand_of(dt, {}, 8)}, attrs, {"blas"});
        }
      check_tactics("Gemm", 13, {rand_of(dt, {1, 512}, 9), Const(rand_of(dt, {1000, 512}, 10)),
                                 Const(rand_of(dt, {1000}, 11))},
                    {{"transB", int64_t(1)}}, {"blas"});
      check_tactics("Gemm", 9, {a, b, rand_of(dt, {37, 41}, 12)}, {{"beta", 0.0f}}, {"blas"});
    }
  });
}

TEST(CpuTactics, ConvIm2colStridesDilationsPadsGroups) {
  for_thread_counts([](int) {
    const DType dt = DType::Float32;
    Tensor x = rand_of(dt, {2, 6, 11, 13}, 1);
    Tensor w = rand_of(dt, {8, 6, 3, 3}, 2), b = rand_of(dt, {8}, 3);
    check_tactics("Conv", 11, {x, Const(w), Const(b)}, conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 1),
                  {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, Const(w)}, conv_attrs({2, 3}, {0, 1, 2, 0}, {1, 1}, 1), {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, Const(w), Const(b)}, conv_attrs({1, 2}, {2, 2, 2, 2}, {2, 3}, 1), {"im2col_blas"});
    check_tactics("Conv", 11, {x, Const(w), Const(b)}, conv_attrs({2, 1}, {2, 0, 1, 3}, {2, 3}, 1),
                  {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, w, b}, {{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2, 2}}},
                  {"im2col_blas"});
    // Groups: 2 and 3; kernels 5x1; 1x1 (the unrolling-free path) with and without stride.
    check_tactics("Conv", 11, {x, Const(rand_of(dt, {4, 3, 3, 2}, 4)), Const(rand_of(dt, {4}, 5))},
                  conv_attrs({1, 1}, {1, 0, 1, 1}, {1, 1}, 2), {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, Const(rand_of(dt, {9, 2, 5, 1}, 6))}, conv_attrs({2, 1}, {2, 0, 2, 0}, {1, 1}, 3),
                  {"im2col_blas"});
    check_tactics("Conv", 11, {x, Const(rand_of(dt, {10, 6, 1, 1}, 7)), Const(rand_of(dt, {10}, 8))},
                  conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 1), {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, Const(rand_of(dt, {10, 6, 1, 1}, 7))}, conv_attrs({2, 2}, {0, 0, 0, 0}, {1, 1}, 1),
                  {"im2col_blas"});
    // 1-D and 3-D convolutions; a larger 2-D one split into tiles over the threads.
    check_tactics("Conv", 11, {rand_of(dt, {3, 4, 19}, 9), Const(rand_of(dt, {5, 4, 4}, 10))},
                  conv_attrs({2}, {1, 2}, {2}, 1), {"im2col_blas"});
    check_tactics("Conv", 11, {rand_of(dt, {1, 3, 5, 6, 7}, 11), Const(rand_of(dt, {4, 3, 2, 3, 2}, 12))},
                  conv_attrs({1, 2, 1}, {1, 0, 1, 0, 1, 1}, {1, 1, 2}, 1), {"im2col_blas"});
    check_tactics("Conv", 11, {rand_of(dt, {1, 16, 40, 40}, 13), Const(rand_of(dt, {24, 16, 3, 3}, 14)),
                               Const(rand_of(dt, {24}, 15))},
                  conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 1), {"im2col_blas", "direct"});
    // 16 and 32 output channels per group over rows of 16+ outputs: the 16-channel blocks (AVX-512); with groups.
    check_tactics("Conv", 11, {rand_of(dt, {2, 8, 12, 20}, 19), Const(rand_of(dt, {32, 8, 3, 3}, 20)),
                               Const(rand_of(dt, {32}, 21))},
                  conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 1), {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {rand_of(dt, {1, 8, 9, 37}, 22), Const(rand_of(dt, {32, 4, 3, 3}, 23))},
                  conv_attrs({1, 2}, {1, 0, 1, 2}, {1, 1}, 2), {"im2col_blas", "direct"});
    // 1-D with stride 1, and SAME padding with an even kernel.
    check_tactics("Conv", 11, {rand_of(dt, {2, 5, 37}, 16), Const(rand_of(dt, {9, 5, 4}, 17))},
                  conv_attrs({1}, {3, 1}, {2}, 1), {"im2col_blas", "direct"});
    check_tactics("Conv", 11, {x, Const(rand_of(dt, {3, 6, 4, 4}, 18))}, {{"auto_pad", std::string("SAME_LOWER")}},
                  {"im2col_blas", "direct"});
  });
}

// im2col_blas's channel blocks (small maps with many channels), column tiles and the padded gather of short rows
// (strides, dilations, uneven pads, groups): sizes large enough for threads_for_work to grant 2 and 3 threads.
TEST(CpuTactics, ConvIm2colTilesChannelBlocksAndGather) {
  for_thread_counts([](int) {
    const DType dt = DType::Float32;
    // One image of 6x6 (36 columns) with 320 output channels: column tiles or channel blocks for the threads; bias.
    check_tactics("Conv", 11, {rand_of(dt, {1, 64, 6, 6}, 1), Const(rand_of(dt, {320, 64, 3, 3}, 2)),
                               Const(rand_of(dt, {320}, 3))},
                  conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 1), {"im2col_blas"});
    // 2x2 maps, 384 output channels, one image: fewer columns than channels, split into channel blocks.
    check_tactics("Conv", 11, {rand_of(dt, {1, 192, 2, 2}, 4), Const(rand_of(dt, {384, 192, 3, 3}, 5)),
                               Const(rand_of(dt, {384}, 6))},
                  conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 1), {"im2col_blas"});
    // Short rows through the gather: stride 2, dilation 2, uneven pads, groups of 2; and a 1x1 stride-1 conv over a
    // batch (read in place).
    check_tactics("Conv", 11, {rand_of(dt, {6, 64, 9, 7}, 7), Const(rand_of(dt, {96, 32, 3, 3}, 8))},
                  conv_attrs({2, 1}, {2, 0, 1, 3}, {2, 2}, 2), {"im2col_blas"});
    check_tactics("Conv", 11, {rand_of(dt, {8, 128, 5, 5}, 9), Const(rand_of(dt, {160, 128, 1, 1}, 10)),
                               Const(rand_of(dt, {160}, 11))},
                  conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 1), {"im2col_blas"});
    // Wide maps: several unrolled tiles per image through the row-by-row im2col.
    check_tactics("Conv", 11, {rand_of(dt, {2, 64, 30, 30}, 12), Const(rand_of(dt, {16, 64, 3, 3}, 13))},
                  conv_attrs({1, 1}, {0, 0, 0, 0}, {1, 1}, 1), {"im2col_blas", "direct"});
  });
}

TEST(CpuTactics, ConvDepthwiseDirectAndIm2col) {
  for_thread_counts([](int) {
    for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
      SCOPED_TRACE(dtype_name(dt));
      Tensor x = rand_of(dt, {2, 6, 12, 9}, 1);
      // Depthwise (M = C) and with a channel multiplier of 2 (M = 2C); strides, pads, dilations.
      auto names = check_tactics("Conv", 11, {x, Const(rand_of(dt, {6, 1, 3, 3}, 2)), Const(rand_of(dt, {6}, 3))},
                                 conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 6), {"direct_dw", "im2col_blas"});
      EXPECT_EQ(names.front(), "direct_dw");
      check_tactics("Conv", 11, {x, Const(rand_of(dt, {12, 1, 3, 5}, 4))}, conv_attrs({2, 3}, {0, 2, 1, 1}, {2, 1}, 6),
                    {"direct_dw", "im2col_blas", "direct"});
      // Batch, a wide map (several vectors per row) and stride 2 both ways.
      check_tactics("Conv", 11, {rand_of(dt, {3, 4, 9, 70}, 8), Const(rand_of(dt, {4, 1, 3, 3}, 9))},
                    conv_attrs({2, 2}, {1, 1, 1, 1}, {1, 1}, 4), {"direct_dw", "im2col_blas", "direct"});
      check_tactics("Conv", 11, {rand_of(dt, {2, 4, 13, 40}, 10), Const(rand_of(dt, {4, 1, 3, 3}, 11))},
                    conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 4), {"direct_dw", "im2col_blas", "direct"});
      check_tactics("Conv", 11, {rand_of(dt, {1, 5, 17}, 5), Const(rand_of(dt, {5, 1, 3}, 6))},
                    conv_attrs({2}, {1, 1}, {1}, 5), {"direct_dw", "im2col_blas"});
      // Not depthwise: no direct_dw candidate.
      names = check_tactics("Conv", 11, {x, Const(rand_of(dt, {4, 3, 3, 3}, 7))}, conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 2),
                            {"im2col_blas"});
      EXPECT_EQ(std::find(names.begin(), names.end(), "direct_dw"), names.end());
    }
  });
}

// The flat depthwise path (small maps, lanes over the whole output plane): stride 1 and 2, odd maps, 5x5 kernels,
// asymmetric pads, channel multipliers, plane counts that leave partial groups, and a batch big enough for threads.
TEST(CpuTactics, ConvDepthwiseFlatSmallMaps) {
  for_thread_counts([](int) {
    for (DType dt : {DType::Float32, DType::Float16}) {
      SCOPED_TRACE(dtype_name(dt));
      struct Case {
        Shape x;
        int64_t m, k, s;
        std::vector<int64_t> pads;
      };
      const std::vector<Case> cases = {
          {{3, 5, 8, 8}, 5, 3, 1, {1, 1, 1, 1}},   {{2, 7, 4, 4}, 7, 3, 1, {1, 1, 1, 1}},
          {{2, 6, 6, 6}, 6, 3, 1, {1, 1, 1, 1}},   {{2, 6, 16, 16}, 6, 3, 2, {1, 1, 1, 1}},
          {{1, 4, 7, 7}, 4, 3, 2, {1, 1, 1, 1}},   {{2, 4, 9, 9}, 4, 5, 2, {2, 2, 2, 2}},
          {{2, 4, 10, 10}, 4, 5, 1, {2, 2, 2, 2}}, {{2, 5, 8, 8}, 5, 3, 2, {0, 0, 1, 1}},
          {{2, 3, 8, 8}, 6, 3, 1, {1, 1, 1, 1}},   {{1, 3, 5, 5}, 3, 3, 2, {1, 0, 0, 1}},
          {{8, 96, 16, 16}, 96, 3, 1, {1, 1, 1, 1}},
      };
      uint32_t seed = 1;
      for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << "x " << c.x[0] << "x" << c.x[1] << "x" << c.x[2] << "x" << c.x[3] << " k "
                                          << c.k << " s " << c.s);
        auto names = check_tactics("Conv", 11,
                                   {rand_of(dt, c.x, seed), Const(rand_of(dt, {c.m, 1, c.k, c.k}, seed + 1)),
                                    Const(rand_of(dt, {c.m}, seed + 2))},
                                   conv_attrs({c.s, c.s}, c.pads, {1, 1}, c.x[1]), {"direct_dw", "im2col_blas"});
        EXPECT_EQ(names.front(), "direct_dw");
        seed += 3;
      }
    }
  });
}

// Masked lanes read neighbouring planes in place (all but the first and last plane of the tensor): an Inf in one
// plane must not reach its neighbours' outputs.
TEST(CpuTactics, ConvDepthwiseFlatKeepsPlanesApart) {
  Tensor x = rand_of(DType::Float32, {1, 5, 8, 8}, 1);
  float* px = x.mutable_as<float>();
  px[1 * 64 + 63] = std::numeric_limits<float>::infinity();   // plane 1, last element
  px[3 * 64 + 0] = -std::numeric_limits<float>::infinity();   // plane 3, first element
  Tensor w = rand_of(DType::Float32, {5, 1, 3, 3}, 2);
  ir::Graph g = make_graph("Conv", 11, {x, Const(w)}, conv_attrs({1, 1}, {1, 1, 1, 1}, {1, 1}, 5), 1);
  ir::infer_types(g);
  for (const Tactic& t : runtime::cpu::tactics_for(g, g.nodes[0])) {
    if (t.name != "direct_dw") continue;
    std::vector<Tensor> out(1);
    t.run(g.nodes[0], {&x, &w}, out);
    const float* y = out[0].as<float>();
    for (int64_t plane : {0, 2, 4})
      for (int64_t i = 0; i < 64; ++i) EXPECT_TRUE(std::isfinite(y[plane * 64 + i])) << "plane " << plane << ", output " << i;
    return;
  }
  FAIL() << "no direct_dw candidate";
}

TEST(CpuTactics, ConvLowPrecision) {
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    check_tactics("Conv", 11, {rand_of(dt, {2, 5, 9, 10}, 1), Const(rand_of(dt, {7, 5, 3, 3}, 2)),
                               Const(rand_of(dt, {7}, 3))},
                  conv_attrs({2, 1}, {1, 1, 0, 2}, {1, 2}, 1), {"im2col_blas", "direct"});
  }
}

// ---- the thread pool ----------------------------------------------------------------------------

TEST(CpuThreadPool, CoversEveryIndexOnceAtEachThreadCount) {
  for_thread_counts([](int t) {
    EXPECT_EQ(runtime::cpu::cpu_threads(), t);
    for (int64_t n : {1, 2, 3, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> chunks{0};
      runtime::cpu::parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
        ++chunks;
        for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " i " << i;
      // One chunk on one thread; else up to 4 per thread, never more than the items.
      if (t == 1) {
        EXPECT_EQ(chunks.load(), 1);
      } else {
        EXPECT_LE(chunks.load(), std::min<int64_t>(n, 4 * t));
        EXPECT_EQ(chunks.load() > 1, n > 1);
      }
    }
  });
}

TEST(CpuThreadPool, ExceptionsNestingAndConcurrentCallers) {
  runtime::cpu::set_cpu_threads(3);
  EXPECT_THROW(runtime::cpu::parallel_for(9, 1,
                                          [](int64_t lo, int64_t) {
                                            if (lo > 0) throw std::runtime_error("chunk failed");
                                          }),
               std::runtime_error);
  // Nested loops run inline; callers on other threads while the pool is busy run theirs inline too.
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep)
        runtime::cpu::parallel_for(6, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i)
            runtime::cpu::parallel_for(5, 1, [&](int64_t a, int64_t b) { sum += b - a; });
        });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4 * 20 * 6 * 5);
  runtime::cpu::set_cpu_threads(0);
}

}  // namespace
}  // namespace kiln::test_ops
