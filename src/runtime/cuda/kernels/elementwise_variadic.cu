// CUDA variadic elementwise ops with numpy broadcasting over every input, one launch for up to kMaxVarInputs
// inputs: Sum and Mean (float types, accumulated in double for float32/float64 and in float for
// float16/bfloat16, rounded once), Max and Min (NaN propagates, like the reference in src/ops/variadic.cpp).
// Also Where (any dtype, moved as bytes).
#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace kiln::runtime::cuda::ew {
namespace {

constexpr int kMaxVarInputs = 16;  // more inputs: no CUDA tactic (host fallback)

struct VarOperands {
  Operand o[kMaxVarInputs];
};

enum class VarKind { Sum, Mean, Max, Min };

// Sum and Mean share a kernel per dtype (kAdds), and so do Max and Min; `kind` picks at run time.
template <class T, bool kAdds>
struct VarAcc {
  using C = CT<T>;
  using A = std::conditional_t<kAdds && std::is_same_v<C, float> && !std::is_same_v<T, float>, float,
                               std::conditional_t<kAdds && std::is_floating_point_v<C>, double, C>>;
  VarKind kind;
  __device__ A first(T v) const { return static_cast<A>(Num<T>::ld(v)); }
  __device__ A combine(A acc, T t) const {
    const A v = static_cast<A>(Num<T>::ld(t));
    if constexpr (kAdds) {
      return acc + v;
    } else {
      if constexpr (std::is_floating_point_v<A>)
        if (acc != acc || v != v) return acc != acc ? acc : v;  // NaN propagates
      if (kind == VarKind::Max) return v > acc ? v : acc;
      return v < acc ? v : acc;
    }
  }
  __device__ T finish(A acc, int count) const {
    if constexpr (kAdds)
      if (kind == VarKind::Mean) acc /= static_cast<A>(count);
    return Num<T>::st(static_cast<C>(acc));
  }
};

template <class T, bool kAdds>
__global__ void __launch_bounds__(kBlock) variadic_kernel(const __grid_constant__ VarOperands ops, int count, T* y,
                                                          int64_t n, int64_t nvec, VarKind kind) {
  const VarAcc<T, kAdds> acc_op{kind};
  using A = typename VarAcc<T, kAdds>::A;
  constexpr int V = kVec<T>;
  for (int64_t v = gtid(); v < nvec; v += gstride()) {
    const int64_t base = v * V;
    T vals[V];
    A acc[V];
    load_vec<T, V>(ops.o[0], base, vals);
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] = acc_op.first(vals[k]);
    for (int j = 1; j < count; ++j) {
      load_vec<T, V>(ops.o[j], base, vals);
#pragma unroll
      for (int k = 0; k < V; ++k) acc[k] = acc_op.combine(acc[k], vals[k]);
    }
    Vec<T, V> o;
#pragma unroll
    for (int k = 0; k < V; ++k) o.v[k] = acc_op.finish(acc[k], count);
    reinterpret_cast<Vec<T, V>*>(y)[v] = o;
  }
  for (int64_t i = nvec * V + gtid(); i < n; i += gstride()) {
    A acc = acc_op.first(load_one<T>(ops.o[0], i));
    for (int j = 1; j < count; ++j) acc = acc_op.combine(acc, load_one<T>(ops.o[j], i));
    y[i] = acc_op.finish(acc, count);
  }
}

template <class T, bool kAdds>
void launch_variadic(const KernelContext& ctx, const KernelArgs& args, VarKind kind) {
  const DTensor& y = args.out[0];
  const int64_t n = y.numel();
  if (n == 0) return;
  std::vector<const DTensor*> ins;
  for (const DTensor* t : args.in)
    if (t) ins.push_back(t);
  if (ins.empty() || ins.size() > static_cast<size_t>(kMaxVarInputs))
    KILN_THROW(Unsupported, args.node.label() << ": " << ins.size() << " inputs; the CUDA kernel takes 1 to "
                                              << kMaxVarInputs);
  VarOperands ops;
  plan_operands(args.node, y.shape, ins, ops.o);
  constexpr int V = kVec<T>;
  int es[kMaxVarInputs];
  for (int& e : es) e = kSize<T>;
  const int count = static_cast<int>(ins.size());
  const int64_t nvec = plan_vectors(n, V, y.data, kSize<T>, ops.o, es, count);
  variadic_kernel<T, kAdds><<<ew_grid(n, nvec, V), kBlock, 0, ctx.stream>>>(ops, count, y.as<T>(), n, nvec, kind);
  KILN_CUDA_LAUNCH_CHECK("variadic_kernel");
}

