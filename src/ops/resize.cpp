// Resize (opset 11, 13, 18, 19): modes nearest (round_prefer_floor / round_prefer_ceil / floor / ceil), linear and
// cubic (cubic_coeff_a, exclude_outside) over any number of axes; every coordinate_transformation_mode
// (half_pixel, half_pixel_symmetric from 19, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn,
// tf_crop_and_resize with roi and extrapolation_value); scales or sizes; from 18 axes, keep_aspect_ratio_policy
// and antialias (linear / cubic).
//
// Output sizes: from scales, floor(in * scale) (in float32, as onnxruntime); from sizes, as given
// (keep_aspect_ratio_policy not_larger / not_smaller: one scale, the min / max of sizes / in over the axes, and
// out = round_half_up(scale * in)).
// Interpolation is separable: each resized axis is done in turn with per-output-position taps. Tap weights
// are k((i - x) * s) over the input positions i around the source coordinate x, where k is the triangle
// (linear) or Keys cubic kernel and s = min(scale, 1) with antialias (weights then normalized), 1 without;
// positions outside the input read the border (edge), or get weight 0 with exclude_outside (weights
// renormalized). pytorch_half_pixel maps a length-1 output to 0 (the spec; the reference evaluator uses -0.5).
// Nearest is a gather and works for every dtype; linear / cubic accumulate in float64 for float dtypes.
#include <algorithm>
#include <cmath>

#include "ops/common.h"

namespace kiln::ops::resize_detail {

enum class Mode { Nearest, Linear, Cubic };
enum class Coord { HalfPixel, HalfPixelSymmetric, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNn, TfCropAndResize };
enum class Round { PreferFloor, PreferCeil, Floor, Ceil };

struct ResizeAttrs {
  Mode mode = Mode::Nearest;
  Coord coord = Coord::HalfPixel;
  Round round = Round::PreferFloor;
  double cubic_a = -0.75, extrapolation = 0.0;
  bool exclude_outside = false, antialias = false;
  std::string policy = "stretch";
  std::vector<int64_t> axes_attr;
};

ResizeAttrs read_attrs(const Node& n) {
  ResizeAttrs a;
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode == "nearest") a.mode = Mode::Nearest;
  else if (mode == "linear") a.mode = Mode::Linear;
  else if (mode == "cubic") a.mode = Mode::Cubic;
  else KILN_THROW(InvalidModel, n.label() << ": unknown mode '" << mode << "' (nearest, linear, cubic)");
  const std::string c = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel") a.coord = Coord::HalfPixel;
  else if (c == "half_pixel_symmetric" && n.opset >= 19) a.coord = Coord::HalfPixelSymmetric;
  else if (c == "pytorch_half_pixel") a.coord = Coord::PytorchHalfPixel;
  else if (c == "align_corners") a.coord = Coord::AlignCorners;
  else if (c == "asymmetric") a.coord = Coord::Asymmetric;
  else if (c == "tf_half_pixel_for_nn") a.coord = Coord::TfHalfPixelForNn;  // opset 11; runtimes accept it later too
  else if (c == "tf_crop_and_resize") a.coord = Coord::TfCropAndResize;
  else KILN_THROW(InvalidModel, n.label() << ": unknown coordinate_transformation_mode '" << c << "' at opset " << n.opset);
  const std::string r = n.attr_string("nearest_mode", "round_prefer_floor");
  if (r == "round_prefer_floor") a.round = Round::PreferFloor;
  else if (r == "round_prefer_ceil") a.round = Round::PreferCeil;
  else if (r == "floor") a.round = Round::Floor;
  else if (r == "ceil") a.round = Round::Ceil;
  else KILN_THROW(InvalidModel, n.label() << ": unknown nearest_mode '" << r << "'");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.f);
  if (n.opset >= 18) {
    a.antialias = n.attr_int("antialias", 0) != 0;
    a.policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
    if (a.policy != "stretch" && a.policy != "not_larger" && a.policy != "not_smaller")
      KILN_THROW(InvalidModel, n.label() << ": unknown keep_aspect_ratio_policy '" << a.policy << "'");
    a.axes_attr = n.attr_ints("axes", {});
  }
  return a;
}

