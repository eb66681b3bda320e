// "fast" pooling CPU tactics, float32 only: MaxPool (without the Indices output), AveragePool, GlobalAveragePool,
// GlobalMaxPool. Per (image, channel) plane, split over kiln's threads. 1-D and 2-D windows are separable: maxima
// (or sums) along each input row first, then down the columns, vectorized. MaxPool keeps the reference's results: a
// plane holding a NaN (the reference keeps a NaN only where it is a window's first valid tap) and 3-D windows take
// the general path, which walks the taps in the reference's order over whole output rows. AveragePool divides by the
// valid count, or with count_include_pad by the count of taps inside input + pads.
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/spatial.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_pool {

using ops::Window3;

// Geometry of MaxPool / AveragePool; false when the fast path does not apply (the reference then runs).
bool pool_window(const ir::Node& n, const Tensor& x, bool is_max, Window3& w, Shape& ys) {
  if (x.dtype() != DType::Float32 || x.rank() < 3 || x.rank() > 5 || !n.has_attr("kernel_shape")) return false;
  const size_t nsp = static_cast<size_t>(x.rank() - 2);
  std::vector<int64_t> ks = n.attr_ints("kernel_shape", {});
  if (ks.size() != nsp) return false;
  for (int64_t k : ks)
    if (k <= 0) return false;
  if (is_max && n.attr_int("storage_order", 0) != 0 && n.attr_int("storage_order", 0) != 1) return false;
  const bool dil = is_max ? n.opset >= 10 : n.opset >= 19;
  ops::SpatialAttrs sp = ops::read_spatial_attrs(n, nsp, ks, n.opset >= 10, dil);
  w = ops::make_window3(n, sp, x.shape());
  ys = {x.shape()[0], x.shape()[1]};
  for (size_t i = 0; i < nsp; ++i) ys.push_back(w.out[3 - nsp + i]);
  return true;
}

// Calls f(k0, k1, k2, o0, o1, i0, i1, vlo, vhi, base2) for every tap and output row with valid (i0, i1), in the
// reference's tap order; output positions [vlo, vhi) of the row read input column o2 * s2 + base2.
template <class F>
void for_taps(const Window3& w, F&& f) {
  for (int64_t k0 = 0; k0 < w.k[0]; ++k0)
    for (int64_t k1 = 0; k1 < w.k[1]; ++k1)
      for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
        const int64_t base2 = k2 * w.d[2] - w.pb[2];
        int64_t vlo, vhi;
        valid_range(w.s[2], base2, w.in[2], 0, w.out[2], vlo, vhi);
        if (vhi <= vlo) continue;
        for (int64_t o0 = 0; o0 < w.out[0]; ++o0) {
          const int64_t i0 = o0 * w.s[0] - w.pb[0] + k0 * w.d[0];
          if (i0 < 0 || i0 >= w.in[0]) continue;
          for (int64_t o1 = 0; o1 < w.out[1]; ++o1) {
            const int64_t i1 = o1 * w.s[1] - w.pb[1] + k1 * w.d[1];
            if (i1 < 0 || i1 >= w.in[1]) continue;
            f(o0, o1, i0, i1, vlo, vhi, base2);
          }
        }
      }
}

// 1-D / 2-D windows (no taps along Window3's first axis) go through the separable path.
bool separable(const Window3& w) { return w.in[0] == 1 && w.k[0] == 1 && w.out[0] == 1; }

KILN_CPU_CLONES bool has_nan(const float* x, int64_t n) {
  int32_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= x[i] != x[i];
  return any != 0;
}

