// CUDA kernels: the movement family, part 4: Resize (opset 11, 13, 18, 19), every mode and coordinate transform the
// CPU kernel takes (src/ops/resize.cpp): nearest (round_prefer_floor / round_prefer_ceil / floor / ceil; any numeric
// dtype, exact), linear and cubic (cubic_coeff_a, exclude_outside, antialias; float dtypes), tf_crop_and_resize with
// roi and extrapolation_value, axes and keep_aspect_ratio_policy. Scales / sizes / roi come from the host (the
// executor's host values, or a synchronous copy).
//
// One launch: each thread computes one output element directly from the input. The source coordinate is computed in
// float32 in the CPU's expression order (so nearest ties fall the same way); linear / cubic weights are the same
// separable tap weights as the CPU's, multiplied over the resized axes and accumulated in float (double for float64)
// instead of the CPU's axis-by-axis float64 passes: equal up to rounding.
#include <cmath>

#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/movement_common.cuh"

namespace kiln::runtime::cuda::move {
namespace {

enum Mode : int { kNearest = 0, kLinear = 1, kCubic = 2 };
enum Coord : int { kHalfPixel, kHalfPixelSymmetric, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn, kTfCrop };
enum Round : int { kPreferFloor, kPreferCeil, kFloor, kCeil };

struct RAxis {
  int64_t in, out, xstride;
  float scale, rs, re;  // scale and roi as the CPU's float32 coordinate code sees them
  double s;             // tap-distance scale: min(scale, 1) with antialias, else 1
  int resized, start, taps;
};
struct ResizeArgs {
  int rank, mode, coord, round, exclude, antialias;
  double cubic_a;
  FastDiv div[kMaxDims];  // output dims, innermost first
  RAxis ax[kMaxDims];     // innermost first
};
static_assert(sizeof(ResizeArgs) <= 4096, "kernel parameters are limited to 4 KB");

__device__ __forceinline__ float source_coord(int c, int64_t yi, const RAxis& a) {
  const float y = static_cast<float>(yi), len_in = static_cast<float>(a.in), len_out = static_cast<float>(a.out);
  const float scale = a.scale;
  switch (c) {
    case kHalfPixel: return ((y + 0.5f) / scale) - 0.5f;
    case kHalfPixelSymmetric: {
      const float output_width = __fmul_rn(scale, len_in);
      const float adjustment = len_out / output_width;
      const float offset = __fmul_rn(len_in / 2, 1 - adjustment);
      return static_cast<float>(offset + (y + 0.5) / scale - 0.5);
    }
    case kPytorchHalfPixel: return len_out > 1 ? (y + 0.5f) / scale - 0.5f : 0.0f;
    case kAlignCorners: {
      const float output_width = __fmul_rn(scale, len_in);
      return a.out == 1 || output_width == 1.0f ? 0.0f : __fmul_rn(y, len_in - 1) / (output_width - 1);
    }
    case kAsymmetric: return y / scale;
    case kTfHalfPixelForNn: return (y + 0.5f) / scale;
    default:  // tf_crop_and_resize
      return a.out > 1 ? __fadd_rn(__fmul_rn(a.rs, len_in - 1), __fmul_rn(__fmul_rn(y, a.re - a.rs), len_in - 1) / (len_out - 1))
                       : static_cast<float>(0.5 * (a.rs + a.re) * (len_in - 1));
  }
}

__device__ __forceinline__ int64_t round_nearest(int r, float x) {
  const float f = floorf(x);
  switch (r) {
    case kFloor: return static_cast<int64_t>(f);
    case kCeil: return static_cast<int64_t>(ceilf(x));
    case kPreferFloor: return static_cast<int64_t>(x - f == 0.5f ? f : roundf(x));
    default: return static_cast<int64_t>(x - f == 0.5f ? f + 1 : roundf(x));
  }
}

template <typename A>
__device__ __forceinline__ A tap_weight(const ResizeArgs& p, const RAxis& a, int64_t i, A x) {
  const A d = (static_cast<A>(i) - x) * static_cast<A>(a.s);
  A w;
  if (p.mode == kCubic) {
    const A t = d < 0 ? -d : d, c = static_cast<A>(p.cubic_a);
    w = t <= 1 ? ((c + 2) * t - (c + 3)) * t * t + 1 : t < 2 ? ((c * t - 5 * c) * t + 8 * c) * t - 4 * c : A(0);
  } else {
    const A t = d < 0 ? -d : d;
    w = t < 1 ? 1 - t : A(0);
  }
  if (p.exclude && (i < 0 || i >= a.in)) w = 0;
  return w;
}

template <typename I>
__device__ __forceinline__ void decompose(const ResizeArgs& p, I i, int64_t (&o)[kMaxDims]) {
#pragma unroll
  for (int k = 0; k < kMaxDims; ++k) {
    if (k < p.rank) {
      I q;
      if constexpr (std::is_same_v<I, uint32_t>) q = p.div[k].div(i);
      else q = i / p.ax[k].out;
      o[k] = static_cast<int64_t>(i - q * static_cast<I>(p.ax[k].out));
      i = q;
    }
  }
}

template <typename E, bool Small>
__global__ void resize_nearest_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t n, E fill,
                                      const __grid_constant__ ResizeArgs p) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    int64_t o[kMaxDims];
    decompose<I>(p, i, o);
    int64_t off = 0;
    bool extrap = false;
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      if (k < p.rank) {
        const RAxis& a = p.ax[k];
        int64_t s = o[k];
        if (a.resized) {
          const float c = source_coord(p.coord, o[k], a);
          if (p.coord == kTfCrop && !(c >= 0 && c <= static_cast<float>(a.in - 1))) extrap = true;
          s = extrap ? 0 : min(max(round_nearest(p.round, c), int64_t(0)), a.in - 1);
        }
        off += s * a.xstride;
      }
    }
    y[i] = extrap ? fill : x[off];
  }
}

