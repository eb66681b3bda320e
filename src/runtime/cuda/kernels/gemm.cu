// CUDA kernels: the gemm family (kernels/families.h). MatMul and Gemm through cuBLASLt (tactic "cublaslt": float32
// with TF32 per ctx.allow_tf32, float16 / bfloat16 with float accumulation, float64), and kiln's own batched GEMM
// kernel (tactic "cuda": every type the ops take, integers included; also the fallback when cuBLASLt has no
// algorithm). Einsum and Attention live in einsum.cu / attention.cu and register from here.
#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/gemm_lt.h"
#include "runtime/cuda/tactic_variant.h"
#include "util/log.h"

namespace kiln::runtime::cuda {
namespace {

// ---- cuBLASLt ----------------------------------------------------------------------------------------------------
cudaDataType_t lt_type(DType dt) {
  switch (dt) {
    case DType::Float32: return CUDA_R_32F;
    case DType::Float16: return CUDA_R_16F;
    case DType::BFloat16: return CUDA_R_16BF;
    case DType::Float64: return CUDA_R_64F;
    default: break;
  }
  KILN_THROW(Unsupported, "cuBLASLt: dtype " << dtype_name(dt));
}

constexpr size_t kKeyLen = 27;
using LtKey = std::array<int64_t, kKeyLen>;
struct LtKeyHash {
  size_t operator()(const LtKey& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};
// FNV-1a of a variant's text (0 for none): part of the algorithm cache key.
int64_t variant_hash(std::string_view v) {
  if (v.empty()) return 0;
  uint64_t h = 1469598103934665603ull;
  for (char c : v) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return static_cast<int64_t>(h | 1);
}
struct LtChoice {
  bool found = false;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};
std::mutex& lt_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<LtKey, LtChoice, LtKeyHash>& lt_cache() {
  static std::unordered_map<LtKey, LtChoice, LtKeyHash> c;
  return c;
}
// Whether this is the first time variant `h` is refused in this process (one warning per variant; other call
// shapes it does not fit are logged at debug level).
bool first_refusal(int64_t h) {
  static std::set<int64_t> seen;
  std::lock_guard<std::mutex> lock(lt_mutex());
  return seen.insert(h).second;
}

template <typename T>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const T& v) {
  KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof(v)));
}
template <typename T>
void set_layout_attr(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const T& v) {
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, a, &v, sizeof(v)));
}

// ---- own batched GEMM kernel -------------------------------------------------------------------------------------
struct NaiveParams {
  int64_t m, n, k, batch;
  const void* a;
  int64_t a_sm, a_sk, stride_a;
  const void* b;
  int64_t b_sk, b_sn, stride_b;
  const void* c;
  int64_t c_sm, c_sn, stride_c;
  void* d;
  int64_t ldd, stride_d;
  const void* bias;
  double alpha, beta;
};

template <typename T>
__device__ inline T sat_from_double(double v) {
  // Integer result of alpha * acc + beta * c in double: NaN -> 0, saturated (the CPU reference's convert_value).
  const double lo = sizeof(T) == 4 ? -2147483648.0 : -9223372036854775808.0;
  const double hi = -lo - (sizeof(T) == 4 ? 1.0 : 0.0);
  if (v != v) return T(0);
  if (v <= lo) return sizeof(T) == 4 ? static_cast<T>(INT32_MIN) : static_cast<T>(INT64_MIN);
  if (v >= hi) return sizeof(T) == 4 ? static_cast<T>(INT32_MAX) : static_cast<T>(INT64_MAX);
  return static_cast<T>(v);
}
// Loads as the accumulator type (double stays double) and stores from it (one rounding for the low types).
template <typename Acc, typename T>
__device__ inline Acc ld(T v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return static_cast<Acc>(to_f(v));
}
template <typename T, typename Acc>
__device__ inline T st(Acc v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return from_f<T>(static_cast<float>(v));
}

