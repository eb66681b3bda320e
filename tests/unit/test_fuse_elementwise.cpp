// The fuse_elementwise pass and kiln.FusedElementwise (docs/passes.md): what fuses and what must not, the fused
// node's reference against the unfused graph (bit-exact: it runs the same reference kernels), and, in CUDA builds,
// the CUDA kernel's interpreter (elementwise_fused.cuh) run on the host against the reference on random trees.
#include <gtest/gtest.h>

#include <cmath>

#include "fuse_test_util.h"
#include "kiln/compare.h"
#include "ops/common.h"
#include "util/error.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/kernels/elementwise_fused.cuh"
#endif

namespace kiln::test_fuse {
namespace {

namespace fz = ops::fused;

// Runs the pass on a copy of g; checks the fused graph against the unfused one on `feeds` (bit-exact) and returns it.
ir::Graph fuse_and_check(const ir::Graph& g, const TensorMap& feeds, bool expect_change = true) {
  return run_and_check(g, feeds, [](ir::Graph& x) { return passes::fuse_elementwise(x); }, expect_change);
}

const ir::Node& only_fused(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.op_type == fz::kOpType) return n;
  throw Error(ErrorCode::InvalidState, "no fused node");
}

TEST(FuseElementwise, DecomposedGeluIsOneNode) {
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    GraphBuilder b;
    const std::string x = b.input("x", dt, {2, 5, 16});
    const std::string d = b.node("Div", {x, b.constant("sqrt2", scalar(dt, 1.4142135f))});
    const std::string e = b.node("Erf", {d});
    const std::string a = b.node("Add", {e, b.constant("one", scalar(dt, 1.0f))});
    const std::string m = b.node("Mul", {x, a});
    b.output(b.node("Mul", {m, b.constant("half", scalar(dt, 0.5f))}));
    const ir::Graph f = fuse_and_check(b.typed(), {{"x", random_tensor(dt, {2, 5, 16}, 1)}});
    ASSERT_EQ(f.nodes.size(), 1u);
    const ir::Node& n = f.nodes[0];
    EXPECT_EQ(n.domain, "kiln");
    EXPECT_EQ(n.inputs, std::vector<std::string>{"x"});  // x read twice, one input
    const fz::Program p = fz::decode(n);
    EXPECT_EQ(p.steps.size(), 5u);
    EXPECT_EQ(p.constants.size(), 3u);
    EXPECT_TRUE(f.initializers.empty()) << "the scalar constants moved into the program";
    if (dt == DType::Float32) {
      EXPECT_EQ(fz::describe(p), "Mul(Mul(x0, Add(Erf(Div(x0, 1.41421)), 1)), 0.5)");
    }
  }
}

TEST(FuseElementwise, BiasActivationAfterMatMulAndSiLU) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {4, 6});
  const std::string w = b.constant("w", random_tensor(DType::Float32, {6, 8}, 2));
  const std::string mm = b.node("MatMul", {x, w});
  const std::string biased = b.node("Add", {mm, b.constant("bias", random_tensor(DType::Float32, {8}, 3))});
  const std::string act = b.node("Relu", {biased});
  b.output(b.node("Mul", {act, b.node("Sigmoid", {act})}));  // act read twice, both readers in the group
  const ir::Graph f = fuse_and_check(b.typed(), {{"x", random_tensor(DType::Float32, {4, 6}, 4)}});
  ASSERT_EQ(f.nodes.size(), 2u);
  EXPECT_EQ(f.nodes[0].op_type, "MatMul");
  const ir::Node& n = f.nodes[1];
  ASSERT_EQ(n.op_type, fz::kOpType);
  EXPECT_EQ(n.inputs, (std::vector<std::string>{mm, "bias"}));  // the bias vector is an input, not a constant
  EXPECT_EQ(fz::decode(n).steps.size(), 4u);
  // The shared value costs one saved register: computed first, then read twice.
  std::vector<fz::FusedInst> code;
  ASSERT_TRUE(fz::compile(fz::decode(n), code));
  size_t saves = 0;
  for (const auto& in : code) saves += in.op == fz::kOpSave;
  EXPECT_EQ(saves, 1u);
}

