// CUDA movement kernels against the reference kernels, part 2: Gather, GatherElements, GatherND, ScatterND, Pad,
// Trilu, and the documented device behaviour for out-of-range indices. Skipped without a CUDA device.
#if KILN_WITH_CUDA
#include "cuda_move_test_util.h"

namespace kiln::cuda_move_test {
namespace test_cuda_gather_cpp {

using test_ops::Const;
using test_ops::f32;
using test_ops::i32;
using test_ops::i64;
using test_ops::Omit;
using Ints = std::vector<int64_t>;

TEST(CudaGather, GatherAxesIndexTypesAndDtypes) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 1;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {5, 4, 6}, seed++);
    check_op("Gather", 13, {x, i64({3}, {4, -5, 2})}, {{"axis", int64_t(0)}});
    check_op("Gather", 13, {x, i32({2, 2}, {3, -1, 0, 3})}, {{"axis", int64_t(1)}});
    check_op("Gather", 13, {x, Const(i64({}, {-1}))}, {{"axis", int64_t(-1)}});  // scalar index: the axis goes
  }
  // Rows long enough to widen to 16-byte vectors, an odd row length, an empty index list.
  Tensor emb = rand_tensor(DType::Float16, {100, 64}, 40);
  check_op("Gather", 13, {emb, i64({2, 5}, {0, 99, 17, 17, -3, 5, 6, 7, 8, 9})});
  check_op("Gather", 11, {rand_tensor(DType::Float32, {9, 3, 7}, 41), i32({4}, {8, 0, -9, 1})}, {{"axis", int64_t(0)}});
  check_op("Gather", 1, {rand_tensor(DType::Int64, {4, 3}, 42), Const(i64({0}, {}))}, {{"axis", int64_t(0)}});
}

TEST(CudaGather, OutOfRangeIndices) {
  KILN_REQUIRE_CUDA();
  // Constant indices are checked on the host: InvalidArgument naming the node, as on the CPU.
  Tensor x = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  {
    ir::Graph g = test_ops::make_graph("Gather", 13, {x, Const(i64({2}, {0, 3}))}, {}, 1);
    ir::infer_types(g);
    DirectRunner r(HostIn::Constants);
    try {
      r.run(g, {{"x0", x}}, {{"y0", Shape{2, 2}}});
      ADD_FAILURE() << "no error for index 3 of an axis of size 3";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find("'n0'"), std::string::npos) << e.what();
    }
  }
  // Indices known only on the device: an out-of-range index reads zeros, the others are gathered.
  {
    ir::Graph g = test_ops::make_graph("Gather", 13, {x, i64({3}, {2, -4, -1})}, {}, 1);
    ir::infer_types(g);
    DirectRunner r(HostIn::None);
    Tensor y = r.run(g, {{"x0", x}, {"x1", i64({3}, {2, -4, -1})}}, {}).outputs.at("y0");
    test_ops::expect_tensor(y, DType::Float32, {3, 2}, {5, 6, 0, 0, 5, 6}, 0, 0);
  }
  {
    Tensor idx = i64({3, 2}, {0, 1, 1, 7, 0, -1});  // 7 is outside axis 1 (size 2)
    ir::Graph g = test_ops::make_graph("GatherElements", 13, {x, idx}, {{"axis", int64_t(1)}}, 1);
    ir::infer_types(g);
    DirectRunner r(HostIn::None);
    Tensor y = r.run(g, {{"x0", x}, {"x1", idx}}, {}).outputs.at("y0");
    test_ops::expect_tensor(y, DType::Float32, {3, 2}, {1, 2, 4, 0, 5, 6}, 0, 0);
  }
}

TEST(CudaGather, GatherElements) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 60;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {3, 4, 5}, seed++);
    check_op("GatherElements", 13, {x, i64({3, 2, 5}, {0, 1, 2, 3, -1, 3, 2, 1, 0, -4, 0, 0, 1, 1, 2, 2, 3, 3, 0, 1,
                                                        1, 2, 3, 0, 1, 2, 3, 0, 1, 2})},
             {{"axis", int64_t(1)}});
  }
  Tensor x = rand_tensor(DType::Float32, {4, 6}, 70);
  check_op("GatherElements", 11, {x, i32({2, 6}, {0, 3, -1, 2, 1, 0, 3, 3, 2, 1, 0, -4})}, {{"axis", int64_t(0)}});
  check_op("GatherElements", 13, {x, i64({4, 3}, {5, 0, -6, 1, 2, 3, 4, 5, 0, -1, -2, -3})}, {{"axis", int64_t(-1)}});
}

TEST(CudaGather, GatherND) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 80;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {3, 4, 5}, seed++);
    check_op("GatherND", 13, {x, i64({2, 2}, {0, 1, 2, -1})});                   // slices of 5
    check_op("GatherND", 13, {x, i64({2, 1, 3}, {0, 1, 2, 2, 3, -1})});          // scalars
    check_op("GatherND", 12, {x, i64({3, 2, 1}, {0, 3, 1, 2, -1, 0})}, {{"batch_dims", int64_t(1)}});
  }
  check_op("GatherND", 11, {rand_tensor(DType::Float32, {6, 8}, 90), Const(i64({4, 1}, {5, 0, -1, 2}))});
}