// Separable max (is_max) or sum over one plane: per output row, the vertical combination of its window's valid
// input rows over the whole width first (contiguous, vectorized; into `vrow`, 2 W + 96 floats: the row, then for
// stride 2 its even and odd columns), then the horizontal result
// for every output column from that one row (strided by the stride: on output rows only, not on every input row).
// Max assumes a NaN-free plane; windows without a valid tap give -inf (max) or 0 (sum).
KILN_CPU_CLONES void pool_plane_2d(const float* xp, float* yp, const Window3& w, float* vrow, bool is_max) {
  const int64_t H = w.in[1], W = w.in[2], OH = w.out[1], OW = w.out[2];
  const float init = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
  const KilnV16f vinit = KilnV16f{} + init;
  // The register path for stride 2 with taps 2 o - 1 .. 2 o + 2 (kernel <= 3 with pad <= 1, or kernel 4 with pad 1;
  // no dilation): it reads the row up to Wr (past W: init), within vrow's 2 W + 96 floats.
  const bool fast2 = w.s[2] == 2 && w.d[2] == 1 && w.pb[2] <= 1 && w.k[2] - w.pb[2] <= 3;
  const int64_t Wr = 2 * ((OW + 15) / 16 * 16) + 33;
  for (int64_t oh = 0; oh < OH; ++oh) {
    // 16 columns at a time in a register over the window's rows, stored once.
    int64_t i = 0;
    for (; i + 16 <= W; i += 16) {
      KilnV16f m = vinit;
      for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
        const int64_t i1 = oh * w.s[1] - w.pb[1] + k1 * w.d[1];
        if (i1 < 0 || i1 >= H) continue;
        KilnV16f v;
        std::memcpy(&v, xp + i1 * W + i, sizeof v);
        if (is_max)
          m = m > v ? m : v;
        else
          m += v;
      }
      std::memcpy(vrow + i, &m, sizeof m);
    }
    for (; i < W; ++i) {
      float m = init;
      for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
        const int64_t i1 = oh * w.s[1] - w.pb[1] + k1 * w.d[1];
        if (i1 < 0 || i1 >= H) continue;
        m = is_max ? std::max(m, xp[i1 * W + i]) : m + xp[i1 * W + i];
      }
      vrow[i] = m;
    }
    float* yr = yp + oh * OW;
    if (fast2) {
      // Stride 2, taps at columns 2 o - 1 .. 2 o + 2: the row past W is `init` (what a padded tap contributes), the
      // even and odd columns of 32 at a time go to registers, and the taps are those or their neighbours shifted by
      // one lane: no round trip through memory between the passes.
      for (int64_t k = W; k < Wr; ++k) vrow[k] = init;
      KilnV16f prev_odd = vinit;
      for (int64_t j = 0; j < OW; j += 16) {
        KilnV16f a, b;
        std::memcpy(&a, vrow + 2 * j, sizeof a);
        std::memcpy(&b, vrow + 2 * j + 16, sizeof b);
        const KilnV16f ev = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const KilnV16f od = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        KilnV16f m = vinit;
        for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
          const int64_t base = k2 - w.pb[2];
          KilnV16f t;
          if (base == -1) {
            t = __builtin_shufflevector(prev_odd, od, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
          } else if (base == 0) {
            t = ev;
          } else if (base == 1) {
            t = od;
          } else {
            const KilnV16f nx = KilnV16f{} + vrow[2 * j + 32];
            t = __builtin_shufflevector(ev, nx, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
          }
          if (is_max)
            m = m > t ? m : t;
          else
            m += t;
        }
        prev_odd = od;
        const int64_t n = OW - j;
        if (n >= 16)
          std::memcpy(yr + j, &m, sizeof m);
        else
          for (int64_t q = 0; q < n; ++q) yr[q + j] = m[q];
      }
      continue;
    }
    for (int64_t o = 0; o < OW; ++o) yr[o] = init;
    // Stride 2: the row split into even and odd columns first, so every tap reads consecutive floats.
    const bool split = w.s[2] == 2;
    float* half[2] = {vrow + W, vrow + W + (W + 1) / 2};
    if (split) {
      int64_t j = 0;
      for (; 2 * j + 32 <= W; j += 16) {
        KilnV16f a, b;
        std::memcpy(&a, vrow + 2 * j, sizeof a);
        std::memcpy(&b, vrow + 2 * j + 16, sizeof b);
        const KilnV16f e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const KilnV16f o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        std::memcpy(half[0] + j, &e, sizeof e);
        std::memcpy(half[1] + j, &o, sizeof o);
      }
      for (int64_t k = 2 * j; k < W; ++k) half[k & 1][k >> 1] = vrow[k];
    }
    for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
      const int64_t base = k2 * w.d[2] - w.pb[2], s = w.s[2];
      int64_t vlo, vhi;
      valid_range(s, base, W, 0, OW, vlo, vhi);
      if (split) {
        // Column o * 2 + base is column o + floor(base / 2) of the half of its parity.
        const int64_t par = base & 1, shift = (base - par) / 2;
        const float* src = half[par] + shift;
        if (is_max)
          for (int64_t o = vlo; o < vhi; ++o) yr[o] = yr[o] > src[o] ? yr[o] : src[o];
        else
          for (int64_t o = vlo; o < vhi; ++o) yr[o] += src[o];
      } else if (is_max) {
        for (int64_t o = vlo; o < vhi; ++o) yr[o] = std::max(yr[o], vrow[o * s + base]);
      } else {
        for (int64_t o = vlo; o < vhi; ++o) yr[o] += vrow[o * s + base];
      }
    }
  }
}

