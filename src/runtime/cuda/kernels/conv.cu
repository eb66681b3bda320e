// CUDA kernels: the conv family (kernels/families.h). Conv and ConvTranspose through cuDNN's convolution API
// (tactic "cudnn": forward / backward-data, NCHW, groups, dilations, float32 with TF32 per ctx.allow_tf32,
// float16 / bfloat16 with float accumulation, float64), and kiln's own direct kernels (tactic "cuda", any geometry;
// also the fallback when cuDNN offers no algorithm). cuDNN takes symmetric pads only: other pads go through a
// zero-padded copy of the input (Conv) or a full-size result cropped into the output (ConvTranspose), both in the
// workspace.
#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_geom.h"
#include "runtime/cuda/kernels/conv_kernels.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/tactic_variant.h"
#include "util/log.h"

namespace kiln::runtime::cuda {
namespace {

constexpr size_t kDnnWorkspace = size_t(32) << 20;  // cuDNN algorithm scratch asked for at plan time
constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

bool is_conv_type(DType dt) {
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64;
}

// ---- cuDNN ---------------------------------------------------------------------------------------------------------
cudnnDataType_t dnn_type(DType dt) {
  switch (dt) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_DOUBLE;
  }
}

// A forward convolution x -> y as cuDNN sees it (NCHW / NCDHW, symmetric pads). For ConvTranspose (backward
// data) x is the result (dx) and y the node's input (dy).
struct DnnProblem {
  bool backward_data = false;
  bool nhwc = false;  // x / y / w in NHWC (channels last) memory order; dims are still given N, C, spatial
  DType dt = DType::Float32;
  bool tf32 = false;
  int nd = 4;
  int x[5] = {}, w[5] = {}, y[5] = {};
  int pad[3] = {}, stride[3] = {}, dil[3] = {};
  int group = 1;
};

// The algorithm a "cudnn#algo=...,math=..." tactic asks for (`text` for messages); nullptr: the heuristic's choice.
struct WantAlgo {
  DnnVariant v;  // algo / math -1 when the text does not parse (never valid)
  std::string_view text;
};

struct DnnPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool found = false;
  bool variant = false;  // made for a WantAlgo (not the heuristic's choice)
  int algo = 0;
  size_t ws = 0;
  // Heuristic plans: every (algorithm, math) of cuDNN's list, in its order, that runs within the workspace; the
  // first is the one chosen. The builder times them as variants (VariantProbe).
  std::vector<DnnVariant> valid;
  DnnPlan() = default;
  DnnPlan(const DnnPlan&) = delete;
  DnnPlan& operator=(const DnnPlan&) = delete;
  ~DnnPlan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

constexpr size_t kDnnKeyLen = 36;
using DnnKey = std::array<int64_t, kDnnKeyLen>;
struct DnnKeyHash {
  size_t operator()(const DnnKey& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};
std::mutex& dnn_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<DnnKey, std::shared_ptr<const DnnPlan>, DnnKeyHash>& dnn_cache() {
  static std::unordered_map<DnnKey, std::shared_ptr<const DnnPlan>, DnnKeyHash> c;
  return c;
}

DnnKey dnn_key(const KernelContext& ctx, const DnnProblem& p, size_t ws_cap, const WantAlgo* want) {
  DnnKey k{};
  size_t i = 0;
  k[i++] = ctx.device, k[i++] = p.backward_data, k[i++] = static_cast<int64_t>(p.dt), k[i++] = p.tf32 | (p.nhwc << 1);
  k[i++] = want ? (int64_t(want->v.algo + 2) << 8) | (want->v.math + 2) : 0;
  k[i++] = p.nd, k[i++] = p.group, k[i++] = static_cast<int64_t>(ws_cap);
  for (int d = 0; d < 5; ++d) k[i++] = p.x[d], k[i++] = p.w[d], k[i++] = p.y[d];
  for (int d = 0; d < 3; ++d) k[i++] = (int64_t(p.pad[d]) << 40) | (int64_t(p.stride[d]) << 20) | p.dil[d];
  return k;
}

// Descriptors and the first heuristic algorithm whose workspace fits ws_cap (found = false when none does); with
// `want`, that algorithm and math type when cuDNN takes them for this problem within ws_cap.
std::shared_ptr<const DnnPlan> make_plan(const KernelContext& ctx, const DnnProblem& p, size_t ws_cap,
                                         const WantAlgo* want) {
  auto plan = std::make_shared<DnnPlan>();
  plan->variant = want != nullptr;
  const cudnnDataType_t t = dnn_type(p.dt);
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&plan->conv));
  // A descriptor cuDNN refuses (sizes, types) means no algorithm: the caller falls back to the own kernel.
  const cudnnTensorFormat_t fmt = p.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  if (cudnnSetTensorNdDescriptorEx(plan->x, fmt, t, p.nd, p.x) != CUDNN_STATUS_SUCCESS ||
      cudnnSetTensorNdDescriptorEx(plan->y, fmt, t, p.nd, p.y) != CUDNN_STATUS_SUCCESS ||
      cudnnSetFilterNdDescriptor(plan->w, t, fmt, p.nd, p.w) != CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionNdDescriptor(plan->conv, p.nd - 2, p.pad, p.stride, p.dil, CUDNN_CROSS_CORRELATION,
                                      p.dt == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT) !=
          CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionGroupCount(plan->conv, p.group) != CUDNN_STATUS_SUCCESS)
    return plan;
  // float32 without TF32 must stay on FMA math (cuDNN's default math may use TF32 tensor cores).
  const bool fma_only = p.dt == DType::Float32 && !p.tf32;
  const cudnnMathType_t base = fma_only ? CUDNN_FMA_MATH
                               : (p.dt == DType::Float16 || p.dt == DType::BFloat16) ? CUDNN_TENSOR_OP_MATH
                                                                                      : CUDNN_DEFAULT_MATH;
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, base));
  if (want) {
    const DnnVariant& v = want->v;
    if (v.algo < 0 || v.math < 0 || (fma_only && v.math != CUDNN_FMA_MATH) ||
        cudnnSetConvolutionMathType(plan->conv, static_cast<cudnnMathType_t>(v.math)) != CUDNN_STATUS_SUCCESS)
      return plan;
    size_t need = 0;
    const cudnnStatus_t st =
        p.backward_data
            ? cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, plan->w, plan->y, plan->conv, plan->x,
                                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(v.algo), &need)
            : cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, plan->x, plan->w, plan->conv, plan->y,
                                                      static_cast<cudnnConvolutionFwdAlgo_t>(v.algo), &need);
    if (st != CUDNN_STATUS_SUCCESS || need > ws_cap) return plan;
    plan->found = true, plan->algo = v.algo, plan->ws = need;
    plan->valid = {v};
    return plan;
  }
  // Every listed algorithm is checked (not only up to the first that fits): the rest are the builder's variants.
  auto consider = [&](int algo, cudnnMathType_t listed, auto workspace_size) {
    const cudnnMathType_t math = fma_only ? CUDNN_FMA_MATH : listed;
    if (cudnnSetConvolutionMathType(plan->conv, math) != CUDNN_STATUS_SUCCESS) return;
    size_t need = 0;
    if (workspace_size(&need) != CUDNN_STATUS_SUCCESS || need > ws_cap) return;
    const DnnVariant v{algo, static_cast<int>(math)};
    if (std::find(plan->valid.begin(), plan->valid.end(), v) != plan->valid.end()) return;
    plan->valid.push_back(v);
    if (!plan->found) plan->found = true, plan->algo = algo, plan->ws = need;
  };
  int max_count = 0, returned = 0;
  if (!p.backward_data) {
    KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.cudnn, &max_count));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    if (cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, plan->x, plan->w, plan->conv, plan->y, max_count, &returned,
                                               perf.data()) != CUDNN_STATUS_SUCCESS)
      returned = 0;
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      consider(static_cast<int>(perf[i].algo), perf[i].mathType, [&](size_t* need) {
        return cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, plan->x, plan->w, plan->conv, plan->y, perf[i].algo,
                                                       need);
      });
    }
  } else {
    KILN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx.cudnn, &max_count));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    if (cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, plan->w, plan->y, plan->conv, plan->x, max_count,
                                                    &returned, perf.data()) != CUDNN_STATUS_SUCCESS)
      returned = 0;
    for (int i = 0; i < returned; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      consider(static_cast<int>(perf[i].algo), perf[i].mathType, [&](size_t* need) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, plan->w, plan->y, plan->conv, plan->x,
                                                            perf[i].algo, need);
      });
    }
  }
  // The descriptor runs the chosen algorithm's math type.
  if (plan->found)
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->conv, static_cast<cudnnMathType_t>(plan->valid.front().math)));
  return plan;
}

