// CUDA kernels: the conv family (kernels/families.h). Conv and ConvTranspose through cuDNN's convolution API
// (tactic "cudnn": forward / backward-data, NCHW, groups, dilations, float32 with TF32 per ctx.allow_tf32,
// float16 / bfloat16 with float accumulation, float64), and kiln's own direct kernels (tactic "cuda", any geometry;
// also the fallback when cuDNN offers no algorithm). cuDNN takes symmetric pads only: other pads go through a
// zero-padded copy of the input (Conv) or a full-size result cropped into the output (ConvTranspose), both in the
// workspace.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/conv_dnn.h"
#include "runtime/cuda/kernels/conv_geom.h"
#include "runtime/cuda/kernels/conv_kernels.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/tactic_variant.h"
#include "util/log.h"

namespace kiln::runtime::cuda {
namespace {

void check_out(const ir::Node& n, const ConvGeometry& g, const DTensor& Y) {
  Shape want = {g.N, g.M};
  for (int i = 0; i < g.nsp; ++i) want.push_back(g.out[i]);
  if (Y.shape != want)
    KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(Y.shape) << ", the geometry gives "
                                       << shape_str(want));
}

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

// NHWC buffers of the channels-last paths (bytes, aligned). Conv (transpose = false): the input zero-padded
// [N, padded..., C], weights [M, k..., C / group], the result [N, out..., M]. ConvTranspose: the input as it is
// [N, in..., C], weights [C, k..., M / group], the result [N, out..., M].
struct NhwcBytes {
  size_t x = 0, w = 0, y = 0;
  size_t total() const { return x + w + y; }
};
NhwcBytes nhwc_bytes(const ConvGeometry& g, DType dt, bool transpose) {
  int64_t x = g.N * g.C, w = transpose ? g.C * (g.M / g.group) : g.M * (g.C / g.group), y = g.N * g.M;
  for (int i = 0; i < g.nsp; ++i)
    x *= transpose ? g.in[i] : g.in[i] + g.pb[i] + g.pe[i], w *= g.k[i], y *= g.out[i];
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
  const NhwcBytes nb = nhwc_bytes(G, X.dtype, false);
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

std::atomic<uint64_t> g_convt_nhwc_runs{0};

// float16 / bfloat16 ConvTranspose through cuDNN's backward-data in channels-last layout: input and weights
// transposed to NHWC in the workspace, the result transposed back with the bias. Where the output is not the direct
// result (pads the full result must be cropped by, output_shape), cuDNN has no NHWC algorithm or the workspace is
// short, it runs the NCHW path.
void run_conv_transpose_nhwc(const KernelContext& ctx, KernelArgs& args, const WantAlgo* want) {
  const ir::Node& n = args.node;
  const ConvIo io = conv_io(args);
  const DTensor &X = *io.X, &W = *io.W;
  DTensor& Y = args.out[0];
  const ConvGeometry G = conv_transpose_geometry(n, X.shape, W.shape);
  check_out(n, G, Y);
  if (Y.numel() == 0) return;
  auto nchw = [&] {
    if (VariantProbe* probe = VariantProbe::active()) probe->record({});
    run_conv_transpose(ctx, args, true, nullptr);
  };
  if ((X.dtype != DType::Float16 && X.dtype != DType::BFloat16) || X.numel() == 0 || !convt_direct_ok(G))
    return nchw();
  int64_t out_sp = 1, zero[3] = {0, 0, 0};
  for (int i = 0; i < G.nsp; ++i) out_sp *= G.out[i];
  DnnProblem p;
  p.backward_data = true, p.nhwc = true, p.dt = X.dtype, p.tf32 = ctx.allow_tf32;
  const NhwcBytes nb = nhwc_bytes(G, X.dtype, true);
  char* ws = static_cast<char*>(ctx.workspace);
  if (!ws || ctx.workspace_size < nb.total() ||
      !set_dims(p, G, G.M, G.out, G.C, G.in, G.C, G.M / G.group, G.pb))
    return nchw();
  void* xb = ws;
  void* wb = ws + nb.x;
  void* yb = ws + nb.x + nb.w;
  char* dnn_ws = ws + nb.total();
  const size_t dnn_cap = ctx.workspace_size - nb.total();
  std::shared_ptr<const DnnPlan> plan = get_plan(ctx, n, p, dnn_cap, want);
  if (!plan->found) return nchw();
  launch_to_nhwc(ctx, X.dtype, shift_params(G, G.in, G.in, zero, 1), G.C, X.numel(), X.data, xb);
  launch_to_nhwc(ctx, X.dtype, shift_params(G, G.k, G.k, zero, 1), G.M / G.group, W.numel(), W.data, wb);
  KILN_CUDNN_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  auto backward_data = [&] {
    return cudnnConvolutionBackwardData(ctx.cudnn, one_of(X.dtype), plan->w, wb, plan->y, xb, plan->conv,
                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(plan->algo),
                                        plan->ws ? dnn_ws : nullptr, plan->ws, zero_of(X.dtype), plan->x, yb);
  };
  cudnnStatus_t st = backward_data();
  if (st != CUDNN_STATUS_SUCCESS && plan->variant) {
    plan = drop_variant(ctx, n, p, dnn_cap, *want, st);
    if (!plan->found) return nchw();  // nothing of the output written yet
    st = backward_data();
  }
  if (st != CUDNN_STATUS_SUCCESS)
    KILN_THROW(Cuda, "cudnnConvolutionBackwardData (NHWC): " << cudnnGetErrorString(st));
  g_convt_nhwc_runs.fetch_add(1, std::memory_order_relaxed);
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
    return nhwc_bytes(conv_geometry(n, in[0].static_shape(), in[1].static_shape()), in[0].dtype, false).total() +
           conv_workspace(n, in, out);
  } catch (const Error&) {
    return kDnnWorkspace;
  }
}
size_t convt_nhwc_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in,
                            const std::vector<ir::ValueType>& out) {
  if (!static_pair(in)) return kDnnWorkspace;
  try {
    return nhwc_bytes(conv_transpose_geometry(n, in[0].static_shape(), in[1].static_shape()), in[0].dtype, true)
               .total() +
           convt_workspace(n, in, out);
  } catch (const Error&) {
    return kDnnWorkspace;
  }
}
bool supports_conv_nhwc(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  return supports_conv(n, in) && (in[0].dtype == DType::Float16 || in[0].dtype == DType::BFloat16);
}

}  // namespace

uint64_t conv_transpose_nhwc_runs() { return g_convt_nhwc_runs.load(std::memory_order_relaxed); }

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
  // float16 / bfloat16 ConvTranspose: channels-last cuDNN first (the heuristic's choice; the layout pass leaves
  // ConvTranspose outside its NHWC regions, so this tactic transposes in and out); the builder's timing may pick
  // the NCHW "cudnn" where that is faster.
  register_cuda_tactic("", "ConvTranspose", CudaTactic{"cudnn_nhwc", supports_conv_nhwc,
                                                       [](const KernelContext& c, KernelArgs& a) {
                                                         WantAlgo w;
                                                         run_conv_transpose_nhwc(c, a, want_of(a.node, true, w));
                                                       },
                                                       convt_nhwc_workspace});
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
