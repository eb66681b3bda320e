// CUDA kernels of the channels-last ops the layout_nhwc pass writes (ops/nhwc.h; registered with the conv family):
//
// kiln.Conv  Y = act(conv(X, W) + B + Z), X / Y / Z NHWC, W KRSC. Tactics, heuristic order:
//   "cudnn"          cuDNN with NHWC descriptors and cudnnConvolutionBiasActivationForward: bias, residual (alpha2 = 1)
//                    and ReLU in the convolution's epilogue. cuDNN runs the identity activation only with
//                    IMPLICIT_PRECOMP_GEMM; other algorithms without ReLU (and nodes without bias) take the next path.
//   "cudnn_epilogue" cudnnConvolutionForward, then one kiln kernel adding bias and residual and applying ReLU.
//   "cudnn_graph"    cuDNN's graph API: conv -> + bias [-> + z] [-> ReLU] as one operation graph, its intermediates
//                    virtual, run by the heuristic's first engine that finalizes (conv_graph.cu); cuDNN's runtime-
//                    fusion engines compile one kernel for the whole epilogue.
//   "cuda"           kiln's direct NHWC kernel (any geometry, asymmetric pads; also the fallback when cuDNN has no
//                    algorithm or the pads are not symmetric).
//   "cudnn" and "cudnn_epilogue" take algorithm variants ("cudnn#algo=...,math=...") that the builder times.
// kiln.Pool (nhwc_pool.cu) and kiln.ToNhwc (nhwc_entry.cu) are registered with these.
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "ops/nhwc.h"
#include "ops/spatial.h"
#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_dnn.h"
#include "runtime/cuda/kernels/conv_graph.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"
#include "util/log.h"

namespace kiln::runtime::cuda {
namespace {

// ---- kiln.Conv -----------------------------------------------------------------------------------------------------
struct KConv {
  const DTensor* X;
  const DTensor* W;
  const DTensor* B;  // nullptr when omitted
  const DTensor* Z;  // nullptr when omitted
  bool relu;
  ConvGeometry G;
};

const DTensor* optional_in(const KernelArgs& a, size_t i) {
  return a.in.size() > i && a.in[i] && a.in[i]->data ? a.in[i] : nullptr;
}

// The NCHW geometry of a kiln.Conv node from its NHWC / KRSC shapes.
ConvGeometry kconv_geometry(const ir::Node& n, const Shape& x, const Shape& w) {
  if (x.size() != 4 || w.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": input " << shape_str(x) << " and weights " << shape_str(w)
                                       << " must have rank 4 (NHWC, KRSC)");
  return conv_geometry(n, Shape{x[0], x[3], x[1], x[2]}, Shape{w[0], w[3], w[1], w[2]});
}

KConv kconv_io(const KernelArgs& a) {
  const ir::Node& n = a.node;
  if (a.in.size() < 2 || !a.in[0] || !a.in[1]) KILN_THROW(InvalidModel, n.label() << ": needs an input and weights");
  KConv k{a.in[0], a.in[1], optional_in(a, 2), optional_in(a, 3), n.attr_string("activation", "") == "Relu", {}};
  k.G = kconv_geometry(n, k.X->shape, k.W->shape);
  const Shape want = {k.G.N, k.G.out[0], k.G.out[1], k.G.M};
  if (a.out.at(0).shape != want)
    KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(a.out[0].shape) << ", the geometry gives "
                                       << shape_str(want));
  if (k.Z && k.Z->shape != want)
    KILN_THROW(InvalidModel, n.label() << ": residual input " << shape_str(k.Z->shape) << " differs from the output "
                                       << shape_str(want));
  return k;
}

struct NhwcGeo {
  int64_t N, H, W, C, OH, OW, M, kh, kw, sh, sw, dh, dw, ph, pw, Cg, Mg;
};
NhwcGeo nhwc_geo(const ConvGeometry& g) {
  return {g.N, g.in[0], g.in[1], g.C, g.out[0], g.out[1], g.M, g.k[0], g.k[1], g.s[0], g.s[1],
          g.d[0], g.d[1], g.pb[0], g.pb[1], g.C / g.group, g.M / g.group};
}

template <typename T, typename A>
__global__ void kconv_direct_kernel(NhwcGeo g, const T* __restrict__ x, const T* __restrict__ w,
                                    const T* __restrict__ b, const T* __restrict__ z, bool relu, T* __restrict__ y,
                                    int64_t total) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = o % g.M;
    int64_t r = o / g.M;
    const int64_t ow = r % g.OW;
    r /= g.OW;
    const int64_t oh = r % g.OH, n = r / g.OH;
    const int64_t c0 = (m / g.Mg) * g.Cg;
    A acc = 0;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t ih = oh * g.sh - g.ph + a * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t bb = 0; bb < g.kw; ++bb) {
        const int64_t iw = ow * g.sw - g.pw + bb * g.dw;
        if (iw < 0 || iw >= g.W) continue;
        const T* xp = x + ((n * g.H + ih) * g.W + iw) * g.C + c0;
        const T* wp = w + ((m * g.kh + a) * g.kw + bb) * g.Cg;
        for (int64_t c = 0; c < g.Cg; ++c) acc += acc_in(xp[c]) * acc_in(wp[c]);
      }
    }
    if (b) acc += acc_in(b[m]);
    if (z) acc += acc_in(z[o]);
    if (relu && acc < A(0)) acc = A(0);
    y[o] = acc_out<T>(acc);
  }
}