// Records a heuristic plan's algorithms into the thread's VariantProbe (the builder's candidate listing).
void probe_variants(const DnnProblem& p, const DnnPlan& plan) {
  VariantProbe* probe = VariantProbe::active();
  if (!probe) return;
  std::vector<std::string> v;
  for (const DnnVariant& a : plan.valid) v.push_back(encode_dnn_variant(p.backward_data, a));
  probe->record(std::move(v));
}

std::shared_ptr<const DnnPlan> get_plan(const KernelContext& ctx, const ir::Node& n, const DnnProblem& p,
                                        size_t ws_cap, const WantAlgo* want = nullptr) {
  const DnnKey key = dnn_key(ctx, p, ws_cap, want);
  std::shared_ptr<const DnnPlan> plan;
  {
    std::lock_guard<std::mutex> lock(dnn_mutex());
    auto it = dnn_cache().find(key);
    if (it != dnn_cache().end()) plan = it->second;
  }
  if (!plan) {
    plan = make_plan(ctx, p, ws_cap, want);
    if (want && !plan->found) {
      // Another GPU or cuDNN than the plan was built with, a malformed variant, or shapes it does not apply to: the
      // heuristic's choice, cached under this variant's key too; one warning per variant text and process.
      std::ostringstream why;
      why << n.label() << ": cuDNN does not run the algorithm of tactic variant '" << want->text << "' for this "
          << (p.backward_data ? "backward-data" : "forward") << " problem (" << dtype_name(p.dt) << ", " << ws_cap
          << " workspace bytes) here; using the heuristic's algorithm";
      bool first;
      {
        static std::set<std::string> warned;
        std::lock_guard<std::mutex> lock(dnn_mutex());
        first = warned.insert(std::string(want->text)).second;
      }
      if (first) KILN_WARN(why.str());
      else KILN_DEBUG(why.str());
      plan = get_plan(ctx, n, p, ws_cap, nullptr);
    } else if (!plan->found) {
      KILN_WARN(n.label() << ": cuDNN has no " << (p.backward_data ? "backward-data" : "forward") << " algorithm for "
                          << dtype_name(p.dt) << " within " << ws_cap << " workspace bytes; using kiln's direct kernel");
    }
    std::lock_guard<std::mutex> lock(dnn_mutex());
    plan = dnn_cache().emplace(key, plan).first->second;
  }
  if (!want) probe_variants(p, *plan);
  return plan;
}