// Per-axis geometry for an input of rank r. out[i] = -1 when unknown (inference).
struct Geometry {
  std::vector<int64_t> out;
  std::vector<double> scale, roi_start, roi_end;
  std::vector<bool> resized;
};

// Which of scales / sizes a node uses: 0 = scales, 1 = sizes. scales_numel: -1 when unknown. An empty scales
// tensor counts as absent (opset 11 requires the input and passes an empty one with sizes).
int pick_source(const Node& n, bool scales_present, int64_t scales_numel, bool sizes_present) {
  if (sizes_present) {
    if (scales_present && scales_numel > 0)
      KILN_THROW(InvalidModel, n.label() << ": only one of scales and sizes may be given");
    return 1;
  }
  if (scales_present && scales_numel != 0) return 0;
  KILN_THROW(InvalidModel, n.label() << ": one of scales and sizes is required");
}

// in: input dims (-1 unknown). scales / sizes / roi: constant values or nullptr when unknown.
Geometry geometry(const Node& n, const ResizeAttrs& a, const std::vector<int64_t>& in, int source, const Tensor* scales,
                  const Tensor* sizes, const Tensor* roi) {
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<int64_t> axes;
  if (a.axes_attr.empty()) {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  } else {
    axes = normalize_axes(a.axes_attr, r, n);
  }
  Geometry g;
  g.out = in;
  g.scale.assign(static_cast<size_t>(r), 1.0);
  g.roi_start.assign(static_cast<size_t>(r), 0.0);
  g.roi_end.assign(static_cast<size_t>(r), 1.0);
  g.resized.assign(static_cast<size_t>(r), false);
  if (a.coord == Coord::TfCropAndResize && roi) {
    if (roi->numel() != static_cast<int64_t>(2 * axes.size()))
      KILN_THROW(InvalidModel, n.label() << ": roi has " << roi->numel() << " values, expected " << 2 * axes.size());
    for (size_t i = 0; i < axes.size(); ++i) {
      g.roi_start[static_cast<size_t>(axes[i])] = roi->at_double(static_cast<int64_t>(i));
      g.roi_end[static_cast<size_t>(axes[i])] = roi->at_double(static_cast<int64_t>(i + axes.size()));
    }
  }
  const Tensor* src = source == 0 ? scales : source == 1 ? sizes : nullptr;
  if (!src) {
    for (int64_t ax : axes) g.out[static_cast<size_t>(ax)] = -1, g.resized[static_cast<size_t>(ax)] = true;
    return g;
  }
  if (src->numel() != static_cast<int64_t>(axes.size()))
    KILN_THROW(InvalidModel, n.label() << ": " << (source == 0 ? "scales" : "sizes") << " has " << src->numel()
                                       << " values, expected " << axes.size());
  if (source == 0) {
    if (!dtype_is_float(src->dtype())) KILN_THROW(InvalidModel, n.label() << ": scales must be float, got " << src->type_str());
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t ax = static_cast<size_t>(axes[i]);
      const double s = src->at_double(static_cast<int64_t>(i));
      if (!(s > 0) || !std::isfinite(s)) KILN_THROW(InvalidModel, n.label() << ": scales must be positive, got " << s);
      g.scale[ax] = s;
      // float32 product like onnxruntime (5 * 1.4f is 7 there, 6.99... in float64)
      g.out[ax] = in[ax] < 0 ? -1 : static_cast<int64_t>(std::floor(static_cast<float>(in[ax]) * static_cast<float>(s)));
    }
  } else {
    if (src->dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": sizes must be int64, got " << src->type_str());
    bool known = true;
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t ax = static_cast<size_t>(axes[i]);
      const int64_t s = src->at_int64(static_cast<int64_t>(i));
      if (s < 0) KILN_THROW(InvalidModel, n.label() << ": sizes must be >= 0, got " << s);
      g.out[ax] = s;
      if (in[ax] < 0) known = false;
      else g.scale[ax] = in[ax] == 0 ? 1.0 : static_cast<float>(s) / static_cast<float>(in[ax]);
    }
    if (a.policy != "stretch") {
      if (!known) {
        for (int64_t ax : axes) g.out[static_cast<size_t>(ax)] = -1;
      } else {
        double s = a.policy == "not_larger" ? INFINITY : 0.0;
        for (int64_t ax : axes)
          s = a.policy == "not_larger" ? std::min(s, g.scale[static_cast<size_t>(ax)]) : std::max(s, g.scale[static_cast<size_t>(ax)]);
        for (int64_t ax : axes) {
          const size_t x = static_cast<size_t>(ax);
          g.scale[x] = s;
          g.out[x] = static_cast<int64_t>(std::round(static_cast<float>(s) * static_cast<float>(in[x])));
        }
      }
    }
  }
  for (int64_t ax : axes) {
    const size_t x = static_cast<size_t>(ax);
    const bool roi_default = g.roi_start[x] == 0.0 && g.roi_end[x] == 1.0;
    g.resized[x] = !(g.out[x] == in[x] && std::abs(g.scale[x] - 1.0) < 1e-9 && (a.coord != Coord::TfCropAndResize || roi_default));
  }
  return g;
}

