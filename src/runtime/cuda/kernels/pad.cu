// CUDA kernels: the movement family, part 3: Pad (constant / reflect / edge / wrap, negative pads crop; pads and
// axes from the host, the constant value read on the device) and Trilu (k read on the device). Semantics follow
// src/ops/pad.cpp and src/ops/rearrange.cpp exactly; any dtype (element-size dispatch).
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/movement_common.cuh"

namespace kiln::runtime::cuda::move {
namespace {

enum PadMode : int { kConstant = 0, kReflect = 1, kEdge = 2, kWrap = 3 };

// Per output dim (innermost first): pad before (>= 0), first kept input position, kept length, input stride.
struct PadArgs {
  int rank, mode;
  FastDiv div[kMaxDims];
  int64_t odim[kMaxDims], pb[kMaxDims], lo[kMaxDims], kept[kMaxDims], xstride[kMaxDims];
};

__device__ __forceinline__ int64_t pad_source(int mode, int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case kEdge: return i < 0 ? 0 : n - 1;
    case kWrap: return ((i % n) + n) % n;
    case kReflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      i = ((i % period) + period) % period;
      return i < n ? i : period - i;
    }
    default: return -1;
  }
}

template <typename E, bool Small>
__global__ void pad_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t n, const E* __restrict__ cval, E fill,
                           const __grid_constant__ PadArgs a) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  const E value = cval ? *cval : fill;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    I r = i;
    int64_t off = 0;
    bool inside = true;
#pragma unroll
    for (int k = 0; k < kMaxDims; ++k) {
      if (k < a.rank) {
        I q;
        if constexpr (Small) q = a.div[k].div(r);
        else q = r / a.odim[k];
        const int64_t o = static_cast<int64_t>(r - q * static_cast<I>(a.odim[k]));
        r = q;
        const int64_t s = pad_source(a.mode, o - a.pb[k], a.kept[k]);
        if (s < 0) inside = false;
        off += (a.lo[k] + s) * a.xstride[k];
      }
    }
    y[i] = inside ? x[off] : value;
  }
}

void pad_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  DTensor& y = args.out[0];
  const std::string m = n.attr_string("mode", "constant");
  int mode;
  if (m == "constant") mode = kConstant;
  else if (m == "reflect") mode = kReflect;
  else if (m == "edge") mode = kEdge;
  else if (m == "wrap" && n.opset >= 19) mode = kWrap;
  else KILN_THROW(InvalidModel, n.label() << ": unknown mode '" << m << "' at opset " << n.opset);
  const int64_t rank = x.rank();
  // Per-axis begin / end pads (the CPU's full_pads).
  std::vector<int64_t> pads, axes;
  if (n.opset < 11) pads = n.attr_ints("pads", {});
  else pads = ops::read_ints(host_input(ctx, args, 1), n, "pads");
  const bool has_axes = n.opset >= 18 && has_in(args, 3);
  if (has_axes) axes = ops::normalize_axes(ops::read_ints(host_input(ctx, args, 3), n, "axes"), rank, n);
  else
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  if (pads.size() != 2 * axes.size())
    KILN_THROW(InvalidModel, n.label() << ": pads has " << pads.size() << " values, expected " << 2 * axes.size());
  std::vector<int64_t> b(static_cast<size_t>(rank), 0), e(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    b[static_cast<size_t>(axes[i])] = pads[i];
    e[static_cast<size_t>(axes[i])] = pads[i + axes.size()];
  }
  Shape ys = x.shape;
  for (size_t d = 0; d < ys.size(); ++d) {
    ys[d] = x.shape[d] + b[d] + e[d];
    const int64_t kept = x.shape[d] - std::max<int64_t>(0, -b[d]) - std::max<int64_t>(0, -e[d]);
    if (ys[d] < 0 || kept < 0)
      KILN_THROW(InvalidArgument, n.label() << ": pads " << b[d] << ", " << e[d] << " crop axis " << d << " of size "
                                            << x.shape[d] << " below zero");
    if (kept == 0 && ys[d] > 0 && mode != kConstant)
      KILN_THROW(InvalidArgument, n.label() << ": cannot pad the empty axis " << d << " in a non-constant mode");
  }
  if (ys != y.shape)
    KILN_THROW(InvalidArgument, n.label() << ": output buffer " << shape_str(y.shape) << ", pads give " << shape_str(ys));
  if (y.numel() == 0) return;
  // The fill: the constant_value input (read on the device), the 'value' attribute (opset < 11), else zero.
  const void* cval = nullptr;
  uint64_t fill = 0;
  if (n.opset >= 11 && has_in(args, 2)) {
    const DTensor& cv = in_of(args, 2);
    if (cv.dtype != x.dtype || cv.numel() != 1)
      KILN_THROW(InvalidModel, n.label() << ": constant_value must be one " << dtype_name(x.dtype) << " value");
    cval = cv.data;
  } else if (n.opset < 11) {
    const double v = n.attr_float("value", 0.f);
    ops::dispatch(ops::AllTypes{}, x.dtype, n, "data", [&](auto tag) {
      using T = ops::DT<decltype(tag)::value>;
      const typename T::S s = T::store(ops::convert_value<typename T::C>(v));
      std::memcpy(&fill, &s, sizeof(s));
    });
  }
  // Dims innermost first; adjacent unpadded dims merge.
  PadArgs a{};
  a.mode = mode;
  const std::vector<int64_t> xs = row_strides(x.shape);
  std::vector<int64_t> od, pb, lo, kept, st;
  for (size_t d = ys.size(); d-- > 0;) {
    const bool plain = b[d] == 0 && e[d] == 0;
    if (plain && !od.empty() && pb.back() == 0 && kept.back() == od.back() && lo.back() == 0 &&
        st.back() * od.back() == xs[d] && ys[d] == x.shape[d]) {
      od.back() *= ys[d], kept.back() = od.back();
      continue;
    }
    od.push_back(ys[d]);
    pb.push_back(std::max<int64_t>(0, b[d]));
    lo.push_back(std::max<int64_t>(0, -b[d]));
    kept.push_back(x.shape[d] - std::max<int64_t>(0, -b[d]) - std::max<int64_t>(0, -e[d]));
    st.push_back(xs[d]);
  }
  check_rank(n, od);
  a.rank = static_cast<int>(od.size());
  const int64_t total = y.numel();
  const bool small = total <= kSmallIndex;
  for (size_t k = 0; k < od.size(); ++k) {
    a.div[k] = FastDiv(small ? od[k] : 1);
    a.odim[k] = od[k], a.pb[k] = pb[k], a.lo[k] = lo[k], a.kept[k] = kept[k], a.xstride[k] = st[k];
  }
  dispatch_bytes(x.dtype, [&](auto tag) {
    using E = decltype(tag);
    E f;
    std::memcpy(&f, &fill, sizeof(E));
    auto* px = static_cast<const E*>(x.data);
    auto* py = static_cast<E*>(y.data);
    auto* pc = static_cast<const E*>(cval);
    if (small) pad_kernel<E, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, pc, f, a);
    else pad_kernel<E, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, pc, f, a);
  });
  KILN_CUDA_LAUNCH_CHECK("pad_kernel");
}