TEST(CudaGather, ScatterND) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 100;
  // reduction none with repeated indices: the last update wins, exactly as on the CPU.
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {4, 3, 2}, seed++);
    check_op("ScatterND", 13, {x, i64({3, 1}, {1, 3, 1}), rand_tensor(dt, {3, 3, 2}, seed++)});
    check_op("ScatterND", 11, {x, i64({4, 2}, {0, 0, 3, -1, 0, 0, 0, 0}), rand_tensor(dt, {4, 2}, seed++)});
    // Constant indices: checked on the host; without repeats the duplicate-order pass is skipped.
    check_op("ScatterND", 13, {x, Const(i64({3, 1}, {2, -1, 2})), rand_tensor(dt, {3, 3, 2}, seed++)});
    check_op("ScatterND", 13, {x, Const(i64({2, 1}, {3, 0})), rand_tensor(dt, {2, 3, 2}, seed++)});
  }
  check_op("ScatterND", 16, {rand_tensor(DType::Float32, {5, 4}, 120), i64({6, 2}, {0, 0, 1, 1, 0, 0, 4, 3, 0, 0, 1, 1}),
                             rand_tensor(DType::Float32, {6}, 121)},
           {{"reduction", std::string("none")}});
  // Reductions, with repeated indices. Integers are exact; float add / mul may reorder.
  for (const char* red : {"add", "mul", "max", "min"}) {
    const int64_t opset = std::string(red) == "add" || std::string(red) == "mul" ? 16 : 18;
    for (DType dt : {DType::Int64, DType::Int32, DType::Int16, DType::Int8, DType::UInt8, DType::Float32, DType::Float16,
                     DType::BFloat16, DType::Float64}) {
      Options o;
      o.exact = !dtype_is_float(dt) || std::string(red) == "max" || std::string(red) == "min";
      Tensor x = rand_tensor(dt, {5, 3}, seed++);
      check_op("ScatterND", opset, {x, i64({4, 1}, {2, 0, 2, -3}), rand_tensor(dt, {4, 3}, seed++)},
               {{"reduction", std::string(red)}}, 1, o);
      check_op("ScatterND", opset, {x, i64({5, 2}, {0, 1, 0, 1, 4, 2, 0, 1, 3, 0}), rand_tensor(dt, {5}, seed++)},
               {{"reduction", std::string(red)}}, 1, o);
    }
  }
}

TEST(CudaGather, PadModes) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 200;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {2, 3, 4}, seed++);
    check_op("Pad", 13, {x, Const(i64({6}, {0, 1, 2, 1, 0, 3}))});
    check_op("Pad", 13, {x, Const(i64({6}, {1, 0, 0, 0, 2, 1})), Const(rand_tensor(dt, {}, seed++))});
    for (const char* m : {"reflect", "edge", "wrap"})
      check_op("Pad", 19, {x, Const(i64({6}, {0, 2, 3, 0, 1, 2}))}, {{"mode", std::string(m)}});
  }
  Tensor x = rand_tensor(DType::Float32, {3, 5, 6}, 250);
  // Negative pads crop, then pad; pads longer than the axis reflect / wrap more than once.
  for (const char* m : {"constant", "reflect", "edge", "wrap"})
    check_op("Pad", 19, {x, Const(i64({6}, {0, -2, 7, -1, 3, -2}))}, {{"mode", std::string(m)}});
  // axes (18), the constant value as a runtime input, opset 2 attributes, an untouched leading block.
  check_op("Pad", 18, {x, Const(i64({4}, {1, -1, 2, 3})), Omit(), Const(i64({2}, {-1, 0}))});
  check_op("Pad", 11, {x, Const(i64({6}, {0, 0, 1, 0, 0, 1})), f32({}, {-7.5f})});
  check_op("Pad", 2, {x}, {{"pads", Ints{0, 1, 1, 0, 1, 1}}, {"value", 2.5f}, {"mode", std::string("constant")}});
  check_op("Pad", 2, {rand_tensor(DType::Int32, {2, 3}, 251)}, {{"pads", Ints{1, 1, 1, 1}}, {"value", -3.7f}});
  check_op("Pad", 2, {x}, {{"pads", Ints{0, 0, 2, 0, 0, 2}}, {"mode", std::string("reflect")}});
  check_op("Pad", 13, {rand_tensor(DType::Float16, {1, 1}, 252), Const(i64({4}, {2, 3, 1, 2}))},
           {{"mode", std::string("reflect")}});  // reflect of a length-1 axis
  Options host_all;
  host_all.host = HostIn::All;
  check_op("Pad", 13, {rand_tensor(DType::Int8, {4, 4}, 253), i64({4}, {1, 2, 0, 1})}, {}, 1, host_all);
}

TEST(CudaGather, Trilu) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 300;
  for (DType dt : all_types()) {
    Tensor x = rand_tensor(dt, {2, 4, 5}, seed++);
    check_op("Trilu", 14, {x});
    check_op("Trilu", 14, {x, Const(i64({}, {-1}))}, {{"upper", int64_t(0)}});
  }
  Tensor x = rand_tensor(DType::Float32, {3, 7, 6}, 320);
  for (int64_t k : {-8, -2, 0, 1, 5, 9}) {
    check_op("Trilu", 14, {x, Const(i64({}, {k}))});
    check_op("Trilu", 14, {x, i64({}, {k})}, {{"upper", int64_t(0)}});  // k read on the device
  }
}

}  // namespace test_cuda_gather_cpp
}  // namespace kiln::cuda_move_test
#endif  // KILN_WITH_CUDA
