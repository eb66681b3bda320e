// CUDA kernels: the reduce family (kernels/families.h). This file: ReduceSum / Mean / Max / Min / Prod / L2 /
// SumSquare (axes as attribute or input by opset, keepdims, noop_with_empty_axes) and launch_reduce, which the
// global pools use too. Softmax / LogSoftmax are in softmax.cu, ArgMax / ArgMin / CumSum / TopK in reduce_arg.cu.
//
// The input's dims are merged into kept and reduced blocks. When the reduced block is innermost (rows of `len`
// contiguous elements) a group of threads reduces each row with 16-byte loads (a row per 1..32 threads for short
// rows, a row per block for long ones); otherwise one thread computes one output, walking the reduced dims (reads
// are coalesced across neighbouring outputs). When there are few outputs and long reductions, the reduction is split
// over several blocks whose partial results (in ctx.workspace) a second kernel combines.
// Accumulators: float for float32 / float16 / bfloat16, double for float64, wrapping 64-bit for integers (like the
// CPU reference); Max / Min propagate NaN.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/rowwise.cuh"

namespace kiln::runtime::cuda {
namespace {

// Combine ops. Integers wrap (unsigned arithmetic, no UB).
struct RAdd {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    if constexpr (std::is_integral_v<A>)
      return static_cast<A>(static_cast<unsigned long long>(a) + static_cast<unsigned long long>(b));
    else
      return a + b;
  }
};
struct RMul {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    if constexpr (std::is_integral_v<A>)
      return static_cast<A>(static_cast<unsigned long long>(a) * static_cast<unsigned long long>(b));
    else
      return a * b;
  }
};
struct RFMax {  // NaN never wins (GlobalMaxPool's `v > acc ? v : acc`)
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return b > a ? b : a;
  }
};

enum Post : int { kPostNone = 0, kPostMean = 1, kPostSqrt = 2 };

template <typename A>
struct RedArgs {
  A init;
  bool square;
  int post;
  int64_t count;  // reduced elements per output
};

template <typename T, typename A>
__device__ __forceinline__ A pre(T v, bool square) {
  A a = acc_in(v);
  if (square) return RMul{}(a, a);
  return a;
}

template <typename T, typename A>
__device__ __forceinline__ T post(A v, const RedArgs<A>& ra) {
  if (ra.post == kPostMean) {
    if constexpr (std::is_integral_v<A>)
      v = ra.count > 0 ? v / static_cast<A>(ra.count) : A(0);
    else
      v = v / static_cast<A>(ra.count);  // 0 / 0 = NaN for an empty reduction, like the reference
  } else if (ra.post == kPostSqrt) {
    if constexpr (std::is_same_v<A, float>)
      v = sqrtf(v);
    else
      v = static_cast<A>(sqrt(static_cast<double>(v)));
  }
  return acc_out<T>(v);
}

// Writes a group's result: the final value (S == 1) or a partial, ws[s * outs + o].
template <typename T, typename A>
__device__ __forceinline__ void put(void* dst, bool partial, int64_t o, int64_t s, int64_t outs, A v,
                                    const RedArgs<A>& ra) {
  if (partial) static_cast<A*>(dst)[s * outs + o] = v;
  else static_cast<T*>(dst)[o] = post<T>(v, ra);
}

// Rows of `len` contiguous elements; work item w = row * S + s covers [s * chunk, min(len, (s + 1) * chunk)).
template <typename T, typename Op>
__global__ void __launch_bounds__(512) reduce_rows_kernel(const T* __restrict__ x, void* dst, int64_t rows,
                                                           int64_t len, int64_t S, int64_t chunk, int tpr, bool vec,
                                                           RedArgs<acc_t<T>> ra) {
  using A = acc_t<T>;
  constexpr int V = vec_of<T>();
  using P = Pack<T, V>;
  __shared__ A red[32];
  const Op op;
  const int rpb = blockDim.x / tpr;
  const int g = threadIdx.x / tpr, lane = threadIdx.x % tpr;
  const int64_t items = rows * S;
  for (int64_t base = int64_t(blockIdx.x) * rpb; base < items; base += int64_t(gridDim.x) * rpb) {
    const int64_t w = base + g;
    const bool active = w < items;
    const int64_t row = active ? w / S : 0, s = active ? w - row * S : 0;
    const int64_t start = s * chunk, end = !active ? start : start + chunk < len ? start + chunk : len;
    const T* xr = x + row * len;
    A acc = ra.init;
    if (vec) {
      const P* xp = reinterpret_cast<const P*>(xr);
#pragma unroll 4
      for (int64_t p = start / V + lane; p < end / V; p += tpr) {
        const P q = xp[p];
#pragma unroll
        for (int e = 0; e < V; ++e) acc = op(acc, pre<T, A>(q.v[e], ra.square));
      }
    } else {
#pragma unroll 4
      for (int64_t i = start + lane; i < end; i += tpr) acc = op(acc, pre<T, A>(xr[i], ra.square));
    }
    acc = group_reduce(acc, op, tpr, red);
    if (active && lane == 0) put<T, A>(dst, S > 1, row, s, rows, acc, ra);
  }
}