void check_resize_arity(const Node& n) { check_arity(n, n.opset >= 13 ? 1 : 3, 4); }

std::vector<ValueType> resize_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_resize_arity(n);
  const ResizeAttrs a = read_attrs(n);
  const ValueType& x = ctx.input(0);
  if (a.mode == Mode::Nearest) check_dtype(NumericTypes{}, x.dtype, n, "input");
  else check_dtype(FloatTypes{}, x.dtype, n, "input (linear / cubic)");
  if (a.antialias && a.mode == Mode::Nearest) KILN_THROW(InvalidModel, n.label() << ": antialias needs mode linear or cubic");
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  const Tensor* scales = const_input(ctx, 2);
  int64_t scales_numel = -1;
  if (ctx.has(2)) {
    if (scales) scales_numel = scales->numel();
    else if (ctx.in[2]->has_rank) scales_numel = dims_product(ctx.in[2]->dims, 0, ctx.in[2]->dims.size());
  }
  const int source = pick_source(n, ctx.has(2), scales_numel, ctx.has(3));
  std::vector<int64_t> in;
  for (const Dim& d : x.dims) in.push_back(d.is_static() ? d.value : -1);
  Geometry g = geometry(n, a, in, source, scales, const_input(ctx, 3), const_input(ctx, 1));
  std::vector<Dim> out = x.dims;
  for (size_t i = 0; i < out.size(); ++i)
    if (g.resized[i]) out[i] = g.out[i] >= 0 ? static_dim(g.out[i]) : unknown_dim();
  return {make_type(x.dtype, out)};
}

// Source coordinate of output position y on one axis. Computed in float32 in onnxruntime's expression order, so
// that exact ties (nearest rounding, tf_crop_and_resize bounds) fall the same way as in the de-facto runtime.
double source_coord(Coord c, int64_t yi, int64_t in, int64_t out, float scale, float rs, float re) {
  const float y = static_cast<float>(yi), len_in = static_cast<float>(in), len_out = static_cast<float>(out);
  switch (c) {
    case Coord::HalfPixel: return ((y + 0.5f) / scale) - 0.5f;
    case Coord::HalfPixelSymmetric: {
      const float output_width = scale * len_in;
      const float adjustment = len_out / output_width;
      const float offset = len_in / 2 * (1 - adjustment);
      return static_cast<float>(offset + (y + 0.5) / scale - 0.5);
    }
    case Coord::PytorchHalfPixel: return len_out > 1 ? (y + 0.5f) / scale - 0.5f : 0.0f;
    case Coord::AlignCorners: {
      // length_resized = scale * length_in, unrounded (ONNX spec; for sizes, scale = out / in).
      const float output_width = scale * len_in;
      return out == 1 || output_width == 1.0f ? 0.0f : y * (len_in - 1) / (output_width - 1);
    }
    case Coord::Asymmetric: return y / scale;
    case Coord::TfHalfPixelForNn: return (y + 0.5f) / scale;
    case Coord::TfCropAndResize:
      return out > 1 ? static_cast<float>(rs * (len_in - 1) + (y * (re - rs) * (len_in - 1)) / (len_out - 1))
                     : static_cast<float>(0.5 * (rs + re) * (len_in - 1));
  }
  return 0.0;
}

