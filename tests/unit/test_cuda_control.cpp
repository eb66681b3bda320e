// CUDA control kernels against the reference kernels: Shape (start / end), Size, Constant (every value attribute),
// ConstantOfShape, Range (every dtype, values read on the device), NonZero (data-dependent output shape) and If
// (cond read to the host, the branch run through run_subgraph, captured values). Skipped without a CUDA device.
#if KILN_WITH_CUDA
#include <cmath>
#include <limits>

#include "cuda_move_test_util.h"
#include "ir/subgraph.h"

namespace kiln::cuda_move_test {
namespace test_cuda_control_cpp {

using test_ops::boolean;
using test_ops::Const;
using test_ops::f32;
using test_ops::i64;
using Ints = std::vector<int64_t>;

TEST(CudaControl, ShapeAndSize) {
  KILN_REQUIRE_CUDA();
  const Tensor x = rand_tensor(DType::Float16, {2, 3, 5, 7}, 1);
  check_op("Shape", 13, {x});
  check_op("Shape", 15, {x}, {{"start", int64_t(1)}});
  check_op("Shape", 15, {x}, {{"start", int64_t(-3)}, {"end", int64_t(-1)}});
  check_op("Shape", 15, {x}, {{"start", int64_t(3)}, {"end", int64_t(1)}});  // empty
  check_op("Shape", 19, {rand_tensor(DType::Int8, {}, 2)});
  check_op("Size", 13, {x});
  check_op("Size", 13, {rand_tensor(DType::Bool, {4, 0}, 3)});
}

TEST(CudaControl, Constant) {
  KILN_REQUIRE_CUDA();
  check_op("Constant", 13, {}, {{"value", rand_tensor(DType::Float32, {3, 4}, 10)}});
  check_op("Constant", 13, {}, {{"value", rand_tensor(DType::Int64, {2000}, 11)}});  // several parameter chunks
  check_op("Constant", 13, {}, {{"value_float", 2.5f}});
  check_op("Constant", 13, {}, {{"value_floats", std::vector<float>{1.f, -2.f, 3.5f}}});
  check_op("Constant", 13, {}, {{"value_int", int64_t(-7)}});
  check_op("Constant", 13, {}, {{"value_ints", Ints{4, 5, 6, 7, 8}}});
  check_op("Constant", 9, {}, {{"value", rand_tensor(DType::BFloat16, {5, 3}, 12)}});
}

TEST(CudaControl, ConstantOfShape) {
  KILN_REQUIRE_CUDA();
  check_op("ConstantOfShape", 9, {Const(i64({2}, {3, 4}))});  // float32 zeros
  uint32_t seed = 20;
  for (DType dt : all_types()) {
    check_op("ConstantOfShape", 20, {Const(i64({3}, {2, 3, 5}))}, {{"value", rand_tensor(dt, {1}, seed++)}});
    check_op("ConstantOfShape", 20, {Const(i64({1}, {16}))}, {{"value", rand_tensor(dt, {1}, seed++)}});  // 16-byte fill
  }
  check_op("ConstantOfShape", 9, {Const(i64({2}, {0, 3}))}, {{"value", test_ops::i32({1}, {5})}});
  check_op("ConstantOfShape", 9, {Const(i64({0}, {}))}, {{"value", f32({1}, {1.5f})}});  // a scalar
  check_op("ConstantOfShape", 9, {Const(i64({1}, {100003}))}, {{"value", f32({1}, {-0.25f})}});
}

TEST(CudaControl, RangeEveryDtype) {
  KILN_REQUIRE_CUDA();
  auto scalar = [](DType dt, double v) {
    Tensor t(dt, {});
    switch (dt) {
      case DType::Float32: *t.mutable_as<float>() = static_cast<float>(v); break;
      case DType::Float64: *t.mutable_as<double>() = v; break;
      case DType::Float16: return test_ops::f16({}, {static_cast<float>(v)});
      case DType::BFloat16: return test_ops::bf16({}, {static_cast<float>(v)});
      case DType::Int16: *t.mutable_as<int16_t>() = static_cast<int16_t>(v); break;
      case DType::Int32: *t.mutable_as<int32_t>() = static_cast<int32_t>(v); break;
      default: *t.mutable_as<int64_t>() = static_cast<int64_t>(v); break;
    }
    return t;
  };
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int16, DType::Int32, DType::Int64}) {
    const bool fl = dtype_is_float(dt);
    const int64_t opset = dt == DType::Float16 || dt == DType::BFloat16 ? 27 : 11;
    check_op("Range", opset, {Const(scalar(dt, 3)), Const(scalar(dt, 40)), Const(scalar(dt, fl ? 0.7 : 3))});
    check_op("Range", opset, {Const(scalar(dt, 10)), Const(scalar(dt, -5)), Const(scalar(dt, -2))});
    check_op("Range", opset, {Const(scalar(dt, 1)), Const(scalar(dt, 1)), Const(scalar(dt, 1))});  // empty
    // start and delta known only on the device (the count still comes from the host values).
    Options o;
    o.host = HostIn::All;
    check_op("Range", opset, {scalar(dt, -4), scalar(dt, 9), scalar(dt, fl ? 0.25 : 1)}, {}, 1, o);
  }
  check_op("Range", 11, {Const(scalar(DType::Float32, 0.1)), Const(scalar(DType::Float32, 1000)),
                         Const(scalar(DType::Float32, 0.37))});
}