TEST(FuseElementwise, MultiConsumerIntermediatesAndGraphOutputsStay) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {3, 4});
  const std::string y = b.input("y", DType::Float32, {3, 4});
  const std::string t = b.node("Add", {x, y});       // read by Relu and Tanh: not hidden
  const std::string u = b.node("Relu", {t});
  const std::string v = b.node("Tanh", {t});
  const std::string s = b.node("Sigmoid", {x});      // a graph output: not hidden
  const std::string w = b.node("Mul", {s, y});
  b.output(u);
  b.output(v);
  b.output(s);
  b.output(w);
  ir::Graph g = b.typed();
  ir::Graph f = g;
  EXPECT_FALSE(passes::fuse_elementwise(f)) << "no tree of two nodes may form";
  EXPECT_EQ(f.nodes.size(), g.nodes.size());
  // With one more unary node after u, u's own tree forms (Relu -> Exp), t stays outside.
  GraphBuilder b2 = b;
  b2.g.outputs = {v, s, w};
  b2.output(b2.node("Exp", {u}));
  const ir::Graph f2 = fuse_and_check(b2.typed(), {{"x", random_tensor(DType::Float32, {3, 4}, 5)},
                                                  {"y", random_tensor(DType::Float32, {3, 4}, 6)}});
  const ir::Node& n = only_fused(f2);
  EXPECT_EQ(n.inputs, std::vector<std::string>{t});
  EXPECT_EQ(count_op(f2, "Add"), 1u);
  EXPECT_EQ(count_op(f2, "Sigmoid"), 1u);
}