// ---- Trilu -----------------------------------------------------------------------------------------------------
template <typename E, bool Small>
__global__ void trilu_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t n, int64_t rows, int64_t cols,
                             FastDiv rows_d, FastDiv cols_d, const int64_t* __restrict__ kp, int64_t k0, bool upper) {
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  const int64_t k = kp ? *kp : k0;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < static_cast<I>(n);
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    I q, c, r;
    if constexpr (Small) {
      q = cols_d.div(i), c = i - q * cols_d.d;
      r = q - rows_d.div(q) * rows_d.d;
    } else {
      q = i / cols, c = i - q * cols;
      r = q % rows;
    }
    const int64_t diff = static_cast<int64_t>(c) - static_cast<int64_t>(r);
    const bool keep = upper ? diff >= k : diff <= k;
    y[i] = keep ? x[i] : E{};
  }
}

void trilu_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  DTensor& y = args.out[0];
  if (x.rank() < 2) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2, got " << shape_str(x.shape));
  if (y.shape != x.shape) KILN_THROW(InvalidArgument, n.label() << ": output buffer " << shape_str(y.shape));
  const int64_t* kp = nullptr;
  int64_t k0 = 0;
  if (has_in(args, 1)) {
    const DTensor& kt = in_of(args, 1);
    if (kt.dtype != DType::Int64 || kt.numel() != 1)
      KILN_THROW(InvalidModel, n.label() << ": k must be one int64 value, got " << shape_str(kt.shape));
    if (args.host_in.size() > 1 && args.host_in[1]) k0 = args.host_in[1]->at_int64(0);
    else kp = static_cast<const int64_t*>(kt.data);
  }
  const bool upper = n.attr_int("upper", 1) != 0;
  const int64_t rows = x.shape[x.shape.size() - 2], cols = x.shape.back(), total = x.numel();
  if (total == 0) return;
  const bool small = total <= kSmallIndex;
  dispatch_bytes(x.dtype, [&](auto tag) {
    using E = decltype(tag);
    auto* px = static_cast<const E*>(x.data);
    auto* py = static_cast<E*>(y.data);
    if (small)
      trilu_kernel<E, true><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, rows, cols, FastDiv(rows),
                                                                        FastDiv(cols), kp, k0, upper);
    else
      trilu_kernel<E, false><<<grid_for(total), kBlock, 0, ctx.stream>>>(px, py, total, rows, cols, FastDiv(),
                                                                         FastDiv(), kp, k0, upper);
  });
  KILN_CUDA_LAUNCH_CHECK("trilu_kernel");
}

CudaTactic tactic(KernelFn fn, SupportsFn sup = nullptr) {
  CudaTactic t;
  t.name = "cuda";
  t.run = std::move(fn);
  t.supports = std::move(sup);
  return t;
}

}  // namespace

void register_pad_kernels() {
  register_cuda_tactic("", "Pad", tactic(pad_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                         return ranks_at_most(in, kMaxDims);
                       }));
  register_cuda_tactic("", "Trilu", tactic(trilu_run));
}

}  // namespace kiln::runtime::cuda::move
