// CUDA kernels: the pool family (kernels/families.h): MaxPool (auto_pad, pads, strides, dilations, ceil_mode,
// storage_order, optional Indices output), AveragePool (count_include_pad, ceil_mode, dilations from opset 19),
// GlobalAveragePool and GlobalMaxPool; 1-D, 2-D and 3-D (NC + spatial dims, row-major).
//
// The window geometry comes from the same host code as the CPU kernels (ops/spatial.h), padded to three spatial
// dims. MaxPool / AveragePool: one thread per output element walks its window (neighbouring threads read
// neighbouring inputs); averages accumulate in float (double for float64). The global pools are row reductions
// over each (n, c) plane (launch_reduce in reduce.cu: 16-byte loads, a group of threads per plane).
// Semantics follow the CPU reference: MaxPool takes the first in-range element, then any larger one (a window
// with no in-range element gives -inf / the type's lowest and index -1); GlobalMaxPool ignores NaN.
#include <limits>
#include <type_traits>

#include "ops/spatial.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

struct Geom {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int64_t total = 0;  // output elements
  DivMod by_out[3];   // dividends: flat output index / products of out dims
  bool include_pad = false;
  int storage_order = 0;
  double empty_max = 0;  // MaxPool's value for a window with no element in range (-inf / the type's lowest)
};

Geom make_geom(const ir::Node& n, const Shape& xs, bool is_max) {
  if (xs.size() < 3) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << xs.size());
  const size_t nsp = xs.size() - 2;
  if (nsp > 3) KILN_THROW(Unsupported, n.label() << ": " << nsp << " spatial dims (kiln supports 1 to 3)");
  if (!n.has_attr("kernel_shape"))
    KILN_THROW(InvalidModel, n.label() << ": required attribute 'kernel_shape' is missing");
  const bool dilations = is_max ? n.opset >= 10 : n.opset >= 19;
  ops::SpatialAttrs sp = ops::read_spatial_attrs(n, nsp, n.attr_ints("kernel_shape", {}), n.opset >= 10, dilations);
  ops::Window3 w = ops::make_window3(n, sp, xs);
  Geom g;
  for (int i = 0; i < 3; ++i) {
    g.in[i] = w.in[i], g.out[i] = w.out[i], g.k[i] = w.k[i], g.s[i] = w.s[i], g.d[i] = w.d[i];
    g.pb[i] = w.pb[i], g.pe[i] = w.pe[i];
  }
  g.total = xs[0] * xs[1] * g.out[0] * g.out[1] * g.out[2];
  g.by_out[2] = make_divmod(g.out[2], g.total);
  g.by_out[1] = make_divmod(g.out[1], g.total);
  g.by_out[0] = make_divmod(g.out[0], g.total);
  if (is_max) {
    g.storage_order = static_cast<int>(n.attr_int("storage_order", 0));
    if (g.storage_order != 0 && g.storage_order != 1)
      KILN_THROW(InvalidModel, n.label() << ": storage_order must be 0 or 1, got " << g.storage_order);
  } else {
    g.include_pad = n.attr_int("count_include_pad", 0) != 0;
  }
  return g;
}

// Output index -> plane and window origin.
struct At {
  int64_t plane, o[3];
};
__device__ __forceinline__ At locate(const Geom& g, int64_t i) {
  At a;
  int64_t q = g.by_out[2].div(i);
  a.o[2] = i - q * g.out[2];
  i = q;
  q = g.by_out[1].div(i);
  a.o[1] = i - q * g.out[1];
  i = q;
  q = g.by_out[0].div(i);
  a.o[0] = i - q * g.out[0];
  a.plane = q;
  return a;
}

template <typename T>
__global__ void maxpool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx, Geom g) {
  using A = acc_t<T>;
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < g.total; o += int64_t(gridDim.x) * blockDim.x) {
    const At at = locate(g, o);
    const T* xp = x + at.plane * in_sp;
    A best = acc_in(T{});
    int64_t b0 = -1, b1 = -1, b2 = -1;
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
      const int64_t i0 = at.o[0] * g.s[0] - g.pb[0] + k0 * g.d[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
        const int64_t i1 = at.o[1] * g.s[1] - g.pb[1] + k1 * g.d[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          const int64_t i2 = at.o[2] * g.s[2] - g.pb[2] + k2 * g.d[2];
          if (i2 < 0 || i2 >= g.in[2]) continue;
          const A v = acc_in(xp[(i0 * g.in[1] + i1) * g.in[2] + i2]);
          if (b0 < 0 || v > best) best = v, b0 = i0, b1 = i1, b2 = i2;
        }
      }
    }
    if (b0 < 0) best = static_cast<A>(g.empty_max);
    y[o] = acc_out<T>(best);
    if (idx) {
      const int64_t sp = g.storage_order == 0 ? (b0 * g.in[1] + b1) * g.in[2] + b2
                                              : b0 + b1 * g.in[0] + b2 * g.in[0] * g.in[1];
      idx[o] = b0 < 0 ? -1 : at.plane * in_sp + sp;
    }
  }
}

