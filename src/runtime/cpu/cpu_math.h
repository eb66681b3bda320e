// Branch-free float32 exp / tanh / erf that compilers vectorize (the fast elementwise tactics use them; std::exp and
// friends are scalar calls). exp: Cephes' range reduction and degree-6 polynomial (~1 ulp); tanh and erf: the
// rational approximations Eigen uses for float (a few ulp; tanh clamped at +-7.9, erf at +-4 where the float result
// is +-1). NaN stays NaN; exp overflows to +inf above 88.72 and gives exp(-87) = 1.6e-38 below -87 (no denormals
// reach the slow paths of the FPU; the absolute error is below 1.7e-38).
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// Hot float loops are compiled three times (AVX-512, AVX2, baseline) and picked at load time (GCC ifunc). Not under
// sanitizers: the ifunc resolver runs during relocation, before the sanitizer runtime is up, and would crash.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define KILN_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_CPU_CLONES
#endif
// Helpers called from the cloned loops must be inlined into each clone (a plain inline function is not, across the
// target change, and the loop then calls it element by element).
#if defined(__GNUC__)
#define KILN_CPU_INLINE inline __attribute__((always_inline))
#else
#define KILN_CPU_INLINE inline
#endif

namespace kiln::runtime::cpu {

// cond ? a : b through bit masks: GCC does not vectorize some loops holding several float selects (with AVX-512
// targets), but vectorizes this.
KILN_CPU_INLINE float blend(bool cond, float a, float b) {
  const int32_t m = -static_cast<int32_t>(cond);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

KILN_CPU_INLINE float fast_exp(float x) {
  // Clamped to [-87, 88.7228]: below, the result is exp(-87) = 1.6e-38 instead of a smaller number or 0 (no slow
  // denormals follow); at the top 2^128 rounds to +inf as float does. std::max(-87, NaN) is -87: no conversion of
  // NaN to int; NaN is put back at the end.
  const float xc = std::min(std::max(-87.0f, x), 88.72283935546875f);
  const float fx = xc * 1.44269504088896341f + 0.5f;
  // floor(fx) for fx in [-125, 129] by truncating a positive value (a select here would stop vectorization).
  const float n = static_cast<float>(static_cast<int32_t>(fx + 256.0f)) - 256.0f;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  // 2^n in two factors, so n = 128 stays representable.
  const int32_t ni = static_cast<int32_t>(n), h = ni >> 1;
  const float p1 = std::bit_cast<float>((h + 127) << 23), p2 = std::bit_cast<float>((ni - h + 127) << 23);
  return blend(x != x, x, y * p1 * p2);
}

KILN_CPU_INLINE float fast_tanh(float a) {
  const float x = std::min(std::max(a, -7.90531110763549805f), 7.90531110763549805f);
  const float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  const float r = p / q;
  return blend(a < 0.0004f && a > -0.0004f, a, r);
}

KILN_CPU_INLINE float fast_erf(float a) {
  const float x = std::min(std::max(a, -4.0f), 4.0f);
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return p / q;
}

KILN_CPU_INLINE float fast_sigmoid(float v) {
  const float e = fast_exp(-std::abs(v));  // in (0, 1]
  const float d = 1.0f / (1.0f + e);
  return blend(v >= 0.0f, d, e * d);
}

// Sum and max of f(k) for k in [0, n) in 16 independent float lanes, so the loops vectorize without reassociation
// flags (a plain float reduction does not); the lanes are added in double at the end.
template <class F>
KILN_CPU_INLINE double lane_sum(int64_t n, F f) {
  float acc[16] = {};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += f(k + j);
  double s = 0;
  for (; k < n; ++k) s += f(k);
  // The lanes pairwise (a tree of vector adds, not a chain of 16 dependent ones: short rows are mostly this).
  double d[16];
  for (int j = 0; j < 16; ++j) d[j] = acc[j];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) d[j] += d[j + w];
  return s + d[0];
}
// GCC / clang vector extensions: 16 floats (one AVX-512 register, two AVX2 or four SSE registers per operation).
typedef float KilnV16f __attribute__((vector_size(64)));
typedef int32_t KilnV16i __attribute__((vector_size(64)));

// max of x[0..n), ignoring NaN (as `v > m ? v : m` does); -inf for n = 0. Written with vector extensions because
// GCC does not vectorize a float max reduction without -ffinite-math-only.
KILN_CPU_INLINE float lane_max(const float* x, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  KilnV16f m = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    KilnV16f v;
    std::memcpy(&v, x + k, sizeof v);
    const KilnV16i gt = v > m;
    m = (KilnV16f)(((KilnV16i)v & gt) | ((KilnV16i)m & ~gt));
  }
  float r = ninf;
  for (; k < n; ++k) r = x[k] > r ? x[k] : r;
  for (int j = 0; j < 16; ++j) r = m[j] > r ? m[j] : r;
  return r;
}

}  // namespace kiln::runtime::cpu