// A variant's plan whose cuDNN call failed (`st`): from now on the heuristic's plan under the variant's key too.
std::shared_ptr<const DnnPlan> drop_variant(const KernelContext& ctx, const ir::Node& n, const DnnProblem& p,
                                            size_t ws_cap, const WantAlgo& want, cudnnStatus_t st) {
  KILN_WARN(n.label() << ": cuDNN failed to run the algorithm of tactic variant '" << want.text << "' ("
                      << cudnnGetErrorString(st) << "); using the heuristic's algorithm");
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, ws_cap, nullptr);
  std::lock_guard<std::mutex> lock(dnn_mutex());
  dnn_cache()[dnn_key(ctx, p, ws_cap, &want)] = plan;
  return plan;
}

// The variant of the node's cuDNN tactic ("cudnn#algo=...,math=..."), nullptr for a plain name.
const WantAlgo* want_of(const ir::Node& n, bool backward_data, WantAlgo& storage) {
  const std::string_view text = tactic_variant(n.tactic);
  if (text.empty()) return nullptr;
  storage.text = text;
  if (!decode_dnn_variant(text, backward_data, &storage.v)) storage.v = DnnVariant{};
  return &storage;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT32_MAX; }

// Fills the cuDNN problem's dims from the geometry: x [N, Cx, sp_x], y [N, Cy, sp_y], w [w0, w1, k];
// 1-D problems become 2-D with a leading spatial dim of 1. False when a size does not fit cuDNN's ints.
bool set_dims(DnnProblem& p, const ConvGeometry& g, int64_t cx, const int64_t* spx, int64_t cy, const int64_t* spy,
              int64_t w0, int64_t w1, const int64_t* pads) {
  p.nd = g.nsp == 1 ? 4 : g.nsp + 2;
  const int off = p.nd - 2 - g.nsp;
  int64_t x[5] = {g.N, cx, 1, 1, 1}, y[5] = {g.N, cy, 1, 1, 1}, w[5] = {w0, w1, 1, 1, 1};
  for (int i = 0; i < 3; ++i) p.pad[i] = 0, p.stride[i] = 1, p.dil[i] = 1;
  for (int i = 0; i < g.nsp; ++i) {
    x[2 + off + i] = spx[i], y[2 + off + i] = spy[i], w[2 + off + i] = g.k[i];
    if (!fits_int(pads[i]) || !fits_int(g.s[i]) || !fits_int(g.d[i])) return false;
    p.pad[off + i] = static_cast<int>(pads[i]), p.stride[off + i] = static_cast<int>(g.s[i]);
    p.dil[off + i] = static_cast<int>(g.d[i]);
  }
  int64_t nx = 1, ny = 1;
  for (int d = 0; d < p.nd; ++d) {
    if (!fits_int(x[d]) || !fits_int(y[d]) || !fits_int(w[d])) return false;
    p.x[d] = static_cast<int>(x[d]), p.y[d] = static_cast<int>(y[d]), p.w[d] = static_cast<int>(w[d]);
    nx *= x[d], ny *= y[d];
  }
  if (!fits_int(g.group)) return false;
  p.group = static_cast<int>(g.group);
  return nx <= INT32_MAX && ny <= INT32_MAX;
}

