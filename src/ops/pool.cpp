// Pooling: MaxPool (auto_pad, pads, strides, dilations, ceil_mode, storage_order, optional Indices output),
// AveragePool (count_include_pad, ceil_mode, dilations from opset 19), GlobalAveragePool, GlobalMaxPool.
// Reference kernels: direct loops; averages accumulate in float64.
#include <cmath>

#include "ops/spatial.h"

namespace kiln::ops::pool_detail {

using MaxPoolTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8,
                               DType::UInt8>;

struct PoolGeom {
  SpatialAttrs sp;
  int64_t storage_order = 0;
  bool count_include_pad = false;
};

PoolGeom pool_geometry(const Node& n, size_t rank, bool is_max) {
  if (rank < 3) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << rank);
  const size_t nsp = rank - 2;
  if (nsp > 3) KILN_THROW(Unsupported, n.label() << ": " << nsp << " spatial dims (kiln supports 1 to 3)");
  if (!n.has_attr("kernel_shape")) KILN_THROW(InvalidModel, n.label() << ": required attribute 'kernel_shape' is missing");
  std::vector<int64_t> ks = n.attr_ints("kernel_shape", {});
  for (int64_t k : ks)
    if (k <= 0) KILN_THROW(InvalidModel, n.label() << ": kernel_shape must be positive");
  PoolGeom g;
  const bool dilations = is_max ? n.opset >= 10 : n.opset >= 19;
  g.sp = read_spatial_attrs(n, nsp, ks, n.opset >= 10, dilations);
  if (is_max) {
    g.storage_order = n.attr_int("storage_order", 0);
    if (g.storage_order != 0 && g.storage_order != 1)
      KILN_THROW(InvalidModel, n.label() << ": storage_order must be 0 or 1, got " << g.storage_order);
  } else {
    g.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  }
  return g;
}

std::vector<ValueType> pool_infer(const InferContext& ctx, bool is_max) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1, is_max ? 2 : 1);
  const ValueType& x = ctx.input(0);
  if (is_max) check_dtype(MaxPoolTypes{}, x.dtype, n, "input");
  else check_dtype(FloatTypes{}, x.dtype, n, "input");
  if (!x.has_rank) return {ValueType::unknown(x.dtype), ValueType::unknown(DType::Int64)};
  PoolGeom g = pool_geometry(n, x.dims.size(), is_max);
  std::vector<Dim> out = {x.dims[0], x.dims[1]};
  for (size_t i = 0; i + 2 < x.dims.size(); ++i) {
    SpatialDim sd = resolve_spatial_dim(n, g.sp, i, x.dims[2 + i].value);
    out.push_back(sd.out >= 0 ? static_dim(sd.out) : unknown_dim());
  }
  return {make_type(x.dtype, out), make_type(DType::Int64, out)};
}

Shape pool_out_shape(const Shape& xs, const Window3& w) {
  Shape ys = {xs[0], xs[1]};
  for (size_t i = 2; i < xs.size(); ++i) ys.push_back(w.out[3 - (xs.size() - i)]);
  return ys;
}

void maxpool_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1, 2);
  const Tensor& x = in_tensor(n, in, 0);
  PoolGeom g = pool_geometry(n, x.shape().size(), true);
  Window3 w = make_window3(n, g.sp, x.shape());
  Shape ys = pool_out_shape(x.shape(), w);
  Tensor y(x.dtype(), ys);
  const bool want_idx = out.size() > 1 && n.outputs.size() > 1 && !n.outputs[1].empty();
  Tensor idx = want_idx ? Tensor(DType::Int64, ys) : Tensor();
  int64_t* pi = want_idx ? idx.mutable_as<int64_t>() : nullptr;
  const int64_t planes = x.shape()[0] * x.shape()[1];
  const int64_t in_sp = w.in[0] * w.in[1] * w.in[2];
  dispatch(MaxPoolTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using C = typename T::C;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    int64_t o = 0;
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t o0 = 0; o0 < w.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < w.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < w.out[2]; ++o2, ++o) {
            C best = std::numeric_limits<C>::lowest();
            if constexpr (std::is_floating_point_v<C>) best = -std::numeric_limits<C>::infinity();
            int64_t bi[3] = {-1, -1, -1};
            for (int64_t k0 = 0; k0 < w.k[0]; ++k0) {
              const int64_t i0 = o0 * w.s[0] - w.pb[0] + k0 * w.d[0];
              if (i0 < 0 || i0 >= w.in[0]) continue;
              for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
                const int64_t i1 = o1 * w.s[1] - w.pb[1] + k1 * w.d[1];
                if (i1 < 0 || i1 >= w.in[1]) continue;
                for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
                  const int64_t i2 = o2 * w.s[2] - w.pb[2] + k2 * w.d[2];
                  if (i2 < 0 || i2 >= w.in[2]) continue;
                  C v = T::load(px[p * in_sp + (i0 * w.in[1] + i1) * w.in[2] + i2]);
                  if (bi[0] < 0 || v > best) {
                    best = v;
                    bi[0] = i0, bi[1] = i1, bi[2] = i2;
                  }
                }
              }
            }
            py[o] = T::store(best);
            if (pi) {
              // Row-major (storage_order 0) or column-major (1) index into the whole input tensor.
              int64_t sp = g.storage_order == 0 ? (bi[0] * w.in[1] + bi[1]) * w.in[2] + bi[2]
                                                : bi[0] + bi[1] * w.in[0] + bi[2] * w.in[0] * w.in[1];
              pi[o] = bi[0] < 0 ? -1 : p * in_sp + sp;
            }
          }
  });
  out[0] = y;
  if (want_idx) out[1] = idx;
}

