// CUDA kernel of kiln.FusedElementwise (ops/fused_elementwise.h; made by the fuse_elementwise pass): one launch that
// evaluates the node's program per element in float registers (elementwise_fused.cuh) and writes only the result.
// Inputs are read with the elementwise family's operand plans (elementwise_impl.cuh: full, scalar, two-level bias /
// per-channel, general broadcast); on the vector path each thread handles 16 bytes of the widest type the node
// reads or writes (4 lanes when float32 is involved, else 8), with one 16-byte (or narrower, for float16 / bool
// inputs under 4 lanes) load per full input and one store. The program and the operand plans travel as one
// __grid_constant__ kernel parameter.
#include "ops/fused_elementwise.h"
#include "runtime/cuda/kernels/elementwise_fused.cuh"
#include "runtime/cuda/kernels/elementwise_impl.cuh"

namespace kiln::runtime::cuda::ew {
namespace {

namespace fz = kiln::ops::fused;

struct FusedParams {
  fz::FusedInst code[fz::kMaxInsts];
  Operand in[fz::kMaxInputs];
  int ninst = 0;
};

template <class T, int V>
__device__ __forceinline__ void load_as_float(const Operand& o, int64_t base, float (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = static_cast<float>(Num<T>::ld(load_one<T>(o, base)));
  } else {
    T v[V];
    load_vec<T, V>(o, base, v);
#pragma unroll
    for (int k = 0; k < V; ++k) out[k] = static_cast<float>(Num<T>::ld(v[k]));
  }
}

// Lanes base .. base+V-1 of input o as float (bool as 0 / 1).
template <int V>
__device__ __forceinline__ void load_operand(const Operand& o, int64_t base, float (&out)[V]) {
  switch (o.dtype) {
    case DType::Float16: load_as_float<__half, V>(o, base, out); break;
    case DType::BFloat16: load_as_float<bf16, V>(o, base, out); break;
    case DType::Bool: load_as_float<Bool8, V>(o, base, out); break;
    default: load_as_float<float, V>(o, base, out); break;
  }
}

template <class T, int V>
__device__ __forceinline__ void store_vec(void* y, int64_t v, const float (&acc)[V]) {
  Vec<T, V> o;
#pragma unroll
  for (int k = 0; k < V; ++k) o.v[k] = Num<T>::st(acc[k]);
  reinterpret_cast<Vec<T, V>*>(y)[v] = o;
}

template <int V>
__global__ void __launch_bounds__(kBlock) fused_kernel(const __grid_constant__ FusedParams p, void* y, DType ydt,
                                                       int64_t n, int64_t nvec) {
  for (int64_t v = gtid(); v < nvec; v += gstride()) {
    const int64_t base = v * V;
    float acc[V];
    fused_ew::eval<V>(p.code, p.ninst, [&](int k, float (&b)[V]) { load_operand<V>(p.in[k], base, b); }, acc);
    if (ydt == DType::Float16) store_vec<__half, V>(y, v, acc);
    else if (ydt == DType::BFloat16) store_vec<bf16, V>(y, v, acc);
    else store_vec<float, V>(y, v, acc);
  }
  for (int64_t i = nvec * V + gtid(); i < n; i += gstride()) {
    float acc[1];
    fused_ew::eval<1>(p.code, p.ninst, [&](int k, float (&b)[1]) { load_operand<1>(p.in[k], i, b); }, acc);
    if (ydt == DType::Float16) static_cast<__half*>(y)[i] = __float2half_rn(acc[0]);
    else if (ydt == DType::BFloat16) static_cast<bf16*>(y)[i] = __float2bfloat16_rn(acc[0]);
    else static_cast<float*>(y)[i] = acc[0];
  }
}

bool float3(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16; }

bool fused_supports(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  if (in.size() > static_cast<size_t>(fz::kMaxInputs) || !ranks_ok(n, in)) return false;
  for (size_t i = 0; i < in.size(); ++i)
    if (!present(n, i) || !(float3(in[i].dtype) || in[i].dtype == DType::Bool)) return false;
  try {
    const fz::Program p = fz::decode(n);
    std::vector<fz::FusedInst> code;
    return float3(p.steps.back().dtype) && fz::compile(p, code);
  } catch (const Error&) {
    return false;
  }
}

void fused_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const fz::Program prog = fz::decode(n);
  std::vector<fz::FusedInst> code;
  std::string why;
  if (!fz::compile(prog, code, &why))
    KILN_THROW(Unsupported, n.label() << ": the CUDA kernel cannot run this program (" << why << ")");
  const DTensor& y = args.out[0];
  const int64_t total = y.numel();
  if (total == 0) return;
  const size_t k = args.in.size();
  if (k > static_cast<size_t>(fz::kMaxInputs))
    KILN_THROW(Unsupported, n.label() << ": " << k << " inputs; the CUDA kernel takes " << fz::kMaxInputs);
  FusedParams p{};
  std::copy(code.begin(), code.end(), p.code);
  p.ninst = static_cast<int>(code.size());
  std::vector<const DTensor*> ins(args.in.begin(), args.in.end());
  int widest = static_cast<int>(dtype_size(y.dtype));
  int es[fz::kMaxInputs] = {};
  for (size_t i = 0; i < k; ++i) {
    if (!ins[i]) KILN_THROW(InvalidModel, n.label() << ": input " << i << " is missing");
    es[i] = static_cast<int>(dtype_size(ins[i]->dtype));
    widest = std::max(widest, es[i]);
  }
  plan_operands(n, y.shape, ins, p.in);
  const int V = widest >= 4 ? 4 : 8;
  const int64_t nvec = plan_vectors(total, V, y.data, static_cast<int>(dtype_size(y.dtype)), p.in, es,
                                    static_cast<int>(k));
  if (V == 8)
    fused_kernel<8><<<ew_grid(total, nvec, 8), kBlock, 0, ctx.stream>>>(p, y.data, y.dtype, total, nvec);
  else
    fused_kernel<4><<<ew_grid(total, nvec, 4), kBlock, 0, ctx.stream>>>(p, y.data, y.dtype, total, nvec);
  KILN_CUDA_LAUNCH_CHECK("fused_elementwise");
}

}  // namespace

void register_fused() {
  CudaTactic t;
  t.name = "cuda";
  t.supports = fused_supports;
  t.run = fused_run;
  register_cuda_tactic(fz::kDomain, fz::kOpType, std::move(t));
}

}  // namespace kiln::runtime::cuda::ew
