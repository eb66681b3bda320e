// CUDA movement kernels against the reference kernels, part 1: Transpose (tiled and generic paths), Slice, Expand,
// Tile, Concat, Split, DepthToSpace, SpaceToDepth, Reshape / Flatten / Squeeze / Unsqueeze. Every dtype (the
// kernels dispatch on element size), bit-exact. Skipped without a CUDA device.
#if KILN_WITH_CUDA
#include <limits>

#include "cuda_move_test_util.h"

namespace kiln::cuda_move_test {
namespace test_cuda_movement_cpp {

using test_ops::Const;
using test_ops::i32;
using test_ops::i64;
using test_ops::Omit;
using Ints = std::vector<int64_t>;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(CudaMovement, TransposeEveryDtypeAndPath) {
  KILN_REQUIRE_CUDA();
  struct C {
    Shape s;
    Ints perm;
  };
  const std::vector<C> cases = {
      {{2, 3, 4}, {}},                    // default: reversed axes
      {{2, 32, 17, 19}, {0, 2, 3, 1}},    // NCHW -> NHWC (tiled)
      {{2, 17, 19, 32}, {0, 3, 1, 2}},    // NHWC -> NCHW (tiled)
      {{3, 33, 35}, {0, 2, 1}},           // partial tiles
      {{65, 130}, {1, 0}},                // 2-D
      {{5, 1, 7, 1, 3}, {4, 2, 0, 3, 1}}, // size-1 dims, generic
      {{4, 6, 8}, {1, 0, 2}},             // last axis kept: vectorized copy
      {{2, 3, 2, 3, 2, 5}, {5, 3, 1, 4, 2, 0}},
      {{7}, {0}},
      {{3, 0, 4}, {2, 0, 1}},             // empty
  };
  uint32_t seed = 1;
  for (DType dt : all_types())
    for (const C& c : cases) {
      Attrs a;
      if (!c.perm.empty()) a["perm"] = c.perm;
      check_op("Transpose", 13, {rand_tensor(dt, c.s, seed++)}, a);
    }
}

TEST(CudaMovement, TransposeLargeTiled) {
  KILN_REQUIRE_CUDA();
  check_op("Transpose", 21, {rand_tensor(DType::Float32, {3, 96, 57, 41}, 7)}, {{"perm", Ints{0, 2, 3, 1}}});
  check_op("Transpose", 21, {rand_tensor(DType::Float16, {1, 1000, 77}, 8)}, {{"perm", Ints{0, 2, 1}}});
  check_op("Transpose", 21, {rand_tensor(DType::Int8, {130, 250}, 9)}, {{"perm", Ints{1, 0}}});
  check_op("Transpose", 21, {rand_tensor(DType::Float64, {2, 40, 3, 50}, 10)}, {{"perm", Ints{3, 1, 2, 0}}});
}

TEST(CudaMovement, SliceVariants) {
  KILN_REQUIRE_CUDA();
  const Shape s = {4, 7, 9};
  uint32_t seed = 20;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, s, seed++);
    check_op("Slice", 13, {x, Const(i64({2}, {1, 2})), Const(i64({2}, {3, -1})), Const(i64({2}, {0, 2}))});
    check_op("Slice", 13, {x, Const(i64({1}, {-1})), Const(i64({1}, {-kMax})), Const(i64({1}, {1})),
                           Const(i64({1}, {-2}))});  // negative step to the front
    check_op("Slice", 13, {x, Const(i64({3}, {0, 6, 1})), Const(i64({3}, {kMax, 0, 8})), Omit(),
                           Const(i64({3}, {2, -3, 3}))});
  }
  Tensor x = rand_tensor(DType::Float32, {3, 10, 16}, 40);
  // int32 parameters, negative axes, clamped bounds, an empty result.
  check_op("Slice", 13, {x, Const(i32({2}, {-100, 4})), Const(i32({2}, {100, 12})), Const(i32({2}, {-1, 1}))});
  check_op("Slice", 13, {x, Const(i64({1}, {5})), Const(i64({1}, {5})), Const(i64({1}, {1}))});
  check_op("Slice", 13, {x, Const(i64({1}, {0})), Const(i64({1}, {16})), Const(i64({1}, {2})), Const(i64({1}, {4}))});
  // Contiguous rows (a widened copy) and a single block (a memcpy).
  check_op("Slice", 13, {x, Const(i64({1}, {1})), Const(i64({1}, {3})), Const(i64({1}, {0}))});
  check_op("Slice", 13, {x, Const(i64({1}, {4})), Const(i64({1}, {12})), Const(i64({1}, {2}))});
  // Opset 1: attributes.
  check_op("Slice", 1, {x}, {{"starts", Ints{1, -5}}, {"ends", Ints{3, kMax}}, {"axes", Ints{0, 2}}});
  // Parameters as runtime inputs: given as host values, or read back from the device by the kernel.
  for (HostIn h : {HostIn::All, HostIn::None}) {
    Options o;
    o.host = h;
    o.run_executor = h == HostIn::All;
    check_op("Slice", 13, {x, i64({2}, {2, 3}), i64({2}, {0, 14}), i64({2}, {1, 2}), i64({2}, {-1, 2})}, {}, 1, o);
  }
}

