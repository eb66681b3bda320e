// Helpers for the op tests: build one-node graphs, run them through the reference executor and type
// inference, make tensors of each dtype and compare results.
// With CUDA built in and a device present, run_op also runs every one-node graph on CUDA device 0
// (runtime::cuda::run_graph_cuda, TF32 off) and checks it against the reference result: integers and bool exactly,
// float32/float64 element-wise (fp32 row of include/kiln/compare.h), float16 / bfloat16 by relative L2 (fp16 /
// bf16 rows), NaN and Inf in the same places. KILN_TEST_CUDA=0 turns that second run off (docs/cuda-testing.md).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/compare.h"
#include "kiln/error.h"
#include "runtime/cpu/cpu_executor.h"
#include "util/half.h"
// KILN_HAVE_RUN_GRAPH_CUDA (tests/CMakeLists.txt): the CUDA executor is in this build.
#if KILN_WITH_CUDA && KILN_HAVE_RUN_GRAPH_CUDA
#define KILN_TEST_OPS_ON_CUDA 1
#include "kiln/device.h"
#include "runtime/cuda/executor.h"
#else
#define KILN_TEST_OPS_ON_CUDA 0
#endif

namespace kiln::test_ops {

using ir::Attr;
using Attrs = std::map<std::string, Attr>;

// One node input: a tensor fed at run time, a constant (initializer), or omitted (empty tensor).
struct In {
  Tensor t;
  bool constant = false;
  In() = default;
  In(Tensor x, bool c = false) : t(std::move(x)), constant(c) {}  // NOLINT: implicit on purpose
};
inline In Const(Tensor t) { return In(std::move(t), true); }
inline In Omit() { return In(); }

inline Tensor f32(Shape s, std::vector<float> v) { return Tensor::from_vector(DType::Float32, std::move(s), v); }
inline Tensor f64(Shape s, std::vector<double> v) { return Tensor::from_vector(DType::Float64, std::move(s), v); }
inline Tensor i64(Shape s, std::vector<int64_t> v) { return Tensor::from_vector(DType::Int64, std::move(s), v); }
inline Tensor i32(Shape s, std::vector<int32_t> v) { return Tensor::from_vector(DType::Int32, std::move(s), v); }
inline Tensor i8(Shape s, std::vector<int8_t> v) { return Tensor::from_vector(DType::Int8, std::move(s), v); }
inline Tensor u8(Shape s, std::vector<uint8_t> v) { return Tensor::from_vector(DType::UInt8, std::move(s), v); }
inline Tensor boolean(Shape s, std::vector<uint8_t> v) { return Tensor::from_vector(DType::Bool, std::move(s), v); }
inline Tensor f16(Shape s, const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float x : v) h.push_back(util::float_to_half(x));
  return Tensor::from_vector(DType::Float16, std::move(s), h);
}
inline Tensor bf16(Shape s, const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float x : v) h.push_back(util::float_to_bf16(x));
  return Tensor::from_vector(DType::BFloat16, std::move(s), h);
}
// Deterministic pseudo-random float32 data in [-1, 1) (not zeros: tests never run on zeros).
inline Tensor rand_f32(Shape s, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& e : v) {
    x = x * 1664525u + 1013904223u;
    e = static_cast<float>((x >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return f32(std::move(s), v);
}
// 0, 1, 2, ... in row-major order.
inline Tensor iota_f32(Shape s) {
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return f32(std::move(s), v);
}
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at_double(i));
  return v;
}
inline std::vector<int64_t> ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at_int64(i));
  return v;
}

// "x3" / "y0": value names (built with += to dodge GCC 12's -Wrestrict false positive on operator+).
inline std::string vname(char c, size_t i) {
  std::string s(1, c);
  s += std::to_string(i);
  return s;
}

inline ir::Graph make_graph(const std::string& op, int64_t opset, const std::vector<In>& inputs, const Attrs& attrs,
                            size_t n_out) {
  ir::register_all_ops();
  ir::Graph g;
  g.name = "test";
  ir::Node n;
  n.name = "n0";
  n.op_type = op;
  n.opset = opset;
  n.attrs = attrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].t.empty()) {
      n.inputs.push_back("");
      continue;
    }
    std::string name = vname('x', i);
    n.inputs.push_back(name);
    if (inputs[i].constant) {
      g.initializers[name] = inputs[i].t;
    } else {
      g.inputs.push_back(name);
      g.types[name] = ir::ValueType::of(inputs[i].t.dtype(), inputs[i].t.shape());
    }
  }
  for (size_t i = 0; i < n_out; ++i) {
    n.outputs.push_back(vname('y', i));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(n);
  return g;
}

