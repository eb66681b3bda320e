// cuDNN's legacy convolution API as the conv kernels use it (conv.cu: Conv / ConvTranspose in NCHW, per-node NHWC;
// conv_nhwc.cu: kiln.Conv): problem descriptions, descriptor plans cached per (device, problem, workspace, variant),
// the heuristic's algorithm list recorded as tactic variants, and the geometry helpers both files share. Host code
// (the .cu files include it for the cuDNN calls).
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "runtime/cuda/kernel.h"
#include "runtime/cuda/kernels/conv_geom.h"
#include "runtime/cuda/tactic_variant.h"

namespace kiln::runtime::cuda {

constexpr size_t kDnnWorkspace = size_t(32) << 20;  // cuDNN algorithm scratch asked for at plan time
constexpr size_t kAlign = 256;
inline size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

inline bool is_conv_type(DType dt) {
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64;
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

// The plan for problem p within ws_cap workspace bytes: the heuristic's first algorithm (found = false when none
// fits; its list recorded into an active VariantProbe), or with `want` that variant (the heuristic's plan, with one
// warning, when cuDNN does not take it here).
std::shared_ptr<const DnnPlan> get_plan(const KernelContext& ctx, const ir::Node& n, const DnnProblem& p,
                                        size_t ws_cap, const WantAlgo* want = nullptr);
// A variant's plan whose cuDNN call failed (`st`): from now on the heuristic's plan under the variant's key too.
std::shared_ptr<const DnnPlan> drop_variant(const KernelContext& ctx, const ir::Node& n, const DnnProblem& p,
                                            size_t ws_cap, const WantAlgo& want, cudnnStatus_t st);
// The variant of the node's cuDNN tactic ("cudnn#algo=...,math=..."), nullptr for a plain name.
const WantAlgo* want_of(const ir::Node& n, bool backward_data, WantAlgo& storage);
// Fills the cuDNN problem's dims from the geometry: x [N, Cx, sp_x], y [N, Cy, sp_y], w [w0, w1, k];
// 1-D problems become 2-D with a leading spatial dim of 1. False when a size does not fit cuDNN's ints.
bool set_dims(DnnProblem& p, const ConvGeometry& g, int64_t cx, const int64_t* spx, int64_t cy, const int64_t* spy,
              int64_t w0, int64_t w1, const int64_t* pads);
cudnnDataType_t dnn_type(DType dt);
// alpha = 1 / beta = 0 in the scaling type cuDNN wants for dt (float, double for float64).
const void* one_of(DType dt);
const void* zero_of(DType dt);

inline int64_t eff_kernel(const ConvGeometry& g, int i) { return g.d[i] * (g.k[i] - 1) + 1; }
// Whether cuDNN's symmetric pad (the begin pad on both sides) gives the node's output size in every dim: then the
// windows read the same elements (anything past the input is zero either way).
inline bool conv_symmetric_ok(const ConvGeometry& g) {
  for (int i = 0; i < g.nsp; ++i) {
    if (g.pb[i] == g.pe[i]) continue;
    const int64_t num = g.in[i] + 2 * g.pb[i] - eff_kernel(g, i);
    if (num < 0 || num / g.s[i] + 1 != g.out[i]) return false;
  }
  return true;
}

}  // namespace kiln::runtime::cuda