const void* one_of(DType dt) {
  static const float f = 1.f;
  static const double d = 1.0;
  return dt == DType::Float64 ? static_cast<const void*>(&d) : static_cast<const void*>(&f);
}
const void* zero_of(DType dt) {
  static const float f = 0.f;
  static const double d = 0.0;
  return dt == DType::Float64 ? static_cast<const void*>(&d) : static_cast<const void*>(&f);
}

void check_out(const ir::Node& n, const ConvGeometry& g, const DTensor& Y) {
  Shape want = {g.N, g.M};
  for (int i = 0; i < g.nsp; ++i) want.push_back(g.out[i]);
  if (Y.shape != want)
    KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(Y.shape) << ", the geometry gives "
                                       << shape_str(want));
}

}  // namespace
}  // namespace kiln::runtime::cuda

// ---- Conv / ConvTranspose ------------------------------------------------------------------------------------------
namespace kiln::runtime::cuda {
namespace {

struct ConvIo {
  const DTensor* X;
  const DTensor* W;
  const DTensor* B;  // nullptr when omitted
};
ConvIo conv_io(const KernelArgs& args) {
  if (args.in.size() < 2 || !args.in[0] || !args.in[1])
    KILN_THROW(InvalidModel, args.node.label() << ": needs an input and weights");
  const DTensor* b = args.in.size() > 2 && args.in[2] && args.in[2]->data ? args.in[2] : nullptr;
  return {args.in[0], args.in[1], b};
}

int64_t eff_kernel(const ConvGeometry& g, int i) { return g.d[i] * (g.k[i] - 1) + 1; }

// Whether cuDNN's symmetric pad (the begin pad on both sides) gives the node's output size in every dim: then the
// windows read the same elements (anything past the input is zero either way).
bool conv_symmetric_ok(const ConvGeometry& g) {
  for (int i = 0; i < g.nsp; ++i) {
    if (g.pb[i] == g.pe[i]) continue;
    const int64_t num = g.in[i] + 2 * g.pb[i] - eff_kernel(g, i);
    if (num < 0 || num / g.s[i] + 1 != g.out[i]) return false;
  }
  return true;
}
// Bytes of the zero-padded input copy the cuDNN path needs (0 when the pads are usable as they are).
size_t conv_pad_bytes(const ConvGeometry& g, DType dt) {
  if (conv_symmetric_ok(g)) return 0;
  int64_t n = g.N * g.C;
  for (int i = 0; i < g.nsp; ++i) n *= g.in[i] + g.pb[i] + g.pe[i];
  return static_cast<size_t>(n) * dtype_size(dt);
}

// Whether cuDNN's backward data with the symmetric pad pb writes exactly the node's output (else: full result in the
// workspace, then cropped).
bool convt_direct_ok(const ConvGeometry& g) {
  for (int i = 0; i < g.nsp; ++i) {
    const int64_t num = g.out[i] + 2 * g.pb[i] - eff_kernel(g, i);
    if (g.pb[i] < 0 || num < 0 || num / g.s[i] + 1 != g.in[i]) return false;
  }
  return true;
}
int64_t convt_full(const ConvGeometry& g, int i) { return g.s[i] * (g.in[i] - 1) + eff_kernel(g, i); }
size_t convt_full_bytes(const ConvGeometry& g, DType dt) {
  if (convt_direct_ok(g)) return 0;
  int64_t n = g.N * g.M;
  for (int i = 0; i < g.nsp; ++i) n *= convt_full(g, i);
  return static_cast<size_t>(n) * dtype_size(dt);
}

// ShiftParams over 3 right-aligned slots.
ShiftParams shift_params(const ConvGeometry& g, const int64_t* dst, const int64_t* src, const int64_t* off,
                         int64_t channels) {
  ShiftParams p{};
  const int o = 3 - g.nsp;
  for (int i = 0; i < 3; ++i) p.dst[i] = p.src[i] = 1, p.off[i] = 0;
  for (int i = 0; i < g.nsp; ++i) p.dst[o + i] = dst[i], p.src[o + i] = src[i], p.off[o + i] = off[i];
  p.channels = channels;
  return p;
}

void run_conv(const KernelContext& ctx, KernelArgs& args, bool use_dnn, const WantAlgo* want) {
  const ir::Node& n = args.node;
  const ConvIo io = conv_io(args);
  const DTensor &X = *io.X, &W = *io.W;
  DTensor& Y = args.out[0];
  const ConvGeometry G = conv_geometry(n, X.shape, W.shape);
  check_out(n, G, Y);
  if (Y.numel() == 0) return;
  const Geo3 g3 = to_geo3(G);
  if (!use_dnn) return launch_direct(ctx, false, g3, X, W, io.B, Y);
  const bool sym = conv_symmetric_ok(G);
  int64_t spx[3] = {1, 1, 1}, pads[3] = {0, 0, 0}, padded[3] = {1, 1, 1};
  for (int i = 0; i < G.nsp; ++i) {
    padded[i] = G.in[i] + G.pb[i] + G.pe[i];
    spx[i] = sym ? G.in[i] : padded[i];
    pads[i] = sym ? G.pb[i] : 0;
  }
  DnnProblem p;
  p.dt = X.dtype, p.tf32 = ctx.allow_tf32;
  if (!set_dims(p, G, G.C, spx, G.M, G.out, G.M, G.C / G.group, pads)) return launch_direct(ctx, false, g3, X, W, io.B, Y);
  char* ws = static_cast<char*>(ctx.workspace);
  size_t ws_left = ws ? ctx.workspace_size : 0;
  const void* xptr = X.data;
  if (!sym) {
    const size_t bytes = align_up(conv_pad_bytes(G, X.dtype));
    if (bytes > ws_left) return launch_direct(ctx, false, g3, X, W, io.B, Y);
    const ShiftParams sp = shift_params(G, padded, G.in, G.pb, 1);
    launch_shift(ctx, X.dtype, sp, G.N * G.C * padded[0] * padded[1] * padded[2], X.data, nullptr, ws);
    xptr = ws;
    ws += bytes, ws_left -= bytes;
  }
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, ws_left, want);
  if (!plan->found) return launch_direct(ctx, false, g3, X, W, io.B, Y);
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  auto forward = [&] {
    return cudnnConvolutionForward(ctx.cudnn, one_of(X.dtype), plan->x, xptr, plan->w, W.data, plan->conv,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(plan->algo), plan->ws ? ws : nullptr,
                                   plan->ws, zero_of(X.dtype), plan->y, Y.data);
  };
  cudnnStatus_t st = forward();
  if (st != CUDNN_STATUS_SUCCESS && plan->variant) {
    plan = drop_variant(ctx, n, p, ws_left, *want, st);
    if (!plan->found) return launch_direct(ctx, false, g3, X, W, io.B, Y);
    st = forward();
  }
  if (st != CUDNN_STATUS_SUCCESS) KILN_THROW(Cuda, "cudnnConvolutionForward: " << cudnnGetErrorString(st));
  launch_bias(ctx, io.B, Y);
}

void run_conv_transpose(const KernelContext& ctx, KernelArgs& args, bool use_dnn, const WantAlgo* want) {
  const ir::Node& n = args.node;
  const ConvIo io = conv_io(args);
  const DTensor &X = *io.X, &W = *io.W;
  DTensor& Y = args.out[0];
  const ConvGeometry G = conv_transpose_geometry(n, X.shape, W.shape);
  check_out(n, G, Y);
  if (Y.numel() == 0) return;
  const Geo3 g3 = to_geo3(G);
  if (!use_dnn || X.numel() == 0) return launch_direct(ctx, true, g3, X, W, io.B, Y);
  const bool direct = convt_direct_ok(G);
  int64_t spres[3] = {1, 1, 1}, pads[3] = {0, 0, 0}, full[3] = {1, 1, 1}, crop[3] = {0, 0, 0};
  for (int i = 0; i < G.nsp; ++i) {
    full[i] = convt_full(G, i);
    spres[i] = direct ? G.out[i] : full[i];
    pads[i] = direct ? G.pb[i] : 0;
    crop[i] = -G.pb[i];
  }
  DnnProblem p;
  p.backward_data = true, p.dt = X.dtype, p.tf32 = ctx.allow_tf32;
  if (!set_dims(p, G, G.M, spres, G.C, G.in, G.C, G.M / G.group, pads)) return launch_direct(ctx, true, g3, X, W, io.B, Y);
  char* ws = static_cast<char*>(ctx.workspace);
  size_t ws_left = ws ? ctx.workspace_size : 0;
  void* res = Y.data;
  if (!direct) {
    const size_t bytes = align_up(convt_full_bytes(G, X.dtype));
    if (bytes > ws_left) return launch_direct(ctx, true, g3, X, W, io.B, Y);
    res = ws;
    ws += bytes, ws_left -= bytes;
  }
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, ws_left, want);
  if (!plan->found) return launch_direct(ctx, true, g3, X, W, io.B, Y);
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  auto backward_data = [&] {
    return cudnnConvolutionBackwardData(ctx.cudnn, one_of(X.dtype), plan->w, W.data, plan->y, X.data, plan->conv,
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(plan->algo),
                                        plan->ws ? ws : nullptr, plan->ws, zero_of(X.dtype), plan->x, res);
  };
  cudnnStatus_t st = backward_data();
  if (st != CUDNN_STATUS_SUCCESS && plan->variant) {
    plan = drop_variant(ctx, n, p, ws_left, *want, st);
    if (!plan->found) return launch_direct(ctx, true, g3, X, W, io.B, Y);
    st = backward_data();
  }
  if (st != CUDNN_STATUS_SUCCESS) KILN_THROW(Cuda, "cudnnConvolutionBackwardData: " << cudnnGetErrorString(st));
  if (direct) return launch_bias(ctx, io.B, Y);
  const ShiftParams sp = shift_params(G, G.out, full, crop, G.M);
  launch_shift(ctx, X.dtype, sp, Y.numel(), res, io.B ? io.B->data : nullptr, Y.data);
}