template <typename T, bool Small>
__global__ void resize_interp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, double extrapolation,
                                     const __grid_constant__ ResizeArgs p) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    int64_t o[kMaxDims];
    decompose<I>(p, i, o);
    int64_t base = 0;
    bool extrap = false;
    A xc[kMaxDims], norm[kMaxDims];
    int64_t left[kMaxDims];
    int t[kMaxDims];
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      t[k] = 0;
      if (k >= p.rank) continue;
      const RAxis& a = p.ax[k];
      if (!a.resized) {
        base += o[k] * a.xstride;
        continue;
      }
      float c = source_coord(p.coord, o[k], a);
      if (p.coord == kTfCrop && !(c >= 0 && c <= static_cast<float>(a.in - 1))) extrap = true, c = 0;
      const float fl = floorf(c);
      left[k] = static_cast<int64_t>(c == fl ? fl - 1 : fl) + a.start;
      xc[k] = static_cast<A>(c);
      norm[k] = 1;
      if (p.antialias || p.exclude) {
        A sum = 0;
        for (int j = 0; j < a.taps; ++j) sum += tap_weight<A>(p, a, left[k] + j, xc[k]);
        if (sum != 0) norm[k] = 1 / sum;
      }
    }
    if (extrap) {
      if constexpr (std::is_same_v<T, double>) y[i] = extrapolation;
      else y[i] = from_f<T>(static_cast<float>(extrapolation));
      continue;
    }
    A acc = 0;
    while (true) {
      A w = 1;
      int64_t off = base;
#pragma unroll
      for (int k = 0; k < kMaxDims; ++k) {
        if (k < p.rank && p.ax[k].resized) {
          const RAxis& a = p.ax[k];
          const int64_t ix = left[k] + t[k];
          w *= tap_weight<A>(p, a, ix, xc[k]) * norm[k];
          off += min(max(ix, int64_t(0)), a.in - 1) * a.xstride;
        }
      }
      if (w != 0) {
        if constexpr (std::is_same_v<T, double>) acc += w * x[off];
        else acc += w * to_f(x[off]);
      }
      bool carry = true;
#pragma unroll
      for (int k = 0; k < kMaxDims; ++k) {
        if (carry && k < p.rank && p.ax[k].resized) {
          if (++t[k] < p.ax[k].taps) carry = false;
          else t[k] = 0;
        }
      }
      if (carry) break;
    }
    if constexpr (std::is_same_v<T, double>) y[i] = acc;
    else y[i] = from_f<T>(static_cast<float>(acc));
  }
}

struct Attrs {
  int mode = kNearest, coord = kHalfPixel, round = kPreferFloor;
  double cubic_a = -0.75, extrapolation = 0;
  bool exclude = false, antialias = false;
  std::string policy = "stretch";
  std::vector<int64_t> axes;
};

