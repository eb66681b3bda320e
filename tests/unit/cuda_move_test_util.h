// Helpers for the CUDA movement / control kernel tests (test_cuda_movement.cpp, test_cuda_gather.cpp,
// test_cuda_control.cpp): run a small graph on device 0 by calling each node's CUDA tactic directly (a minimal
// executor that honours kernel.h: device inputs, host_in for known values, output buffers shaped beforehand,
// workspace, alloc_dynamic and run_subgraph), and compare with the reference kernels. When the build also has the
// CUDA executor (runtime/cuda/executor.*), every case runs through run_graph_cuda as well.
#pragma once
#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>

#include <functional>
#include <memory>
#include <set>

#include "kiln/compare.h"
#include "kiln/device.h"
#include "runtime/cuda/executor.h"
#include "runtime/cuda/kernel.h"
#include "test_ops_util.h"

namespace kiln::cuda_move_test {

using runtime::cuda::DTensor;
using test_ops::Attrs;
using test_ops::In;

#define KILN_REQUIRE_CUDA()                                              \
  do {                                                                   \
    if (::kiln::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(ErrorCode::Cuda, std::string(what) + ": " + cudaGetErrorString(e));
}

// Which inputs the direct runner hands to kernels as host values (KernelArgs::host_in).
enum class HostIn { Constants, All, None };

// Device memory of one run, freed at the end.
class DevicePool {
 public:
  DevicePool() = default;
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;
  ~DevicePool() {
    for (void* p : ptrs_) cudaFree(p);
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, std::max<size_t>(bytes, 256)), "cudaMalloc");
    // Poison: a kernel that leaves elements unwritten fails the comparison. cudaMemset runs on the legacy default
    // stream, which the kernels' non-blocking stream does not wait for: wait here, or the poison could land after
    // (or between) the kernels that write this buffer.
    cuda_ok(cudaMemset(p, 0x7b, std::max<size_t>(bytes, 256)), "cudaMemset");
    cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    ptrs_.push_back(p);
    return p;
  }
  DTensor upload(const Tensor& t) {
    DTensor d{t.dtype(), t.shape(), alloc(t.nbytes())};
    if (t.nbytes()) cuda_ok(cudaMemcpy(d.data, t.data(), t.nbytes(), cudaMemcpyHostToDevice), "upload");
    // A copy from pageable memory may return before the DMA is done; the kernels' stream does not wait for it.
    cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    return d;
  }

 private:
  std::vector<void*> ptrs_;
};

inline Tensor download(const DTensor& d) {
  Tensor t(d.dtype, d.shape);
  if (t.nbytes()) cuda_ok(cudaMemcpy(t.mutable_data(), d.data, t.nbytes(), cudaMemcpyDeviceToHost), "download");
  return t;
}

struct DirectRun {
  TensorMap outputs;
  std::vector<std::string> tactics;  // "<op>:<tactic>" for every node run, subgraphs included
};

// The minimal executor. `out_shapes`: output shapes of g's nodes (the reference run's) where known; other
// shapes come from ir::infer_types. `host_values`: values kernels may read on the host.
class DirectRunner {
 public:
  explicit DirectRunner(HostIn mode) : mode_(mode) {
    runtime::cuda::register_all_cuda_kernels();
    cuda_ok(cudaSetDevice(0), "cudaSetDevice");
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_ok(cudaGetDeviceProperties(&props_, 0), "cudaGetDeviceProperties");
  }
  ~DirectRunner() { cudaStreamDestroy(stream_); }

  DirectRun run(const ir::Graph& g, const TensorMap& feeds, const std::map<std::string, Shape>& out_shapes) {
    std::map<std::string, DTensor> values;
    std::map<std::string, Tensor> host;
    for (const auto& kv : feeds) {
      values[kv.first] = pool_.upload(kv.second);
      if (mode_ == HostIn::All) host[kv.first] = kv.second;
    }
    run_nodes(g, values, host, out_shapes);
    cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    cuda_ok(cudaGetLastError(), "kernel");
    DirectRun r;
    for (const auto& o : g.outputs) r.outputs[o] = download(values.at(o));
    r.tactics = tactics_;
    return r;
  }

