// kiln_cuda_microbench: memory-bound CUDA tactics against the device's copy bandwidth (issue 5: elementwise,
// normalization and softmax kernels should reach >= 70% of it on tensors >= 64 MB).
//
//   kiln_cuda_microbench [--device N] [--iterations N] [--elements N] [--op NAME] [--list]
//
// 1. Copy bandwidth: cudaMemcpyAsync device-to-device of a 1 GiB buffer, counted as bytes read + written.
// 2. For each op (Relu, Add same-shape and broadcast, Mul, Cast, Softmax on the last axis, LayerNormalization,
//    BatchNormalization, ReduceMean on the last axis, Transpose) in float32 and float16, every registered CUDA tactic
//    that supports the node is called directly (KernelArgs built here on cudaMalloc'd buffers, a KernelContext with
//    its own stream, cuBLASLt and cuDNN handles: no executor), on 2^25 elements (128 MB in float32, 64 MB in float16).
//    Each is timed with CUDA events around one call, median of --iterations (default 30) after 5 warm-up calls.
// 3. Elementwise chains (decomposed GELU, bias + GELU + residual, SiLU, GPT-2's tanh GELU) on [n / 4096, 4096]: the
//    unfused nodes called one after the other, then the kiln.FusedElementwise node the fuse_elementwise pass makes of
//    them (--op fused selects only these); both rows count the fused node's ideal bytes.
// 4. Channels-last kernels (--op nhwc selects only these), float32 and float16: kiln.Pool MaxPool 3x3/2 pad 1 on
//    ResNet-50's stem [128, 112, 112, 64] NHWC (the NCHW MaxPool row above is the same pool), and the image entry
//    [128, 3, 224, 224] -> NHWC padded to 8 and to 4 channels: Transpose + Pad (the nodes the pass wrote before) against
//    the one kiln.ToNhwc node. KILN_NHWC_POOL_VECTOR=0 / KILN_NHWC_ENTRY_NARROW=0 time the scalar / general kernels.
// Prints a markdown table: op, dtype, tactic, bytes moved (the minimum an ideal kernel reads + writes), median time,
// GB/s and % of the copy bandwidth. Ops with no registered tactic are listed under the table. --list needs no GPU:
// it builds every case's graph, infers its output and lists the tactics that would be timed.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "kiln/error.h"
#include "passes/pass.h"
#include "runtime/cuda/kernel.h"
#include "microbench_nhwc.h"

namespace {

using kiln::DType;
using kiln::Shape;
using kiln::runtime::cuda::CudaTactic;
using kiln::runtime::cuda::DTensor;
using kiln::runtime::cuda::KernelArgs;
using kiln::runtime::cuda::KernelContext;

#define CHECK_CUDA(call)                                                                            \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "kiln_cuda_microbench: %s failed: %s\n", #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                                 \
    }                                                                                               \
  } while (0)

// Pseudo-random values in [lo, hi) from the element index (no host copies of the 128 MB tensors).
template <typename T>
__global__ void fill_kernel(T* p, int64_t n, uint32_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ (seed * 0x9E3779B9u + static_cast<uint32_t>(i >> 32));
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    float u = static_cast<float>(x & 0xffffff) / 16777216.0f;
    p[i] = static_cast<T>(lo + (hi - lo) * u);
  }
}
template <>
__global__ void fill_kernel<__half>(__half* p, int64_t n, uint32_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ (seed * 0x9E3779B9u + static_cast<uint32_t>(i >> 32));
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    p[i] = __float2half(lo + (hi - lo) * static_cast<float>(x & 0xffffff) / 16777216.0f);
  }
}

// A device tensor the benchmark owns.
struct Buffer {
  DTensor t;
  Buffer() = default;
  Buffer(DType dt, Shape s) {
    t.dtype = dt;
    t.shape = std::move(s);
    if (t.nbytes() > 0) CHECK_CUDA(cudaMalloc(&t.data, t.nbytes()));
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (t.data) cudaFree(t.data);
  }
  void fill(uint32_t seed, float lo, float hi, cudaStream_t s) {
    const int64_t n = t.numel();
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 65536));
    if (t.dtype == DType::Float32)
      fill_kernel<float><<<blocks, 256, 0, s>>>(t.as<float>(), n, seed, lo, hi);
    else if (t.dtype == DType::Float16)
      fill_kernel<__half><<<blocks, 256, 0, s>>>(t.as<__half>(), n, seed, lo, hi);
    else if (t.dtype == DType::Int64)
      fill_kernel<int64_t><<<blocks, 256, 0, s>>>(t.as<int64_t>(), n, seed, lo, hi);
    CHECK_CUDA(cudaGetLastError());
  }
};