// Merged geometry: kept dims (outermost first) and reduced dims, with their input strides.
struct RedPlan {
  int nk = 0, nr = 0;
  int64_t kdim[kMaxDims], kstride[kMaxDims];
  int64_t rdim[kMaxDims], rstride[kMaxDims];
  int64_t outs = 1, count = 1;
};

// One thread per (output, split) item w = s * outs + o (neighbouring threads read neighbouring outputs).
template <typename T, typename Op>
__global__ void reduce_generic_kernel(const T* __restrict__ x, void* dst, RedPlan p, int64_t S, int64_t chunk,
                                      RedArgs<acc_t<T>> ra) {
  using A = acc_t<T>;
  const Op op;
  const int64_t items = p.outs * S;
  for (int64_t w = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; w < items; w += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = w / p.outs, o = w - s * p.outs;
    int64_t base = 0, rem = o;
    for (int d = p.nk - 1; d >= 0; --d) {
      const int64_t q = rem / p.kdim[d];
      base += (rem - q * p.kdim[d]) * p.kstride[d];
      rem = q;
    }
    const int64_t start = s * chunk, end = start + chunk < p.count ? start + chunk : p.count;
    A acc = ra.init;
    if (p.nr == 1) {
      const int64_t st = p.rstride[0];
      for (int64_t j = start; j < end; ++j) acc = op(acc, pre<T, A>(x[base + j * st], ra.square));
    } else if (start < end) {
      int64_t digit[kMaxDims];
      int64_t off = 0;
      rem = start;
      for (int d = p.nr - 1; d >= 0; --d) {
        const int64_t q = rem / p.rdim[d];
        digit[d] = rem - q * p.rdim[d];
        off += digit[d] * p.rstride[d];
        rem = q;
      }
      for (int64_t j = start; j < end; ++j) {
        acc = op(acc, pre<T, A>(x[base + off], ra.square));
        for (int d = p.nr - 1; d >= 0; --d) {  // odometer step
          off += p.rstride[d];
          if (++digit[d] < p.rdim[d]) break;
          off -= digit[d] * p.rstride[d];
          digit[d] = 0;
        }
      }
    }
    put<T, A>(dst, S > 1, o, s, p.outs, acc, ra);
  }
}

template <typename T, typename Op>
__global__ void reduce_finish_kernel(const acc_t<T>* __restrict__ ws, T* __restrict__ y, int64_t outs, int64_t S,
                                     RedArgs<acc_t<T>> ra) {
  const Op op;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < outs; o += int64_t(gridDim.x) * blockDim.x) {
    acc_t<T> acc = ws[o];
    for (int64_t s = 1; s < S; ++s) acc = op(acc, ws[s * outs + o]);
    y[o] = post<T>(acc, ra);
  }
}

RedPlan make_plan(const ir::Node& n, const Shape& shape, const std::vector<bool>& reduced) {
  if (shape.size() > static_cast<size_t>(kMaxDims))
    KILN_THROW(Unsupported, n.label() << ": rank " << shape.size() << " > " << kMaxDims << " in the CUDA kernel");
  RedPlan p;
  int64_t stride = 1;
  std::vector<int64_t> strides(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = stride;
    stride *= shape[d];
  }
  int last = -1;  // class of the last block kept: 0 kept, 1 reduced
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) p.count *= shape[d];
    else p.outs *= shape[d];
    if (shape[d] == 1) continue;
    const int cls = reduced[d] ? 1 : 0;
    int& cnt = cls ? p.nr : p.nk;
    int64_t* dim = cls ? p.rdim : p.kdim;
    int64_t* st = cls ? p.rstride : p.kstride;
    if (last == cls) {  // adjacent dims of one class merge
      dim[cnt - 1] *= shape[d];
      st[cnt - 1] = strides[d];
    } else {
      dim[cnt] = shape[d];
      st[cnt] = strides[d];
      ++cnt;
    }
    last = cls;
  }
  return p;
}