// The tolerance row a CUDA result of this dtype is held to against the reference (integers and bool: exact).
inline Tolerance cuda_check_tolerance(DType dt) {
  switch (dt) {
    case DType::Float16: return tolerance_for("fp16");
    case DType::BFloat16: return tolerance_for("bf16");
    case DType::Float32:
    case DType::Float64: return tolerance_for("fp32");
    default: return tolerance_for("exact");
  }
}

// Adds a test failure for every output of `ref` that `got` lacks or that differs from it beyond
// cuda_check_tolerance (what: "Relu on CUDA" names the run in the messages).
inline void expect_outputs_match(const std::string& what, const std::vector<std::string>& names, const TensorMap& got,
                                 const TensorMap& ref) {
  for (const std::string& name : names) {
    auto r = ref.find(name);
    if (r == ref.end()) continue;
    auto g = got.find(name);
    if (g == got.end()) {
      ADD_FAILURE() << what << ": output " << name << " is missing";
      continue;
    }
    const Tolerance tol = cuda_check_tolerance(r->second.dtype());
    const Comparison c = compare(g->second, r->second, tol);
    EXPECT_TRUE(c.passed) << what << ": output " << name << " differs from the reference kernel (" << tol.str()
                          << "): " << c.reason << "; max abs " << c.max_abs << ", rel L2 " << c.rel_l2 << "; got "
                          << g->second.type_str() << ", reference " << r->second.type_str();
  }
}

// Whether op tests also run on CUDA: a CUDA build with the executor, a device, and KILN_TEST_CUDA unset or not "0".
inline bool cuda_op_check_enabled() {
#if KILN_TEST_OPS_ON_CUDA
  static const bool on = [] {
    const char* e = std::getenv("KILN_TEST_CUDA");
    if (e != nullptr && std::string(e) == "0") return false;
    return cuda_device_count() > 0;
  }();
  return on;
#else
  return false;
#endif
}

// Runs `g` on CUDA device 0 and compares its outputs with the reference run's `ref`; a kiln::Error is a failure.
// Does nothing when cuda_op_check_enabled() is false.
inline void expect_cuda_matches_reference(const std::string& label, const ir::Graph& g, const TensorMap& feeds,
                                          const TensorMap& ref) {
  if (!cuda_op_check_enabled()) return;
#if KILN_TEST_OPS_ON_CUDA
  TensorMap got;
  try {
    got = runtime::cuda::run_graph_cuda(g, feeds, 0, /*allow_tf32=*/false);
  } catch (const Error& e) {
    ADD_FAILURE() << label << " on CUDA: " << error_code_name(e.code()) << ": " << e.what();
    return;
  }
  expect_outputs_match(label + " on CUDA", g.outputs, got, ref);
#else
  (void)label;
  (void)g;
  (void)feeds;
  (void)ref;
#endif
}

// Runs inference and the reference kernel; checks that inferred types match the computed outputs. Where a CUDA
// device exists, the same graph also runs on it and must match the reference (see the top of this file).
inline std::vector<Tensor> run_op(const std::string& op, int64_t opset, const std::vector<In>& inputs,
                                  const Attrs& attrs = {}, size_t n_out = 1) {
  ir::Graph g = make_graph(op, opset, inputs, attrs, n_out);
  ir::infer_types(g);
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].t.empty() && !inputs[i].constant) feeds[vname('x', i)] = inputs[i].t;
  TensorMap res = runtime::cpu::run_graph_reference(g, feeds);
  std::string label = op;
  label += "-";
  label += std::to_string(opset);
  expect_cuda_matches_reference(label, g, feeds, res);
  std::vector<Tensor> out;
  for (size_t i = 0; i < n_out; ++i) {
    const std::string name = vname('y', i);
    out.push_back(res.at(name));
    const ir::ValueType* t = g.type_of(name);
    EXPECT_NE(t, nullptr) << op << " output " << i << " has no inferred type";
    if (!t) continue;
    EXPECT_EQ(t->dtype, out.back().dtype()) << op << " output " << i;
    EXPECT_TRUE(t->has_rank) << op << " output " << i;
    if (t->is_static()) {
      EXPECT_EQ(t->static_shape(), out.back().shape()) << op << " output " << i << ": inferred " << t->str();
    } else if (t->has_rank) {
      EXPECT_EQ(t->dims.size(), out.back().shape().size()) << op << " output " << i << ": inferred " << t->str();
    }
  }
  return out;
}