int64_t round_nearest(Round r, double x) {
  const double f = std::floor(x);
  switch (r) {
    case Round::Floor: return static_cast<int64_t>(f);
    case Round::Ceil: return static_cast<int64_t>(std::ceil(x));
    case Round::PreferFloor: return static_cast<int64_t>(x - f == 0.5 ? f : std::round(x));
    case Round::PreferCeil: return static_cast<int64_t>(x - f == 0.5 ? f + 1 : std::round(x));
  }
  return 0;
}

double cubic_weight(double t, double A) {
  t = std::abs(t);
  if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  return 0.0;
}

// Taps of one axis: for each output position, `taps` (index, weight) pairs; extrapolate[o] for positions that
// take extrapolation_value (tf_crop_and_resize outside the input).
struct AxisTaps {
  int64_t taps = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> extrapolate;
};

AxisTaps axis_taps(const ResizeAttrs& a, const Geometry& g, size_t ax, int64_t in) {
  AxisTaps t;
  const int64_t out = g.out[ax];
  const double scale = g.scale[ax];
  t.extrapolate.assign(static_cast<size_t>(out), 0);
  const double support = a.mode == Mode::Cubic ? 2.0 : 1.0;
  const double s = a.antialias ? std::min(scale, 1.0) : 1.0;
  // Window relative to the left neighbour: offsets [start, 1 - start] (the reference evaluator's window).
  const int64_t start = a.mode == Mode::Nearest ? 0 : static_cast<int64_t>(std::floor(-support / s)) + 1;
  t.taps = a.mode == Mode::Nearest ? 1 : 2 - 2 * start;
  for (int64_t o = 0; o < out; ++o) {
    double x = source_coord(a.coord, o, in, out, static_cast<float>(scale), static_cast<float>(g.roi_start[ax]),
                            static_cast<float>(g.roi_end[ax]));
    if (a.coord == Coord::TfCropAndResize && !(x >= 0 && x <= static_cast<double>(in - 1))) {
      t.extrapolate[static_cast<size_t>(o)] = 1;  // also NaN / huge roi values: never converted to an index
      x = 0;
    }
    if (a.mode == Mode::Nearest) {
      t.idx.push_back(std::clamp<int64_t>(round_nearest(a.round, x), 0, in - 1));
      t.w.push_back(1.0);
      continue;
    }
    // Left neighbour: floor(x), or x - 1 when x is an integer (so the ratio lies in (0, 1]).
    const double fl = std::floor(x);
    const int64_t left = static_cast<int64_t>(x == fl ? fl - 1 : fl);
    double sum = 0;
    const size_t first = t.w.size();
    for (int64_t j = start; j < start + t.taps; ++j) {
      const int64_t i = left + j;
      const double d = (static_cast<double>(i) - x) * s;
      double w = a.mode == Mode::Cubic ? cubic_weight(d, a.cubic_a) : std::max(0.0, 1.0 - std::abs(d));
      if (a.exclude_outside && (i < 0 || i >= in)) w = 0;
      t.idx.push_back(std::clamp<int64_t>(i, 0, in - 1));
      t.w.push_back(w);
      sum += w;
    }
    if ((a.antialias || a.exclude_outside) && sum != 0)
      for (size_t k = first; k < t.w.size(); ++k) t.w[k] /= sum;
  }
  return t;
}

// Nearest: a gather over every axis at once, exact for every dtype.
template <class E>
void nearest_gather(const Tensor& x, Tensor& y, const std::vector<AxisTaps>& taps, E fill) {
  const Shape &xs = x.shape(), &ys = y.shape();
  const std::vector<int64_t> st = contiguous_strides(xs);
  const E* px = x.as<E>();
  E* py = y.mutable_as<E>();
  const size_t r = ys.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < y.numel(); ++o) {
    int64_t off = 0;
    bool extrap = false;
    for (size_t d = 0; d < r; ++d) {
      const AxisTaps& t = taps[d];
      off += (t.idx.empty() ? idx[d] : t.idx[static_cast<size_t>(idx[d])]) * st[d];
      extrap |= !t.extrapolate.empty() && t.extrapolate[static_cast<size_t>(idx[d])];
    }
    py[o] = extrap ? fill : px[off];
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
}

