// Shared window geometry for Conv and the pooling ops: kernel / strides / dilations / pads / auto_pad
// attributes and per-dimension output sizes (ONNX formulas, incl. SAME_UPPER/SAME_LOWER and ceil_mode).
#pragma once
#include <string>
#include <vector>

#include "ops/common.h"

namespace kiln::ops {

struct SpatialAttrs {
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pads;  // [x1_begin, x2_begin, ..., x1_end, x2_end, ...]
  std::string auto_pad;       // NOTSET, SAME_UPPER, SAME_LOWER, VALID
  bool ceil_mode = false;
};

// Reads strides / dilations / pads / auto_pad / ceil_mode for `nspatial` dims; `kernel` is given
// (from kernel_shape or the weights; values <= 0 mean unknown). InvalidModel on malformed attributes.
SpatialAttrs read_spatial_attrs(const Node& n, size_t nspatial, std::vector<int64_t> kernel, bool allow_ceil_mode,
                                bool allow_dilations);

struct SpatialDim {
  int64_t out = -1;  // -1 when unknown
  int64_t pad_begin = 0, pad_end = 0;
};
// Output size and effective pads of spatial dim i for input size `in` (-1 = unknown).
SpatialDim resolve_spatial_dim(const Node& n, const SpatialAttrs& a, size_t i, int64_t in);

// Geometry padded to exactly 3 spatial dims (1-D and 2-D become [1,1,L] / [1,H,W]) for the kernels.
struct Window3 {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
};
// Unsupported when there are more than 3 spatial dims.
Window3 make_window3(const Node& n, const SpatialAttrs& a, const Shape& x_shape);

}  // namespace kiln::ops
