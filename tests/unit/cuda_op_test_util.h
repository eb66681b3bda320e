// Helpers for the CUDA op-kernel tests: run one node of a one-node graph with a chosen CUDA tactic (device inputs
// and outputs allocated here, outputs shaped by type inference, the tactic's own workspace), and compare with the
// CPU reference executor using the tolerance table. Only in CUDA builds; tests skip without a device.
#pragma once
#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "kiln/device.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cuda/kernel.h"
#include "test_ops_util.h"

#define KILN_SKIP_WITHOUT_CUDA() \
  if (::kiln::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"

namespace kiln::test_cuda {

using test_ops::Attrs;
using test_ops::In;

struct CudaEnv {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  cudaDeviceProp props{};
};

// One stream and library handles for the whole test binary (device 0).
inline CudaEnv& cuda_env() {
  static CudaEnv e = [] {
    CudaEnv x;
    EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
    EXPECT_EQ(cudaGetDeviceProperties(&x.props, 0), cudaSuccess);
    EXPECT_EQ(cudaStreamCreate(&x.stream), cudaSuccess);
    EXPECT_EQ(cublasLtCreate(&x.lt), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreate(&x.dnn), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetStream(x.dnn, x.stream), CUDNN_STATUS_SUCCESS);
    return x;
  }();
  return e;
}

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, DeviceFree>;
inline DevicePtr device_alloc(size_t bytes) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, bytes ? bytes : 1), cudaSuccess) << bytes << " bytes";
  return DevicePtr(p);
}

// Input types of node 0 as the executor passes them (omitted inputs: has_rank false).
inline std::vector<ir::ValueType> node_input_types(const ir::Graph& g) {
  std::vector<ir::ValueType> t;
  for (const std::string& name : g.nodes[0].inputs) {
    const ir::ValueType* v = name.empty() ? nullptr : g.type_of(name);
    t.push_back(v ? *v : ir::ValueType{});
  }
  return t;
}

// The CUDA tactics (not the host fallback) that take node 0 of `g` (types inferred).
inline std::vector<std::string> tactic_names(ir::Graph g) {
  runtime::cuda::register_all_cuda_kernels();
  ir::infer_types(g);
  std::vector<std::string> names;
  for (const runtime::cuda::CudaTactic* t : runtime::cuda::cuda_tactics_for(g.nodes[0], node_input_types(g)))
    names.push_back(t->name);
  return names;
}