// Linear / cubic along one axis of a float64 buffer of shape `cur`; returns the new buffer.
std::vector<double> interpolate_axis(const std::vector<double>& src, Shape& cur, size_t ax, const AxisTaps& t,
                                     int64_t out, double extrapolation) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < ax; ++d) outer *= cur[d];
  for (size_t d = ax + 1; d < cur.size(); ++d) inner *= cur[d];
  const int64_t in = cur[ax];
  std::vector<double> dst(static_cast<size_t>(outer * out * inner));
  for (int64_t p = 0; p < outer; ++p)
    for (int64_t o = 0; o < out; ++o) {
      double* d = dst.data() + (p * out + o) * inner;
      if (t.extrapolate[static_cast<size_t>(o)]) {
        std::fill(d, d + inner, extrapolation);
        continue;
      }
      std::fill(d, d + inner, 0.0);
      for (int64_t k = 0; k < t.taps; ++k) {
        const double w = t.w[static_cast<size_t>(o * t.taps + k)];
        if (w == 0) continue;
        const double* s = src.data() + (p * in + t.idx[static_cast<size_t>(o * t.taps + k)]) * inner;
        for (int64_t i = 0; i < inner; ++i) d[i] += w * s[i];
      }
    }
  cur[ax] = out;
  return dst;
}

void resize_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_resize_arity(n);
  const ResizeAttrs a = read_attrs(n);
  const Tensor& x = in_tensor(n, in, 0);
  if (a.mode == Mode::Nearest) check_dtype(NumericTypes{}, x.dtype(), n, "input");
  else check_dtype(FloatTypes{}, x.dtype(), n, "input (linear / cubic)");
  if (a.antialias && a.mode == Mode::Nearest) KILN_THROW(InvalidModel, n.label() << ": antialias needs mode linear or cubic");
  const Tensor* scales = n.has_input(2) ? in[2] : nullptr;
  const Tensor* sizes = n.has_input(3) ? in[3] : nullptr;
  const Tensor* roi = n.has_input(1) ? in[1] : nullptr;
  const int source = pick_source(n, scales != nullptr, scales ? scales->numel() : 0, sizes != nullptr);
  const Geometry g = geometry(n, a, x.shape(), source, scales, sizes, roi);
  Shape ys = x.shape();
  for (size_t d = 0; d < ys.size(); ++d) {
    if (!g.resized[d]) continue;
    if (x.shape()[d] == 0 && g.out[d] > 0)
      KILN_THROW(InvalidArgument, n.label() << ": cannot resize the empty axis " << d << " to " << g.out[d]);
    ys[d] = g.out[d];
  }
  check_output_size(n, x.dtype(), ys);
  Tensor y(x.dtype(), ys);
  if (y.numel() == 0) {
    out[0] = y;
    return;
  }
  std::vector<AxisTaps> taps(ys.size());
  for (size_t d = 0; d < ys.size(); ++d)
    if (g.resized[d]) taps[d] = axis_taps(a, g, d, x.shape()[d]);
  if (a.mode == Mode::Nearest) {
    dispatch(NumericTypes{}, x.dtype(), n, "input", [&](auto tag) {
      using T = DT<decltype(tag)::value>;
      nearest_gather<typename T::S>(x, y, taps, T::store(convert_value<typename T::C>(a.extrapolation)));
    });
    out[0] = y;
    return;
  }
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    std::vector<double> buf(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<double>(T::load(px[i]));
    Shape cur = x.shape();
    for (size_t d = 0; d < ys.size(); ++d)
      if (g.resized[d]) buf = interpolate_axis(buf, cur, d, taps[d], ys[d], a.extrapolation);
    auto* py = y.mutable_as<typename T::S>();
    for (size_t i = 0; i < buf.size(); ++i) py[i] = T::store(static_cast<typename T::C>(buf[i]));
  });
  out[0] = y;
}

}  // namespace kiln::ops::resize_detail

namespace kiln::ops {
void register_resize() {
  ir::OpRegistry::instance().add(
      ir::OpDef{"Resize", "", {11, 13, 18, 19}, resize_detail::resize_infer, resize_detail::resize_kernel});
}
}  // namespace kiln::ops