void maxpool_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  const bool want_idx = out.size() > 1 && n.outputs.size() > 1 && !n.outputs[1].empty();
  Window3 w;
  Shape ys;
  if (in.size() != 1 || !in[0] || want_idx || !pool_window(n, *in[0], true, w, ys)) return run_reference(n, in, out);
  const Tensor& x = *in[0];
  Tensor y = uninit_tensor(DType::Float32, ys);
  const int64_t planes = ys[0] * ys[1], in_sp = w.in[0] * w.in[1] * w.in[2], P = w.out[0] * w.out[1] * w.out[2];
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  const bool sep = separable(w);
  // Chunks of ~16 K elements of the input or the output, whichever is larger (a pool reads its input once).
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, std::max(P, in_sp)));
  parallel_for(planes, grain, [&](int64_t lo, int64_t hi) {
    std::vector<uint8_t> seen(static_cast<size_t>(P));
    std::vector<float> hrow(sep ? static_cast<size_t>(2 * w.in[2] + 96) : 0);  // the row, then its two halves
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = px + p * in_sp;
      float* yp = py + p * P;
      if (sep && !has_nan(xp, in_sp)) {  // NaN-free: the plain max is the reference's result
        pool_plane_2d(xp, yp, w, hrow.data(), true);
        continue;
      }
      std::fill(seen.begin(), seen.end(), 0);
      for_taps(w, [&](int64_t o0, int64_t o1, int64_t i0, int64_t i1, int64_t vlo, int64_t vhi, int64_t base2) {
        const float* xr = xp + (i0 * w.in[1] + i1) * w.in[2] + base2;
        const int64_t row = (o0 * w.out[1] + o1) * w.out[2];
        float* yr = yp + row;
        uint8_t* sr = seen.data() + row;
        const int64_t s2 = w.s[2];
        for (int64_t o = vlo; o < vhi; ++o) {
          const float v = xr[o * s2];
          yr[o] = (!sr[o] || v > yr[o]) ? v : yr[o];
          sr[o] = 1;
        }
      });
      for (int64_t o = 0; o < P; ++o)
        if (!seen[static_cast<size_t>(o)]) yp[o] = -std::numeric_limits<float>::infinity();
    }
  });
  out[0] = y;
}

// Per output index of one axis: how many taps fall inside [0, in) (valid) and inside [-pb, in + pe) (padded).
void axis_counts(const Window3& w, int d, std::vector<int64_t>& valid, std::vector<int64_t>& padded) {
  valid.assign(static_cast<size_t>(w.out[d]), 0);
  padded.assign(static_cast<size_t>(w.out[d]), 0);
  for (int64_t o = 0; o < w.out[d]; ++o)
    for (int64_t k = 0; k < w.k[d]; ++k) {
      const int64_t i = o * w.s[d] - w.pb[d] + k * w.d[d];
      valid[static_cast<size_t>(o)] += i >= 0 && i < w.in[d];
      padded[static_cast<size_t>(o)] += i >= -w.pb[d] && i < w.in[d] + w.pe[d];
    }
}