// One thread per output element (grid-stride). TA: A/B type, TD: C/D type, Acc: float, double or int64 (wrapping).
template <typename TA, typename TD, typename Acc>
__global__ void naive_gemm_kernel(NaiveParams p) {
  const int64_t total = p.batch * p.m * p.n;
  const TA* A = static_cast<const TA*>(p.a);
  const TA* B = static_cast<const TA*>(p.b);
  const TD* C = static_cast<const TD*>(p.c);
  TD* D = static_cast<TD*>(p.d);
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = idx % p.n;
    const int64_t t = idx / p.n;
    const int64_t i = t % p.m;
    const int64_t bi = t / p.m;
    const TA* a = A + bi * p.stride_a + i * p.a_sm;
    const TA* b = B + bi * p.stride_b + j * p.b_sn;
    Acc acc = 0;
    for (int64_t kk = 0; kk < p.k; ++kk) {
      if constexpr (std::is_integral_v<Acc>) {
        acc = static_cast<Acc>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(static_cast<Acc>(a[kk * p.a_sk])) *
                                                              static_cast<uint64_t>(static_cast<Acc>(b[kk * p.b_sk])));
      } else {
        acc += ld<Acc>(a[kk * p.a_sk]) * ld<Acc>(b[kk * p.b_sk]);
      }
    }
    TD* out = D + bi * p.stride_d + i * p.ldd + j;
    if constexpr (std::is_integral_v<Acc>) {
      const int64_t cv = C ? static_cast<int64_t>(C[bi * p.stride_c + i * p.c_sm + j * p.c_sn]) : 0;
      if (p.alpha == 1.0 && p.beta == 1.0)
        *out = static_cast<TD>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(cv));
      else
        *out = sat_from_double<TD>(p.alpha * static_cast<double>(acc) + p.beta * static_cast<double>(cv));
    } else {
      Acc r = static_cast<Acc>(p.alpha) * acc;
      if (C) r += static_cast<Acc>(p.beta) * ld<Acc>(C[bi * p.stride_c + i * p.c_sm + j * p.c_sn]);
      if (p.bias) r += ld<Acc>(static_cast<const TD*>(p.bias)[j]);
      *out = st<TD>(r);
    }
  }
}

template <typename TA, typename TD, typename Acc>
void launch_naive(const KernelContext& ctx, const NaiveParams& p) {
  const int64_t total = p.batch * p.m * p.n;
  naive_gemm_kernel<TA, TD, Acc><<<grid_for(total), kBlock, 0, ctx.stream>>>(p);
  KILN_CUDA_LAUNCH_CHECK("naive_gemm");
}

// Y[i] = C[broadcast(i)] over an [M, N] output: Gemm's C term before a beta GEMM that reads Y as C.
template <typename T>
__global__ void broadcast_copy_kernel(const T* __restrict__ c, T* __restrict__ y, int64_t n, BroadcastIndex bi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = c[bi.map(i)];
}

}  // namespace

// ---- shared entry points (gemm_lt.h) -----------------------------------------------------------------------------
bool lt_types_supported(DType ab, DType d) {
  switch (ab) {
    case DType::Float32: return d == DType::Float32;
    case DType::Float16:
    case DType::BFloat16: return d == ab || d == DType::Float32;
    case DType::Float64: return d == DType::Float64;
    default: return false;
  }
}

size_t lt_workspace_bytes(int64_t out_elems) {
  // Split-K / stream-K partials grow with the output; 32 MiB is what cuBLAS suggests for Hopper.
  const size_t big = size_t(32) << 20, small = size_t(4) << 20;
  if (out_elems < 0) return big;
  const size_t want = static_cast<size_t>(out_elems) * 16 + small;
  return want < big ? want : big;
}