// NHWC buffers of the channels-last path: padded input, weights [M, k..., C / group], output (bytes, aligned).
struct NhwcBytes {
  size_t x = 0, w = 0, y = 0;
  size_t total() const { return x + w + y; }
};
NhwcBytes nhwc_bytes(const ConvGeometry& g, DType dt) {
  int64_t x = g.N * g.C, w = g.M * (g.C / g.group), y = g.N * g.M;
  for (int i = 0; i < g.nsp; ++i) x *= g.in[i] + g.pb[i] + g.pe[i], w *= g.k[i], y *= g.out[i];
  const size_t es = dtype_size(dt);
  return {align_up(static_cast<size_t>(x) * es), align_up(static_cast<size_t>(w) * es),
          align_up(static_cast<size_t>(y) * es)};
}

// float16 / bfloat16 Conv in cuDNN's channels-last layout: input (padded on the way) and weights transposed to NHWC
// in the workspace, the result transposed back with the bias. Falls back to the NCHW path when cuDNN has no NHWC
// algorithm or the workspace is short.
void run_conv_nhwc(const KernelContext& ctx, KernelArgs& args, const WantAlgo* want) {
  const ir::Node& n = args.node;
  const ConvIo io = conv_io(args);
  const DTensor &X = *io.X, &W = *io.W;
  DTensor& Y = args.out[0];
  const ConvGeometry G = conv_geometry(n, X.shape, W.shape);
  check_out(n, G, Y);
  if (Y.numel() == 0) return;
  // The NCHW path, heuristic algorithm (a channels-last variant means nothing there; it has no variants to list).
  auto nchw = [&] {
    if (VariantProbe* probe = VariantProbe::active()) probe->record({});
    run_conv(ctx, args, true, nullptr);
  };
  if (X.dtype != DType::Float16 && X.dtype != DType::BFloat16) return nchw();
  int64_t padded[3] = {1, 1, 1}, zero[3] = {0, 0, 0}, out_sp = 1;
  for (int i = 0; i < G.nsp; ++i) padded[i] = G.in[i] + G.pb[i] + G.pe[i], out_sp *= G.out[i];
  DnnProblem p;
  p.nhwc = true, p.dt = X.dtype, p.tf32 = ctx.allow_tf32;
  const NhwcBytes nb = nhwc_bytes(G, X.dtype);
  char* ws = static_cast<char*>(ctx.workspace);
  if (!ws || ctx.workspace_size < nb.total() || !set_dims(p, G, G.C, padded, G.M, G.out, G.M, G.C / G.group, zero))
    return nchw();
  void* xb = ws;
  void* wb = ws + nb.x;
  void* yb = ws + nb.x + nb.w;
  char* dnn_ws = ws + nb.total();
  const size_t dnn_cap = ctx.workspace_size - nb.total();
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, dnn_cap, want);
  if (!plan->found) return nchw();
  const ShiftParams xs = shift_params(G, padded, G.in, G.pb, 1);
  launch_to_nhwc(ctx, X.dtype, xs, G.C, G.N * G.C * padded[0] * padded[1] * padded[2], X.data, xb);
  const ShiftParams wsp = shift_params(G, G.k, G.k, zero, 1);
  launch_to_nhwc(ctx, X.dtype, wsp, G.C / G.group, W.numel(), W.data, wb);
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  auto forward = [&] {
    return cudnnConvolutionForward(ctx.cudnn, one_of(X.dtype), plan->x, xb, plan->w, wb, plan->conv,
                                   static_cast<cudnnConvolutionFwdAlgo_t>(plan->algo), plan->ws ? dnn_ws : nullptr,
                                   plan->ws, zero_of(X.dtype), plan->y, yb);
  };
  cudnnStatus_t st = forward();
  if (st != CUDNN_STATUS_SUCCESS && plan->variant) {
    plan = drop_variant(ctx, n, p, dnn_cap, *want, st);
    if (!plan->found) return nchw();  // nothing of the output written yet
    st = forward();
  }
  if (st != CUDNN_STATUS_SUCCESS) KILN_THROW(Cuda, "cudnnConvolutionForward (NHWC): " << cudnnGetErrorString(st));
  launch_from_nhwc(ctx, X.dtype, G.M, out_sp, Y.numel(), yb, io.B ? io.B->data : nullptr, Y.data);
}

