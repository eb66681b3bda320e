// Helpers for the CUDA reduce / norm / pool kernel tests: run a one-node graph's node through its heuristic CUDA
// tactic the way the executor calls it (device inputs, host_in for initializers, outputs shaped like the CPU
// reference's and poisoned with 0xFF bytes so unwritten elements show, the tactic's workspace) and compare every
// output with the reference executor under the tolerance table. CUDA builds only; callers skip without a device.
#pragma once
#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "kiln/device.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cuda/kernel.h"
#include "test_ops_util.h"

// Without a device the tests skip, unless KILN_CUDA_DRY_RUN is set: then check_op runs the reference and checks the
// tactic choice only (a check of the test cases themselves on a machine without a GPU).
inline bool kiln_cured_dry_run() { return ::kiln::cuda_device_count() == 0 && std::getenv("KILN_CUDA_DRY_RUN"); }
#define KILN_CURED_SKIP_WITHOUT_CUDA() \
  if (::kiln::cuda_device_count() == 0 && !kiln_cured_dry_run()) GTEST_SKIP() << "no CUDA device"

namespace kiln::test_cured {

using test_ops::Attrs;
using test_ops::In;

struct Env {
  cudaStream_t stream = nullptr;
  cudaDeviceProp props{};
};
inline Env& env() {
  static Env e = [] {
    Env x;
    EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
    EXPECT_EQ(cudaGetDeviceProperties(&x.props, 0), cudaSuccess);
    EXPECT_EQ(cudaStreamCreate(&x.stream), cudaSuccess);
    return x;
  }();
  return e;
}

// Device buffers freed at scope exit.
struct DeviceBuffers {
  std::vector<void*> ptrs;
  void* alloc(size_t bytes) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, bytes ? bytes : 1), cudaSuccess) << bytes << " bytes";
    ptrs.push_back(p);
    return p;
  }
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
};

// `f` (float32 values) converted to dtype dt; integers round, bool is v > 0.
inline Tensor as_dtype(const Tensor& f, DType dt, double int_scale = 10.0) {
  const int64_t n = f.numel();
  switch (dt) {
    case DType::Float32: return f;
    case DType::Float16:
    case DType::BFloat16: {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(f.at_double(i));
      return dt == DType::Float16 ? test_ops::f16(f.shape(), v) : test_ops::bf16(f.shape(), v);
    }
    case DType::Float64: {
      std::vector<double> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = f.at_double(i) + 1e-9 * static_cast<double>(i % 7);
      return test_ops::f64(f.shape(), v);
    }
    default: break;
  }
  std::vector<int64_t> q(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double x = f.at_double(i);
    q[static_cast<size_t>(i)] = dt == DType::Bool ? (x > 0) : static_cast<int64_t>(std::lround(x * int_scale));
  }
  auto cvt = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> v(q.begin(), q.end());
    return Tensor::from_vector(dt, f.shape(), v);
  };
  switch (dt) {
    case DType::Int64: return cvt(int64_t{});
    case DType::Int32: return cvt(int32_t{});
    case DType::Int16: return cvt(int16_t{});
    case DType::Int8: return cvt(int8_t{});
    default: return cvt(uint8_t{});  // UInt8 (from |x|) and Bool
  }
}
inline Tensor rand_of(DType dt, Shape s, uint32_t seed, double int_scale = 10.0) {
  Tensor f = test_ops::rand_f32(std::move(s), seed);
  if (dt == DType::UInt8) {  // non-negative
    std::vector<float> v(static_cast<size_t>(f.numel()));
    for (int64_t i = 0; i < f.numel(); ++i) v[static_cast<size_t>(i)] = std::fabs(static_cast<float>(f.at_double(i)));
    f = test_ops::f32(f.shape(), v);
  }
  return as_dtype(f, dt, int_scale);
}

// Row of the tolerance table for an output dtype (integers and bool are compared exactly by compare()).
inline Tolerance tolerance_of(DType dt) {
  if (dt == DType::Float16) return tolerance_for("fp16");
  if (dt == DType::BFloat16) return tolerance_for("bf16");
  return tolerance_for("fp32");
}

