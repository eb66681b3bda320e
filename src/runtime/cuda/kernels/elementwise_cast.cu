// CUDA Cast and CastLike between every pair of kiln dtypes, with the reference's conversions
// (src/ops/elementwise_unary.cpp cast_tensor): float -> integer saturates and NaN becomes 0; anything -> bool is
// `!= 0`; float64 -> float16/bfloat16 and integer -> float16/bfloat16 go through float32 (rounded twice, like the
// reference). A cast to the same dtype is a device copy.
#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace kiln::runtime::cuda::ew {
namespace {

template <class In, class Out>
struct CastOp {
  __device__ CastOp bind() const { return *this; }
  __device__ Out operator()(In v) const { return Num<Out>::st(convert<CT<Out>>(Num<In>::ld(v))); }
};

// Source dtypes share one dispatch; each source instantiates its 9 targets.
template <class In>
void cast_from(const KernelContext& ctx, const ir::Node& n, const DTensor& x, const DTensor& y) {
  dispatch(AllT{}, y.dtype, n, [&](auto out_tag) {
    using Out = decltype(out_tag);
    if constexpr (std::is_same_v<In, Out>) {
      if (x.data != y.data && x.nbytes() != 0)
        KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
    } else {
      launch_unary<In, Out>(ctx, x.data, y.data, x.numel(), CastOp<In, Out>{});
    }
  });
}

void cast_run(const KernelContext& ctx, KernelArgs& args) {
  const DTensor& x = *args.in[0];
  dispatch(AllT{}, x.dtype, args.node, [&](auto tag) { cast_from<decltype(tag)>(ctx, args.node, x, args.out[0]); });
}

}  // namespace

void register_cast() {
  // The target dtype is the output's (inferred from `to` or from CastLike's second input).
  register_cuda_tactic("", "Cast",
                       CudaTactic{"cuda",
                                  [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                                    return in.size() == 1 && AllT::contains(in[0].dtype);
                                  },
                                  cast_run, nullptr});
  register_cuda_tactic("", "CastLike",
                       CudaTactic{"cuda",
                                  [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                                    return in.size() == 2 && AllT::contains(in[0].dtype) &&
                                           AllT::contains(in[1].dtype);
                                  },
                                  cast_run, nullptr});
}

}  // namespace kiln::runtime::cuda::ew