TEST(CudaMovement, Expand) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 50;
  for (DType dt : all_types()) {
    check_op("Expand", 13, {rand_tensor(dt, {3, 1}, seed++), Const(i64({3}, {2, 3, 4}))});
    check_op("Expand", 13, {rand_tensor(dt, {2, 1, 8}, seed++), Const(i64({3}, {2, 5, 8}))});  // contiguous rows
  }
  check_op("Expand", 8, {rand_tensor(DType::Float32, {1}, 60), Const(i64({1}, {37}))});
  check_op("Expand", 13, {rand_tensor(DType::Float32, {3, 1}, 61), Const(i64({2}, {1, 1}))});  // no growth
  check_op("Expand", 13, {rand_tensor(DType::Int64, {1, 5, 1}, 62), Const(i64({4}, {2, 1, 5, 3}))});
  check_op("Expand", 13, {rand_tensor(DType::Float16, {4, 1}, 63), Const(i64({2}, {4, 0}))});  // empty
}

TEST(CudaMovement, Tile) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 70;
  for (DType dt : all_types()) {
    check_op("Tile", 13, {rand_tensor(dt, {2, 3}, seed++), Const(i64({2}, {2, 3}))});
    check_op("Tile", 13, {rand_tensor(dt, {2, 1, 3}, seed++), Const(i64({3}, {1, 4, 2}))});
  }
  check_op("Tile", 6, {rand_tensor(DType::Float32, {5}, 80), Const(i64({1}, {3}))});
  check_op("Tile", 13, {rand_tensor(DType::Float32, {2, 8}, 81), Const(i64({2}, {3, 1}))});
  check_op("Tile", 13, {rand_tensor(DType::Int32, {2, 3}, 82), Const(i64({2}, {0, 2}))});  // empty
  check_op("Tile", 13, {rand_tensor(DType::UInt8, {2, 3, 2, 3}, 83), Const(i64({4}, {2, 2, 2, 2}))});
}

TEST(CudaMovement, Concat) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 90;
  for (DType dt : all_types()) {
    check_op("Concat", 13, {rand_tensor(dt, {2, 3, 4}, seed++), rand_tensor(dt, {2, 5, 4}, seed++)}, {{"axis", int64_t(1)}});
    check_op("Concat", 13, {rand_tensor(dt, {3, 2}, seed++), rand_tensor(dt, {3, 7}, seed++), rand_tensor(dt, {3, 1}, seed++)},
             {{"axis", int64_t(-1)}});
  }
  // More inputs than one launch batches, an empty input, axis 0, widened rows.
  std::vector<In> many;
  for (int i = 0; i < 9; ++i) many.push_back(rand_tensor(DType::Float32, {2, 1 + i % 3, 8}, 100 + static_cast<uint32_t>(i)));
  many.push_back(rand_tensor(DType::Float32, {2, 0, 8}, 120));
  check_op("Concat", 13, many, {{"axis", int64_t(1)}});
  check_op("Concat", 4, {rand_tensor(DType::Int64, {2, 3}, 121), rand_tensor(DType::Int64, {1, 3}, 122)}, {{"axis", int64_t(0)}});
  check_op("Concat", 11, {rand_tensor(DType::Float16, {1, 16, 4, 4}, 123), rand_tensor(DType::Float16, {1, 8, 4, 4}, 124)},
           {{"axis", int64_t(1)}});
  check_op("Concat", 13, {rand_tensor(DType::Int32, {5}, 125)}, {{"axis", int64_t(0)}});  // one input
}

