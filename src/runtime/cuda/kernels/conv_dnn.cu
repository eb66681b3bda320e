// cuDNN legacy convolution plans (conv_dnn.h).
#include <algorithm>
#include <array>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_dnn.h"
#include "util/log.h"

namespace kiln::runtime::cuda {

// ---- cuDNN ---------------------------------------------------------------------------------------------------------
cudnnDataType_t dnn_type(DType dt) {
  switch (dt) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_DOUBLE;
  }
}


namespace {
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

}  // namespace

std::shared_ptr<const DnnPlan> get_plan(const KernelContext& ctx, const ir::Node& n, const DnnProblem& p,
                                        size_t ws_cap, const WantAlgo* want) {
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

static bool fits_int(int64_t v) { return v >= 0 && v <= INT32_MAX; }

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

}  // namespace kiln::runtime::cuda
