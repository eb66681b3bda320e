// Branch-free float32 exp / tanh / erf that compilers vectorize (the fast elementwise tactics use them; std::exp and
// friends are scalar calls). exp: Cephes' range reduction and degree-6 polynomial (~1 ulp); tanh and erf: the
// rational approximations Eigen uses for float (a few ulp; tanh clamped at +-7.9, erf at +-4 where the float result
// is +-1). NaN stays NaN; exp overflows to +inf above 88.72 and reaches 0 below -103.97, as float does.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

// Hot float loops are compiled three times (AVX-512, AVX2 + FMA, baseline) and picked at load time (GCC ifunc).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define KILN_CPU_CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define KILN_CPU_CLONES
#endif

namespace kiln::runtime::cpu {

inline float fast_exp(float x) {
  const float xc = std::min(std::max(x, -103.9720840454f), 88.72283935546875f);
  const float fx = xc * 1.44269504088896341f + 0.5f;
  int32_t i = static_cast<int32_t>(fx);
  const float n = static_cast<float>(i) - (fx < static_cast<float>(i) ? 1.0f : 0.0f);  // floor(fx)
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  // 2^n in two factors, so n in [-150, 128] (denormal results and the top of the range) stays representable.
  const int32_t ni = static_cast<int32_t>(n), h = ni >> 1;
  const float p1 = std::bit_cast<float>((h + 127) << 23), p2 = std::bit_cast<float>((ni - h + 127) << 23);
  float out = y * p1 * p2;
  out = x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : out;
  return x != x ? x : out;
}

inline float fast_tanh(float a) {
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
  return (a < 0.0004f && a > -0.0004f) ? a : r;
}

inline float fast_erf(float a) {
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

inline float fast_sigmoid(float v) {
  const float e = fast_exp(-std::abs(v));  // in (0, 1]
  const float d = 1.0f / (1.0f + e);
  return v >= 0.0f ? d : e * d;
}

}  // namespace kiln::runtime::cpu