// Node 0 of a graph (from test_ops::make_graph) set up the way the executor hands it to its heuristic CUDA
// tactic: device copies of the inputs, host_in for initializers, outputs of the given dtypes / shapes (poisoned with
// 0xFF bytes so unwritten elements show), the tactic's workspace. `tactic` is null when no CUDA tactic takes the node.
class NodeOnDevice {
 public:
  NodeOnDevice(ir::Graph g, const TensorMap& feeds, const std::vector<Tensor>& out_like) : g_(std::move(g)) {
    using namespace runtime::cuda;
    register_all_cuda_kernels();
    ir::infer_types(g_);
    const ir::Node& n = g_.nodes[0];
    std::vector<ir::ValueType> in_types, out_types;
    for (const std::string& name : n.inputs) {
      const ir::ValueType* t = name.empty() ? nullptr : g_.type_of(name);
      in_types.push_back(t ? *t : ir::ValueType{});
    }
    std::vector<const CudaTactic*> ts = cuda_tactics_for(n, in_types);
    if (ts.empty()) return;
    tactic = ts.front();
    args_ = std::make_unique<KernelArgs>(KernelArgs{n, {}, {}, {}});
    din_.resize(n.inputs.size());
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& name = n.inputs[i];
      const Tensor* h = nullptr;
      if (!name.empty()) {
        auto c = g_.initializers.find(name);
        if (c != g_.initializers.end()) h = &c->second;
        auto f = feeds.find(name);
        if (f != feeds.end()) h = &f->second;
      }
      if (!h) {
        args_->in.push_back(nullptr);
        args_->host_in.push_back(nullptr);
        continue;
      }
      din_[i] = DTensor{h->dtype(), h->shape(), bufs_.alloc(h->nbytes())};
      EXPECT_EQ(cudaMemcpy(din_[i].data, h->data(), h->nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
      args_->in.push_back(&din_[i]);
      args_->host_in.push_back(g_.is_constant(name) ? h : nullptr);
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty() || i >= out_like.size() || out_like[i].empty()) {
        args_->out.push_back(DTensor{});
        out_types.push_back(ir::ValueType{});
        continue;
      }
      const Tensor& r = out_like[i];
      DTensor d{r.dtype(), r.shape(), bufs_.alloc(r.nbytes())};
      EXPECT_EQ(cudaMemset(d.data, 0xFF, r.nbytes() ? r.nbytes() : 1), cudaSuccess);
      args_->out.push_back(d);
      out_types.push_back(ir::ValueType::of(r.dtype(), r.shape()));
    }
    ctx_.stream = env().stream;
    ctx_.props = &env().props;
    ctx_.workspace_size = tactic->workspace ? tactic->workspace(n, in_types, out_types) : 0;
    ctx_.workspace = ctx_.workspace_size ? bufs_.alloc(ctx_.workspace_size) : nullptr;
  }
  // Enqueues the node on the test stream.
  void run() { tactic->run(ctx_, *args_); }
  std::vector<Tensor> download() {
    EXPECT_EQ(cudaStreamSynchronize(ctx_.stream), cudaSuccess);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    std::vector<Tensor> out;
    for (const runtime::cuda::DTensor& d : args_->out) {
      if (!d.data) {
        out.emplace_back();
        continue;
      }
      Tensor h(d.dtype, d.shape);
      EXPECT_EQ(cudaMemcpy(h.mutable_data(), d.data, h.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
      out.push_back(h);
    }
    return out;
  }
  const runtime::cuda::CudaTactic* tactic = nullptr;

 private:
  ir::Graph g_;
  DeviceBuffers bufs_;
  std::vector<runtime::cuda::DTensor> din_;
  std::unique_ptr<runtime::cuda::KernelArgs> args_;
  runtime::cuda::KernelContext ctx_;
};

// Runs op on the CPU reference and on CUDA and compares every output; the node must take a CUDA tactic named
// "cuda" (not the host fallback). `n_out` outputs, `omit` output indices left unnamed.
inline void check_op(const std::string& op, int64_t opset, const std::vector<In>& inputs, const Attrs& attrs = {},
                     size_t n_out = 1, const std::vector<size_t>& omit = {}) {
  ir::Graph g = test_ops::make_graph(op, opset, inputs, attrs, n_out);
  for (size_t i : omit) {
    g.nodes[0].outputs[i].clear();
    g.outputs.erase(std::find(g.outputs.begin(), g.outputs.end(), test_ops::vname('y', i)));
  }
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].t.empty() && !inputs[i].constant) feeds[test_ops::vname('x', i)] = inputs[i].t;
  ir::Graph gr = g;
  ir::infer_types(gr);
  TensorMap res = runtime::cpu::run_graph_reference(gr, feeds);
  std::vector<Tensor> ref;
  for (size_t i = 0; i < n_out; ++i) {
    auto it = res.find(test_ops::vname('y', i));
    ref.push_back(it == res.end() || g.nodes[0].outputs[i].empty() ? Tensor() : it->second);
  }
  if (kiln_cured_dry_run()) {
    runtime::cuda::register_all_cuda_kernels();
    ir::Graph gt = g;
    ir::infer_types(gt);
    std::vector<ir::ValueType> in_types;
    for (const std::string& name : gt.nodes[0].inputs) {
      const ir::ValueType* t = name.empty() ? nullptr : gt.type_of(name);
      in_types.push_back(t ? *t : ir::ValueType{});
    }
    const auto ts = runtime::cuda::cuda_tactics_for(gt.nodes[0], in_types);
    ASSERT_FALSE(ts.empty()) << op << ": no CUDA tactic took the node";
    EXPECT_EQ(ts.front()->name, "cuda") << op;
    return;
  }
  NodeOnDevice dev(g, feeds, ref);
  ASSERT_NE(dev.tactic, nullptr) << op << ": no CUDA tactic took the node";
  ASSERT_EQ(dev.tactic->name, "cuda") << op;
  dev.run();
  const std::vector<Tensor> got = dev.download();
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    if (ref[i].empty()) continue;
    const Comparison c = compare(got[i], ref[i], tolerance_of(ref[i].dtype()));
    EXPECT_TRUE(c.passed) << op << " output " << i << " " << ref[i].type_str() << ": " << c.reason
                          << " (max_abs " << c.max_abs << ", rel_l2 " << c.rel_l2 << ", mismatches "
                          << c.mismatches << ")";
  }
}

}  // namespace kiln::test_cured
#endif  // KILN_WITH_CUDA