bool lt_gemm(const KernelContext& ctx, const LtGemm& g, void* ws, size_t ws_size) {
  if (!lt_types_supported(g.ab, g.d) || g.m <= 0 || g.n <= 0 || g.k <= 0 || g.batch <= 0) return false;
  if (g.c && g.c_col != 1) return false;
  if (g.batch > INT32_MAX) return false;
  const bool f64 = g.ab == DType::Float64;
  const cublasComputeType_t compute =
      f64 ? CUBLAS_COMPUTE_64F
          : (g.ab == DType::Float32 && ctx.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
  const cudaDataType_t scale_t = f64 ? CUDA_R_64F : CUDA_R_32F;
  const cudaDataType_t ab_t = lt_type(g.ab), d_t = lt_type(g.d);
  // Column-major view of the row-major problem: D^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M) [+ C^T].
  const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescOpaque_t desc_s;
  cublasLtMatrixLayoutOpaque_t la_s, lb_s, lc_s, ld_s;
  cublasLtMatmulPreferenceOpaque_t pref_s;
  cublasLtMatmulDesc_t desc = &desc_s;
  cublasLtMatrixLayout_t la = &la_s, lb = &lb_s, lc = &lc_s, ldl = &ld_s;
  cublasLtMatmulPreference_t pref = &pref_s;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescInit(desc, compute, scale_t));
  set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a);
  set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b);
  if (g.bias || g.act != kLtActNone) {
    // The epilogue is part of the descriptor, so the heuristic, AlgoCheck and the tactic probe all see it.
    cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    if (g.act == kLtActRelu) ep = g.bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    else if (g.act == kLtActGelu) ep = g.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    else if (g.act != kLtActNone) return false;
    set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, ep);
    if (g.bias) {
      set_attr(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
      set_attr(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, d_t);
    }
  }
  // Stored (pre-op) shapes, column-major.
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutInit(la, ab_t, static_cast<uint64_t>(g.trans_b ? g.k : g.n),
                                             static_cast<uint64_t>(g.trans_b ? g.n : g.k), g.ldb));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutInit(lb, ab_t, static_cast<uint64_t>(g.trans_a ? g.m : g.k),
                                             static_cast<uint64_t>(g.trans_a ? g.k : g.m), g.lda));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutInit(ldl, d_t, static_cast<uint64_t>(g.n), static_cast<uint64_t>(g.m), g.ldd));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutInit(lc, d_t, static_cast<uint64_t>(g.n), static_cast<uint64_t>(g.m),
                                             g.c ? g.ldc : g.ldd));
  if (g.batch > 1) {
    const int32_t count = static_cast<int32_t>(g.batch);
    for (cublasLtMatrixLayout_t l : {la, lb, lc, ldl}) set_layout_attr(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, count);
    set_layout_attr(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, g.stride_b);
    set_layout_attr(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, g.stride_a);
    set_layout_attr(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, g.c ? g.stride_c : g.stride_d);
    set_layout_attr(ldl, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, g.stride_d);
  }
  const void* cptr = g.c ? g.c : g.dptr;
  const uint32_t al_a = ptr_alignment(g.b), al_b = ptr_alignment(g.a), al_c = ptr_alignment(cptr),
                 al_d = ptr_alignment(g.dptr);
  const size_t ws_cap = ws ? ws_size : 0;
  const LtKey key = {ctx.device, static_cast<int64_t>(g.ab), static_cast<int64_t>(g.d), static_cast<int64_t>(compute),
                     g.trans_a, g.trans_b, g.m, g.n, g.k, g.batch, g.lda, g.ldb, g.c ? g.ldc : -1, g.ldd,
                     g.stride_a, g.stride_b, g.c ? g.stride_c : -1, g.stride_d, g.bias != nullptr,
                     al_a, al_b, al_c, al_d, static_cast<int64_t>(ws_cap), g.bias ? ptr_alignment(g.bias) : 0,
                     variant_hash(g.algo), g.act};
  LtChoice choice;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(lt_mutex());
    auto it = lt_cache().find(key);
    if (it != lt_cache().end()) choice = it->second, cached = true;
  }
  auto init_pref = [&] {
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceInit(pref));
    const uint64_t ws64 = ws_cap;
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws64,
                                                           sizeof(ws64)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_c},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_d}};
    for (const auto& [attr, v] : aligns)
      KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v)));
  };
  if (!cached) {
    if (!g.algo.empty()) {
      // A "cublaslt#<algo>" variant: valid only when cuBLASLt accepts it for this very call (same GPU, library,
      // shapes, alignments) within the workspace; otherwise the heuristic below, with one warning per call shape.
      cublasLtMatmulAlgo_t algo{};
      cublasLtMatmulHeuristicResult_t chk{};
      cublasStatus_t st = CUBLAS_STATUS_INVALID_VALUE;
      if (decode_lt_algo(g.algo, &algo)) st = cublasLtMatmulAlgoCheck(ctx.cublaslt, desc, la, lb, lc, ldl, &algo, &chk);
      if (st == CUBLAS_STATUS_SUCCESS && chk.workspaceSize <= ws_cap) {
        choice.found = true;
        choice.algo = algo;
        choice.workspace = chk.workspaceSize;
      } else {
        std::ostringstream why;
        why << "cuBLASLt: the algorithm recorded in tactic 'cublaslt#" << g.algo.substr(0, 16) << "...' does not run "
            << g.m << "x" << g.n << "x" << g.k << " batch " << g.batch << " (" << dtype_name(g.ab) << " -> "
            << dtype_name(g.d) << ") here (";
        if (st == CUBLAS_STATUS_SUCCESS) why << "needs " << chk.workspaceSize << " workspace bytes";
        else why << cublasLtGetStatusString(st);
        why << "); using the heuristic's algorithm";
        if (first_refusal(variant_hash(g.algo))) KILN_WARN(why.str());
        else KILN_DEBUG(why.str());
      }
    }
    if (!choice.found) {
      init_pref();
      cublasLtMatmulHeuristicResult_t res{};
      int returned = 0;
      const cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, desc, la, lb, lc, ldl, pref, 1, &res, &returned);
      if (st == CUBLAS_STATUS_SUCCESS && returned > 0 && res.state == CUBLAS_STATUS_SUCCESS &&
          res.workspaceSize <= ws_cap) {
        choice.found = true;
        choice.algo = res.algo;
        choice.workspace = res.workspaceSize;
      } else {  // no algorithm (or a combination cuBLASLt refuses): the caller runs kiln's own kernel
        KILN_DEBUG("cuBLASLt: no algorithm for " << g.m << "x" << g.n << "x" << g.k << " batch " << g.batch << " ("
                                                 << dtype_name(g.ab) << " -> " << dtype_name(g.d)
                                                 << "): " << cublasLtGetStatusString(st));
      }
    }
    std::lock_guard<std::mutex> lock(lt_mutex());
    lt_cache()[key] = choice;
  }
  if (VariantProbe* probe = g.algo.empty() ? VariantProbe::active() : nullptr) {
    // The builder lists this call's candidate algorithms: the heuristic's top N, in its order.
    init_pref();
    std::vector<cublasLtMatmulHeuristicResult_t> res(std::max<size_t>(probe->max(), 1));
    int returned = 0;
    std::vector<std::string> variants;
    if (cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, desc, la, lb, lc, ldl, pref, static_cast<int>(res.size()),
                                       res.data(), &returned) == CUBLAS_STATUS_SUCCESS)
      for (int i = 0; i < returned; ++i)
        if (res[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS && res[static_cast<size_t>(i)].workspaceSize <= ws_cap)
          variants.push_back(encode_lt_algo(res[static_cast<size_t>(i)].algo));
    probe->record(std::move(variants));
  }
  if (!choice.found) return false;
  const float alpha_f = static_cast<float>(g.alpha), beta_f = g.c ? static_cast<float>(g.beta) : 0.f;
  const double alpha_d = g.alpha, beta_d = g.c ? g.beta : 0.0;
  const void* alpha = f64 ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha_f);
  const void* beta = f64 ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
  KILN_CUBLAS_CHECK(cublasLtMatmul(ctx.cublaslt, desc, alpha, g.b, la, g.a, lb, beta, cptr, lc, g.dptr, ldl,
                                   &choice.algo, choice.workspace ? ws : nullptr, choice.workspace, ctx.stream));
  return true;
}

