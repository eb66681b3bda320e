// Helpers for the elementwise-fusion tests (test_fuse_elementwise*.cpp, test_cuda_fused_elementwise.cpp): a small
// graph builder, random elementwise trees over inputs of several broadcast shapes, bit-exact tensor equality, and a
// pass check against the unfused graph (run_and_check).
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/tensor.h"
#include "ops/fused_elementwise.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_executor.h"
#include "util/half.h"

namespace kiln::test_fuse {

// Builds a graph node by node (opset 20 unless given).
struct GraphBuilder {
  ir::Graph g;
  int count = 0;
  GraphBuilder() {
    ir::register_all_ops();
    g.name = "fuse_test";
  }
  std::string input(const std::string& name, DType dt, const Shape& s) {
    g.inputs.push_back(name);
    g.types[name] = ir::ValueType::of(dt, s);
    return name;
  }
  std::string constant(const std::string& name, const Tensor& t) {
    g.initializers[name] = t;
    return name;
  }
  std::string node(const std::string& op, const std::vector<std::string>& ins,
                   const std::map<std::string, ir::Attr>& attrs = {}, int64_t opset = 20) {
    ir::Node n;
    n.name = op + "_" + std::to_string(count);
    n.op_type = op;
    n.opset = opset;
    n.inputs = ins;
    n.attrs = attrs;
    n.outputs = {"v" + std::to_string(count++)};
    g.nodes.push_back(n);
    return n.outputs[0];
  }
  void output(const std::string& v) { g.outputs.push_back(v); }
  // Types inferred (as the pipeline leaves them before a pass runs).
  ir::Graph typed() {
    ir::Graph t = g;
    ir::infer_types(t);
    return t;
  }
};

inline Tensor scalar(DType dt, float v) {
  Tensor t(dt, Shape{});
  if (dt == DType::Float32) t.mutable_as<float>()[0] = v;
  else if (dt == DType::Float16) t.mutable_as<uint16_t>()[0] = util::float_to_half(v);
  else if (dt == DType::BFloat16) t.mutable_as<uint16_t>()[0] = util::float_to_bf16(v);
  else if (dt == DType::Int64) t.mutable_as<int64_t>()[0] = static_cast<int64_t>(v);
  return t;
}

// Uniform values in [lo, hi) (bool: about half true).
inline Tensor random_tensor(DType dt, const Shape& s, uint32_t seed, float lo = -3, float hi = 3) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t(dt, s);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = u(rng);
    if (dt == DType::Float32) t.mutable_as<float>()[i] = v;
    else if (dt == DType::Float16) t.mutable_as<uint16_t>()[i] = util::float_to_half(v);
    else if (dt == DType::BFloat16) t.mutable_as<uint16_t>()[i] = util::float_to_bf16(v);
    else if (dt == DType::Bool) t.mutable_as<uint8_t>()[i] = v > 0 ? 1 : 0;
  }
  return t;
}

// Same dtype, shape and bytes (NaN payloads included).
inline bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

inline size_t count_op(const ir::Graph& g, const std::string& op) {
  size_t k = 0;
  for (const auto& n : g.nodes) k += n.op_type == op;
  return k;
}

// A random elementwise graph in dtype `dt`: an expression tree over full-shape inputs [2, 3, 8], a bias [8], a
// per-channel [3, 1] tensor, a bool mask [2, 1, 8] and scalar constants, with values kept finite (Log / Sqrt / Div /
// Pow read positive values). Some intermediates are also graph outputs or read twice, which fusion must respect.
struct RandomGraph {
  GraphBuilder b;
  TensorMap feeds;
  DType dt;
  std::mt19937 rng;
  std::vector<std::string> full, other;
  int consts = 0;

