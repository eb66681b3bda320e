#include "runtime/cpu/cpu_blas.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include "runtime/cpu/thread_pool.h"
#include "util/error.h"

extern "C" {
// OpenBLAS extensions (declared in its cblas.h; repeated here so another cblas.h on the include path still works).
void openblas_set_num_threads(int num_threads);
char* openblas_get_config(void);
}

namespace kiln::runtime::cpu {
namespace {

void init_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Below this many multiply-adds per chunk, splitting costs more than it saves.
constexpr int64_t kMinMacsPerChunk = 1 << 17;

void sgemm_one(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(std::max<int64_t>(lda, 1)), B,
              static_cast<int>(std::max<int64_t>(ldb, 1)), beta, C, static_cast<int>(std::max<int64_t>(ldc, 1)));
}

}  // namespace

void gemm_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded) {
  if (M <= 0 || N <= 0) return;
  for (int64_t v : {M, N, K, lda, ldb, ldc})
    if (v > INT_MAX) KILN_THROW(Unsupported, "GEMM dimension " << v << " exceeds the BLAS int range");
  if (K == 0) {  // C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  init_blas();
  const bool split_m = M >= N;
  const int64_t dim = split_m ? M : N;
  const int64_t per_row = (split_m ? N : M) * K;
  // At most one chunk per thread: each chunk is a separate sgemm call that packs its operands again.
  const int64_t threads = cpu_threads();
  const int64_t grain = std::max<int64_t>({16, (kMinMacsPerChunk + per_row - 1) / per_row, (dim + threads - 1) / threads});
  if (!threaded || parallel_chunks(dim, grain) <= 1) {
    sgemm_one(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  parallel_for(dim, grain, [&](int64_t lo, int64_t hi) {
    if (split_m) {
      const float* a = ta ? A + lo : A + lo * lda;
      sgemm_one(ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta, C + lo * ldc, ldc);
    } else {
      const float* b = tb ? B + lo * ldb : B + lo;
      sgemm_one(ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
    }
  });
}

std::string blas_config() {
  const char* c = openblas_get_config();
  return std::string("OpenBLAS ") + (c ? c : "?");
}

}  // namespace kiln::runtime::cpu