TEST(CudaMovement, Split) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 130;
  for (DType dt : all_types()) {
    check_op("Split", 13, {rand_tensor(dt, {2, 6, 3}, seed++), Const(i64({3}, {1, 2, 3}))}, {{"axis", int64_t(1)}}, 3);
    check_op("Split", 13, {rand_tensor(dt, {4, 6}, seed++)}, {{"axis", int64_t(-1)}}, 2);  // equal parts
  }
  check_op("Split", 11, {rand_tensor(DType::Float32, {7, 4}, 140)}, {{"split", Ints{3, 4}}}, 2);
  check_op("Split", 18, {rand_tensor(DType::Float32, {2, 7}, 141)}, {{"axis", int64_t(1)}, {"num_outputs", int64_t(3)}}, 3);
  check_op("Split", 18, {rand_tensor(DType::Int8, {9, 2, 8}, 142)}, {{"num_outputs", int64_t(4)}}, 4);
  check_op("Split", 13, {rand_tensor(DType::Float32, {2, 5}, 143), Const(i64({3}, {2, 0, 3}))}, {{"axis", int64_t(1)}}, 3);
  std::vector<In> eight = {rand_tensor(DType::BFloat16, {3, 16}, 144), Const(i64({8}, {2, 2, 2, 2, 2, 2, 2, 2}))};
  check_op("Split", 13, eight, {{"axis", int64_t(1)}}, 8);  // more outputs than one launch batches
}

TEST(CudaMovement, DepthToSpaceAndSpaceToDepth) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 150;
  for (DType dt : {DType::Float32, DType::Float16, DType::Int64, DType::UInt8}) {
    Tensor x = rand_tensor(dt, {2, 8, 3, 5}, seed++);
    check_op("DepthToSpace", 1, {x}, {{"blocksize", int64_t(2)}});
    check_op("DepthToSpace", 11, {x}, {{"blocksize", int64_t(2)}, {"mode", std::string("DCR")}});
    check_op("DepthToSpace", 13, {x}, {{"blocksize", int64_t(2)}, {"mode", std::string("CRD")}});
    Tensor z = rand_tensor(dt, {2, 3, 6, 4}, seed++);
    check_op("SpaceToDepth", 13, {z}, {{"blocksize", int64_t(2)}});
    check_op("SpaceToDepth", 28, {z}, {{"blocksize", int64_t(2)}, {"mode", std::string("CRD")}});
  }
  check_op("DepthToSpace", 13, {rand_tensor(DType::Float32, {1, 64, 20, 20}, 160)}, {{"blocksize", int64_t(4)}});
  check_op("SpaceToDepth", 13, {rand_tensor(DType::Float32, {1, 3, 48, 48}, 161)}, {{"blocksize", int64_t(3)}});
}

TEST(CudaMovement, ReshapeFamily) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 170;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {2, 1, 3, 4}, seed++);
    check_op("Reshape", 14, {x, Const(i64({2}, {0, -1}))});
    check_op("Flatten", 13, {x}, {{"axis", int64_t(2)}});
    check_op("Squeeze", 13, {x, Const(i64({1}, {1}))});
    check_op("Unsqueeze", 13, {x, Const(i64({2}, {0, -1}))});
  }
  Tensor x = rand_tensor(DType::Float32, {3, 1, 5}, 190);
  check_op("Squeeze", 11, {x}, {{"axes", Ints{1}}});
  check_op("Squeeze", 1, {x});
  check_op("Unsqueeze", 11, {x}, {{"axes", Ints{0}}});
  check_op("Reshape", 5, {x, Const(i64({1}, {-1}))});
  check_op("Flatten", 1, {x});
  check_op("Reshape", 14, {rand_tensor(DType::Float32, {0, 3}, 191), Const(i64({2}, {3, 0}))}, {{"allowzero", int64_t(1)}});
}

}  // namespace test_cuda_movement_cpp
}  // namespace kiln::cuda_move_test
#endif  // KILN_WITH_CUDA
