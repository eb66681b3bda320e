// Conv CPU tactics (float32; float16 / bfloat16 computed in float32 and rounded on store):
//  - "im2col_blas": per image and group, the input windows are unrolled into a [Cg*k, out positions] matrix
//    (skipped for 1x1 convolutions with stride 1 and no padding, where the input already is that matrix) and
//    multiplied by the [Mg, Cg*k] weights through OpenBLAS. Work items are (image, group, tile of output positions),
//    split over kiln's threads.
//  - "direct" and "direct_dw" (depthwise): 1-D / 2-D convolutions without unrolling (cpu_conv_direct.cpp).
#include <algorithm>
#include <cstring>

#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/cpu_blas.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_conv {

using ops::Window3;

// Reads the geometry; false when this tactic does not handle the inputs (the reference kernel then runs, and
// reports any malformed input with its own message).
bool conv_args(const ir::Node& n, const std::vector<const Tensor*>& in, ConvArgs& a) {
  if (in.size() < 2 || !in[0] || !in[1]) return false;
  a.x = in[0];
  a.w = in[1];
  a.b = in.size() > 2 ? in[2] : nullptr;
  const Tensor &x = *a.x, &w = *a.w;
  if (!is_f32_like(x.dtype()) || w.dtype() != x.dtype() || (a.b && a.b->dtype() != x.dtype())) return false;
  if (x.rank() < 3 || x.rank() > 5 || w.rank() != x.rank()) return false;
  a.G = n.attr_int("group", 1);
  a.N = x.shape()[0];
  a.C = x.shape()[1];
  a.M = w.shape()[0];
  if (a.G < 1 || a.C % a.G != 0 || a.M % a.G != 0 || w.shape()[1] * a.G != a.C) return false;
  if (a.b && (a.b->rank() != 1 || a.b->shape()[0] != a.M)) return false;
  a.Cg = a.C / a.G;
  a.Mg = a.M / a.G;
  const size_t nsp = static_cast<size_t>(x.rank() - 2);
  std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  if (n.has_attr("kernel_shape") && n.attr_ints("kernel_shape", {}) != kernel) return false;
  ops::SpatialAttrs sp = ops::read_spatial_attrs(n, nsp, kernel, false, true);
  a.win = ops::make_window3(n, sp, x.shape());
  a.y_shape = {a.N, a.M};
  for (size_t i = 0; i < nsp; ++i) a.y_shape.push_back(a.win.out[3 - nsp + i]);
  a.in_sp = a.win.in[0] * a.win.in[1] * a.win.in[2];
  a.out_sp = a.win.out[0] * a.win.out[1] * a.win.out[2];
  a.k_sp = a.win.k[0] * a.win.k[1] * a.win.k[2];
  return true;
}

// col[r, j - p0] for r in [0, Cg*k_sp), out positions j in [p0, p1); row stride p1 - p0.
void im2col(const float* x, const Window3& w, int64_t Cg, int64_t p0, int64_t p1, float* col) {
  const int64_t pt = p1 - p0, in_sp = w.in[0] * w.in[1] * w.in[2];
  for (int64_t c = 0; c < Cg; ++c) {
    const float* xc = x + c * in_sp;
    for (int64_t k0 = 0; k0 < w.k[0]; ++k0)
      for (int64_t k1 = 0; k1 < w.k[1]; ++k1)
        for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
          float* dst = col + (((c * w.k[0] + k0) * w.k[1] + k1) * w.k[2] + k2) * pt;
          int64_t o2 = p0 % w.out[2], o1 = (p0 / w.out[2]) % w.out[1], o0 = p0 / (w.out[2] * w.out[1]);
          const int64_t base2 = k2 * w.d[2] - w.pb[2];
          for (int64_t j = 0; j < pt;) {
            const int64_t seg = std::min(w.out[2] - o2, pt - j);
            const int64_t i0 = o0 * w.s[0] - w.pb[0] + k0 * w.d[0];
            const int64_t i1 = o1 * w.s[1] - w.pb[1] + k1 * w.d[1];
            float* d = dst + j;
            if (i0 < 0 || i0 >= w.in[0] || i1 < 0 || i1 >= w.in[1]) {
              std::memset(d, 0, static_cast<size_t>(seg) * sizeof(float));
            } else {
              const float* xr = xc + (i0 * w.in[1] + i1) * w.in[2];
              int64_t vlo, vhi;
              valid_range(w.s[2], base2, w.in[2], o2, o2 + seg, vlo, vhi);
              for (int64_t o = o2; o < vlo; ++o) d[o - o2] = 0.0f;
              if (w.s[2] == 1) {
                if (vhi > vlo) std::memcpy(d + (vlo - o2), xr + vlo + base2, static_cast<size_t>(vhi - vlo) * 4);
              } else {
                for (int64_t o = vlo; o < vhi; ++o) d[o - o2] = xr[o * w.s[2] + base2];
              }
              for (int64_t o = vhi; o < o2 + seg; ++o) d[o - o2] = 0.0f;
            }
            j += seg;
            o2 = 0;
            if (++o1 == w.out[1]) {
              o1 = 0;
              ++o0;
            }
          }
        }
  }
}