bool static_pair(const std::vector<ir::ValueType>& in) {
  return in.size() >= 2 && in[0].is_static() && in[1].is_static();
}
size_t conv_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>&) {
  if (!static_pair(in)) return kDnnWorkspace;
  try {
    return align_up(conv_pad_bytes(conv_geometry(n, in[0].static_shape(), in[1].static_shape()), in[0].dtype)) +
           kDnnWorkspace;
  } catch (const Error&) {
    return kDnnWorkspace;
  }
}
size_t convt_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>&) {
  if (!static_pair(in)) return kDnnWorkspace;
  try {
    return align_up(convt_full_bytes(conv_transpose_geometry(n, in[0].static_shape(), in[1].static_shape()),
                                     in[0].dtype)) +
           kDnnWorkspace;
  } catch (const Error&) {
    return kDnnWorkspace;
  }
}

bool supports_conv(const ir::Node&, const std::vector<ir::ValueType>& in) {
  if (in.empty() || !is_conv_type(in[0].dtype)) return false;
  return !in[0].has_rank || (in[0].dims.size() >= 3 && in[0].dims.size() <= 5);
}

size_t conv_nhwc_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in,
                           const std::vector<ir::ValueType>& out) {
  if (!static_pair(in)) return kDnnWorkspace;
  try {
    return nhwc_bytes(conv_geometry(n, in[0].static_shape(), in[1].static_shape()), in[0].dtype).total() +
           conv_workspace(n, in, out);
  } catch (const Error&) {
    return kDnnWorkspace;
  }
}
bool supports_conv_nhwc(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  return supports_conv(n, in) && (in[0].dtype == DType::Float16 || in[0].dtype == DType::BFloat16);
}

}  // namespace