template <typename T>
__global__ void avgpool_kernel(const T* __restrict__ x, T* __restrict__ y, Geom g) {
  using A = acc_t<T>;
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < g.total; o += int64_t(gridDim.x) * blockDim.x) {
    const At at = locate(g, o);
    const T* xp = x + at.plane * in_sp;
    int64_t padded = 1;  // window positions inside input + pads
    for (int d = 0; d < 3; ++d) {
      int64_t c = 0;
      for (int64_t k = 0; k < g.k[d]; ++k) {
        const int64_t i = at.o[d] * g.s[d] - g.pb[d] + k * g.d[d];
        if (i >= -g.pb[d] && i < g.in[d] + g.pe[d]) ++c;
      }
      padded *= c;
    }
    A sum = 0;
    int64_t count = 0;
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
      const int64_t i0 = at.o[0] * g.s[0] - g.pb[0] + k0 * g.d[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
        const int64_t i1 = at.o[1] * g.s[1] - g.pb[1] + k1 * g.d[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          const int64_t i2 = at.o[2] * g.s[2] - g.pb[2] + k2 * g.d[2];
          if (i2 < 0 || i2 >= g.in[2]) continue;
          sum += acc_in(xp[(i0 * g.in[1] + i1) * g.in[2] + i2]);
          ++count;
        }
      }
    }
    const int64_t div = g.include_pad ? padded : count;
    y[o] = acc_out<T>(div > 0 ? sum / static_cast<A>(div) : static_cast<A>(NAN));
  }
}

using MaxPoolTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8,
                            DType::UInt8>;

void check_out(const ir::Node& n, const Geom& g, const DTensor& y) {
  if (y.numel() != g.total)
    KILN_THROW(InvalidArgument, n.label() << ": output has " << y.numel() << " elements, the window geometry gives " << g.total);
}

void run_maxpool(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  Geom g = make_geom(n, x.shape, true);
  check_out(n, g, a.out.at(0));
  if (g.total == 0) return;
  int64_t* idx = a.out.size() > 1 ? static_cast<int64_t*>(a.out[1].data) : nullptr;
  dispatch_list(MaxPoolTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_integral_v<T>) g.empty_max = static_cast<double>(std::numeric_limits<T>::lowest());
    else g.empty_max = -std::numeric_limits<double>::infinity();
    maxpool_kernel<T><<<grid_for(g.total), kBlock, 0, ctx.stream>>>(x.as<T>(), a.out[0].as<T>(), idx, g);
    KILN_CUDA_LAUNCH_CHECK("maxpool");
  });
}

void run_avgpool(const KernelContext& ctx, KernelArgs& a) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  const Geom g = make_geom(n, x.shape, false);
  check_out(n, g, a.out.at(0));
  if (g.total == 0) return;
  dispatch_list(FloatDTypes{}, x.dtype, n, [&](auto t) {
    using T = decltype(t);
    avgpool_kernel<T><<<grid_for(g.total), kBlock, 0, ctx.stream>>>(x.as<T>(), a.out[0].as<T>(), g);
    KILN_CUDA_LAUNCH_CHECK("avgpool");
  });
}

void run_global(const KernelContext& ctx, KernelArgs& a, bool is_max) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  if (x.rank() < 3) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 3 (N, C, spatial...), got " << x.rank());
  const int64_t planes = x.shape[0] * x.shape[1];
  int64_t spatial = 1;
  for (size_t d = 2; d < x.shape.size(); ++d) spatial *= x.shape[d];
  launch_reduce(ctx, n, x.dtype, is_max ? RedKind::MaxIgnoreNaN : RedKind::Mean, x.data, a.out.at(0).data,
                {planes, spatial}, {false, true});
}

bool rank_3_to_5(const std::vector<ir::ValueType>& in) {
  return !in.empty() && (!in[0].has_rank || (in[0].dims.size() >= 3 && in[0].dims.size() <= 5));
}

void reg(const char* op, SupportsFn s, KernelFn k, bool reduce_ws) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = std::move(s);
  t.run = std::move(k);
  if (reduce_ws)
    t.workspace = [](const ir::Node&, const std::vector<ir::ValueType>&, const std::vector<ir::ValueType>&) {
      return kReduceWorkspace;
    };
  register_cuda_tactic("", op, std::move(t));
}

}  // namespace

void register_pool_kernels() {
  reg("MaxPool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) {
        return rank_3_to_5(in) && MaxPoolTypes::has(in[0].dtype);
      },
      run_maxpool, false);
  reg("AveragePool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) {
        return rank_3_to_5(in) && FloatDTypes::has(in[0].dtype);
      },
      run_avgpool, false);
  reg("GlobalAveragePool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && FloatDTypes::has(in[0].dtype); },
      [](const KernelContext& ctx, KernelArgs& a) { run_global(ctx, a, false); }, true);
  reg("GlobalMaxPool",
      [](const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && FloatDTypes::has(in[0].dtype); },
      [](const KernelContext& ctx, KernelArgs& a) { run_global(ctx, a, true); }, true);
}

}  // namespace kiln::runtime::cuda
