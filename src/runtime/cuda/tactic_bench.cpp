#include "runtime/cuda/tactic_bench.h"
#include "runtime/cuda/spin.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/kernel.h"
#include "runtime/cuda/random_fill.h"
#include "runtime/cuda/tactic_select.h"
#include "runtime/cuda/tactic_variant.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

std::string cuda_library_versions() {
  std::ostringstream os;
  os << "cuBLASLt " << cublasLtGetVersion() << ", cuDNN " << cudnnGetVersion();
  return os.str();
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// How a candidate's output must match the heuristic's (both approximate the same result), as the tolerance table
// (docs/tolerances.md) bounds an engine against the oracle: relative L2 for float16 / bfloat16 / TF32, element-wise
// (rtol 1e-4, atol 1e-5) for float32 without TF32 and float64 — so a less exact algorithm (FFT, Winograd) that the
// correctness gate would refuse is never chosen there.
struct CheckBound {
  double rel_l2 = 0;        // > 0: relative L2 bound
  double rtol = 0, atol = 0;  // element-wise, when rel_l2 == 0
};
CheckBound check_bound(DType dt, bool tf32) {
  if (dt == DType::Float16) return {1e-2, 0, 0};
  if (dt == DType::BFloat16) return {2e-2, 0, 0};
  if (dt == DType::Float32 && tf32) return {3e-3, 0, 0};
  return {0, 1e-4, 1e-5};
}
bool is_float(DType dt) {
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64;
}

}  // namespace

struct TacticBench::Impl {
  int device = 0;
  size_t workspace_cap = 0;
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudnnHandle_t dnn = nullptr;
  KernelContext kctx;
  DeviceBuffer scratch;  // inputs, outputs, the reference output, workspace, three doubles of comparison sums

  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    if (dnn) cudnnDestroy(dnn);
    if (lt) cublasLtDestroy(lt);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
    cudaGetLastError();
  }

  // One run of tactic `t` on `node` (its name, variant included, in node.tactic); throws what the kernel throws.
  void run(const CudaTactic& t, const ir::Node& node, const std::vector<DTensor>& in, const std::vector<DTensor>& out,
           void* ws, size_t ws_bytes) {
    KernelArgs args{node, {}, {}, out};
    for (const DTensor& d : in) args.in.push_back((d.data || !d.shape.empty()) ? &d : nullptr);
    args.host_in = host_in;
    KernelContext k = kctx;
    k.workspace = ws_bytes ? ws : nullptr;
    k.workspace_size = ws_bytes;
    t.run(k, args);
  }
  std::vector<const Tensor*> host_in;

  // Milliseconds of `reps` back-to-back runs, divided by reps (CUDA events on the harness's stream).
  double timed(const CudaTactic& t, const ir::Node& node, const std::vector<DTensor>& in,
               const std::vector<DTensor>& out, void* ws, size_t ws_bytes, int reps) {
    // The GPU spins while the host enqueues the runs: the events then time the device work alone. Otherwise a
    // library's host overhead (tens of us per cuDNN call) would decide between kernels of a few us, and at small
    // batches the choice would be worse than the heuristic's on a CUDA graph (measured on ResNet-50 FP16, batch 1).
    enqueue_spin(stream, 0.05 + 0.025 * reps);  // ~25 us of host time per enqueued library call
    KILN_CU(cudaEventRecord(start, stream));
    for (int r = 0; r < reps; ++r) run(t, node, in, out, ws, ws_bytes);
    KILN_CU(cudaEventRecord(stop, stream));
    KILN_CU(cudaEventSynchronize(stop));
    float ms = 0;
    KILN_CU(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) / reps;
  }
};

std::string NodeTiming::line() const {
  std::ostringstream os;
  for (size_t k = 0; k < candidates.size(); ++k) {
    std::string name = candidates[k];
    if (name.size() > 40) name = name.substr(0, 37) + "...";
    os << (k ? ", " : "") << name << " ";
    if (std::isinf(ms[k])) os << "-";
    else os << ms[k] * 1e3 << " us";
    if (!notes[k].empty()) os << " (" << notes[k] << ")";
  }
  return os.str();
}

