// Conv / ConvTranspose geometry for the CUDA conv kernels (conv.cu), resolved on the host with the same rules as
// the CPU reference (src/ops/spatial.h, src/ops/conv_transpose.cpp): pads from pads / auto_pad / output_shape,
// output sizes, groups. Plain data so that .cu files (C++17) can use it; computed in conv_geom.cpp (C++20).
#pragma once
#include <cstdint>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::runtime::cuda {

struct ConvGeometry {
  int nsp = 0;                     // spatial dims, 1 to 3
  int64_t N = 0, C = 0, M = 0;     // batch, input channels, output channels
  int64_t group = 1;
  // Per spatial dim (first nsp entries): input and output sizes, kernel, stride, dilation, pads at the begin
  // and the end. For ConvTranspose the pads are those of the equivalent forward conv of the output and may be
  // negative (an output_shape larger than the full result).
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
  int64_t pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
};

// Conv: x [N, C, spatial...], w [M, C / group, k...]. InvalidModel naming the node on a mismatch.
ConvGeometry conv_geometry(const ir::Node& n, const Shape& x, const Shape& w);
// ConvTranspose: x [N, C, spatial...], w [C, M / group, k...].
ConvGeometry conv_transpose_geometry(const ir::Node& n, const Shape& x, const Shape& w);

}  // namespace kiln::runtime::cuda