template <VarKind K>
bool var_supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  size_t count = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!present(n, i)) continue;
    ++count;
    if (in[i].dtype != in[0].dtype) return false;
  }
  if (count == 0 || count > static_cast<size_t>(kMaxVarInputs) || !ranks_ok(n, in)) return false;
  const bool float_only = K == VarKind::Sum || K == VarKind::Mean || n.opset < 12;
  return float_only ? FloatT::contains(in[0].dtype) : NumT::contains(in[0].dtype);
}

template <VarKind K>
void add_variadic(const char* op) {
  CudaTactic t;
  t.name = "cuda";
  t.supports = var_supports<K>;
  t.run = [](const KernelContext& ctx, KernelArgs& args) {
    if constexpr (K == VarKind::Sum || K == VarKind::Mean)
      dispatch(FloatT{}, args.in[0]->dtype, args.node,
               [&](auto tag) { launch_variadic<decltype(tag), true>(ctx, args, K); });
    else
      dispatch(NumT{}, args.in[0]->dtype, args.node,
               [&](auto tag) { launch_variadic<decltype(tag), false>(ctx, args, K); });
  };
  register_cuda_tactic("", op, std::move(t));
}

// ---- Where(cond, X, Y) ----------------------------------------------------------------------------------------------
template <class U>
__global__ void __launch_bounds__(kBlock) where_kernel(Operand c, Operand a, Operand b, U* y, int64_t n,
                                                       int64_t nvec) {
  constexpr int V = kVec<U>;
  for (int64_t v = gtid(); v < nvec; v += gstride()) {
    const int64_t base = v * V;
    Bool8 cv[V];
    U av[V], bv[V];
    load_vec<Bool8, V>(c, base, cv);
    load_vec<U, V>(a, base, av);
    load_vec<U, V>(b, base, bv);
    Vec<U, V> o;
#pragma unroll
    for (int k = 0; k < V; ++k) o.v[k] = cv[k].v ? av[k] : bv[k];
    reinterpret_cast<Vec<U, V>*>(y)[v] = o;
  }
  for (int64_t i = nvec * V + gtid(); i < n; i += gstride())
    y[i] = load_one<Bool8>(c, i).v ? load_one<U>(a, i) : load_one<U>(b, i);
}

void where_run(const KernelContext& ctx, KernelArgs& args) {
  const DTensor& y = args.out[0];
  const int64_t n = y.numel();
  if (n == 0) return;
  dispatch_bytes(y.dtype, [&](auto tag) {
    using U = decltype(tag);
    Operand ops[3];
    plan_operands(args.node, y.shape, {args.in[0], args.in[1], args.in[2]}, ops);
    constexpr int V = kVec<U>;
    const int es[3] = {1, kSize<U>, kSize<U>};
    const int64_t nvec = plan_vectors(n, V, y.data, kSize<U>, ops, es, 3);
    where_kernel<U><<<ew_grid(n, nvec, V), kBlock, 0, ctx.stream>>>(ops[0], ops[1], ops[2], y.as<U>(), n, nvec);
    KILN_CUDA_LAUNCH_CHECK("where_kernel");
  });
}

}  // namespace

void register_variadic() {
  add_variadic<VarKind::Sum>("Sum");
  add_variadic<VarKind::Mean>("Mean");
  add_variadic<VarKind::Max>("Max");
  add_variadic<VarKind::Min>("Min");
  register_cuda_tactic("", "Where",
                       CudaTactic{"cuda",
                                  [](const ir::Node& n, const std::vector<ir::ValueType>& in) {
                                    return in.size() == 3 && in[0].dtype == DType::Bool &&
                                           in[1].dtype == in[2].dtype && ranks_ok(n, in);
                                  },
                                  where_run, nullptr});
}

}  // namespace kiln::runtime::cuda::ew