TEST(FuseElementwise, ShapeChangingBroadcastStaysOutButInputBroadcastsFuse) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {5});
  const std::string z = b.input("z", DType::Float32, {4, 5});
  const std::string r = b.node("Relu", {x});    // [5]: its consumer's output is [4, 5]
  const std::string a = b.node("Add", {r, z});  // [4, 5]
  b.output(a);
  ir::Graph f = b.typed();
  EXPECT_FALSE(passes::fuse_elementwise(f)) << "Relu's [5] output cannot be hidden in a [4, 5] tree";
  // Inputs of several broadcast shapes into one [4, 5] tree do fuse.
  GraphBuilder c;
  const std::string p = c.input("p", DType::Float32, {4, 1});
  const std::string q = c.input("q", DType::Float32, {1, 5});
  c.output(c.node("Tanh", {c.node("Mul", {c.node("Add", {p, q}), c.input("r", DType::Float32, {5})})}));
  const ir::Graph g = fuse_and_check(c.typed(), {{"p", random_tensor(DType::Float32, {4, 1}, 7)},
                                                 {"q", random_tensor(DType::Float32, {1, 5}, 8)},
                                                 {"r", random_tensor(DType::Float32, {5}, 9)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs.size(), 3u);
}

TEST(FuseElementwise, IntegerAndDoubleChainsStayUnfused) {
  for (DType dt : {DType::Int64, DType::Float64}) {
    GraphBuilder b;
    const std::string x = b.input("x", dt, {6});
    b.output(b.node("Mul", {b.node("Add", {x, x}), x}));
    ir::Graph f = b.typed();
    EXPECT_FALSE(passes::fuse_elementwise(f)) << dtype_name(dt);
  }
}

TEST(FuseElementwise, AttentionMaskWhereAndCastsFuse) {
  GraphBuilder b;
  const std::string s = b.input("scores", DType::Float16, {2, 4, 8, 8});
  const std::string mask = b.input("causal", DType::Bool, {1, 1, 8, 8});
  const std::string add = b.input("pad", DType::Float16, {2, 1, 1, 8});
  const std::string scaled = b.node("Div", {s, b.constant("d", scalar(DType::Float16, 8.0f))});
  const std::string masked = b.node("Where", {mask, scaled, b.constant("ninf", scalar(DType::Float16, -INFINITY))});
  const std::string sum = b.node("Add", {masked, add});
  const std::string up = b.node("Cast", {sum}, {{"to", int64_t(1)}});
  const std::string sq = b.node("Pow", {up, b.constant("two", scalar(DType::Int64, 2))});
  b.output(b.node("Cast", {sq}, {{"to", int64_t(10)}}));
  const ir::Graph f = fuse_and_check(b.typed(), {{"scores", random_tensor(DType::Float16, {2, 4, 8, 8}, 10)},
                                                 {"causal", random_tensor(DType::Bool, {1, 1, 8, 8}, 11)},
                                                 {"pad", random_tensor(DType::Float16, {2, 1, 1, 8}, 12)}});
  ASSERT_EQ(f.nodes.size(), 1u);
  const fz::Program p = fz::decode(f.nodes[0]);
  EXPECT_EQ(p.constants.size(), 3u);
  EXPECT_EQ(p.constant_dtypes[2], DType::Int64);  // Pow's exponent keeps its dtype
  EXPECT_EQ(p.steps.back().dtype, DType::Float16);
}

TEST(FuseElementwise, LimitsSplitLongChains) {
  // 20 Adds of distinct inputs: at most 8 inputs per fused node, so the chain splits; results stay exact.
  GraphBuilder b;
  TensorMap feeds;
  std::string acc = b.input("a0", DType::Float32, {16});
  feeds["a0"] = random_tensor(DType::Float32, {16}, 100);
  for (int i = 1; i <= 20; ++i) {
    const std::string name = "a" + std::to_string(i);
    feeds[name] = random_tensor(DType::Float32, {16}, 100 + static_cast<uint32_t>(i));
    acc = b.node("Add", {acc, b.input(name, DType::Float32, {16})});
  }
  b.output(acc);
  const ir::Graph f = fuse_and_check(b.typed(), feeds);
  EXPECT_GE(f.nodes.size(), 3u);
  // Four values each read twice inside one group need four registers for themselves: the group splits.
  GraphBuilder c;
  TensorMap cf;
  std::vector<std::string> sq;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "t" + std::to_string(i);
    cf[name] = random_tensor(DType::Float32, {16}, 300 + static_cast<uint32_t>(i));
    const std::string s = c.node("Tanh", {c.input(name, DType::Float32, {16})});
    sq.push_back(c.node("Mul", {s, s}));
  }
  c.output(c.node("Add", {c.node("Add", {sq[0], sq[1]}), c.node("Add", {sq[2], sq[3]})}));
  const ir::Graph h = fuse_and_check(c.typed(), cf);
  EXPECT_GE(h.nodes.size(), 2u) << "not one node";
  for (const auto& n : h.nodes) {
    std::vector<fz::FusedInst> code;
    if (n.op_type == fz::kOpType) {
      EXPECT_TRUE(fz::compile(fz::decode(n), code)) << n.name;
    }
  }
  for (const auto& n : f.nodes) {
    EXPECT_LE(n.inputs.size(), static_cast<size_t>(fz::kMaxInputs)) << n.name;
    std::vector<fz::FusedInst> code;
    if (n.op_type == fz::kOpType) {
      EXPECT_TRUE(fz::compile(fz::decode(n), code)) << n.name;
    }
  }
}