// Runs node 0 of `g` with the CUDA tactic `tactic` ("" = the heuristic choice) and returns its outputs.
inline std::vector<Tensor> run_cuda_node(ir::Graph g, const TensorMap& feeds, const std::string& tactic,
                                         bool allow_tf32 = false) {
  using namespace runtime::cuda;
  register_all_cuda_kernels();
  ir::infer_types(g);
  const ir::Node& n = g.nodes[0];
  const std::vector<ir::ValueType> in_types = node_input_types(g);
  const CudaTactic* t = nullptr;
  if (tactic.empty()) {
    std::vector<const CudaTactic*> ts = cuda_tactics_for(n, in_types);
    if (!ts.empty()) t = ts.front();
  } else {
    t = find_cuda_tactic(n, tactic);
  }
  if (!t) ADD_FAILURE() << n.op_type << ": no CUDA tactic '" << tactic << "'";
  if (!t) return {};
  EXPECT_TRUE(!t->supports || t->supports(n, in_types)) << n.op_type << ": tactic " << t->name << " refuses the node";
  CudaEnv& env = cuda_env();
  std::vector<DevicePtr> keep;
  std::vector<DTensor> din(n.inputs.size());
  std::vector<const DTensor*> in_ptrs;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const std::string& name = n.inputs[i];
    if (name.empty()) {
      in_ptrs.push_back(nullptr);
      continue;
    }
    const Tensor& h = g.initializers.count(name) ? g.initializers.at(name) : feeds.at(name);
    keep.push_back(device_alloc(h.nbytes()));
    din[i] = DTensor{h.dtype(), h.shape(), keep.back().get()};
    EXPECT_EQ(cudaMemcpy(din[i].data, h.data(), h.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    in_ptrs.push_back(&din[i]);
  }
  std::vector<DTensor> dout;
  std::vector<ir::ValueType> out_types;
  for (const std::string& name : n.outputs) {
    const ir::ValueType* vt = name.empty() ? nullptr : g.type_of(name);
    if (!vt || !vt->is_static()) {
      out_types.push_back(vt ? *vt : ir::ValueType{});
      dout.push_back(DTensor{vt ? vt->dtype : DType::Float32, {}, nullptr});
      continue;
    }
    out_types.push_back(*vt);
    DTensor d{vt->dtype, vt->static_shape(), nullptr};
    keep.push_back(device_alloc(d.nbytes()));
    d.data = keep.back().get();
    // Poison the outputs so a kernel that skips elements fails the comparison.
    EXPECT_EQ(cudaMemset(d.data, 0x7f, d.nbytes()), cudaSuccess);
    dout.push_back(d);
  }
  const size_t ws = t->workspace ? t->workspace(n, in_types, out_types) : 0;
  keep.push_back(device_alloc(ws));
  KernelContext ctx;
  ctx.stream = env.stream;
  ctx.cublaslt = env.lt;
  ctx.cudnn = env.dnn;
  ctx.device = 0;
  ctx.props = &env.props;
  ctx.allow_tf32 = allow_tf32;
  ctx.workspace = keep.back().get();
  ctx.workspace_size = ws;
  KernelArgs args{n, in_ptrs, std::vector<const Tensor*>(n.inputs.size(), nullptr), dout};
  t->run(ctx, args);
  EXPECT_EQ(cudaStreamSynchronize(env.stream), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<Tensor> outs;
  for (const DTensor& d : args.out) {
    if (!d.data) {
      outs.emplace_back();
      continue;
    }
    Tensor h(d.dtype, d.shape);
    EXPECT_EQ(cudaMemcpy(h.mutable_data(), d.data, d.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    outs.push_back(h);
  }
  return outs;
}

// Random test data of any dtype: floats in [-1, 1) (never all zero), integers in [-5, 5], bools 0/1.
inline Tensor rand_tensor(DType dt, Shape s, uint32_t seed) {
  Tensor f = test_ops::rand_f32(s, seed);
  std::vector<float> v(static_cast<size_t>(f.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = f.as<float>()[i];
  switch (dt) {
    case DType::Float32: return f;
    case DType::Float16: return test_ops::f16(s, v);
    case DType::BFloat16: return test_ops::bf16(s, v);
    case DType::Float64: {
      std::vector<double> d(v.begin(), v.end());
      for (size_t i = 0; i < d.size(); ++i) d[i] += 1e-9 * static_cast<double>(i % 7);  // beyond float precision
      return test_ops::f64(s, d);
    }
    default: break;
  }
  std::vector<int64_t> iv;
  for (float x : v) iv.push_back(dt == DType::Bool ? (x > 0) : static_cast<int64_t>(std::lround(x * 5.0f)));
  Tensor t(dt, s);
  for (size_t i = 0; i < iv.size(); ++i) {
    switch (dt) {
      case DType::Int64: t.mutable_as<int64_t>()[i] = iv[i]; break;
      case DType::Int32: t.mutable_as<int32_t>()[i] = static_cast<int32_t>(iv[i]); break;
      case DType::Int16: t.mutable_as<int16_t>()[i] = static_cast<int16_t>(iv[i]); break;
      case DType::Int8: t.mutable_as<int8_t>()[i] = static_cast<int8_t>(iv[i]); break;
      default: t.mutable_as<uint8_t>()[i] = static_cast<uint8_t>(dt == DType::Bool ? iv[i] : iv[i] + 5); break;
    }
  }
  return t;
}

// The tolerance row for a dtype ("fp32" or "tf32", "fp16", "bf16"; Float64 uses fp32's; integers are exact).
inline std::string precision_of(DType dt, bool tf32 = false) {
  if (dt == DType::Float16) return "fp16";
  if (dt == DType::BFloat16) return "bf16";
  return tf32 ? "tf32" : "fp32";
}

// Runs op on the CPU reference and on CUDA with `tactic`, compares every output. Returns the CUDA outputs.
inline std::vector<Tensor> check_cuda_op(const std::string& op, int64_t opset, const std::vector<In>& inputs,
                                         const Attrs& attrs, size_t n_out, const std::string& tactic,
                                         const std::string& precision, bool allow_tf32 = false,
                                         const std::string& what = "") {
  ir::Graph g = test_ops::make_graph(op, opset, inputs, attrs, n_out);
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].t.empty() && !inputs[i].constant) feeds[test_ops::vname('x', i)] = inputs[i].t;
  ir::Graph ref_g = g;
  ir::infer_types(ref_g);
  const TensorMap ref = runtime::cpu::run_graph_reference(ref_g, feeds);
  std::vector<Tensor> got = run_cuda_node(g, feeds, tactic, allow_tf32);
  if (got.size() != n_out) {
    ADD_FAILURE() << op << " " << what << ": " << got.size() << " outputs";
    return got;
  }
  for (size_t i = 0; i < n_out; ++i) {
    const Tensor& want = ref.at(test_ops::vname('y', i));
    const Comparison c = compare(got[i], want, tolerance_for(precision));
    EXPECT_TRUE(c.passed) << op << " [" << tactic << "] " << what << " output " << i << " (" << want.type_str()
                          << ", " << precision << "): " << c.reason << "; max_abs " << c.max_abs << ", rel_l2 "
                          << c.rel_l2 << ", mismatches " << c.mismatches;
  }
  return got;
}

}  // namespace kiln::test_cuda
#endif  // KILN_WITH_CUDA