Attrs read_attrs(const ir::Node& n) {
  Attrs a;
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode == "nearest") a.mode = kNearest;
  else if (mode == "linear") a.mode = kLinear;
  else if (mode == "cubic") a.mode = kCubic;
  else KILN_THROW(InvalidModel, n.label() << ": unknown mode '" << mode << "'");
  const std::string c = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel") a.coord = kHalfPixel;
  else if (c == "half_pixel_symmetric" && n.opset >= 19) a.coord = kHalfPixelSymmetric;
  else if (c == "pytorch_half_pixel") a.coord = kPytorchHalfPixel;
  else if (c == "align_corners") a.coord = kAlignCorners;
  else if (c == "asymmetric") a.coord = kAsymmetric;
  else if (c == "tf_half_pixel_for_nn") a.coord = kTfHalfPixelForNn;
  else if (c == "tf_crop_and_resize") a.coord = kTfCrop;
  else KILN_THROW(InvalidModel, n.label() << ": unknown coordinate_transformation_mode '" << c << "'");
  const std::string r = n.attr_string("nearest_mode", "round_prefer_floor");
  if (r == "round_prefer_floor") a.round = kPreferFloor;
  else if (r == "round_prefer_ceil") a.round = kPreferCeil;
  else if (r == "floor") a.round = kFloor;
  else if (r == "ceil") a.round = kCeil;
  else KILN_THROW(InvalidModel, n.label() << ": unknown nearest_mode '" << r << "'");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.f);
  if (n.opset >= 18) {
    a.antialias = n.attr_int("antialias", 0) != 0;
    a.policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
    a.axes = n.attr_ints("axes", {});
  }
  if (a.antialias && a.mode == kNearest) KILN_THROW(InvalidModel, n.label() << ": antialias needs mode linear or cubic");
  return a;
}