void naive_gemm(const KernelContext& ctx, const LtGemm& g) {
  if (g.act != kLtActNone) KILN_THROW(InvalidState, "naive_gemm: no activation epilogue (apply it after the GEMM)");
  if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
  NaiveParams p{};
  p.m = g.m, p.n = g.n, p.k = g.k, p.batch = g.batch;
  p.a = g.a, p.stride_a = g.stride_a;
  p.a_sm = g.trans_a ? 1 : g.lda;
  p.a_sk = g.trans_a ? g.lda : 1;
  p.b = g.b, p.stride_b = g.stride_b;
  p.b_sk = g.trans_b ? 1 : g.ldb;
  p.b_sn = g.trans_b ? g.ldb : 1;
  p.c = g.c, p.c_sm = g.ldc, p.c_sn = g.c_col, p.stride_c = g.stride_c;
  p.d = g.dptr, p.ldd = g.ldd, p.stride_d = g.stride_d;
  p.bias = g.bias;
  p.alpha = g.alpha, p.beta = g.beta;
  if (g.ab != g.d) {
    if (g.d != DType::Float32) KILN_THROW(Unsupported, "naive_gemm: " << dtype_name(g.ab) << " -> " << dtype_name(g.d));
    if (g.ab == DType::Float16) return launch_naive<__half, float, float>(ctx, p);
    if (g.ab == DType::BFloat16) return launch_naive<__nv_bfloat16, float, float>(ctx, p);
    KILN_THROW(Unsupported, "naive_gemm: " << dtype_name(g.ab) << " -> " << dtype_name(g.d));
  }
  switch (g.ab) {
    case DType::Float32: return launch_naive<float, float, float>(ctx, p);
    case DType::Float16: return launch_naive<__half, __half, float>(ctx, p);
    case DType::BFloat16: return launch_naive<__nv_bfloat16, __nv_bfloat16, float>(ctx, p);
    case DType::Float64: return launch_naive<double, double, double>(ctx, p);
    case DType::Int32: return launch_naive<int32_t, int32_t, int64_t>(ctx, p);
    case DType::Int64: return launch_naive<int64_t, int64_t, int64_t>(ctx, p);
    default: break;
  }
  KILN_THROW(Unsupported, "naive_gemm: dtype " << dtype_name(g.ab));
}