TacticBench::TacticBench(int device, bool allow_tf32, size_t workspace_cap) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.device = device;
  m.workspace_cap = workspace_cap;
  set_device(device);
  register_all_cuda_kernels();
  m.props = device_properties(device);
  KILN_CU(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  KILN_CU(cudaEventCreate(&m.start));
  KILN_CU(cudaEventCreate(&m.stop));
  if (cublasStatus_t s = cublasLtCreate(&m.lt); s != CUBLAS_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cuda:" << device << ": cublasLtCreate failed (status " << static_cast<int>(s) << ")");
  if (cudnnStatus_t s = cudnnCreate(&m.dnn); s != CUDNN_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cuda:" << device << ": cudnnCreate failed: " << cudnnGetErrorString(s));
  if (cudnnStatus_t s = cudnnSetStream(m.dnn, m.stream); s != CUDNN_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cuda:" << device << ": cudnnSetStream failed: " << cudnnGetErrorString(s));
  m.kctx.stream = m.stream;
  m.kctx.cublaslt = m.lt;
  m.kctx.cudnn = m.dnn;
  m.kctx.device = device;
  m.kctx.props = &m.props;
  m.kctx.allow_tf32 = allow_tf32;
}

TacticBench::~TacticBench() = default;

NodeTiming TacticBench::time_node(const ir::Node& n, const std::vector<ir::ValueType>& in,
                                  const std::vector<ir::ValueType>& out, const std::vector<const Tensor*>& host_in,
                                  const std::vector<std::string>& tactics, const BenchOptions& opt) {
  Impl& m = *impl_;
  NodeTiming r;
  set_device(m.device);
  // Tactics and their workspace at these types.
  std::vector<const CudaTactic*> ts;
  std::vector<size_t> ws_bytes;
  size_t ws_max = 0;
  for (const std::string& name : tactics) {
    const CudaTactic* t = find_cuda_tactic(n, name);
    if (!t || name == "host" || t->dynamic_output) continue;
    const size_t ws = t->workspace ? t->workspace(n, in, out) : 0;
    if (m.workspace_cap && ws > m.workspace_cap) continue;
    ts.push_back(t);
    ws_bytes.push_back(ws);
    ws_max = std::max(ws_max, ws);
  }
  if (ts.empty()) return r;
  // Buffers: inputs, outputs, the reference copy of output 0, the workspace, the comparison sums.
  std::vector<size_t> in_off(in.size(), 0), out_off(out.size(), 0);
  size_t total = 0;
  auto bytes_of = [](const ir::ValueType& t) {
    return static_cast<size_t>(shape_numel(t.static_shape())) * dtype_size(t.dtype);
  };
  for (size_t k = 0; k < in.size(); ++k) {
    if (!in[k].has_rank) continue;  // omitted
    if (!in[k].is_static()) return r;
    in_off[k] = total;
    total += align_up(std::max<size_t>(bytes_of(in[k]), 1));
  }
  if (out.empty()) return r;
  for (size_t k = 0; k < out.size(); ++k) {
    if (!out[k].has_rank) continue;
    if (!out[k].is_static()) return r;
    out_off[k] = total;
    total += align_up(std::max<size_t>(bytes_of(out[k]), 1));
  }
  const size_t ref_off = total;
  const bool check = opt.check_outputs && out[0].has_rank && is_float(out[0].dtype);
  if (check) total += align_up(std::max<size_t>(bytes_of(out[0]), 1));
  const size_t ws_off = total;
  total += align_up(ws_max);
  const size_t sums_off = total;
  total += 3 * sizeof(double);
  if (total > m.scratch.size()) {
    m.scratch.reset();
    m.scratch.allocate(total, std::string("the builder's tactic timing (inputs, outputs and workspace of ")
                                  .append(n.label())
                                  .append(")"));
  }
  char* base = m.scratch.bytes();
  std::vector<DTensor> din(in.size()), dout(out.size());
  m.host_in.assign(in.size(), nullptr);
  for (size_t k = 0; k < in.size(); ++k) {
    if (!in[k].has_rank) continue;
    din[k] = DTensor{in[k].dtype, in[k].static_shape(), base + in_off[k]};
    const Tensor* h = k < host_in.size() ? host_in[k] : nullptr;
    if (h && h->nbytes() == din[k].nbytes()) {
      KILN_CU(cudaMemcpyAsync(din[k].data, h->data(), h->nbytes(), cudaMemcpyHostToDevice, m.stream));
      m.host_in[k] = h;
    } else {
      random_fill(din[k].data, din[k].dtype, din[k].numel(), static_cast<uint32_t>(k + 1), m.stream);
    }
  }
  for (size_t k = 0; k < out.size(); ++k)
    if (out[k].has_rank) dout[k] = DTensor{out[k].dtype, out[k].static_shape(), base + out_off[k]};
  void* ws = ws_max ? base + ws_off : nullptr;
  auto* sums = reinterpret_cast<double*>(base + sums_off);

  // Candidates: each tactic, then its variants, listed by the plain name's first run (a VariantProbe).
  struct Cand {
    const CudaTactic* t;
    size_t ws;
    ir::Node node;
  };
  std::vector<Cand> cands;
  std::vector<double> warm;
  auto fail = [&](size_t k, const std::string& why) {
    r.ms[k] = kInf;
    r.notes[k] = why;
    cudaGetLastError();
  };
  for (size_t i = 0; i < ts.size(); ++i) {
    Cand c{ts[i], ws_bytes[i], n};
    c.node.tactic = ts[i]->name;
    std::vector<std::string> variants;
    std::string error;
    {
      VariantProbe probe(opt.variants);
      try {
        m.run(*c.t, c.node, din, dout, ws, c.ws);
        KILN_CU(cudaStreamSynchronize(m.stream));
      } catch (const Error& e) {
        error = e.what();
      }
      variants = probe.variants();
    }
    cands.push_back(c);
    r.candidates.push_back(c.node.tactic);
    r.ms.push_back(0);
    r.notes.emplace_back();
    if (!error.empty()) {
      fail(r.candidates.size() - 1, "failed: " + error);
      continue;
    }
    for (size_t v = 1; v < variants.size(); ++v) {  // variants[0] is what the plain name runs
      Cand cv{ts[i], ws_bytes[i], n};
      cv.node.tactic = with_variant(ts[i]->name, variants[v]);
      cands.push_back(cv);
      r.candidates.push_back(cv.node.tactic);
      r.ms.push_back(0);
      r.notes.emplace_back();
    }
  }
  const size_t K = cands.size();
  // Warm-up: two runs each (the first may build library plans), the second timed; outputs checked against the
  // heuristic's (the first candidate that ran).
  warm.assign(K, kInf);
  int ref = -1;
  double best_warm = kInf;
  std::vector<size_t> active;
  const CheckBound bound = check_bound(check ? out[0].dtype : DType::Float32, m.kctx.allow_tf32);
  for (size_t k = 0; k < K; ++k) {
    if (std::isinf(r.ms[k])) continue;
    try {
      m.run(*cands[k].t, cands[k].node, din, dout, ws, cands[k].ws);
      warm[k] = m.timed(*cands[k].t, cands[k].node, din, dout, ws, cands[k].ws, 1);
    } catch (const Error& e) {
      fail(k, std::string("failed: ") + e.what());
      continue;
    }
    if (check) {
      if (ref < 0) {
        KILN_CU(cudaMemcpyAsync(base + ref_off, dout[0].data, dout[0].nbytes(), cudaMemcpyDeviceToDevice, m.stream));
        ref = static_cast<int>(k);
      } else {
        diff_sums(dout[0].data, base + ref_off, dout[0].dtype, dout[0].numel(), bound.atol, bound.rtol, sums,
                  m.stream);
        double h[3] = {0, 0, 0};
        KILN_CU(cudaMemcpyAsync(h, sums, sizeof(h), cudaMemcpyDeviceToHost, m.stream));
        KILN_CU(cudaStreamSynchronize(m.stream));
        const double rel = h[1] > 0 ? std::sqrt(h[0] / h[1]) : std::sqrt(h[0]);
        const bool ok = bound.rel_l2 > 0 ? rel <= bound.rel_l2 : h[2] == 0 && !std::isnan(rel);
        if (!ok) {
          std::ostringstream os;
          os << "output differs from " << r.candidates[static_cast<size_t>(ref)] << ": relative L2 " << rel;
          if (bound.rel_l2 == 0) os << ", " << h[2] << " elements beyond rtol 1e-4 / atol 1e-5";
          fail(k, os.str());
          KILN_WARN("build: " << n.label() << ": tactic '" << r.candidates[k] << "' not chosen: " << r.notes[k]);
          continue;
        }
      }
    }
    if (warm[k] > opt.cutoff * best_warm) {
      r.ms[k] = warm[k];
      r.notes[k] = "cut off after its warm-up";
      continue;
    }
    best_warm = std::min(best_warm, warm[k]);
    active.push_back(k);
  }
  if (active.empty()) return r;
  // Drop the candidates the cut-off would have caught had a faster one come first.
  std::vector<size_t> kept;
  for (size_t k : active) {
    if (warm[k] > opt.cutoff * best_warm) {
      r.ms[k] = warm[k];
      r.notes[k] = "cut off after its warm-up";
    } else {
      kept.push_back(k);
    }
  }
  active = kept;
  // Timed rounds: one sample of every remaining candidate per round, so a change of clocks or load hits all alike.
  // A sample is `reps` back-to-back runs (enough to last ~50 us), divided by reps.
  std::vector<int> reps(K, 1);
  for (size_t k : active) reps[k] = static_cast<int>(std::clamp(std::ceil(0.05 / std::max(warm[k], 1e-6)), 1.0, 16.0));
  std::vector<std::vector<double>> samples(K);
  std::vector<double> spent(K, 0.0);
  for (int round = 0; round < opt.max_runs; ++round) {
    bool enough = round >= opt.min_runs;
    for (size_t k : active) enough = enough && spent[k] >= opt.min_total_ms;
    if (enough) break;
    for (size_t k : active) {
      samples[k].push_back(m.timed(*cands[k].t, cands[k].node, din, dout, ws, cands[k].ws, reps[k]));
      spent[k] += samples[k].back() * reps[k];
    }
  }
  bool have = false;
  for (size_t k : active) {
    auto& t = samples[k];
    std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
    r.ms[k] = t[t.size() / 2];
    if (!have || r.ms[k] < (1.0 - opt.tie) * r.ms[r.best]) {
      r.best = k;
      have = true;
    }
  }
  r.timed = have;
  return r;
}

}  // namespace kiln::runtime::cuda
