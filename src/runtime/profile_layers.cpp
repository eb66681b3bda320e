// kiln::profile_layers: per-node times of an engine (CPU: steady_clock around each kernel; CUDA: CUDA events around
// each node's step, no CUDA graphs) and the end-to-end time of ordinary runs on the same inputs.
#include "kiln/profile_layers.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "runtime/cpu/cpu_executor.h"
#include "runtime/engine_impl.h"
#include "runtime/target.h"
#include "util/error.h"
#if KILN_WITH_CUDA
#include <cuda_runtime_api.h>

#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/executor.h"
#endif

namespace kiln {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

#if KILN_WITH_CUDA
// Whole runs through ExecutionContext::enqueue on device buffers (inputs uploaded once, outputs sized from a first
// run), each timed with CUDA events on the caller's stream.
std::vector<double> cuda_end_to_end(ExecutionContext& ctx, const TensorMap& inputs, const TensorMap& first_outputs,
                                    int device, int warmup, int iterations) {
  using runtime::cuda::DeviceBuffer;
  runtime::cuda::set_device(device);
  std::vector<DeviceBuffer> keep;
  DeviceTensorMap din, dout;
  for (const auto& [name, t] : inputs) {
    keep.emplace_back();
    keep.back().allocate(std::max<size_t>(t.nbytes(), 1), "profile_layers input '" + name + "'");
    if (t.nbytes()) KILN_CU(cudaMemcpy(keep.back().get(), t.data(), t.nbytes(), cudaMemcpyHostToDevice));
    din[name] = DeviceTensor{t.dtype(), t.shape(), keep.back().get(), 0};
  }
  for (const auto& [name, t] : first_outputs) {
    keep.emplace_back();
    keep.back().allocate(std::max<size_t>(t.nbytes(), 1), "profile_layers output '" + name + "'");
    dout[name] = DeviceTensor{t.dtype(), t.shape(), keep.back().get(), std::max<size_t>(t.nbytes(), 1)};
  }
  cudaStream_t stream = nullptr;
  cudaEvent_t a = nullptr, b = nullptr;
  struct Release {
    cudaStream_t& s;
    cudaEvent_t &a, &b;
    ~Release() {
      if (s) cudaStreamSynchronize(s);
      if (a) cudaEventDestroy(a);
      if (b) cudaEventDestroy(b);
      if (s) cudaStreamDestroy(s);
    }
  } release{stream, a, b};
  KILN_CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  KILN_CU(cudaEventCreate(&a));
  KILN_CU(cudaEventCreate(&b));
  for (int w = 0; w < warmup; ++w) ctx.enqueue(din, dout, stream);
  KILN_CU(cudaStreamSynchronize(stream));
  std::vector<double> ms;
  for (int it = 0; it < iterations; ++it) {
    KILN_CU(cudaEventRecord(a, stream));
    ctx.enqueue(din, dout, stream);
    KILN_CU(cudaEventRecord(b, stream));
    KILN_CU(cudaEventSynchronize(b));
    float t = 0;
    KILN_CU(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  return ms;
}
#endif

}  // namespace

LayerProfile profile_layers(const Engine& engine, const TensorMap& inputs, const LayerProfileOptions& options) {
  if (!engine.impl()) KILN_THROW(InvalidState, "profile_layers: the engine is empty");
  if (options.iterations < 1) KILN_THROW(InvalidArgument, "profile_layers: iterations must be >= 1, got " << options.iterations);
  if (options.warmup < 0) KILN_THROW(InvalidArgument, "profile_layers: warmup must be >= 0, got " << options.warmup);
  const auto& e = engine.impl();
  const bool cuda = runtime::is_cuda_target(e->target);
  ContextOptions co;
  co.device = options.device;
  co.use_cuda_graphs = options.use_cuda_graphs;
  ExecutionContext ctx = engine.create_context(co);
  const TensorMap first = ctx.run(inputs);  // checks the inputs (names, dtypes, shapes, profiles)
  TensorMap all = inputs;
  for (const auto& [name, t] : e->graph.input_defaults) all.emplace(name, t);

  LayerProfile prof;
  prof.iterations = options.iterations;
  prof.profile = ctx.last_profile();
  std::vector<std::vector<double>> per_run;  // per profiled run, per node
  std::vector<double> whole;
  if (cuda) {
#if KILN_WITH_CUDA
    const int device = options.device < 0 ? 0 : options.device;
    prof.device = std::string("cuda:").append(std::to_string(device));
    prof.method = "cuda events";
    prof.profile_note = "profiled runs: no CUDA graphs, two CUDA events around each node";
    whole = cuda_end_to_end(ctx, inputs, first, device, options.warmup, options.iterations);
    runtime::cuda::ExecutorOptions eo;
    eo.device = device;
    runtime::cuda::CudaExecutor ex(e, eo);
    per_run = ex.profile_nodes(all, options.warmup, options.iterations);
#else
    KILN_THROW(Unsupported, "engine target '" << e->target << "': this kiln build has no CUDA support");
#endif
  } else {
    prof.device = "cpu";
    prof.method = "steady_clock";
    prof.profile_note = "profiled runs: steady_clock read around each node";
    using Clock = std::chrono::steady_clock;
    for (int w = 0; w < options.warmup; ++w) ctx.run(inputs);
    for (int it = 0; it < options.iterations; ++it) {
      const auto t0 = Clock::now();
      ctx.run(inputs);
      whole.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    runtime::cpu::CpuExecutor ex(e);
    for (int w = 0; w < options.warmup; ++w) ex.run(all);
    ex.set_profiling(true);
    std::vector<double> before(e->graph.nodes.size(), 0.0);
    for (int it = 0; it < options.iterations; ++it) {
      ex.run(all);
      const std::vector<double>& acc = ex.node_ms();  // summed since profiling started
      std::vector<double> ms(acc.size());
      for (size_t i = 0; i < acc.size(); ++i) ms[i] = acc[i] - before[i];
      before = acc;
      per_run.push_back(std::move(ms));
    }
  }
  prof.end_to_end_ms = median(whole);
  const std::vector<NodeInfo> nodes = engine.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    LayerTime l;
    l.index = i;
    l.name = nodes[i].name.empty() ? nodes[i].op + "_" + std::to_string(i) : nodes[i].name;
    l.op = nodes[i].op;
    l.dtype = nodes[i].dtype;
    // The tactic the profiled runs used: that of the profile the inputs select.
    const auto& per = nodes[i].profile_tactics;
    l.tactic = prof.profile >= 0 && static_cast<size_t>(prof.profile) < per.size()
                   ? per[static_cast<size_t>(prof.profile)]
                   : nodes[i].tactic;
    std::vector<double> t;
    for (const auto& run : per_run)
      if (i < run.size()) t.push_back(std::max(run[i], 0.0));
    l.median_ms = median(t);
    prof.layers_ms += l.median_ms;
    prof.layers.push_back(l);
  }
  for (LayerTime& l : prof.layers) l.share = prof.layers_ms > 0 ? l.median_ms / prof.layers_ms : 0.0;
  std::stable_sort(prof.layers.begin(), prof.layers.end(),
                   [](const LayerTime& a, const LayerTime& b) { return a.median_ms > b.median_ms; });
  return prof;
}

}  // namespace kiln
