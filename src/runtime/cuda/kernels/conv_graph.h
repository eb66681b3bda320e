// kiln.Conv through cuDNN's graph (backend) API (conv_graph.cu): one operation graph conv -> + bias [-> + z]
// [-> ReLU] on NHWC float16 / bfloat16 tensors with KRSC filters, the intermediates virtual (float, never in memory),
// run by the first engine configuration of cuDNN's heuristic (mode A) that finalizes within the workspace. The
// execution plans are cached per (device, handle, problem). Host code.
#pragma once
#include <string>

#include "runtime/cuda/kernel.h"
#include "runtime/cuda/kernels/conv_geom.h"

namespace kiln::runtime::cuda {

struct ConvGraphArgs {
  DType dt = DType::Float16;
  ConvGeometry G;  // 2-D, symmetric pads (pb used for both sides)
  const void* x = nullptr;
  const void* w = nullptr;
  const void* b = nullptr;  // required
  const void* z = nullptr;  // optional residual
  void* y = nullptr;
  bool relu = false;
};

// Enqueues the fused convolution on ctx.stream. False (nothing enqueued, *why set) when cuDNN offers no engine for
// this graph here, the workspace is short or a pointer is not 16-byte aligned.
bool run_conv_graph(const KernelContext& ctx, const ConvGraphArgs& a, std::string* why);

}  // namespace kiln::runtime::cuda
