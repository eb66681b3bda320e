// GEMM-shaped CPU tactics through OpenBLAS: MatMul "blas" (numpy batching and broadcasting, 1-D operands) and
// Gemm "blas" (alpha, beta, transA, transB, broadcast C). float32, and float16 / bfloat16 computed in float32 and
// rounded once on store. Other dtypes are left to "ref" (SupportsFn).
#include "ops/common.h"
#include "runtime/cpu/cpu_blas.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_gemm {

using ops::broadcast_strides;

bool supports_float(const ir::Node&, const std::vector<const ir::ValueType*>& in) { return all_f32_like(in, 2); }

void matmul_blas(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 2);
  const Tensor& a = ops::in_tensor(n, in, 0);
  const Tensor& b = ops::in_tensor(n, in, 1);
  if (!is_f32_like(a.dtype()) || b.dtype() != a.dtype() || a.rank() == 0 || b.rank() == 0)
    return run_reference(n, in, out);
  const ops::MatMulShapes ms = ops::matmul_shapes(n, a, b);
  const int64_t M = ms.M, K = ms.K, N = ms.N;
  const Shape &ab = ms.a_batch, &bb = ms.b_batch, &batch = ms.batch;
  Tensor y = uninit_tensor(a.dtype(), ms.y);
  std::vector<float> sa, sb;
  const float* pa = f32_data(a, sa);
  const float* pb = f32_data(b, sb);
  F32Out yo(y);
  float* py = yo.data();
  const int64_t nbatch = shape_numel(batch);
  if (shape_numel(bb) == 1) {
    // B is one matrix: the batch of A folds into its rows.
    gemm_f32(false, false, nbatch * M, N, K, 1.0f, pa, K, pb, N, 0.0f, py, N);
  } else if (nbatch > 0) {
    std::vector<int64_t> st[2] = {broadcast_strides(ab, batch), broadcast_strides(bb, batch)};
    std::vector<std::pair<int64_t, int64_t>> offs(static_cast<size_t>(nbatch));
    ops::for_each_broadcast(batch, st, [&](int64_t bi, const int64_t* off) {
      offs[static_cast<size_t>(bi)] = {off[0] * M * K, off[1] * K * N};
    });
    if (nbatch >= cpu_threads()) {  // one whole GEMM per thread at a time
      parallel_for(nbatch, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
          gemm_f32(false, false, M, N, K, 1.0f, pa + offs[i].first, K, pb + offs[i].second, N, 0.0f,
                   py + i * M * N, N, false);
      });
    } else {
      for (int64_t i = 0; i < nbatch; ++i)
        gemm_f32(false, false, M, N, K, 1.0f, pa + offs[i].first, K, pb + offs[i].second, N, 0.0f, py + i * M * N, N);
    }
  }
  yo.commit();
  out[0] = y;
}

void gemm_blas(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, n.opset >= 11 ? 2 : 3, 3);
  const Tensor& a = ops::in_tensor(n, in, 0);
  const Tensor& b = ops::in_tensor(n, in, 1);
  const Tensor* c = in.size() > 2 ? in[2] : nullptr;
  if (!is_f32_like(a.dtype()) || b.dtype() != a.dtype() || (c && c->dtype() != a.dtype()) || a.rank() != 2 ||
      b.rank() != 2 || (c && c->rank() > 2))
    return run_reference(n, in, out);
  const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const int64_t M = a.shape()[ta ? 1 : 0], K = a.shape()[ta ? 0 : 1];
  const int64_t Kb = b.shape()[tb ? 1 : 0], N = b.shape()[tb ? 0 : 1];
  if (K != Kb)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: A " << a.type_str() << (ta ? " (transposed)" : "")
                                       << ", B " << b.type_str() << (tb ? " (transposed)" : ""));
  std::vector<int64_t> cst;
  if (c) {
    const Shape& cs = c->shape();
    for (size_t i = 0; i < cs.size(); ++i) {
      const int64_t want = i + 2 - cs.size() == 0 ? M : N;
      if (cs[i] != 1 && cs[i] != want)
        KILN_THROW(InvalidModel, n.label() << ": C dim " << cs[i] << " cannot broadcast to " << want);
    }
    cst = broadcast_strides(cs, {M, N});
  }
  Tensor y = uninit_tensor(a.dtype(), {M, N});
  std::vector<float> sa, sb, sc;
  const float* pa = f32_data(a, sa);
  const float* pb = f32_data(b, sb);
  F32Out yo(y);
  float* py = yo.data();
  float gemm_beta = 0.0f;
  if (c && beta != 0.0f) {
    const float* pc = f32_data(*c, sc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) py[i * N + j] = beta * pc[i * cst[0] + j * cst[1]];
    gemm_beta = 1.0f;
  }
  gemm_f32(ta, tb, M, N, K, alpha, pa, ta ? M : K, pb, tb ? K : N, gemm_beta, py, N);
  yo.commit();
  out[0] = y;
}

}  // namespace cpu_gemm

void register_gemm_tactics() {
  register_cpu_tactic("", "MatMul", {"blas", cpu_gemm::matmul_blas, cpu_gemm::supports_float});
  register_cpu_tactic("", "Gemm", {"blas", cpu_gemm::gemm_blas, cpu_gemm::supports_float});
}

}  // namespace kiln::runtime::cpu