inline Tensor run1(const std::string& op, int64_t opset, const std::vector<In>& inputs, const Attrs& attrs = {}) {
  return run_op(op, opset, inputs, attrs, 1)[0];
}

// Inference only, with symbolic / unknown input types (inputs without a type are omitted).
struct TIn {
  ir::ValueType type;
  Tensor value;  // non-empty: constant input
  bool omitted = false;
};
inline TIn TV(DType dt, std::vector<Dim> dims) { return TIn{ir::ValueType{dt, true, std::move(dims)}, Tensor(), false}; }
inline TIn TUnknownRank(DType dt) { return TIn{ir::ValueType::unknown(dt), Tensor(), false}; }
inline TIn TConst(Tensor v) { return TIn{ir::ValueType::of(v.dtype(), v.shape()), v, false}; }
inline TIn TOmit() { return TIn{ir::ValueType{}, Tensor(), true}; }
inline Dim D(int64_t v) { return Dim{v, ""}; }
inline Dim S(const std::string& sym) { return Dim{-1, sym}; }
inline Dim U() { return Dim{-1, ""}; }

inline std::vector<ir::ValueType> infer_op(const std::string& op, int64_t opset, const std::vector<TIn>& inputs,
                                           const Attrs& attrs = {}, size_t n_out = 1) {
  ir::register_all_ops();
  ir::Graph g;
  ir::Node n;
  n.name = "n0";
  n.op_type = op;
  n.opset = opset;
  n.attrs = attrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].omitted) {
      n.inputs.push_back("");
      continue;
    }
    std::string name = vname('x', i);
    n.inputs.push_back(name);
    if (!inputs[i].value.empty()) g.initializers[name] = inputs[i].value;
    else g.types[name] = inputs[i].type;
  }
  for (size_t i = 0; i < n_out; ++i) n.outputs.push_back(vname('y', i));
  g.nodes.push_back(n);
  ir::infer_types(g);
  std::vector<ir::ValueType> out;
  for (size_t i = 0; i < n_out; ++i) out.push_back(g.types.at(vname('y', i)));
  return out;
}

// "float32[batch,3,?]" style rendering for comparisons.
inline std::string type_str(const ir::ValueType& t) { return t.str(); }

// The ErrorCode thrown by f, failing the test when nothing or something else is thrown.
// `must_mention` (if non-empty) must appear in the message.
inline ErrorCode error_code_of(const std::function<void()>& f, const std::string& must_mention = "'n0'") {
  try {
    f();
  } catch (const Error& e) {
    if (!must_mention.empty()) {
      EXPECT_NE(std::string(e.what()).find(must_mention), std::string::npos) << "message: " << e.what();
    }
    return e.code();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-kiln exception: " << e.what();
    return ErrorCode::Integrity;
  }
  ADD_FAILURE() << "no exception thrown";
  return ErrorCode::Integrity;
}

inline void expect_values(const Tensor& got, const std::vector<double>& want, double atol = 1e-5,
                          double rtol = 1e-4) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << got.type_str();
  for (size_t i = 0; i < want.size(); ++i) {
    double g = got.at_double(static_cast<int64_t>(i));
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(g)) << "index " << i;
      continue;
    }
    EXPECT_LE(std::abs(g - want[i]), atol + rtol * std::abs(want[i]))
        << "index " << i << ": got " << g << ", want " << want[i];
  }
}

inline void expect_tensor(const Tensor& got, DType dt, const Shape& shape, const std::vector<double>& want,
                          double atol = 1e-5, double rtol = 1e-4) {
  EXPECT_EQ(got.dtype(), dt);
  EXPECT_EQ(got.shape(), shape);
  expect_values(got, want, atol, rtol);
}

}  // namespace kiln::test_ops