TEST(CudaControl, NonZero) {
  KILN_REQUIRE_CUDA();
  uint32_t seed = 40;
  for (DType dt : all_types()) {
    check_op("NonZero", 13, {rand_tensor(dt, {3, 4, 5}, seed++)});
    check_op("NonZero", 9, {rand_tensor(dt, {17}, seed++)});
  }
  // -0.0 is zero, NaN is not; a scalar is a 1-element vector; no nonzeros gives [rank, 0].
  const float nan = std::numeric_limits<float>::quiet_NaN();
  check_op("NonZero", 13, {f32({2, 3}, {0.f, -0.f, nan, 1e-30f, 0.f, -2.f})});
  check_op("NonZero", 13, {f32({}, {3.f})});
  check_op("NonZero", 13, {boolean({2, 2}, {0, 0, 0, 0})});
  // Many chunks and tiles: the output order must be row-major.
  Tensor big(DType::UInt8, {3, 700, 500});
  auto* p = big.mutable_as<uint8_t>();
  for (int64_t i = 0; i < big.numel(); ++i) p[i] = static_cast<uint8_t>((i * 2654435761u >> 7) % 5 == 0);
  check_op("NonZero", 13, {big});
}

// If with branches built from kernels of this family: then = Transpose(x) reshaped, else = Slice of x. The branches
// read x and s from the outer graph (captures), and the then-branch also returns a captured value unchanged.
ir::Graph if_graph() {
  ir::register_all_ops();
  auto node = [](const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
    ir::Node n;
    n.name = op + "_" + out[0];
    n.op_type = op;
    n.opset = 13;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
  };
  auto then_g = std::make_shared<ir::Graph>();
  then_g->name = "then";
  ir::Node tr = node("Transpose", {"x"}, {"t"});
  tr.attrs["perm"] = Ints{1, 0};
  then_g->nodes = {tr, node("Reshape", {"t", "shape"}, {"r"})};
  then_g->initializers["shape"] = i64({1}, {-1});
  then_g->outputs = {"r", "s"};
  auto else_g = std::make_shared<ir::Graph>();
  else_g->name = "else";
  else_g->nodes = {node("Slice", {"x", "st", "en"}, {"sl"}), node("Reshape", {"sl", "shape"}, {"e"}),
                   node("Shape", {"x"}, {"sh"})};
  else_g->initializers["st"] = i64({2}, {0, 1});
  else_g->initializers["en"] = i64({2}, {2, 4});
  else_g->initializers["shape"] = i64({1}, {-1});
  else_g->outputs = {"e", "sh"};
  ir::Graph g;
  g.name = "outer";
  g.inputs = {"c", "x", "s"};
  g.types["c"] = ir::ValueType::of(DType::Bool, {});
  g.types["x"] = ir::ValueType::of(DType::Float32, {2, 3});
  g.types["s"] = ir::ValueType::of(DType::Int64, {2});
  ir::Node iff = node("If", {"c", "x", "s"}, {"y", "z"});
  iff.attrs["then_branch"] = ir::GraphPtr(then_g);
  iff.attrs["else_branch"] = ir::GraphPtr(else_g);
  iff.attrs[ir::kNumFormalInputs] = int64_t(1);
  iff.attrs[ir::kCapturedNames] = std::vector<std::string>{"x", "s"};
  g.nodes.push_back(iff);
  g.outputs = {"y", "z"};
  return g;
}

TEST(CudaControl, IfRunsTheChosenBranchOnTheDevice) {
  KILN_REQUIRE_CUDA();
  ir::Graph g = if_graph();
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor s = i64({2}, {2, 3});
  for (bool c : {true, false}) {
    const TensorMap feeds = {{"c", boolean({}, {uint8_t(c)})}, {"x", x}, {"s", s}};
    const TensorMap ref = runtime::cpu::run_graph_reference(g, feeds);
    for (HostIn h : {HostIn::None, HostIn::All}) {
      DirectRunner r(h);
      const DirectRun got = r.run(g, feeds, {});
      for (const char* name : {"y", "z"})
        EXPECT_TRUE(got.outputs.at(name).bit_equal(ref.at(name)))
            << "cond " << c << " output " << name << ": " << got.outputs.at(name).type_str() << " vs "
            << ref.at(name).type_str();
      EXPECT_EQ(got.tactics.front(), "If:cuda");
      EXPECT_EQ(got.tactics.size(), c ? 3u : 4u) << "the If node and its branch's nodes, each a CUDA tactic";
    }
    const TensorMap got = runtime::cuda::run_graph_cuda(g, feeds, 0, false);
    for (const char* name : {"y", "z"}) EXPECT_TRUE(got.at(name).bit_equal(ref.at(name))) << "executor, cond " << c;
  }
}