 private:
  void run_nodes(const ir::Graph& g, std::map<std::string, DTensor>& values, std::map<std::string, Tensor>& host,
                 const std::map<std::string, Shape>& out_shapes) {
    for (const auto& kv : g.initializers) {
      values[kv.first] = pool_.upload(kv.second);
      if (mode_ != HostIn::None) host[kv.first] = kv.second;
    }
    ir::Graph typed = g;
    for (const auto& kv : values)
      if (!typed.initializers.count(kv.first)) typed.types[kv.first] = ir::ValueType::of(kv.second.dtype, kv.second.shape);
    ir::infer_types(typed);
    for (const ir::Node& n : g.nodes) {
      runtime::cuda::KernelArgs args{n, {}, {}, {}};
      std::vector<ir::ValueType> in_types;
      for (const std::string& name : n.inputs) {
        if (name.empty()) {
          args.in.push_back(nullptr), args.host_in.push_back(nullptr), in_types.push_back(ir::ValueType{});
          continue;
        }
        const DTensor& d = values.at(name);
        args.in.push_back(&d);
        auto h = host.find(name);
        args.host_in.push_back(h == host.end() ? nullptr : &h->second);
        in_types.push_back(ir::ValueType::of(d.dtype, d.shape));
      }
      auto tactics = runtime::cuda::cuda_tactics_for(n, in_types);
      if (tactics.empty()) throw Error(ErrorCode::Unsupported, n.label() + ": no CUDA tactic supports this node");
      const runtime::cuda::CudaTactic& t = *tactics.front();
      tactics_.push_back(n.op_type + ":" + t.name);
      std::vector<ir::ValueType> out_types;
      for (const std::string& name : n.outputs) {
        DTensor d;
        if (!name.empty() && !t.dynamic_output) {
          auto s = out_shapes.find(name);
          const ir::ValueType* vt = typed.type_of(name);
          if (!vt) throw Error(ErrorCode::InvalidModel, n.label() + ": no type for " + name);
          Shape shape = s != out_shapes.end() ? s->second : vt->static_shape();
          d = DTensor{vt->dtype, shape, pool_.alloc(static_cast<size_t>(shape_numel(shape)) * dtype_size(vt->dtype))};
          out_types.push_back(ir::ValueType::of(d.dtype, d.shape));
        } else {
          out_types.push_back(ir::ValueType{});
        }
        args.out.push_back(d);
      }
      runtime::cuda::KernelContext ctx;
      ctx.stream = stream_;
      ctx.props = &props_;
      ctx.workspace_size = t.workspace ? t.workspace(n, in_types, out_types) : 0;
      ctx.workspace = ctx.workspace_size ? pool_.alloc(ctx.workspace_size) : nullptr;
      ctx.alloc_dynamic = [this](size_t bytes) { return pool_.alloc(bytes); };
      ctx.run_subgraph = [this](const ir::Graph& sub, const std::vector<std::pair<std::string, DTensor>>& captured) {
        std::map<std::string, DTensor> v;
        std::map<std::string, Tensor> h;
        for (const auto& c : captured) v[c.first] = c.second;
        run_nodes(sub, v, h, {});
        std::vector<DTensor> outs;
        for (const auto& o : sub.outputs) outs.push_back(v.at(o));
        return outs;
      };
      t.run(ctx, args);
      for (size_t i = 0; i < n.outputs.size(); ++i)
        if (!n.outputs[i].empty()) values[n.outputs[i]] = args.out[i];
    }
  }

  HostIn mode_;
  cudaStream_t stream_ = nullptr;
  cudaDeviceProp props_{};
  DevicePool pool_;
  std::vector<std::string> tactics_;
};

// Tolerance row for a float dtype (integers and bool are always exact in compare()).
inline Tolerance tolerance_of(DType dt) {
  if (dt == DType::Float16) return tolerance_for("fp16");
  if (dt == DType::BFloat16) return tolerance_for("bf16");
  return tolerance_for("fp32");
}

