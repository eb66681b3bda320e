// Helpers for the CUDA elementwise tests (test_cuda_elementwise*.cpp): random tensors of every dtype, and a
// one-node runner that executes a node with its heuristic CUDA tactic (the kernel.h contract, as the executor
// calls it: device inputs and outputs, host copies of constant inputs) and compares with the reference kernels.
#pragma once
#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>

#include <cmath>
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "kiln/device.h"
#include "runtime/cuda/kernel.h"
#include "test_ops_util.h"

namespace kiln::test_cuda_ew {

using test_ops::Attrs;
using test_ops::In;

#define KILN_REQUIRE_CUDA() \
  if (::kiln::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

// Values of dtype `dt` from doubles (floats rounded, integers truncated, bool = != 0).
inline Tensor make_tensor(DType dt, const Shape& s, const std::vector<double>& v) {
  Tensor t(dt, s);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double x = v[static_cast<size_t>(i)];
    // Integers: through int64 (saturated there), then wrapped to the narrower type.
    const int64_t xi = x != x                       ? 0
                       : x >= 9.2233720368547758e18  ? INT64_MAX
                       : x <= -9.2233720368547758e18 ? INT64_MIN
                                                     : static_cast<int64_t>(x);
    switch (dt) {
      case DType::Float32: t.mutable_as<float>()[i] = static_cast<float>(x); break;
      case DType::Float16: t.mutable_as<uint16_t>()[i] = util::float_to_half(static_cast<float>(x)); break;
      case DType::BFloat16: t.mutable_as<uint16_t>()[i] = util::float_to_bf16(static_cast<float>(x)); break;
      case DType::Float64: t.mutable_as<double>()[i] = x; break;
      case DType::Int64: t.mutable_as<int64_t>()[i] = static_cast<int64_t>(xi); break;
      case DType::Int32: t.mutable_as<int32_t>()[i] = static_cast<int32_t>(xi); break;
      case DType::Int16: t.mutable_as<int16_t>()[i] = static_cast<int16_t>(xi); break;
      case DType::Int8: t.mutable_as<int8_t>()[i] = static_cast<int8_t>(xi); break;
      case DType::UInt8: t.mutable_as<uint8_t>()[i] = static_cast<uint8_t>(xi); break;
      case DType::Bool: t.mutable_as<uint8_t>()[i] = x != 0 ? 1 : 0; break;
    }
  }
  return t;
}

// Range of random values: floats uniform in [lo, hi); integers uniform in [ilo, ihi] (uint8 clamps below at 0);
// bool about half true. `nonzero` replaces zeros (divisors).
struct Range {
  double lo = -2, hi = 2;
  int64_t ilo = -100, ihi = 100;
  bool nonzero = false;
};

inline Tensor rand_tensor(DType dt, const Shape& s, uint32_t seed, Range r = {}) {
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  const bool is_float = dtype_is_float(dt);
  const int64_t ilo = dt == DType::UInt8 ? std::max<int64_t>(0, r.ilo) : r.ilo;
  for (auto& e : v) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    const double u = static_cast<double>((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;  // [0, 1)
    if (dt == DType::Bool) e = u < 0.5 ? 0 : 1;
    else if (is_float) e = r.lo + (r.hi - r.lo) * u;
    else e = static_cast<double>(ilo + static_cast<int64_t>(u * static_cast<double>(r.ihi - ilo + 1)));
    if (r.nonzero && e == 0) e = is_float ? 0.5 : 1;
  }
  return make_tensor(dt, s, v);
}

// The reference's row of the tolerance table; float16/bfloat16 also get an element-wise bound of about two of their
// ulps (one rounding of the same float value) so a single wrong element cannot hide in the relative L2 norm.
inline void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  const DType dt = want.dtype();
  const char* row = dt == DType::Float16 ? "fp16" : dt == DType::BFloat16 ? "bf16" : "fp32";
  Comparison c = compare(got, want, tolerance_for(row));
  EXPECT_TRUE(c.passed) << what << ": " << c.reason << " (max abs " << c.max_abs << ")";
  if (dt == DType::Float16 || dt == DType::BFloat16) {
    const Tolerance tight{Metric::ElementWise, dt == DType::Float16 ? 4e-3 : 1.6e-2, 1e-3, 0};
    c = compare(got, want, tight);
    EXPECT_TRUE(c.passed) << what << ": " << c.reason << " (max abs " << c.max_abs << ")";
  }
}

// Owns device buffers.
struct DeviceBuffers {
  std::vector<void*> ptrs;
  void* alloc(size_t bytes) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
    ptrs.push_back(p);
    return p;
  }
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
};