TEST(FuseElementwise, TreesNeedingRegistersCompile) {
  // (a*b + c*d) * (e - f*g): two saved registers; the accumulator code must compute the same values (checked in
  // FusedElementwiseInterp below on random graphs) and the compiler refuses a fourth level.
  GraphBuilder b;
  TensorMap feeds;
  std::vector<std::string> v;
  for (int i = 0; i < 7; ++i) {
    v.push_back(b.input("i" + std::to_string(i), DType::Float32, {8}));
    feeds[v.back()] = random_tensor(DType::Float32, {8}, 200 + static_cast<uint32_t>(i));
  }
  const std::string l = b.node("Add", {b.node("Mul", {v[0], v[1]}), b.node("Mul", {v[2], v[3]})});
  const std::string r = b.node("Sub", {v[4], b.node("Mul", {v[5], v[6]})});
  b.output(b.node("Mul", {l, r}));
  const ir::Graph f = fuse_and_check(b.typed(), feeds);
  ASSERT_EQ(f.nodes.size(), 1u);
  std::vector<fz::FusedInst> code;
  std::string why;
  EXPECT_TRUE(fz::compile(fz::decode(f.nodes[0]), code, &why)) << why;
  // A balanced tree of 32 leaves needs 4 registers: refused by compile(), so the pass splits it.
  fz::Program deep;
  deep.num_inputs = 8;
  std::vector<int64_t> level;
  for (int64_t i = 0; i < 32; ++i) level.push_back(i % 8);
  int64_t next = 8;
  while (level.size() > 1) {
    std::vector<int64_t> up;
    for (size_t i = 0; i < level.size(); i += 2) {
      fz::Step s;
      s.op = "Add";
      s.opset = 14;
      s.operands[0] = level[i];
      s.operands[1] = level[i + 1];
      deep.steps.push_back(s);
      up.push_back(next++);
    }
    level = up;
  }
  EXPECT_FALSE(fz::compile(deep, code, &why));
  EXPECT_NE(why.find("saved registers"), std::string::npos) << why;
}

TEST(FuseElementwise, MalformedProgramsAreInvalidModel) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::Float32, {4});
  b.output(b.node("Exp", {b.node("Neg", {x})}));
  ir::Graph f = b.typed();
  ASSERT_TRUE(passes::fuse_elementwise(f));
  ir::Node& n = f.nodes[0];
  ir::Node bad = n;
  bad.attrs["operands"] = std::vector<int64_t>{0, -1, -1, 5, -1, -1};  // slot 5 does not exist yet
  EXPECT_THROW(fz::decode(bad), Error);
  bad = n;
  bad.attrs["ops"] = std::vector<std::string>{"Neg", "MatMul"};
  EXPECT_THROW(fz::decode(bad), Error);
  bad = n;
  bad.attrs.erase("dtypes");
  EXPECT_THROW(fz::decode(bad), Error);
  bad = n;
  bad.attrs["operands"] = std::vector<int64_t>{-1, -1, -1, 1, -1, -1};  // Neg without its operand
  EXPECT_THROW(fz::decode(bad), Error);
}

// Random trees in every float dtype: the fused graph's reference equals the unfused graph bit for bit, and the pass
// hides no value that is a graph output or read outside its tree.
TEST(FuseElementwise, RandomTreesMatchUnfusedReferenceExactly) {
  size_t fused = 0, before = 0, after = 0;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    for (uint32_t seed = 0; seed < 40; ++seed) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " seed " + std::to_string(seed));
      RandomGraph rg(dt, seed);
      const ir::Graph g = rg.make(1 + static_cast<int>(seed % 5));
      ir::Graph f = g;
      const bool changed = passes::fuse_elementwise(f);
      ir::infer_types(f);
      for (const auto& o : g.outputs) EXPECT_TRUE(f.producers().count(o)) << o << " vanished";
      const TensorMap want = runtime::cpu::run_graph_reference(g, rg.feeds);
      const TensorMap got = runtime::cpu::run_graph_reference(f, rg.feeds);
      for (const auto& o : g.outputs) EXPECT_TRUE(bit_equal(got.at(o), want.at(o))) << o;
      fused += changed;
      before += g.nodes.size();
      after += f.nodes.size();
    }
  }
  EXPECT_GE(fused, 100u);
  EXPECT_LT(after * 3, before) << before << " -> " << after << " nodes";
}