void run_gemm(const KernelContext& ctx, const LtGemm& g, void* ws, size_t ws_size) {
  if (!lt_gemm(ctx, g, ws, ws_size)) naive_gemm(ctx, g);
}

// ---- MatMul ------------------------------------------------------------------------------------------------------
namespace {

bool is_gemm_type(DType dt) {
  return dt == DType::Float32 || dt == DType::Float16 || dt == DType::BFloat16 || dt == DType::Float64 ||
         dt == DType::Int32 || dt == DType::Int64;
}
bool is_lt_type(DType dt) { return lt_types_supported(dt, dt); }

// Whether the batch offsets `st` (in matrices, 0 on broadcast dims) over dims [s, r) are flat_index * u.
bool uniform_stride(const Shape& dims, const std::vector<int64_t>& st, size_t s, int64_t* u) {
  bool have = false;
  int64_t uu = 0, inner = 1;
  for (size_t d = dims.size(); d-- > s;) {
    if (dims[d] != 1) {
      if (!have) {
        if (st[d] % inner != 0) return false;
        uu = st[d] / inner;
        have = true;
      } else if (st[d] != uu * inner) {
        return false;
      }
    }
    inner *= dims[d];
  }
  *u = uu;
  return true;
}

// Per output batch dim, the input's offset in matrices (0 where it broadcasts); in_b is right-aligned to out_b.
std::vector<int64_t> batch_strides(const Shape& in_b, const Shape& out_b) {
  std::vector<int64_t> st(out_b.size(), 0);
  int64_t stride = 1;
  for (size_t i = in_b.size(); i-- > 0;) {
    const size_t d = out_b.size() - in_b.size() + i;
    st[d] = in_b[i] == 1 ? 0 : stride;
    stride *= in_b[i];
  }
  return st;
}

void run_matmul(const KernelContext& ctx, KernelArgs& args, bool use_lt) {
  const ir::Node& n = args.node;
  if (args.in.size() < 2 || !args.in[0] || !args.in[1]) KILN_THROW(InvalidModel, n.label() << ": MatMul needs A and B");
  const DTensor& A = *args.in[0];
  const DTensor& B = *args.in[1];
  DTensor& Y = args.out[0];
  Shape as = A.shape, bs = B.shape;
  if (as.empty() || bs.empty()) KILN_THROW(InvalidModel, n.label() << ": MatMul operands must not be scalars");
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  if (bs[bs.size() - 2] != K)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: A " << shape_str(A.shape) << ", B "
                                       << shape_str(B.shape));
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  Shape batch(std::max(ab.size(), bb.size()), 1);
  for (size_t i = 0; i < batch.size(); ++i) {
    const int64_t x = i + ab.size() >= batch.size() ? ab[i + ab.size() - batch.size()] : 1;
    const int64_t y = i + bb.size() >= batch.size() ? bb[i + bb.size() - batch.size()] : 1;
    if (x != y && x != 1 && y != 1)
      KILN_THROW(InvalidModel, n.label() << ": batch dims of A " << shape_str(A.shape) << " and B "
                                         << shape_str(B.shape) << " do not broadcast");
    batch[i] = x == 1 ? y : x;
  }
  const int64_t nb = shape_numel(batch);
  if (Y.numel() != nb * M * N)
    KILN_THROW(InvalidState, n.label() << ": output holds " << Y.numel() << " elements, MatMul gives " << nb * M * N);
  if (Y.numel() == 0) return;
  const size_t es = dtype_size(A.dtype);
  if (K == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(Y.data, 0, Y.nbytes(), ctx.stream));
    return;
  }
  LtGemm g;
  g.ab = g.d = A.dtype;
  g.algo = tactic_variant(n.tactic);  // "cublaslt#<algo>": that algorithm (checked), else the heuristic's
  g.m = M, g.n = N, g.k = K;
  g.lda = K, g.ldb = N, g.ldd = N;
  g.alpha = 1.0, g.beta = 1.0;  // no C: beta unused; alpha == beta == 1 keeps integer sums wrapping like the CPU
  const int64_t na = shape_numel(ab), nbb = shape_numel(bb);
  auto gemm = [&](const LtGemm& x) {
    if (use_lt) run_gemm(ctx, x, ctx.workspace, ctx.workspace_size);
    else naive_gemm(ctx, x);
  };
  if (nbb == 1 && na == nb) {  // B shared by every batch: one GEMM with the batch folded into M
    g.m = nb * M;
    g.a = A.data, g.b = B.data, g.dptr = Y.data;
    gemm(g);
    return;
  }
  const std::vector<int64_t> sa = batch_strides(ab, batch), sb = batch_strides(bb, batch);
  size_t s = 0;
  int64_t ua = 0, ub = 0;
  while (!(uniform_stride(batch, sa, s, &ua) && uniform_stride(batch, sb, s, &ub))) ++s;
  int64_t inner = 1, outer = 1;
  for (size_t d = 0; d < batch.size(); ++d) (d < s ? outer : inner) *= batch[d];
  g.batch = inner;
  g.stride_a = ua * M * K, g.stride_b = ub * K * N, g.stride_d = M * N;
  for (int64_t o = 0; o < outer; ++o) {  // batch dims that no single stride covers: one call each
    int64_t offa = 0, offb = 0, rem = o;
    for (size_t d = s; d-- > 0;) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      offa += idx * sa[d], offb += idx * sb[d];
    }
    g.a = static_cast<const char*>(A.data) + static_cast<size_t>(offa * M * K) * es;
    g.b = static_cast<const char*>(B.data) + static_cast<size_t>(offb * K * N) * es;
    g.dptr = static_cast<char*>(Y.data) + static_cast<size_t>(o * inner * M * N) * es;
    gemm(g);
  }
}