  RandomGraph(DType d, uint32_t seed) : dt(d), rng(seed) {
    const Shape s{2, 3, 8};
    for (int i = 0; i < 3; ++i) full.push_back(add_input("x" + std::to_string(i), s, seed + 10 + i));
    other.push_back(add_input("bias", {8}, seed + 20));
    other.push_back(add_input("chan", {3, 1}, seed + 21));
    b.input("mask", DType::Bool, {2, 1, 8});
    feeds["mask"] = random_tensor(DType::Bool, {2, 1, 8}, seed + 22);
  }
  std::string add_input(const std::string& name, const Shape& s, uint32_t seed) {
    b.input(name, dt, s);
    feeds[name] = random_tensor(dt, s, seed);
    return name;
  }
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  std::string constant(float v, DType cdt) {
    return b.constant("c" + std::to_string(consts++), scalar(cdt, v));
  }
  std::string leaf() {
    const int k = pick(10);
    if (k < 6) return full[static_cast<size_t>(pick(static_cast<int>(full.size())))];
    if (k < 8) return other[static_cast<size_t>(pick(static_cast<int>(other.size())))];
    return constant(static_cast<float>(pick(7)) * 0.25f - 0.75f, dt);
  }
  // Positive version of v: Abs(v) + 0.5.
  std::string positive(const std::string& v) { return b.node("Add", {b.node("Abs", {v}), constant(0.5f, dt)}); }
  // A full-shape value: leaves are full inputs, so every node keeps the tree's shape.
  std::string expr(int depth) {
    if (depth == 0) return full[static_cast<size_t>(pick(static_cast<int>(full.size())))];
    const int k = pick(20);
    const std::string a = expr(depth - 1);
    switch (k) {
      case 0: return b.node("Add", {a, pick(2) ? expr(depth - 1) : leaf()});
      case 1: return b.node("Sub", {pick(2) ? leaf() : expr(depth - 1), a});
      case 2: return b.node("Mul", {a, pick(2) ? expr(depth - 1) : leaf()});
      case 3: return b.node("Div", {pick(2) ? leaf() : a, positive(pick(2) ? expr(depth - 1) : a)});
      case 4: return b.node("Tanh", {a});
      case 5: return b.node("Sigmoid", {a});
      case 6: return b.node("Erf", {a});
      case 7: return b.node("Relu", {a});
      case 8: return b.node("Gelu", {a}, {{"approximate", std::string(pick(2) ? "tanh" : "none")}});
      case 9: return b.node("Where", {"mask", a, pick(2) ? expr(depth - 1) : leaf()});
      case 10: return b.node("Clip", {a, constant(-1.0f, dt), constant(1.5f, dt)});
      case 11: return b.node("Max", {a, pick(2) ? expr(depth - 1) : leaf()});
      case 12: return b.node("Min", {leaf(), a});
      case 13: return b.node("LeakyRelu", {a}, {{"alpha", 0.1f}});
      case 14: return b.node("HardSwish", {a});
      case 15: return b.node("Pow", {positive(a), pick(2) ? constant(2.0f, DType::Int64) : constant(0.5f, dt)});
      case 16: return b.node("Log", {positive(a)});
      case 17: return b.node("Sqrt", {positive(a)});
      case 18: {  // a Cast round trip through another float type
        const int64_t other_type = dt == DType::Float32 ? 10 : 1;
        const int64_t back = dt == DType::Float32 ? 1 : dt == DType::Float16 ? 10 : 16;
        return b.node("Cast", {b.node("Cast", {a}, {{"to", other_type}})}, {{"to", back}});
      }
      default: return b.node("Neg", {a});
    }
  }
  // The graph: one or two outputs; sometimes an intermediate is also an output or read by a second tree.
  ir::Graph make(int depth) {
    const std::string y = expr(depth);
    b.output(y);
    if (pick(3) == 0 && b.g.nodes.size() > 2) {
      const std::string mid = b.g.nodes[b.g.nodes.size() / 2].outputs[0];
      if (pick(2)) b.output(mid);
      else b.output(b.node("Tanh", {mid}));
    }
    return b.typed();
  }
};

// Runs `pass` on a copy of g and checks the result against g on `feeds` (bit-exact); returns the fused graph.
template <class Pass>
inline ir::Graph run_and_check(const ir::Graph& g, const TensorMap& feeds, Pass pass, bool expect_change) {
  ir::Graph f = g;
  EXPECT_EQ(pass(f), expect_change);
  passes::eliminate_dead_code(f);
  ir::infer_types(f);
  const TensorMap want = runtime::cpu::run_graph_reference(g, feeds);
  const TensorMap got = runtime::cpu::run_graph_reference(f, feeds);
  for (const auto& o : g.outputs) {
    EXPECT_TRUE(got.count(o)) << o;
    if (got.count(o)) {
      EXPECT_TRUE(bit_equal(got.at(o), want.at(o))) << "output " << o << " differs after fusion";
    }
    const ir::ValueType* t = f.type_of(o);
    EXPECT_TRUE(t && t->is_static() && t->static_shape() == want.at(o).shape() && t->dtype == want.at(o).dtype()) << o;
  }
  return f;
}
}  // namespace kiln::test_fuse