// Runs without a device: every op of the two families has a CUDA tactic for its usual types, and `supports` sends
// what the kernels do not take to the host fallback.
TEST(CudaKernelRegistry, MovementAndControlOpsHaveCudaTactics) {
  ir::register_all_ops();
  runtime::cuda::register_all_cuda_kernels();
  auto node = [](const std::string& op, int64_t opset, Attrs attrs = {}) {
    ir::Node n;
    n.name = "n0";
    n.op_type = op;
    n.opset = opset;
    n.attrs = std::move(attrs);
    return n;
  };
  auto t = [](DType dt, Shape s) { return ir::ValueType::of(dt, s); };
  const ir::ValueType f4 = t(DType::Float32, {2, 3, 4, 5}), i1 = t(DType::Int64, {2}), none{};
  struct C {
    ir::Node n;
    std::vector<ir::ValueType> in;
    bool cuda;
  };
  const std::vector<C> cases = {
      {node("Transpose", 13), {f4}, true},
      {node("Gather", 13), {f4, t(DType::Int32, {3})}, true},
      {node("Gather", 13), {f4, t(DType::Int64, {3})}, true},
      {node("GatherElements", 13), {f4, t(DType::Int64, {2, 3, 4, 5})}, true},
      {node("GatherND", 13), {f4, t(DType::Int64, {2, 2})}, true},
      {node("ScatterND", 16, {{"reduction", std::string("add")}}), {f4, t(DType::Int64, {2, 1}), f4}, true},
      {node("ScatterND", 16, {{"reduction", std::string("add")}}),
       {t(DType::Bool, {4}), t(DType::Int64, {2, 1}), t(DType::Bool, {2})}, false},
      {node("Slice", 13), {f4, i1, i1, none, none}, true},
      {node("Concat", 13), {f4, f4}, true},
      {node("Split", 13), {f4, i1}, true},
      {node("Pad", 19), {t(DType::Bool, {2, 2}), t(DType::Int64, {4})}, true},
      {node("Expand", 13), {t(DType::Int8, {1, 3}), i1}, true},
      {node("Tile", 13), {f4, t(DType::Int64, {4})}, true},
      {node("Tile", 13), {t(DType::Float32, {2, 2, 2, 2, 2, 2, 2}), t(DType::Int64, {7})}, false},
      {node("DepthToSpace", 13), {f4}, true},
      {node("SpaceToDepth", 13), {f4}, true},
      {node("Trilu", 14), {f4}, true},
      {node("Reshape", 14), {f4, i1}, true},
      {node("Flatten", 13), {f4}, true},
      {node("Squeeze", 13), {f4, i1}, true},
      {node("Unsqueeze", 13), {f4, i1}, true},
      {node("Resize", 19, {{"mode", std::string("linear")}}), {t(DType::Float16, {1, 1, 4, 4}), none, i1}, true},
      {node("Resize", 19, {{"mode", std::string("linear")}}), {t(DType::UInt8, {1, 1, 4, 4}), none, i1}, false},
      {node("Resize", 19), {t(DType::UInt8, {1, 1, 4, 4}), none, i1}, true},
      {node("Shape", 15), {f4}, true},
      {node("Size", 13), {f4}, true},
      {node("Constant", 13), {}, true},
      {node("ConstantOfShape", 20), {i1}, true},
      {node("Range", 11), {t(DType::Int32, {}), t(DType::Int32, {}), t(DType::Int32, {})}, true},
      {node("Range", 11), {t(DType::UInt8, {}), t(DType::UInt8, {}), t(DType::UInt8, {})}, false},
      {node("NonZero", 13), {f4}, true},
      {node("If", 13), {t(DType::Bool, {})}, true},
  };
  for (const C& c : cases) {
    const auto tactics = runtime::cuda::cuda_tactics_for(c.n, c.in);
    EXPECT_EQ(!tactics.empty(), c.cuda) << c.n.op_type << "-" << c.n.opset;
    if (!tactics.empty()) {
      EXPECT_EQ(tactics.front()->name, "cuda") << c.n.op_type;
    }
  }
  // Data-dependent outputs synchronize: never captured into a CUDA graph.
  for (const char* op : {"NonZero", "If"}) {
    const auto all = runtime::cuda::cuda_tactics("", op);
    ASSERT_FALSE(all.empty()) << op;
    EXPECT_TRUE(all.front()->dynamic_output) << op;
    EXPECT_FALSE(all.front()->capturable) << op;
  }
  EXPECT_TRUE(runtime::cuda::cuda_tactics("", "Transpose").front()->capturable);
}

}  // namespace test_cuda_control_cpp
}  // namespace kiln::cuda_move_test
#endif  // KILN_WITH_CUDA