size_t matmul_workspace(const ir::Node&, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>& out) {
  if (in.empty() || !is_lt_type(in[0].dtype)) return 0;
  if (out.empty() || !out[0].is_static()) return lt_workspace_bytes(-1);
  return lt_workspace_bytes(shape_numel(out[0].static_shape()));
}

// ---- Gemm --------------------------------------------------------------------------------------------------------
void run_gemm_op(const KernelContext& ctx, KernelArgs& args, bool use_lt) {
  const ir::Node& n = args.node;
  if (args.in.size() < 2 || !args.in[0] || !args.in[1]) KILN_THROW(InvalidModel, n.label() << ": Gemm needs A and B");
  const DTensor& A = *args.in[0];
  const DTensor& B = *args.in[1];
  const DTensor* C = args.in.size() > 2 ? args.in[2] : nullptr;
  DTensor& Y = args.out[0];
  if (A.rank() != 2 || B.rank() != 2)
    KILN_THROW(InvalidModel, n.label() << ": A and B must be 2-D, got " << shape_str(A.shape) << " and "
                                       << shape_str(B.shape));
  const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  const double alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const int64_t M = A.shape[ta ? 1 : 0], K = A.shape[ta ? 0 : 1];
  const int64_t Kb = B.shape[tb ? 1 : 0], N = B.shape[tb ? 0 : 1];
  if (K != Kb)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: A " << shape_str(A.shape)
                                       << (ta ? " (transposed)" : "") << ", B " << shape_str(B.shape)
                                       << (tb ? " (transposed)" : ""));
  if (Y.numel() != M * N) KILN_THROW(InvalidState, n.label() << ": output is " << shape_str(Y.shape) << ", want [" << M << "," << N << "]");
  if (M == 0 || N == 0) return;
  LtGemm g;
  g.ab = g.d = A.dtype;
  g.algo = tactic_variant(n.tactic);  // "cublaslt#<algo>": that algorithm (checked), else the heuristic's
  g.trans_a = ta, g.trans_b = tb;
  g.m = M, g.n = N, g.k = K;
  g.a = A.data, g.lda = A.shape[1];
  g.b = B.data, g.ldb = B.shape[1];
  g.dptr = Y.data, g.ldd = N;
  g.alpha = alpha, g.beta = beta;
  const bool has_c = C && C->data && C->numel() > 0;
  if (has_c && C->rank() > 2) KILN_THROW(InvalidModel, n.label() << ": C must have rank <= 2, got " << shape_str(C->shape));
  if (has_c) {
    const Shape& cs = C->shape;
    const int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
    if ((cm != 1 && cm != M) || (cn != 1 && cn != N))
      KILN_THROW(InvalidModel, n.label() << ": C " << shape_str(cs) << " does not broadcast to [" << M << "," << N << "]");
    g.c = C->data;
    g.ldc = cm == 1 ? 0 : cn;
    g.c_col = cn == 1 ? 0 : 1;
  }
  const bool lt = use_lt && is_lt_type(A.dtype) && K > 0;
  if (!lt) {
    naive_gemm(ctx, g);
    return;
  }
  if (has_c && beta == 0.0) g.c = nullptr;
  if (g.c && g.ldc == N && g.c_col == 1) {  // full [M, N] C read in place of D
    g.ldc = N;
  } else if (g.c) {
    if (beta == 1.0 && g.ldc == 0 && g.c_col == 1 && N > 0) {  // a row of N: the bias epilogue
      LtGemm e = g;
      e.c = nullptr, e.bias = C->data;
      if (lt_gemm(ctx, e, ctx.workspace, ctx.workspace_size)) return;
    }
    // Broadcast C into Y, then Y = alpha * A * B + beta * Y.
    const BroadcastIndex bi = make_broadcast(C->shape, Shape{M, N});
    dispatch_bytes(Y.dtype, [&](auto tag) {
      using T = decltype(tag);
      broadcast_copy_kernel<T><<<grid_for(M * N), kBlock, 0, ctx.stream>>>(C->as<const T>(), Y.as<T>(), M * N, bi);
    });
    KILN_CUDA_LAUNCH_CHECK("gemm broadcast C");
    g.c = Y.data, g.ldc = N, g.c_col = 1;
  }
  run_gemm(ctx, g, ctx.workspace, ctx.workspace_size);
}

