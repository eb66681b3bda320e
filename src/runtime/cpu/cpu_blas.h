// Float32 GEMM through OpenBLAS (Debian's libopenblas), split over kiln's CPU threads (thread_pool.h).
// OpenBLAS itself is set to one thread, so kiln's pool is the only set of threads doing CPU work.
#pragma once
#include <cstdint>
#include <string>

namespace kiln::runtime::cpu {

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major; op(X) = X^T when the flag is set. lda / ldb / ldc
// are the row strides of A, B and C as stored. Splits the larger of M and N over the pool when the work is big
// enough; `threaded` = false keeps it on the calling thread (callers that already split work among threads).
void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, bool threaded = true);

// "OpenBLAS 0.3.21 ..." as the library reports its build (for logs and bench tables).
std::string blas_config();

}  // namespace kiln::runtime::cpu