void register_conv_kernels() {
  // "cudnn" / "cudnn_nhwc" may carry a variant, "cudnn#algo=<NAME>,math=<MATH>" (tactic_variant.h), read here.
  register_cuda_tactic("", "Conv", CudaTactic{"cudnn", supports_conv,
                                              [](const KernelContext& c, KernelArgs& a) {
                                                WantAlgo w;
                                                run_conv(c, a, true, want_of(a.node, false, w));
                                              },
                                              conv_workspace});
  register_cuda_tactic("", "Conv", CudaTactic{"cuda", supports_conv,
                                              [](const KernelContext& c, KernelArgs& a) {
                                                run_conv(c, a, false, nullptr);
                                              },
                                              nullptr});
  // Channels-last cuDNN for float16 / bfloat16: not the heuristic choice while the executor keeps NCHW (it pays two
  // transposes per conv); the builder's timing may pick it.
  register_cuda_tactic("", "Conv", CudaTactic{"cudnn_nhwc", supports_conv_nhwc,
                                              [](const KernelContext& c, KernelArgs& a) {
                                                WantAlgo w;
                                                run_conv_nhwc(c, a, want_of(a.node, false, w));
                                              },
                                              conv_nhwc_workspace});
  register_cuda_tactic("", "ConvTranspose", CudaTactic{"cudnn", supports_conv,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         WantAlgo w;
                                                         run_conv_transpose(c, a, true, want_of(a.node, true, w));
                                                       },
                                                       convt_workspace});
  register_cuda_tactic("", "ConvTranspose", CudaTactic{"cuda", supports_conv,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         run_conv_transpose(c, a, false, nullptr);
                                                       },
                                                       nullptr});
}

}  // namespace kiln::runtime::cuda