// y[i] = act(y[i] + b[i % M] + z[i]) (b, z optional).
template <typename T, typename A>
__global__ void kconv_epilogue_kernel(T* __restrict__ y, const T* __restrict__ b, const T* __restrict__ z, bool relu,
                                      int64_t M, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    A v = acc_in(y[i]);
    if (b) v += acc_in(b[i % M]);
    if (z) v += acc_in(z[i]);
    if (relu && v < A(0)) v = A(0);
    y[i] = acc_out<T>(v);
  }
}

void launch_kconv_direct(const KernelContext& ctx, const KConv& k, DTensor& Y) {
  const int64_t total = Y.numel();
  const NhwcGeo g = nhwc_geo(k.G);
  dispatch_list(FloatDTypes{}, Y.dtype, ir::Node{}, [&](auto t) {
    using T = decltype(t);
    using A = acc_t<T>;
    kconv_direct_kernel<T, A><<<grid_for(total), kBlock, 0, ctx.stream>>>(
        g, k.X->as<const T>(), k.W->as<const T>(), k.B ? k.B->as<const T>() : nullptr,
        k.Z ? k.Z->as<const T>() : nullptr, k.relu, Y.as<T>(), total);
  });
  KILN_CUDA_LAUNCH_CHECK("kiln.Conv direct");
}

void launch_kconv_epilogue(const KernelContext& ctx, const KConv& k, DTensor& Y) {
  if (!k.B && !k.Z && !k.relu) return;
  const int64_t total = Y.numel();
  dispatch_list(FloatDTypes{}, Y.dtype, ir::Node{}, [&](auto t) {
    using T = decltype(t);
    kconv_epilogue_kernel<T, acc_t<T>><<<grid_for(total, 4), kBlock, 0, ctx.stream>>>(
        Y.as<T>(), k.B ? k.B->as<const T>() : nullptr, k.Z ? k.Z->as<const T>() : nullptr, k.relu, k.G.M, total);
  });
  KILN_CUDA_LAUNCH_CHECK("kiln.Conv epilogue");
}

// Host-side cuDNN descriptors shared by every call: the bias tensor [1, M, 1, 1] per (dtype, M) and the two
// activations (descriptors hold no device state).
cudnnTensorDescriptor_t bias_desc(DType dt, int64_t m) {
  static std::mutex mu;
  static std::map<std::pair<int, int64_t>, cudnnTensorDescriptor_t> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(static_cast<int>(dt), m);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  cudnnTensorDescriptor_t d = nullptr;
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  if (cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, dnn_type(dt), 1, static_cast<int>(m), 1, 1) !=
      CUDNN_STATUS_SUCCESS) {
    cudnnDestroyTensorDescriptor(d);
    return nullptr;
  }
  return cache[key] = d;
}
cudnnActivationDescriptor_t activation_desc(bool relu) {
  static std::once_flag once;
  static cudnnActivationDescriptor_t d[2] = {nullptr, nullptr};
  std::call_once(once, [] {
    for (int i = 0; i < 2; ++i) {
      KILN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&d[i]));
      KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(d[i], i ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                                    CUDNN_NOT_PROPAGATE_NAN, 0.0));
    }
  });
  return d[relu ? 1 : 0];
}