void avgpool_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  PoolGeom g = pool_geometry(n, x.shape().size(), false);
  Window3 w = make_window3(n, g.sp, x.shape());
  Tensor y(x.dtype(), pool_out_shape(x.shape(), w));
  const int64_t planes = x.shape()[0] * x.shape()[1];
  const int64_t in_sp = w.in[0] * w.in[1] * w.in[2];
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    int64_t o = 0;
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t o0 = 0; o0 < w.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < w.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < w.out[2]; ++o2, ++o) {
            double sum = 0;
            int64_t count = 0;
            const int64_t os[3] = {o0, o1, o2};
            int64_t padded_count = 1;  // window positions inside input + pads
            for (int d = 0; d < 3; ++d) {
              int64_t c = 0;
              for (int64_t k = 0; k < w.k[d]; ++k) {
                const int64_t i = os[d] * w.s[d] - w.pb[d] + k * w.d[d];
                if (i >= -w.pb[d] && i < w.in[d] + w.pe[d]) ++c;
              }
              padded_count *= c;
            }
            for (int64_t k0 = 0; k0 < w.k[0]; ++k0) {
              const int64_t i0 = o0 * w.s[0] - w.pb[0] + k0 * w.d[0];
              if (i0 < 0 || i0 >= w.in[0]) continue;
              for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
                const int64_t i1 = o1 * w.s[1] - w.pb[1] + k1 * w.d[1];
                if (i1 < 0 || i1 >= w.in[1]) continue;
                for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
                  const int64_t i2 = o2 * w.s[2] - w.pb[2] + k2 * w.d[2];
                  if (i2 < 0 || i2 >= w.in[2]) continue;
                  sum += static_cast<double>(T::load(px[p * in_sp + (i0 * w.in[1] + i1) * w.in[2] + i2]));
                  ++count;
                }
              }
            }
            const int64_t div = g.count_include_pad ? padded_count : count;
            const double v = div > 0 ? sum / static_cast<double>(div) : std::nan("");
            py[o] = T::store(static_cast<typename T::C>(v));
          }
  });
  out[0] = y;
}

// ---- global pools -----------------------------------------------------------------------------------
std::vector<ValueType> global_infer(const InferContext& ctx, bool is_max) {
  check_arity(ctx.node, 1, 1);
  const ValueType& x = ctx.input(0);
  check_dtype(FloatTypes{}, x.dtype, ctx.node, "input");
  if (!x.has_rank) return {ValueType::unknown(x.dtype)};
  if (x.dims.size() < 3)
    KILN_THROW(InvalidModel, ctx.node.label() << ": input must have rank >= 3 (N, C, spatial...), got "
                                              << x.dims.size());
  std::vector<Dim> out = {x.dims[0], x.dims[1]};
  out.resize(x.dims.size(), static_dim(1));
  return {make_type(x.dtype, out)};
}

void global_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out, bool is_max) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  const Shape& xs = x.shape();
  if (xs.size() < 3)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << xs.size());
  Shape ys = {xs[0], xs[1]};
  ys.resize(xs.size(), 1);
  Tensor y(x.dtype(), ys);
  const int64_t planes = xs[0] * xs[1];
  const int64_t sp = planes == 0 ? 0 : x.numel() / planes;
  dispatch(FloatTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t p = 0; p < planes; ++p) {
      double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t i = 0; i < sp; ++i) {
        double v = static_cast<double>(T::load(px[p * sp + i]));
        if (is_max) acc = v > acc ? v : acc;
        else acc += v;
      }
      if (!is_max) acc = sp > 0 ? acc / static_cast<double>(sp) : std::nan("");
      py[p] = T::store(static_cast<typename T::C>(acc));
    }
  });
  out[0] = y;
}

}  // namespace kiln::ops::pool_detail

namespace kiln::ops {
void register_pool() {
  using namespace pool_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"MaxPool", "", {1, 8, 10, 11, 12, 22}, [](const InferContext& c) { return pool_infer(c, true); },
                    maxpool_kernel});
  reg.add(ir::OpDef{"AveragePool", "", {1, 7, 10, 11, 19, 22}, [](const InferContext& c) { return pool_infer(c, false); },
                    avgpool_kernel});
  reg.add(ir::OpDef{"GlobalAveragePool", "", {1, 22}, [](const InferContext& c) { return global_infer(c, false); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      global_kernel(n, in, out, false);
                    }});
  reg.add(ir::OpDef{"GlobalMaxPool", "", {1, 22}, [](const InferContext& c) { return global_infer(c, true); },
                    [](const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                      global_kernel(n, in, out, true);
                    }});
}
}  // namespace kiln::ops