// Deterministic non-zero-heavy random data of any dtype: floats in [-2, 2), signed ints in [-50, 50), uint8 in
// [0, 250), bool about half true.
inline Tensor rand_tensor(DType dt, const Shape& s, uint32_t seed) {
  Tensor f = test_ops::rand_f32(s, seed);
  const float* pf = f.as<float>();
  const int64_t n = f.numel();
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 2.0 * pf[i];
  auto make = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double x = v[static_cast<size_t>(i)];
      if constexpr (std::is_same_v<T, uint8_t>)
        out[static_cast<size_t>(i)] = dt == DType::Bool ? static_cast<uint8_t>(x > 0) : static_cast<uint8_t>((x + 2) * 62);
      else if constexpr (std::is_integral_v<T>) out[static_cast<size_t>(i)] = static_cast<T>(x * 25);
      else out[static_cast<size_t>(i)] = static_cast<T>(x);
    }
    return Tensor::from_vector(dt, s, out);
  };
  switch (dt) {
    case DType::Float32: return make(float{});
    case DType::Float64: return make(double{});
    case DType::Float16: {
      std::vector<float> x(v.begin(), v.end());
      return test_ops::f16(s, x);
    }
    case DType::BFloat16: {
      std::vector<float> x(v.begin(), v.end());
      return test_ops::bf16(s, x);
    }
    case DType::Int64: return make(int64_t{});
    case DType::Int32: return make(int32_t{});
    case DType::Int16: return make(int16_t{});
    case DType::Int8: return make(int8_t{});
    case DType::UInt8: return make(uint8_t{});
    case DType::Bool: return make(uint8_t{});
  }
  return f;
}

struct Options {
  HostIn host = HostIn::Constants;
  bool exact = true;             // bit-exact (data movement); else the dtype's tolerance row
  bool run_executor = true;      // also through run_graph_cuda (the executor)
};

// Runs a one-node graph on the reference kernels and on CUDA and compares every output. Checks that a CUDA tactic
// (not the host fallback) runs the node. Returns the reference outputs.
inline std::vector<Tensor> check_op(const std::string& op, int64_t opset, const std::vector<In>& inputs,
                                    const Attrs& attrs = {}, size_t n_out = 1, Options opt = {}) {
  ir::Graph g = test_ops::make_graph(op, opset, inputs, attrs, n_out);
  ir::infer_types(g);
  TensorMap feeds;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].t.empty() && !inputs[i].constant) feeds[test_ops::vname('x', i)] = inputs[i].t;
  const TensorMap ref = runtime::cpu::run_graph_reference(g, feeds);
  std::map<std::string, Shape> shapes;
  for (const auto& kv : ref) shapes[kv.first] = kv.second.shape();
  std::string where = op + "-" + std::to_string(opset);
  for (const In& i : inputs) where += " " + (i.t.empty() ? std::string("_") : i.t.type_str());

  // The node's heuristic tactic is a CUDA kernel of this family.
  std::vector<ir::ValueType> types;
  for (const In& i : inputs) types.push_back(i.t.empty() ? ir::ValueType{} : ir::ValueType::of(i.t.dtype(), i.t.shape()));
  runtime::cuda::register_all_cuda_kernels();
  const auto tactics = runtime::cuda::cuda_tactics_for(g.nodes[0], types);
  EXPECT_FALSE(tactics.empty()) << where << ": no CUDA tactic (the host fallback would run it)";

  auto compare_all = [&](const TensorMap& got, const char* path) {
    for (size_t i = 0; i < n_out; ++i) {
      const std::string name = test_ops::vname('y', i);
      const Tensor& want = ref.at(name);
      auto it = got.find(name);
      if (it == got.end()) {
        ADD_FAILURE() << where << " [" << path << "]: no output " << name;
        continue;
      }
      if (opt.exact) {
        EXPECT_TRUE(it->second.bit_equal(want)) << where << " [" << path << "] output " << i << ": got "
                                                 << it->second.type_str() << ", want " << want.type_str();
      } else {
        const Comparison c = compare(it->second, want, tolerance_of(want.dtype()));
        EXPECT_TRUE(c.passed) << where << " [" << path << "] output " << i << ": " << c.reason << " (max abs "
                              << c.max_abs << ")";
      }
    }
  };
  try {
    DirectRunner runner(opt.host);
    compare_all(runner.run(g, feeds, shapes).outputs, "direct");
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << " [direct]: " << e.what();
  }
  if (opt.run_executor) {
    try {
      compare_all(runtime::cuda::run_graph_cuda(g, feeds, 0, false), "executor");
    } catch (const std::exception& e) {
      ADD_FAILURE() << where << " [executor]: " << e.what();
    }
  }
  std::vector<Tensor> out;
  for (size_t i = 0; i < n_out; ++i) out.push_back(ref.at(test_ops::vname('y', i)));
  return out;
}

// Every dtype kiln has (data movement serves them all).
inline const std::vector<DType>& all_types() { return kiln::all_dtypes(); }

}  // namespace kiln::cuda_move_test
#endif  // KILN_WITH_CUDA