bool is_pointwise(const Window3& w) {
  for (int i = 0; i < 3; ++i)
    if (w.k[i] != 1 || w.s[i] != 1 || w.pb[i] != 0 || w.pe[i] != 0) return false;
  return true;
}

void conv_im2col_blas(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 3);
  ConvArgs a;
  if (!conv_args(n, in, a)) return run_reference(n, in, out);
  Tensor y = uninit_tensor(a.x->dtype(), a.y_shape);
  std::vector<float> sx, sw, sb;
  const float* px = f32_data(*a.x, sx);
  const float* pw = f32_data(*a.w, sw);
  const float* pb = a.b ? f32_data(*a.b, sb) : nullptr;
  F32Out yo(y);
  float* py = yo.data();
  const int64_t P = a.out_sp, R = a.Cg * a.k_sp;
  const bool pointwise = is_pointwise(a.win);
  // Tiles of output positions per (image, group): enough items for every thread, and unrolled tiles of <= 4 MiB.
  const int64_t images = a.N * a.G;
  int64_t T = std::max<int64_t>(1, (cpu_threads() + images - 1) / std::max<int64_t>(1, images));
  if (!pointwise) T = std::max<int64_t>(T, (R * P + (1 << 20) - 1) >> 20);
  T = std::max<int64_t>(1, std::min<int64_t>(T, P / 32));
  parallel_for(images * T, 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> col;
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t img = item / T, t = item % T, bn = img / a.G, g = img % a.G;
      const int64_t p0 = P * t / T, p1 = P * (t + 1) / T, pt = p1 - p0;
      if (pt <= 0) continue;
      const float* xg = px + (bn * a.C + g * a.Cg) * a.in_sp;
      const float* wg = pw + g * a.Mg * R;
      float* yg = py + (bn * a.M + g * a.Mg) * P;
      const float* B = xg + p0;
      int64_t ldb = P;
      if (!pointwise) {
        col.resize(static_cast<size_t>(R * pt));
        im2col(xg, a.win, a.Cg, p0, p1, col.data());
        B = col.data();
        ldb = pt;
      }
      gemm_f32(false, false, a.Mg, pt, R, 1.0f, wg, R, B, ldb, 0.0f, yg + p0, P, false);
      if (pb)
        for (int64_t m = 0; m < a.Mg; ++m) {
          const float bv = pb[g * a.Mg + m];
          float* yr = yg + m * P + p0;
          for (int64_t j = 0; j < pt; ++j) yr[j] += bv;
        }
    }
  });
  yo.commit();
  out[0] = y;
}

bool supports_conv(const ir::Node&, const std::vector<const ir::ValueType*>& in) {
  if (!all_f32_like(in, 2)) return false;
  const ir::ValueType* x = in[0];
  return !x->has_rank || (x->dims.size() >= 3 && x->dims.size() <= 5);
}

}  // namespace cpu_conv

void register_conv_tactics() {
  // Depthwise first: where it applies it is the heuristic choice.
  register_cpu_tactic("", "Conv", {"direct_dw", cpu_conv::conv_direct_dw, cpu_conv::supports_dw});
  register_cpu_tactic("", "Conv", {"im2col_blas", cpu_conv::conv_im2col_blas, cpu_conv::supports_conv});
  register_cpu_tactic("", "Conv", {"direct", cpu_conv::conv_direct, cpu_conv::supports_direct});
}

}  // namespace kiln::runtime::cpu