template <typename T>
acc_t<T> identity(RedKind k, DType dt) {
  using A = acc_t<T>;
  const bool maxlike = k == RedKind::Max || k == RedKind::MaxIgnoreNaN;
  if (k != RedKind::Max && k != RedKind::Min && k != RedKind::MaxIgnoreNaN) return A(k == RedKind::Prod ? 1 : 0);
  if (dt == DType::Bool) return A(maxlike ? 0 : 1);
  if constexpr (std::is_floating_point_v<A>) {
    return maxlike ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
  } else {
    return maxlike ? static_cast<A>(std::numeric_limits<T>::lowest()) : static_cast<A>(std::numeric_limits<T>::max());
  }
}

template <typename T, typename Op>
void launch_typed(const KernelContext& ctx, DType dt, RedKind kind, const T* x, T* y, const RedPlan& p) {
  using A = acc_t<T>;
  RedArgs<A> ra{identity<T>(kind, dt), kind == RedKind::L2 || kind == RedKind::SumSquare,
                kind == RedKind::Mean ? kPostMean : kind == RedKind::L2 ? kPostSqrt : kPostNone, p.count};
  const int sms = sm_count(ctx);
  const int64_t max_partials = static_cast<int64_t>(ctx.workspace ? ctx.workspace_size / sizeof(A) : 0);
  const bool row = p.nr == 0 || (p.nr == 1 && p.rstride[0] == 1);
  if (row) {
    constexpr int V = vec_of<T>();
    const int64_t rows = p.outs, len = p.count;
    const bool vec = V > 1 && len % V == 0 && aligned16(x);
    RowShape rs = row_shape(rows, vec ? len / V : len, 16, 512);
    int64_t S = 1, chunk = len;
    if (rs.tpr == rs.block && rows < 4 * sms) {  // long rows, few of them: split each over several blocks
      const int64_t per_block = int64_t(rs.block) * 8 * (vec ? V : 1);
      S = std::min<int64_t>((4 * sms + rows - 1) / rows, (len + per_block - 1) / per_block);
      if (rows * S > max_partials) S = std::max<int64_t>(1, max_partials / rows);
      if (S > 1) {
        chunk = ((len + S - 1) / S + 15) / 16 * 16;  // multiple of every pack size: chunks start aligned
        S = (len + chunk - 1) / chunk;
        rs.grid = std::min<int64_t>(rows * S, int64_t(1) << 20);
      }
    }
    void* dst = S > 1 ? ctx.workspace : static_cast<void*>(y);
    reduce_rows_kernel<T, Op><<<static_cast<unsigned>(rs.grid), rs.block, 0, ctx.stream>>>(x, dst, rows, len, S, chunk,
                                                                                           rs.tpr, vec, ra);
    KILN_CUDA_LAUNCH_CHECK("reduce_rows");
    if (S > 1) {
      reduce_finish_kernel<T, Op><<<grid_for(rows), kBlock, 0, ctx.stream>>>(static_cast<const A*>(ctx.workspace), y,
                                                                             rows, S, ra);
      KILN_CUDA_LAUNCH_CHECK("reduce_finish");
    }
    return;
  }
  int64_t S = 1, chunk = p.count;
  const int64_t target = int64_t(sms) * 512;
  if (p.outs < target && p.count >= 256) {
    S = std::min<int64_t>((target + p.outs - 1) / p.outs, p.count / 64);
    if (p.outs * S > max_partials) S = std::max<int64_t>(1, max_partials / p.outs);
    if (S > 1) {
      chunk = (p.count + S - 1) / S;
      S = (p.count + chunk - 1) / chunk;
    }
  }
  void* dst = S > 1 ? ctx.workspace : static_cast<void*>(y);
  reduce_generic_kernel<T, Op><<<grid_for(p.outs * S), kBlock, 0, ctx.stream>>>(x, dst, p, S, chunk, ra);
  KILN_CUDA_LAUNCH_CHECK("reduce_generic");
  if (S > 1) {
    reduce_finish_kernel<T, Op><<<grid_for(p.outs), kBlock, 0, ctx.stream>>>(static_cast<const A*>(ctx.workspace), y,
                                                                             p.outs, S, ra);
    KILN_CUDA_LAUNCH_CHECK("reduce_finish");
  }
}

using SumTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64, DType::Int32>;
using MaxMinTypes = DTypes<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                           DType::Int32, DType::Int8, DType::UInt8, DType::Bool>;

// ---- the Reduce* ops ---------------------------------------------------------------------------------------------
struct ReduceOp {
  const char* name;
  RedKind kind;
  int input_opset;  // first opset with axes as an input
};
constexpr ReduceOp kReduceOps[] = {
    {"ReduceSum", RedKind::Sum, 13},        {"ReduceMean", RedKind::Mean, 18}, {"ReduceMax", RedKind::Max, 18},
    {"ReduceMin", RedKind::Min, 18},        {"ReduceProd", RedKind::Prod, 18}, {"ReduceL2", RedKind::L2, 18},
    {"ReduceSumSquare", RedKind::SumSquare, 18},
};

void run_reduce(const KernelContext& ctx, KernelArgs& a, const ReduceOp& op) {
  const ir::Node& n = a.node;
  const DTensor& x = *a.in.at(0);
  DTensor& y = a.out.at(0);
  std::vector<int64_t> axes;
  bool noop = false;
  if (n.opset >= op.input_opset) {
    axes = input_ints(ctx, a, 1, "axes");
    noop = axes.empty() && n.attr_int("noop_with_empty_axes", 0) != 0;
  } else {
    axes = n.attr_ints("axes", {});
  }
  if (noop) {
    if (y.data != x.data && x.nbytes() > 0)
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  const int64_t rank = x.rank();
  std::vector<bool> reduced(static_cast<size_t>(rank), axes.empty());
  for (int64_t ax : axes) {
    const int64_t d = norm_axis(n, ax, rank, "axes");
    if (reduced[static_cast<size_t>(d)]) KILN_THROW(InvalidModel, n.label() << ": axis " << ax << " is repeated");
    reduced[static_cast<size_t>(d)] = true;
  }
  launch_reduce(ctx, n, x.dtype, op.kind, x.data, y.data, x.shape, reduced);
}

}  // namespace

void launch_reduce(const KernelContext& ctx, const ir::Node& n, DType dt, RedKind kind, const void* x, void* y,
                   const Shape& shape, const std::vector<bool>& reduced) {
  const RedPlan p = make_plan(n, shape, reduced);
  if (p.outs == 0) return;
  auto go = [&](auto op_tag, auto type_list) {
    using Op = decltype(op_tag);
    dispatch_list(type_list, dt, n, [&](auto t) {
      using T = decltype(t);
      launch_typed<T, Op>(ctx, dt, kind, static_cast<const T*>(x), static_cast<T*>(y), p);
    });
  };
  switch (kind) {
    case RedKind::Max: return go(OpMaxNaN{}, MaxMinTypes{});
    case RedKind::Min: return go(OpMinNaN{}, MaxMinTypes{});
    case RedKind::MaxIgnoreNaN: return go(RFMax{}, FloatDTypes{});
    case RedKind::Prod: return go(RMul{}, SumTypes{});
    default: return go(RAdd{}, SumTypes{});
  }
}

void register_reduce_kernels() {
  for (const ReduceOp& op : kReduceOps) {
    CudaTactic t;
    t.name = "cuda";
    const bool maxmin = op.kind == RedKind::Max || op.kind == RedKind::Min;
    t.supports = [maxmin](const ir::Node& n, const std::vector<ir::ValueType>& in) {
      if (in.empty()) return false;
      if (in[0].has_rank && in[0].dims.size() > static_cast<size_t>(kMaxDims)) return false;
      return maxmin ? MaxMinTypes::has(in[0].dtype) : SumTypes::has(in[0].dtype);
    };
    t.run = [op](const KernelContext& ctx, KernelArgs& a) { run_reduce(ctx, a, op); };
    t.workspace = [](const ir::Node&, const std::vector<ir::ValueType>&, const std::vector<ir::ValueType>&) {
      return kReduceWorkspace;
    };
    register_cuda_tactic("", op.name, std::move(t));
  }
  register_softmax_tactics();
  register_arg_tactics();
}

}  // namespace kiln::runtime::cuda