// One benchmark case: a one-node graph (inputs typed, constant inputs as initializers).
struct Case {
  std::string label;  // "Add (broadcast)"
  std::string op;
  int64_t opset = 0;
  std::map<std::string, kiln::ir::Attr> attrs;
  struct In {
    DType dtype;
    Shape shape;
    float lo = -1, hi = 1;
    std::vector<int64_t> host_ints;  // non-empty: a constant int64 input (axes) known on the host
  };
  std::vector<In> ins;
};

std::string dtype_label(DType d) {
  return d == DType::Float16 ? "fp16" : "fp32";
}

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Options {
  int device = 0;
  int iterations = 30;
  int64_t elements = int64_t(1) << 25;
  std::string only;
};

// Milliseconds per call of `fn` on `stream`: median of `iters` event-timed calls after 5 warm-ups.
double time_ms(const std::function<void()>& fn, cudaStream_t stream, int iters) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < 5; ++i) fn();
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    CHECK_CUDA(cudaEventRecord(a, stream));
    fn();
    CHECK_CUDA(cudaEventRecord(b, stream));
    CHECK_CUDA(cudaEventSynchronize(b));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(ms);
}

std::vector<Case> make_cases(DType dt, int64_t n) {
  // 2-D views of n elements: rows x 4096 (softmax / layer norm / reduce rows), NCHW with C = 256 for batch norm.
  const int64_t cols = 4096, rows = n / cols;
  const int64_t c = 256, hw = 64, batch = n / (c * hw * hw);
  std::vector<Case> v;
  v.push_back({"Relu", "Relu", 14, {}, {{dt, {n}}}});
  v.push_back({"Add (same shape)", "Add", 14, {}, {{dt, {n}}, {dt, {n}}}});
  v.push_back({"Add (broadcast [R,C]+[C])", "Add", 14, {}, {{dt, {rows, cols}}, {dt, {cols}}}});
  v.push_back({"Mul (same shape)", "Mul", 14, {}, {{dt, {n}}, {dt, {n}}}});
  const int64_t to = dt == DType::Float32 ? 10 : 1;  // ONNX FLOAT16 / FLOAT
  v.push_back({dt == DType::Float32 ? "Cast f32->f16" : "Cast f16->f32", "Cast", 13, {{"to", to}}, {{dt, {n}}}});
  v.push_back({"Softmax (last axis, 4096)", "Softmax", 13, {{"axis", int64_t(-1)}}, {{dt, {rows, cols}}}});
  v.push_back({"LayerNormalization (4096)",
               "LayerNormalization",
               17,
               {{"axis", int64_t(-1)}, {"epsilon", 1e-5f}},
               {{dt, {rows, cols}}, {dt, {cols}}, {dt, {cols}}}});
  v.push_back({"BatchNormalization (C=256)",
               "BatchNormalization",
               15,
               {{"epsilon", 1e-5f}},
               {{dt, {batch, c, hw, hw}}, {dt, {c}}, {dt, {c}}, {dt, {c}}, {dt, {c}, 0.5f, 1.5f}}});
  v.push_back({"ReduceMean (last axis, 4096)",
               "ReduceMean",
               18,
               {{"keepdims", int64_t(1)}},
               {{dt, {rows, cols}}, {DType::Int64, {1}, 0, 0, {-1}}}});
  // ResNet-50's stem pool at batch 128 (a fixed shape, ~256 MB moved in float16): one read of x, a quarter write.
  v.push_back({"MaxPool 3x3/2 pad 1 [128,64,112,112]",
               "MaxPool",
               12,
               {{"kernel_shape", std::vector<int64_t>{3, 3}},
                {"strides", std::vector<int64_t>{2, 2}},
                {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
               {{dt, {128, 64, 112, 112}}}});
  v.push_back({"Transpose (NCHW->NHWC)",
               "Transpose",
               13,
               {{"perm", std::vector<int64_t>{0, 2, 3, 1}}},
               {{dt, {batch, c, hw, hw}}}});
  return v;
}

// The case's one-node graph: typed inputs, int64 constants as initializers (their host tensors in *consts);
// inference gives the output type "y". Throws kiln::Error when the op rejects the case.
kiln::ir::Graph case_graph(const Case& c, std::vector<kiln::Tensor>* consts) {
  kiln::ir::Graph g;
  kiln::ir::Node node;
  node.name = "bench";
  node.op_type = c.op;
  node.opset = c.opset;
  node.attrs = c.attrs;
  consts->assign(c.ins.size(), kiln::Tensor());
  for (size_t i = 0; i < c.ins.size(); ++i) {
    const std::string name = "x" + std::to_string(i);
    node.inputs.push_back(name);
    if (!c.ins[i].host_ints.empty()) {
      (*consts)[i] = kiln::Tensor::from_vector(DType::Int64, c.ins[i].shape, c.ins[i].host_ints);
      g.initializers[name] = (*consts)[i];
    } else {
      g.inputs.push_back(name);
      g.types[name] = kiln::ir::ValueType::of(c.ins[i].dtype, c.ins[i].shape);
    }
  }
  node.outputs.push_back("y");
  g.outputs.push_back("y");
  g.nodes.push_back(node);
  kiln::ir::infer_types(g);
  const kiln::ir::ValueType* yt = g.type_of("y");
  if (!yt || !yt->is_static()) throw kiln::Error(kiln::ErrorCode::Unsupported, c.op + ": output type not inferred");
  return g;
}

std::vector<kiln::ir::ValueType> input_types(const Case& c) {
  std::vector<kiln::ir::ValueType> t;
  for (const auto& in : c.ins) t.push_back(kiln::ir::ValueType::of(in.dtype, in.shape));
  return t;
}

struct Row {
  std::string op, dtype, tactic;
  double bytes = 0, ms = 0;
};

// ---- elementwise chains: the unfused nodes (one tactic call each) against the node the fuse_elementwise pass makes --
struct Chain {
  std::string label;
  // Adds the chain's nodes reading "x" ([rows, cols]; also "bias" [cols] and "res" [rows, cols] where used).
  std::function<void(kiln::ir::Graph&, DType)> make;
};

std::string add_node(kiln::ir::Graph& g, const std::string& op, std::vector<std::string> ins,
                     std::map<std::string, kiln::ir::Attr> attrs = {}) {
  kiln::ir::Node n;
  n.name = op + std::to_string(g.nodes.size());
  n.op_type = op;
  n.opset = 20;
  n.inputs = std::move(ins);
  n.attrs = std::move(attrs);
  n.outputs = {"v" + std::to_string(g.nodes.size())};
  g.nodes.push_back(n);
  return n.outputs[0];
}
std::string add_scalar(kiln::ir::Graph& g, DType dt, float v) {
  const std::string name = "c" + std::to_string(g.initializers.size());
  kiln::Tensor t = kiln::Tensor::from_vector(DType::Float32, {}, std::vector<float>{v});
  if (dt == DType::Float16) {
    t = kiln::Tensor(DType::Float16, {});
    const __half h = __float2half(v);
    std::memcpy(t.mutable_data(), &h, 2);
  }
  g.initializers[name] = t;
  return name;
}
// 0.5 * h * (1 + erf(h / sqrt(2))), as the exporters write it.
std::string add_gelu(kiln::ir::Graph& g, DType dt, const std::string& h) {
  const std::string e = add_node(g, "Erf", {add_node(g, "Div", {h, add_scalar(g, dt, 1.4142135f)})});
  const std::string m = add_node(g, "Mul", {h, add_node(g, "Add", {e, add_scalar(g, dt, 1.0f)})});
  return add_node(g, "Mul", {m, add_scalar(g, dt, 0.5f)});
}

std::vector<Chain> make_chains() {
  return {
      {"GELU decomposed (Div Erf Add Mul Mul)", [](kiln::ir::Graph& g, DType dt) { add_gelu(g, dt, "x"); }},
      {"Bias + GELU + residual (7 nodes)",
       [](kiln::ir::Graph& g, DType dt) {
         add_node(g, "Add", {add_gelu(g, dt, add_node(g, "Add", {"x", "bias"})), "res"});
       }},
      {"SiLU x * Sigmoid(x)", [](kiln::ir::Graph& g, DType) { add_node(g, "Mul", {"x", add_node(g, "Sigmoid", {"x"})}); }},
      {"GELU tanh form (GPT-2, 8 nodes)",
       [](kiln::ir::Graph& g, DType dt) {
         const std::string c = add_node(g, "Mul", {add_node(g, "Pow", {"x", add_scalar(g, dt, 3.0f)}),
                                                  add_scalar(g, dt, 0.044715f)});
         const std::string t = add_node(g, "Tanh", {add_node(g, "Mul", {add_node(g, "Add", {"x", c}),
                                                                       add_scalar(g, dt, 0.7978846f)})});
         add_node(g, "Mul", {add_node(g, "Mul", {"x", add_scalar(g, dt, 0.5f)}),
                             add_node(g, "Add", {t, add_scalar(g, dt, 1.0f)})});
       }},
  };
}

// Device buffers for every value of a typed graph and one (tactic, args) per node, heuristic tactics.
struct GraphRun {
  kiln::ir::Graph g;
  std::map<std::string, std::unique_ptr<Buffer>> bufs;
  std::vector<const CudaTactic*> tactics;
  std::vector<KernelArgs> args;
  double bytes = 0;  // what an ideal single kernel reads + writes: inputs, non-scalar weights, outputs

  GraphRun(kiln::ir::Graph graph, cudaStream_t s) : g(std::move(graph)) {
    uint32_t seed = 11;
    for (const auto& name : g.inputs) {
      const kiln::ir::ValueType* t = g.type_of(name);
      bufs[name] = std::make_unique<Buffer>(t->dtype, t->static_shape());
      bufs[name]->fill(seed++, -2, 2, s);
      bytes += static_cast<double>(bufs[name]->t.nbytes());
    }
    for (const auto& [name, t] : g.initializers) {
      bufs[name] = std::make_unique<Buffer>(t.dtype(), t.shape());
      CHECK_CUDA(cudaMemcpy(bufs[name]->t.data, t.data(), t.nbytes(), cudaMemcpyHostToDevice));
      if (t.numel() > 1) bytes += static_cast<double>(t.nbytes());
    }
    for (const auto& n : g.nodes) {
      std::vector<kiln::ir::ValueType> in_types;
      KernelArgs a{n, {}, {}, {}};
      for (const auto& name : n.inputs) {
        a.in.push_back(&bufs.at(name)->t);
        a.host_in.push_back(g.initializers.count(name) ? &g.initializers.at(name) : nullptr);
        in_types.push_back(kiln::ir::ValueType::of(bufs.at(name)->t.dtype, bufs.at(name)->t.shape));
      }
      const kiln::ir::ValueType* yt = g.type_of(n.outputs[0]);
      bufs[n.outputs[0]] = std::make_unique<Buffer>(yt->dtype, yt->static_shape());
      a.out.push_back(bufs[n.outputs[0]]->t);
      const auto cands = kiln::runtime::cuda::cuda_tactics_for(n, in_types);
      if (cands.empty()) throw kiln::Error(kiln::ErrorCode::Unsupported, n.op_type + ": no CUDA tactic");
      if (cands[0]->workspace && cands[0]->workspace(n, in_types, {*yt}) > 0)
        throw kiln::Error(kiln::ErrorCode::Unsupported, n.op_type + ": needs a workspace");
      tactics.push_back(cands[0]);
      args.push_back(a);
    }
    for (const auto& o : g.outputs) bytes += static_cast<double>(bufs.at(o)->t.nbytes());
  }
  void run(const KernelContext& ctx) {
    for (size_t i = 0; i < tactics.size(); ++i) tactics[i]->run(ctx, args[i]);
  }
};

// The chain's graph `g` on [rows, cols] and `f`, the same after the fuse_elementwise pass (one node).
void chain_graphs(const Chain& c, DType dt, int64_t rows, int64_t cols, kiln::ir::Graph& g, kiln::ir::Graph& f) {
  g = kiln::ir::Graph{};
  g.name = "chain";
  for (const char* in : {"x", "res"}) g.types[in] = kiln::ir::ValueType::of(dt, {rows, cols});
  g.types["bias"] = kiln::ir::ValueType::of(dt, {cols});
  c.make(g, dt);
  std::set<std::string> read;
  for (const auto& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (const char* in : {"x", "res", "bias"})
    if (read.count(in)) g.inputs.push_back(in);
  g.outputs = {g.nodes.back().outputs[0]};
  kiln::ir::infer_types(g);
  f = g;
  if (!kiln::passes::fuse_elementwise(f) || f.nodes.size() != 1)
    throw kiln::Error(kiln::ErrorCode::Unsupported, "the chain did not fuse into one node");
  kiln::passes::eliminate_dead_code(f);
  kiln::ir::infer_types(f);
}

void time_nhwc(const Options& o, const KernelContext& ctx, std::vector<Row>& rows, std::vector<std::string>& untimed) {
  if (!o.only.empty() && o.only != "nhwc") return;
  for (kiln_bench::NhwcGraph& c : kiln_bench::nhwc_graphs()) {
    try {
      GraphRun run(std::move(c.g), ctx.stream);
      CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
      const double ms = time_ms([&] { run.run(ctx); }, ctx.stream, o.iterations);
      CHECK_CUDA(cudaGetLastError());
      std::string tactics;
      for (const CudaTactic* t : run.tactics) tactics += (tactics.empty() ? "" : " + ") + t->name;
      rows.push_back({c.label, dtype_label(c.dt), tactics + c.note, run.bytes, ms});
    } catch (const kiln::Error& e) {
      untimed.push_back(c.label + " " + dtype_label(c.dt) + ": " + e.what());
    }
  }
}

// Rows for every chain: unfused (one call per node) and fused (the pass's node).
void time_chains(const Options& o, const KernelContext& ctx, std::vector<Row>& rows, std::vector<std::string>& untimed) {
  const int64_t cols = 4096, nrows = o.elements / cols;
  for (DType dt : {DType::Float32, DType::Float16})
    for (const Chain& c : make_chains()) {
      if (!o.only.empty() && o.only != "fused") continue;
      try {
        kiln::ir::Graph g, f;
        chain_graphs(c, dt, nrows, cols, g, f);
        GraphRun unfused(g, ctx.stream), fused(f, ctx.stream);
        CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
        const double ms_u = time_ms([&] { unfused.run(ctx); }, ctx.stream, o.iterations);
        const double ms_f = time_ms([&] { fused.run(ctx); }, ctx.stream, o.iterations);
        CHECK_CUDA(cudaGetLastError());
        rows.push_back({c.label + ", unfused", dtype_label(dt), "cuda x" + std::to_string(g.nodes.size()), fused.bytes,
                        ms_u});
        rows.push_back({c.label + ", fused", dtype_label(dt), fused.tactics[0]->name + " (kiln.FusedElementwise)",
                        fused.bytes, ms_f});
      } catch (const kiln::Error& e) {
        untimed.push_back(c.label + " " + dtype_label(dt) + ": " + e.what());
      }
    }
}

// --list: every case, its output type and its tactics, without touching a GPU.
int list_cases(const Options& o) {
  int bad = 0;
  for (DType dt : {DType::Float32, DType::Float16})
    for (const Case& c : make_cases(dt, o.elements)) {
      if (!o.only.empty() && c.op != o.only) continue;
      std::printf("%-30s %s  ", c.label.c_str(), dtype_label(dt).c_str());
      try {
        std::vector<kiln::Tensor> consts;
        kiln::ir::Graph g = case_graph(c, &consts);
        std::string tactics;
        for (const CudaTactic* t : kiln::runtime::cuda::cuda_tactics_for(g.nodes[0], input_types(c)))
          tactics += (tactics.empty() ? "" : ", ") + t->name;
        std::printf("-> %s  tactics: %s\n", g.type_of("y")->str().c_str(),
                    tactics.empty() ? "(none)" : tactics.c_str());
      } catch (const kiln::Error& e) {
        std::printf("ERROR %s\n", e.what());
        ++bad;
      }
    }
  for (DType dt : {DType::Float32, DType::Float16})
    for (const Chain& c : make_chains()) {
      if (!o.only.empty() && o.only != "fused") continue;
      std::printf("%-45s %s  ", c.label.c_str(), dtype_label(dt).c_str());
      try {
        kiln::ir::Graph g, f;
        chain_graphs(c, dt, o.elements / 4096, 4096, g, f);
        std::string tactics;
        std::vector<kiln::ir::ValueType> in_types;
        for (const auto& name : f.nodes[0].inputs)
          in_types.push_back(f.initializers.count(name) ? kiln::ir::ValueType::of(f.initializers.at(name).dtype(),
                                                                                  f.initializers.at(name).shape())
                                                        : *f.type_of(name));
        for (const CudaTactic* t : kiln::runtime::cuda::cuda_tactics_for(f.nodes[0], in_types))
          tactics += (tactics.empty() ? "" : ", ") + t->name;
        std::printf("%zu nodes -> 1 %s  tactics: %s\n", g.nodes.size(), f.nodes[0].op_type.c_str(),
                    tactics.empty() ? "(none)" : tactics.c_str());
      } catch (const kiln::Error& e) {
        std::printf("ERROR %s\n", e.what());
        ++bad;
      }
    }
  if (o.only.empty() || o.only == "nhwc") {
    try {
      for (const kiln_bench::NhwcGraph& c : kiln_bench::nhwc_graphs()) {
        std::printf("%-60s %s  ", c.label.c_str(), dtype_label(c.dt).c_str());
        std::string tactics;
        for (const auto& n : c.g.nodes) {
          std::vector<kiln::ir::ValueType> in_types;
          for (const auto& name : n.inputs)
            in_types.push_back(c.g.initializers.count(name)
                                   ? kiln::ir::ValueType::of(c.g.initializers.at(name).dtype(),
                                                             c.g.initializers.at(name).shape())
                                   : *c.g.type_of(name));
          const auto cands = kiln::runtime::cuda::cuda_tactics_for(n, in_types);
          tactics += (tactics.empty() ? "" : " + ") + (cands.empty() ? std::string("(none)") : cands[0]->name);
          if (cands.empty()) ++bad;
        }
        std::printf("-> %s  tactics: %s\n", c.g.type_of(c.g.outputs[0])->str().c_str(), tactics.c_str());
      }
    } catch (const kiln::Error& e) {
      std::printf("ERROR %s\n", e.what());
      ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kiln_cuda_microbench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--device")
      o.device = std::atoi(next().c_str());
    else if (a == "--iterations")
      o.iterations = std::max(20, std::atoi(next().c_str()));
    else if (a == "--elements")
      o.elements = std::max<int64_t>(int64_t(1) << 20, std::atoll(next().c_str()));
    else if (a == "--op")
      o.only = next();
    else if (a == "--list")
      list = true;
    else {
      std::fprintf(
          stderr,
          "usage: kiln_cuda_microbench [--device N] [--iterations N>=20] [--elements N] [--op NAME] [--list]\n");
      return 2;
    }
  }
  // Shapes below need multiples of 4096 rows x cols and of 256*64*64 for batch norm.
  o.elements = std::max<int64_t>(int64_t(1) << 20, o.elements / (256 * 64 * 64) * (256 * 64 * 64));
  kiln::ir::register_all_ops();
  kiln::runtime::cuda::register_all_cuda_kernels();
  if (list) return list_cases(o);

  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  if (o.device < 0 || o.device >= ndev) {
    std::fprintf(stderr, "kiln_cuda_microbench: no device %d (%d devices)\n", o.device, ndev);
    return 2;
  }
  CHECK_CUDA(cudaSetDevice(o.device));
  cudaDeviceProp props{};
  CHECK_CUDA(cudaGetDeviceProperties(&props, o.device));

  KernelContext ctx;
  CHECK_CUDA(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  if (cublasLtCreate(&ctx.cublaslt) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "kiln_cuda_microbench: cublasLtCreate failed\n");
    return 1;
  }
  if (cudnnCreate(&ctx.cudnn) != CUDNN_STATUS_SUCCESS ||
      cudnnSetStream(ctx.cudnn, ctx.stream) != CUDNN_STATUS_SUCCESS) {
    std::fprintf(stderr, "kiln_cuda_microbench: cudnnCreate failed\n");
    return 1;
  }
  ctx.device = o.device;
  ctx.props = &props;
  ctx.allow_tf32 = false;

  // ---- copy bandwidth ---------------------------------------------------------------------------------------------
  const size_t copy_bytes = size_t(1) << 30;
  double copy_gbs = 0;
  {
    Buffer src(DType::Float32, {int64_t(copy_bytes / 4)}), dst(DType::Float32, {int64_t(copy_bytes / 4)});
    src.fill(1, -1, 1, ctx.stream);
    double ms = time_ms(
        [&] { CHECK_CUDA(cudaMemcpyAsync(dst.t.data, src.t.data, copy_bytes, cudaMemcpyDeviceToDevice, ctx.stream)); },
        ctx.stream, o.iterations);
    copy_gbs = 2.0 * copy_bytes / (ms * 1e-3) / 1e9;
  }

  std::vector<Row> rows;
  std::vector<std::string> untimed;
  for (DType dt : {DType::Float32, DType::Float16}) {
    for (const Case& c : make_cases(dt, o.elements)) {
      if (!o.only.empty() && c.op != o.only) continue;
      const std::string where = c.label + " " + dtype_label(dt);
      try {
        std::vector<kiln::Tensor> host_consts;
        const kiln::ir::Graph g = case_graph(c, &host_consts);
        const kiln::ir::ValueType* yt = g.type_of("y");
        const kiln::ir::Node& n = g.nodes[0];
        const std::vector<kiln::ir::ValueType> in_types = input_types(c);
        std::vector<const CudaTactic*> tactics = kiln::runtime::cuda::cuda_tactics_for(n, in_types);
        if (tactics.empty()) {
          untimed.push_back(where + ": no registered CUDA tactic");
          continue;
        }

        std::vector<std::unique_ptr<Buffer>> ins;
        double bytes = 0;
        for (size_t i = 0; i < c.ins.size(); ++i) {
          ins.push_back(std::make_unique<Buffer>(c.ins[i].dtype, c.ins[i].shape));
          if (!c.ins[i].host_ints.empty())
            CHECK_CUDA(cudaMemcpy(ins.back()->t.data, c.ins[i].host_ints.data(), ins.back()->t.nbytes(),
                                  cudaMemcpyHostToDevice));
          else
            ins.back()->fill(static_cast<uint32_t>(7 + i), c.ins[i].lo, c.ins[i].hi, ctx.stream);
          if (c.ins[i].host_ints.empty()) bytes += static_cast<double>(ins.back()->t.nbytes());
        }
        Buffer out(yt->dtype, yt->static_shape());
        bytes += static_cast<double>(out.t.nbytes());
        CHECK_CUDA(cudaStreamSynchronize(ctx.stream));

        for (const CudaTactic* t : tactics) {
          if (t->dynamic_output) {
            untimed.push_back(where + " [" + t->name + "]: dynamic output (not timed)");
            continue;
          }
          KernelArgs args{n, {}, {}, {}};
          for (size_t i = 0; i < ins.size(); ++i) {
            args.in.push_back(&ins[i]->t);
            args.host_in.push_back(host_consts[i].empty() ? nullptr : &host_consts[i]);
          }
          args.out.push_back(out.t);
          size_t ws = t->workspace ? t->workspace(n, in_types, {*yt}) : 0;
          Buffer scratch(DType::UInt8, {static_cast<int64_t>(ws)});
          KernelContext kc = ctx;
          kc.workspace = scratch.t.data;
          kc.workspace_size = ws;
          double ms = time_ms([&] { t->run(kc, args); }, ctx.stream, o.iterations);
          CHECK_CUDA(cudaGetLastError());
          rows.push_back({c.label, dtype_label(dt), t->name, bytes, ms});
        }
      } catch (const kiln::Error& e) {
        untimed.push_back(where + ": " + e.what());
      }
    }
  }

  time_chains(o, ctx, rows, untimed);
  time_nhwc(o, ctx, rows, untimed);

  std::printf("# kiln CUDA microbenchmark\n\n");
  std::printf(
      "Device %d: %s (sm_%d%d, %d SMs, %.0f MiB). Median of %d CUDA-event timings after 5 warm-ups; %lld "
      "elements per tensor; bytes moved = what an ideal kernel reads + writes.\n\n",
      o.device, props.name, props.major, props.minor, props.multiProcessorCount, props.totalGlobalMem / 1048576.0,
      o.iterations, static_cast<long long>(o.elements));
  std::printf("Copy bandwidth (cudaMemcpyAsync device-to-device, 1 GiB, read + write): **%.0f GB/s**\n\n", copy_gbs);
  std::printf("| op | dtype | tactic | bytes moved | time | GB/s | %% of copy |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    double gbs = r.bytes / (r.ms * 1e-3) / 1e9;
    std::printf("| %s | %s | %s | %.1f MB | %.3f ms | %.0f | %.0f%% |\n", r.op.c_str(), r.dtype.c_str(),
                r.tactic.c_str(), r.bytes / 1e6, r.ms, gbs, 100.0 * gbs / copy_gbs);
  }
  if (!untimed.empty()) {
    std::printf("\nNot timed:\n");
    for (const auto& u : untimed) std::printf("- %s\n", u.c_str());
  }
  cudnnDestroy(ctx.cudnn);
  cublasLtDestroy(ctx.cublaslt);
  cudaStreamDestroy(ctx.stream);
  return 0;
}