void avgpool_fast(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  Window3 w;
  Shape ys;
  if (in.size() != 1 || !in[0] || out.size() != 1 || !pool_window(n, *in[0], false, w, ys))
    return run_reference(n, in, out);
  const bool include_pad = n.attr_int("count_include_pad", 0) != 0;
  const Tensor& x = *in[0];
  Tensor y = uninit_tensor(DType::Float32, ys);
  const int64_t planes = ys[0] * ys[1], in_sp = w.in[0] * w.in[1] * w.in[2], P = w.out[0] * w.out[1] * w.out[2];
  // 1 / divisor per output position (NaN where no tap is valid, as in the reference).
  std::vector<int64_t> v[3], pd[3];
  for (int d = 0; d < 3; ++d) axis_counts(w, d, v[d], pd[d]);
  std::vector<float> inv(static_cast<size_t>(P));
  for (int64_t o0 = 0, o = 0; o0 < w.out[0]; ++o0)
    for (int64_t o1 = 0; o1 < w.out[1]; ++o1)
      for (int64_t o2 = 0; o2 < w.out[2]; ++o2, ++o) {
        const int64_t cnt = v[0][o0] * v[1][o1] * v[2][o2];
        const int64_t div = include_pad ? pd[0][o0] * pd[1][o1] * pd[2][o2] : cnt;
        inv[static_cast<size_t>(o)] = div > 0 ? 1.0f / static_cast<float>(div) : std::nanf("");
      }
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  const bool sep = separable(w);
  // Chunks of ~16 K elements of the input or the output, whichever is larger (a pool reads its input once).
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, std::max(P, in_sp)));
  parallel_for(planes, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float> hrow(sep ? static_cast<size_t>(2 * w.in[2] + 96) : 0);  // the row, then its two halves
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = px + p * in_sp;
      float* yp = py + p * P;
      if (sep) {
        pool_plane_2d(xp, yp, w, hrow.data(), false);
        for (int64_t o = 0; o < P; ++o) yp[o] *= inv[static_cast<size_t>(o)];
        continue;
      }
      std::fill(yp, yp + P, 0.0f);
      for_taps(w, [&](int64_t o0, int64_t o1, int64_t i0, int64_t i1, int64_t vlo, int64_t vhi, int64_t base2) {
        const float* xr = xp + (i0 * w.in[1] + i1) * w.in[2] + base2;
        float* yr = yp + (o0 * w.out[1] + o1) * w.out[2];
        const int64_t s2 = w.s[2];
        for (int64_t o = vlo; o < vhi; ++o) yr[o] += xr[o * s2];
      });
      for (int64_t o = 0; o < P; ++o) yp[o] *= inv[static_cast<size_t>(o)];
    }
  });
  out[0] = y;
}

void global_fast(bool is_max, const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  if (in.size() != 1 || !in[0] || in[0]->dtype() != DType::Float32 || in[0]->rank() < 3)
    return run_reference(n, in, out);
  const Tensor& x = *in[0];
  Shape ys = {x.shape()[0], x.shape()[1]};
  ys.resize(x.shape().size(), 1);
  Tensor y = uninit_tensor(DType::Float32, ys);
  const int64_t planes = ys[0] * ys[1], sp = planes == 0 ? 0 : x.numel() / planes;
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  parallel_for(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, sp)), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const float* xp = px + p * sp;
      if (is_max) {
        float acc = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < sp; ++i) acc = xp[i] > acc ? xp[i] : acc;
        py[p] = acc;
      } else {
        double acc = 0;  // float64, like the reference: large planes keep their precision
        for (int64_t i = 0; i < sp; ++i) acc += xp[i];
        py[p] = sp > 0 ? static_cast<float>(acc / static_cast<double>(sp)) : std::nanf("");
      }
    }
  });
  out[0] = y;
}

bool supports_f32(const ir::Node&, const std::vector<const ir::ValueType*>& in) {
  return !in.empty() && in[0] && in[0]->dtype == DType::Float32;
}

}  // namespace cpu_pool

void register_pool_tactics() {
  using namespace cpu_pool;
  register_cpu_tactic("", "MaxPool", {"fast", maxpool_fast, supports_f32});
  register_cpu_tactic("", "AveragePool", {"fast", avgpool_fast, supports_f32});
  register_cpu_tactic("", "GlobalAveragePool",
                      {"fast",
                       [](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                         global_fast(false, n, in, out);
                       },
                       supports_f32});
  register_cpu_tactic("", "GlobalMaxPool",
                      {"fast",
                       [](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                         global_fast(true, n, in, out);
                       },
                       supports_f32});
}

}  // namespace kiln::runtime::cpu