void run_kconv(const KernelContext& ctx, KernelArgs& args, bool use_dnn, bool fused, const WantAlgo* want) {
  const ir::Node& n = args.node;
  const KConv k = kconv_io(args);
  DTensor& Y = args.out[0];
  if (Y.numel() == 0) return;
  const ConvGeometry& G = k.G;
  // The direct kernel; a cuDNN tactic that cannot run here lists no variants.
  auto direct = [&] {
    if (use_dnn)
      if (VariantProbe* probe = VariantProbe::active()) probe->record({});
    launch_kconv_direct(ctx, k, Y);
  };
  if (!use_dnn || !conv_symmetric_ok(G) || k.X->numel() == 0) return direct();
  DnnProblem p;
  p.nhwc = true, p.dt = Y.dtype, p.tf32 = ctx.allow_tf32;
  if (!set_dims(p, G, G.C, G.in, G.M, G.out, G.M, G.C / G.group, G.pb)) return direct();
  void* ws = ctx.workspace;
  const size_t ws_cap = ws ? ctx.workspace_size : 0;
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, ws_cap, want);
  if (!plan->found) return direct();
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  const cudnnTensorDescriptor_t bdesc = k.B ? bias_desc(Y.dtype, G.M) : nullptr;
  auto can_fuse = [&] {
    return fused && bdesc && (k.relu || plan->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
  };
  auto call = [&](bool fuse) {
    const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(plan->algo);
    void* w = plan->ws ? ws : nullptr;
    if (!fuse)
      return cudnnConvolutionForward(ctx.cudnn, one_of(Y.dtype), plan->x, k.X->data, plan->w, k.W->data, plan->conv,
                                     algo, w, plan->ws, zero_of(Y.dtype), plan->y, Y.data);
    return cudnnConvolutionBiasActivationForward(
        ctx.cudnn, one_of(Y.dtype), plan->x, k.X->data, plan->w, k.W->data, plan->conv, algo, w, plan->ws,
        k.Z ? one_of(Y.dtype) : zero_of(Y.dtype), plan->y, k.Z ? k.Z->data : Y.data, bdesc, k.B->data,
        activation_desc(k.relu), plan->y, Y.data);
  };
  bool fuse = can_fuse();
  cudnnStatus_t st = call(fuse);
  if (st != CUDNN_STATUS_SUCCESS && plan->variant) {
    plan = drop_variant(ctx, n, p, ws_cap, *want, st);
    if (!plan->found) return direct();  // nothing of the output written yet
    fuse = can_fuse();
    st = call(fuse);
  }
  if (st != CUDNN_STATUS_SUCCESS && fuse) {
    // cuDNN refused the fused form for this problem: the plain convolution and kiln's epilogue.
    static std::once_flag warned;
    std::call_once(warned, [&] {
      KILN_WARN(n.label() << ": cudnnConvolutionBiasActivationForward: " << cudnnGetErrorString(st)
                          << "; using cudnnConvolutionForward and kiln's epilogue kernel");
    });
    fuse = false;
    st = call(false);
  }
  if (st != CUDNN_STATUS_SUCCESS) KILN_THROW(Cuda, n.label() << ": cuDNN NHWC convolution: " << cudnnGetErrorString(st));
  if (!fuse) launch_kconv_epilogue(ctx, k, Y);
}

// The cuDNN graph API form (conv_graph.h). Where it cannot run: while the builder lists candidates (a VariantProbe
// is active) the tactic fails, so that timing never credits it with another path's time; at run time (a plan made
// on another GPU or cuDNN) the fused legacy call runs instead, with one warning.
void run_kconv_graph(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const KConv k = kconv_io(args);
  DTensor& Y = args.out[0];
  if (Y.numel() == 0) return;
  std::string why = "needs float16 / bfloat16, a bias and symmetric pads";
  if ((Y.dtype == DType::Float16 || Y.dtype == DType::BFloat16) && k.B && conv_symmetric_ok(k.G) &&
      k.X->numel() > 0) {
    ConvGraphArgs g;
    g.dt = Y.dtype, g.G = k.G, g.x = k.X->data, g.w = k.W->data, g.b = k.B->data;
    g.z = k.Z ? k.Z->data : nullptr, g.y = Y.data, g.relu = k.relu;
    if (run_conv_graph(ctx, g, &why)) {
      if (VariantProbe* probe = VariantProbe::active()) probe->record({});
      return;
    }
  }
  if (VariantProbe::active()) KILN_THROW(Unsupported, n.label() << ": cuDNN graph API: " << why);
  static std::once_flag warned;
  std::call_once(warned, [&] {
    KILN_WARN(n.label() << ": cuDNN graph API: " << why << "; running cudnnConvolutionBiasActivationForward instead");
  });
  run_kconv(ctx, args, true, true, nullptr);
}

size_t kconv_workspace(const ir::Node&, const std::vector<ir::ValueType>&, const std::vector<ir::ValueType>&) {
  return kDnnWorkspace;
}
bool supports_kconv(const ir::Node&, const std::vector<ir::ValueType>& in) {
  return in.size() >= 2 && is_conv_type(in[0].dtype) && in[0].dtype != DType::Float64 &&
         (!in[0].has_rank || in[0].dims.size() == 4);
}

}  // namespace

// The other channels-last kernels, registered with these (declared here rather than in families.h, which every
// kernel file includes).
void register_nhwc_pool_kernels();
void register_nhwc_entry_kernels();

void register_nhwc_kernels() {
  const std::string d = ops::nhwc::kDomain;
  register_cuda_tactic(d, ops::nhwc::kConv, CudaTactic{"cudnn", supports_kconv,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         WantAlgo w;
                                                         run_kconv(c, a, true, true, want_of(a.node, false, w));
                                                       },
                                                       kconv_workspace});
  register_cuda_tactic(d, ops::nhwc::kConv, CudaTactic{"cudnn_epilogue", supports_kconv,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         WantAlgo w;
                                                         run_kconv(c, a, true, false, want_of(a.node, false, w));
                                                       },
                                                       kconv_workspace});
  register_cuda_tactic(d, ops::nhwc::kConv, CudaTactic{"cudnn_graph", supports_kconv, run_kconv_graph, kconv_workspace});
  register_cuda_tactic(d, ops::nhwc::kConv, CudaTactic{"cuda", supports_kconv,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         run_kconv(c, a, false, false, nullptr);
                                                       },
                                                       nullptr});
  register_nhwc_pool_kernels();   // kiln.Pool (nhwc_pool.cu)
  register_nhwc_entry_kernels();  // kiln.ToNhwc (nhwc_entry.cu)
}

}  // namespace kiln::runtime::cuda