// Runs g's only node with its first CUDA tactic (which must exist and be a kiln kernel, not the host fallback).
// `misalign` offsets every buffer by one element so the vector path cannot be taken.
inline std::vector<Tensor> run_node_cuda(const ir::Graph& g, const TensorMap& feeds, bool misalign,
                                         const std::string& what) {
  runtime::cuda::register_all_cuda_kernels();
  const ir::Node& node = g.nodes.at(0);
  std::vector<ir::ValueType> types;
  std::vector<const Tensor*> host;
  for (const std::string& name : node.inputs) {
    if (name.empty()) {
      types.emplace_back();
      host.push_back(nullptr);
    } else if (g.is_constant(name)) {
      const Tensor& t = g.initializers.at(name);
      types.push_back(ir::ValueType::of(t.dtype(), t.shape()));
      host.push_back(&t);
    } else {
      types.push_back(*g.type_of(name));
      host.push_back(&feeds.at(name));
    }
  }
  const auto tactics = runtime::cuda::cuda_tactics_for(node, types);
  if (tactics.empty()) {
    ADD_FAILURE() << what << ": no CUDA tactic supports the node";
    return {};
  }
  EXPECT_EQ(tactics[0]->name, "cuda") << what;

  EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
  DeviceBuffers bufs;
  std::vector<runtime::cuda::DTensor> din(node.inputs.size());
  std::vector<const runtime::cuda::DTensor*> in_ptrs;
  std::vector<const Tensor*> host_in;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    if (!host[i]) {
      in_ptrs.push_back(nullptr);
      host_in.push_back(nullptr);
      continue;
    }
    const Tensor& t = *host[i];
    const size_t off = misalign ? dtype_size(t.dtype()) : 0;
    char* p = static_cast<char*>(bufs.alloc(t.nbytes() + 64)) + off;
    EXPECT_EQ(cudaMemcpy(p, t.data(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    din[i] = runtime::cuda::DTensor{t.dtype(), t.shape(), p};
    in_ptrs.push_back(&din[i]);
    host_in.push_back(g.is_constant(node.inputs[i]) ? host[i] : nullptr);
  }
  runtime::cuda::KernelArgs args{node, in_ptrs, host_in, {}};
  for (const std::string& name : node.outputs) {
    runtime::cuda::DTensor d;
    if (!name.empty()) {
      const ir::ValueType* t = g.type_of(name);
      EXPECT_TRUE(t && t->is_static()) << what << ": output " << name << " has no static type";
      if (!t || !t->is_static()) return {};
      d.dtype = t->dtype;
      d.shape = t->static_shape();
      const size_t off = misalign ? dtype_size(d.dtype) : 0;
      d.data = static_cast<char*>(bufs.alloc(d.nbytes() + 64)) + off;
    }
    args.out.push_back(d);
  }
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cudaDeviceProp props{};
  EXPECT_EQ(cudaGetDeviceProperties(&props, 0), cudaSuccess);
  runtime::cuda::KernelContext ctx;
  ctx.stream = stream;
  ctx.props = &props;
  tactics[0]->run(ctx, args);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << what;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << what;
  cudaStreamDestroy(stream);
  std::vector<Tensor> out;
  for (const auto& d : args.out) {
    if (!d.data) {
      out.emplace_back();
      continue;
    }
    Tensor t(d.dtype, d.shape);
    EXPECT_EQ(cudaMemcpy(t.mutable_data(), d.data, t.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    out.push_back(t);
  }
  return out;
}

// Builds the one-node graph, runs the reference and the CUDA tactic, compares every output.
inline void check_op(const std::string& op, int64_t opset, const std::vector<In>& inputs, const Attrs& attrs = {},
                     size_t n_out = 1, bool misalign = false) {
  std::string what = op + "-" + std::to_string(opset);
  for (const In& in : inputs) what += " " + (in.t.empty() ? std::string("-") : in.t.type_str());
  if (misalign) what += " (misaligned)";
  SCOPED_TRACE(what);
  ir::Graph g = test_ops::make_graph(op, opset, inputs, attrs, n_out);
  ir::infer_types(g);
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].t.empty() && !inputs[i].constant) feeds[test_ops::vname('x', i)] = inputs[i].t;
  const TensorMap ref = runtime::cpu::run_graph_reference(g, feeds);
  const std::vector<Tensor> got = run_node_cuda(g, feeds, misalign, what);
  ASSERT_EQ(got.size(), n_out) << what;
  for (size_t i = 0; i < n_out; ++i) expect_close(got[i], ref.at(test_ops::vname('y', i)), what);
}

// Registry-only check (no device needed): whether a CUDA tactic supports the node with these input types.
inline bool cuda_supports(const std::string& op, int64_t opset, const std::vector<In>& inputs,
                          const Attrs& attrs = {}) {
  runtime::cuda::register_all_cuda_kernels();
  ir::Graph g = test_ops::make_graph(op, opset, inputs, attrs, 1);
  std::vector<ir::ValueType> types;
  for (const In& in : inputs) types.push_back(in.t.empty() ? ir::ValueType{} : ir::ValueType::of(in.t.dtype(), in.t.shape()));
  return !runtime::cuda::cuda_tactics_for(g.nodes.at(0), types).empty();
}

inline const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};
inline const std::vector<DType> kIntTypes = {DType::Int64, DType::Int32, DType::Int16, DType::Int8, DType::UInt8};
inline const std::vector<DType> kAllTypes = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                                      DType::Int32,   DType::Int16,   DType::Int8,     DType::UInt8,   DType::Bool};

}  // namespace kiln::test_cuda_ew
#endif  // KILN_WITH_CUDA