size_t gemm_workspace(const ir::Node&, const std::vector<ir::ValueType>& in, const std::vector<ir::ValueType>& out) {
  if (in.empty() || !is_lt_type(in[0].dtype)) return 0;
  if (out.empty() || !out[0].is_static()) return lt_workspace_bytes(-1);
  return lt_workspace_bytes(shape_numel(out[0].static_shape()));
}

bool supports_lt(const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && is_lt_type(in[0].dtype); }
bool supports_own(const ir::Node&, const std::vector<ir::ValueType>& in) { return !in.empty() && is_gemm_type(in[0].dtype); }

}  // namespace

void register_gemm_kernels() {
  register_cuda_tactic("", "MatMul", CudaTactic{"cublaslt", supports_lt,
                                                [](const KernelContext& c, KernelArgs& a) { run_matmul(c, a, true); },
                                                matmul_workspace});
  register_cuda_tactic("", "MatMul", CudaTactic{"cuda", supports_own,
                                                [](const KernelContext& c, KernelArgs& a) { run_matmul(c, a, false); },
                                                nullptr});
  register_cuda_tactic("", "Gemm", CudaTactic{"cublaslt", supports_lt,
                                              [](const KernelContext& c, KernelArgs& a) { run_gemm_op(c, a, true); },
                                              gemm_workspace});
  register_cuda_tactic("", "Gemm", CudaTactic{"cuda", supports_own,
                                              [](const KernelContext& c, KernelArgs& a) { run_gemm_op(c, a, false); },
                                              nullptr});
  register_einsum_kernels();
  register_attention_kernels();
  register_fused_attention_kernels();
  register_fused_matmul_kernels();
}

}  // namespace kiln::runtime::cuda