#if KILN_WITH_CUDA
// The CUDA kernel's interpreter, compiled for the host: every fused node of the random graphs evaluated element by
// element (and in vectors of 4 and 8 lanes) from its accumulator code must match the reference kernel: float32
// within the FP32 row (the same float math as the unfused nodes), float16 / bfloat16 within their rows (the kernel
// does not round the hidden intermediates).
template <int V>
Tensor interpret(const ir::Node& n, const std::vector<const Tensor*>& in, const Shape& out_shape, DType out_dt) {
  const fz::Program p = fz::decode(n);
  std::vector<fz::FusedInst> code;
  EXPECT_TRUE(fz::compile(p, code));
  std::vector<std::vector<int64_t>> strides;
  for (const Tensor* t : in) strides.push_back(ops::broadcast_strides(t->shape(), out_shape));
  Tensor y(out_dt, out_shape);
  const int64_t total = y.numel();
  auto offset = [&](size_t k, int64_t i) {
    int64_t off = 0;
    for (size_t d = out_shape.size(); d-- > 0;) {
      off += (i % out_shape[d]) * strides[k][d];
      i /= out_shape[d];
    }
    return off;
  };
  for (int64_t base = 0; base < total; base += V) {
    float acc[V];
    auto fetch = [&](int k, float (&b)[V]) {
      for (int l = 0; l < V; ++l) b[l] = base + l < total ? static_cast<float>(in[static_cast<size_t>(k)]->at_double(
                                                                offset(static_cast<size_t>(k), base + l)))
                                                          : 0.0f;
    };
    runtime::cuda::fused_ew::eval<V>(code.data(), static_cast<int>(code.size()), fetch, acc);
    for (int l = 0; l < V && base + l < total; ++l) {
      if (out_dt == DType::Float32) y.mutable_as<float>()[base + l] = acc[l];
      else if (out_dt == DType::Float16) y.mutable_as<uint16_t>()[base + l] = util::float_to_half(acc[l]);
      else y.mutable_as<uint16_t>()[base + l] = util::float_to_bf16(acc[l]);
    }
  }
  return y;
}

TEST(FusedElementwiseInterp, HostRunOfTheKernelCodeMatchesReference) {
  size_t checked = 0;
  for (DType dt : {DType::Float32, DType::Float16, DType::BFloat16}) {
    const Tolerance tol = tolerance_for(dt == DType::Float32 ? "fp32" : dt == DType::Float16 ? "fp16" : "bf16");
    for (uint32_t seed = 0; seed < 40; ++seed) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " seed " + std::to_string(seed));
      RandomGraph rg(dt, seed);
      ir::Graph f = rg.make(1 + static_cast<int>(seed % 5));
      passes::fuse_elementwise(f);
      ir::infer_types(f);
      TensorMap values = rg.feeds;
      for (const auto& [k, v] : f.initializers) values[k] = v;
      // Keep every intermediate: run node by node.
      for (const auto& n : f.nodes) {
        std::vector<const Tensor*> in;
        for (const auto& name : n.inputs) in.push_back(&values.at(name));
        std::vector<Tensor> out(1);
        ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset)->reference(n, in, out);
        values[n.outputs[0]] = out[0];
        if (n.op_type != fz::kOpType) continue;
        for (const Tensor& got : {interpret<1>(n, in, out[0].shape(), out[0].dtype()),
                                  interpret<4>(n, in, out[0].shape(), out[0].dtype()),
                                  interpret<8>(n, in, out[0].shape(), out[0].dtype())}) {
          const Comparison c = compare(got, out[0], tol);
          EXPECT_TRUE(c.passed) << n.name << " = " << fz::describe(fz::decode(n)) << ": " << c.reason;
        }
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 100u);
}
#endif

}  // namespace
}  // namespace kiln::test_fuse