void resize_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const Attrs at = read_attrs(n);
  const DTensor& x = in_of(args, 0);
  DTensor& y = args.out[0];
  check_rank(n, x.shape);
  const int64_t r = x.rank();
  std::vector<int64_t> axes;
  if (at.axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  else
    axes = ops::normalize_axes(at.axes, r, n);
  // Geometry as the CPU computes it (src/ops/resize.cpp, geometry()).
  const size_t R = static_cast<size_t>(r);
  std::vector<int64_t> out = x.shape;
  std::vector<double> scale(R, 1.0), roi_s(R, 0.0), roi_e(R, 1.0);
  if (at.coord == kTfCrop && has_in(args, 1)) {
    const Tensor roi = host_input(ctx, args, 1);
    if (roi.numel() != static_cast<int64_t>(2 * axes.size()))
      KILN_THROW(InvalidModel, n.label() << ": roi has " << roi.numel() << " values, expected " << 2 * axes.size());
    for (size_t i = 0; i < axes.size(); ++i) {
      roi_s[static_cast<size_t>(axes[i])] = roi.at_double(static_cast<int64_t>(i));
      roi_e[static_cast<size_t>(axes[i])] = roi.at_double(static_cast<int64_t>(i + axes.size()));
    }
  }
  const bool sizes_given = has_in(args, 3);
  const bool scales_given = has_in(args, 2) && in_of(args, 2).numel() > 0;
  if (sizes_given && scales_given) KILN_THROW(InvalidModel, n.label() << ": only one of scales and sizes may be given");
  if (!sizes_given && !scales_given) KILN_THROW(InvalidModel, n.label() << ": one of scales and sizes is required");
  const Tensor src = host_input(ctx, args, sizes_given ? 3 : 2);
  if (src.numel() != static_cast<int64_t>(axes.size()))
    KILN_THROW(InvalidModel, n.label() << ": scales / sizes has " << src.numel() << " values, expected " << axes.size());
  if (!sizes_given) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t ax = static_cast<size_t>(axes[i]);
      const double s = src.at_double(static_cast<int64_t>(i));
      if (!(s > 0) || !std::isfinite(s)) KILN_THROW(InvalidModel, n.label() << ": scales must be positive, got " << s);
      scale[ax] = s;
      out[ax] = static_cast<int64_t>(std::floor(static_cast<float>(x.shape[ax]) * static_cast<float>(s)));
    }
  } else {
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t ax = static_cast<size_t>(axes[i]);
      out[ax] = src.at_int64(static_cast<int64_t>(i));
      scale[ax] = x.shape[ax] == 0 ? 1.0 : static_cast<float>(out[ax]) / static_cast<float>(x.shape[ax]);
    }
    if (at.policy != "stretch") {
      double s = at.policy == "not_larger" ? INFINITY : 0.0;
      for (int64_t ax : axes)
        s = at.policy == "not_larger" ? std::min(s, scale[static_cast<size_t>(ax)]) : std::max(s, scale[static_cast<size_t>(ax)]);
      for (int64_t ax : axes) {
        const size_t d = static_cast<size_t>(ax);
        scale[d] = s;
        out[d] = static_cast<int64_t>(std::round(static_cast<float>(s) * static_cast<float>(x.shape[d])));
      }
    }
  }
  std::vector<bool> resized(R, false);
  for (int64_t ax : axes) {
    const size_t d = static_cast<size_t>(ax);
    const bool roi_default = roi_s[d] == 0.0 && roi_e[d] == 1.0;
    resized[d] = !(out[d] == x.shape[d] && std::abs(scale[d] - 1.0) < 1e-9 && (at.coord != kTfCrop || roi_default));
    if (!resized[d]) out[d] = x.shape[d];
    if (resized[d] && x.shape[d] == 0 && out[d] > 0)
      KILN_THROW(InvalidArgument, n.label() << ": cannot resize the empty axis " << d << " to " << out[d]);
  }
  if (out != y.shape)
    KILN_THROW(InvalidArgument, n.label() << ": output buffer " << shape_str(y.shape) << ", resize gives " << shape_str(out));
  const int64_t total = y.numel();
  if (total == 0) return;
  ResizeArgs p{};
  p.rank = static_cast<int>(r);
  p.mode = at.mode, p.coord = at.coord, p.round = at.round;
  p.exclude = at.exclude, p.antialias = at.antialias, p.cubic_a = at.cubic_a;
  const bool small = total <= kSmallIndex;
  const std::vector<int64_t> xs = row_strides(x.shape);
  const double support = at.mode == kCubic ? 2.0 : 1.0;
  for (int k = 0; k < p.rank; ++k) {
    const size_t d = static_cast<size_t>(p.rank - 1 - k);
    RAxis& a = p.ax[k];
    a.in = x.shape[d], a.out = out[d], a.xstride = xs[d];
    a.scale = static_cast<float>(scale[d]), a.rs = static_cast<float>(roi_s[d]), a.re = static_cast<float>(roi_e[d]);
    a.resized = resized[d];
    a.s = at.antialias ? std::min(scale[d], 1.0) : 1.0;
    a.start = at.mode == kNearest ? 0 : static_cast<int>(std::floor(-support / a.s)) + 1;
    a.taps = at.mode == kNearest ? 1 : 2 - 2 * a.start;
    p.div[k] = FastDiv(small ? out[d] : 1);
  }
  if (at.mode == kNearest) {
    uint64_t fill = 0;
    ops::dispatch(ops::NumericTypes{}, x.dtype, n, "input", [&](auto tag) {
      using T = ops::DT<decltype(tag)::value>;
      const typename T::S s = T::store(ops::convert_value<typename T::C>(at.extrapolation));
      std::memcpy(&fill, &s, sizeof(s));
    });
    dispatch_bytes(x.dtype, [&](auto tag) {
      using E = decltype(tag);
      E f;
      std::memcpy(&f, &fill, sizeof(E));
      auto* px = static_cast<const E*>(x.data);
      auto* py = static_cast<E*>(y.data);
      if (small) resize_nearest_kernel<E, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, f, p);
      else resize_nearest_kernel<E, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, f, p);
    });
    KILN_CUDA_LAUNCH_CHECK("resize_nearest_kernel");
    return;
  }
  auto go = [&](auto tag) {
    using T = decltype(tag);
    auto* px = static_cast<const T*>(x.data);
    auto* py = static_cast<T*>(y.data);
    if (small) resize_interp_kernel<T, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, at.extrapolation, p);
    else resize_interp_kernel<T, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, at.extrapolation, p);
  };
  switch (x.dtype) {
    case DType::Float32: go(float{}); break;
    case DType::Float16: go(__half{}); break;
    case DType::BFloat16: go(__nv_bfloat16{}); break;
    case DType::Float64: go(double{}); break;
    default: KILN_THROW(Unsupported, n.label() << ": linear / cubic resize of " << dtype_name(x.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("resize_interp_kernel");
}

bool resize_supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  if (in.empty() || !ranks_at_most(in, kMaxDims)) return false;
  const DType dt = in[0].dtype;
  if (n.attr_string("mode", "nearest") == "nearest") return dt != DType::Bool;
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64;
}

}  // namespace

void register_resize_kernels() {
  CudaTactic t;
  t.name = "cuda";
  t.run = resize_run;
  t.supports = resize_supports;
  register_cuda_tactic("", "Resize", std::move(t));
}

}  // namespace kiln::runtime::cuda::move
