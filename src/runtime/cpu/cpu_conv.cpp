// Conv CPU tactics (float32; float16 / bfloat16 computed in float32 and rounded on store):
//  - "im2col_blas": per image and group, the input windows are unrolled into a [Cg*k, out positions] matrix, in
//    tiles (skipped for 1x1 convolutions with stride 1 and no padding, where the input already is that matrix;
//    short rows are gathered from a zero-padded copy of the input), and multiplied by the [Mg, Cg*k] weights
//    through OpenBLAS. Work items (image, group, column tile, block of output channels) go to the threads that
//    threads_for_work grants the node (im2col_split).
//  - "direct" and "direct_dw" (depthwise): 1-D / 2-D convolutions without unrolling (cpu_conv_direct.cpp).
#include <algorithm>
#include <cstring>

#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/cpu_blas.h"
#include "runtime/cpu/cpu_math.h"
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

// col[r * ld + j - p0] for r in [0, Cg*k_sp), out positions j in [p0, p1) of one image.
void im2col(const float* x, const Window3& w, int64_t Cg, int64_t p0, int64_t p1, float* col, int64_t ld) {
  const int64_t pt = p1 - p0, in_sp = w.in[0] * w.in[1] * w.in[2];
  for (int64_t c = 0; c < Cg; ++c) {
    const float* xc = x + c * in_sp;
    for (int64_t k0 = 0; k0 < w.k[0]; ++k0)
      for (int64_t k1 = 0; k1 < w.k[1]; ++k1)
        for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
          float* dst = col + (((c * w.k[0] + k0) * w.k[1] + k1) * w.k[2] + k2) * ld;
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

// Small maps (output rows of at most 8): im2col row by row, with its bounds checks, costs more than the GEMM. The
// work item's image and group are copied into zero-padded planes, then each unrolled row is copied from them as
// runs (one per output row piece: consecutive floats, or every s-th with a stride), without bounds checks:
// col[(c, kh, kw), run.dst + i] = xpad[c][run.src + kh * dh * Wp + kw * dw + i * sw].
struct PadGeom {
  int64_t Hp = 0, Wp = 0;
  int64_t plane() const { return Hp * Wp; }
};

bool use_gather(const Window3& w) { return w.in[0] == 1 && w.k[0] == 1 && w.out[0] == 1 && w.out[2] <= 8; }

// Copies n <= 8 floats in fixed-size pieces (a variable-size memcpy is a library call).
KILN_CPU_INLINE void copy_short(float* d, const float* s, int64_t n) {
  if (n & 8) {
    std::memcpy(d, s, 32);
    return;
  }
  if (n & 4) {
    std::memcpy(d, s, 16);
    d += 4;
    s += 4;
  }
  if (n & 2) {
    std::memcpy(d, s, 8);
    d += 2;
    s += 2;
  }
  if (n & 1) *d = *s;
}

// Copies n floats: 8 at a time, then the rest as above (the rows of small maps are a few floats).
KILN_CPU_INLINE void copy_row(float* d, const float* s, int64_t n) {
  for (; n >= 8; n -= 8, d += 8, s += 8) std::memcpy(d, s, 32);
  copy_short(d, s, n);
}

// Copies `planes` input planes [H, W] into zero-padded planes [Hp, Wp].
void pad_planes(const float* x, int64_t planes, const Window3& w, const PadGeom& pg, float* dst) {
  const int64_t H = w.in[1], W = w.in[2];
  for (int64_t q = 0; q < planes; ++q) {
    float* d = dst + q * pg.plane();
    std::fill(d, d + pg.plane(), 0.0f);
    for (int64_t h = 0; h < H; ++h) copy_row(d + (h + w.pb[1]) * pg.Wp + w.pb[2], x + (q * H + h) * W, W);
  }
}

// A run of outputs of one output row: `len` (<= 8) unrolled columns from `dst` on read input floats from `src`
// on (consecutive with stride 1, every s-th otherwise).
struct Run {
  int64_t dst, src, len;
};

KILN_CPU_CLONES void gather_rows(const float* xg, const Window3& w, const PadGeom& pg, int64_t Cg, const Run* runs,
                                 int64_t nruns, int64_t pt, float* col) {
  const int64_t s2 = w.s[2];
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < w.k[1]; ++kh)
      for (int64_t kw = 0; kw < w.k[2]; ++kw) {
        const float* src = xg + c * pg.plane() + kh * w.d[1] * pg.Wp + kw * w.d[2];
        float* dst = col + ((c * w.k[1] + kh) * w.k[2] + kw) * pt;
        if (s2 == 1) {
          for (int64_t r = 0; r < nruns; ++r) copy_short(dst + runs[r].dst, src + runs[r].src, runs[r].len);
        } else {
          for (int64_t r = 0; r < nruns; ++r) {
            const float* sr = src + runs[r].src;
            float* dr = dst + runs[r].dst;
            for (int64_t i = 0; i < runs[r].len; ++i) dr[i] = sr[i * s2];
          }
        }
      }
}

bool is_pointwise(const Window3& w) {
  for (int i = 0; i < 3; ++i)
    if (w.k[i] != 1 || w.s[i] != 1 || w.pb[i] != 0 || w.pe[i] != 0) return false;
  return true;
}

Im2colSplit im2col_split(int64_t N, int64_t G, int64_t Mg, int64_t R, int64_t P, int64_t threads, bool pointwise) {
  Im2colSplit sp;
  if (N <= 0 || P <= 0 || Mg <= 0 || G <= 0) return sp;
  sp.threads = threads_for_work(static_cast<double>(G) * Mg * R * N * P, min_macs_per_thread(), threads);
  // Unrolled tiles of at most kColFloats floats (they stay in the L2 cache while the GEMM reads them); a pointwise
  // convolution reads its input in place.
  constexpr int64_t kColFloats = 1 << 18, kMinCols = 32, kMinRows = 8;
  sp.tiles = pointwise ? 1 : std::min(P, std::max<int64_t>(1, (R * P + kColFloats - 1) / kColFloats));
  // Enough items for the threads (images and groups first): more column tiles when the columns outnumber the output
  // channels, else blocks of output channels (each block reads only its share of the weights, which dominate on
  // small maps).
  const int64_t want = (sp.threads + G * N - 1) / (G * N);
  auto more_tiles = [&] { sp.tiles = std::max(sp.tiles, std::min(want, std::max<int64_t>(1, P / kMinCols))); };
  auto more_mblocks = [&] {
    if (sp.tiles < want)
      sp.mblocks = std::min((want + sp.tiles - 1) / sp.tiles, std::max<int64_t>(1, Mg / kMinRows));
  };
  if (P >= Mg) {
    more_tiles();
    more_mblocks();
  } else {
    more_mblocks();
    if (sp.tiles * sp.mblocks < want) more_tiles();
  }
  return sp;
}

void conv_im2col_blas(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ConvRun r;
  if (!r.open(n, in)) return run_reference(n, in, out);
  const ConvArgs& a = r.a;
  const ConvEpilogue& ep = r.ep;
  const float *px = r.x, *pw = r.w, *pb = r.b;
  float* py = r.y;
  const int64_t P = a.out_sp, R = a.Cg * a.k_sp;
  const bool pointwise = is_pointwise(a.win);
  const Im2colSplit sp = im2col_split(a.N, a.G, a.Mg, R, P, cpu_threads(), pointwise);
  const bool gather = !pointwise && use_gather(a.win);
  PadGeom pg;
  pg.Hp = a.win.in[1] + a.win.pb[1] + a.win.pe[1];
  pg.Wp = a.win.in[2] + a.win.pb[2] + a.win.pe[2];
  // Items (image, group, column tile, block of output channels): [mc, R] weights x [R, tile] unrolled input. The
  // gather path pads the item's image and group into a per-thread buffer first (small maps: a few KiB).
  parallel_for_threads(a.N * a.G * sp.tiles * sp.mblocks, sp.threads, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> col, xpad;
    thread_local std::vector<Run> runs;
    int64_t padded = -1;  // the (image, group) in xpad
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t mb = item % sp.mblocks, rest = item / sp.mblocks, t = rest % sp.tiles, img = rest / sp.tiles;
      const int64_t bn = img / a.G, g = img % a.G;
      const int64_t p0 = P * t / sp.tiles, p1 = P * (t + 1) / sp.tiles, pt = p1 - p0;
      const int64_t m0 = a.Mg * mb / sp.mblocks, m1 = a.Mg * (mb + 1) / sp.mblocks, mc = m1 - m0;
      if (pt <= 0 || mc <= 0) continue;
      const float* xg = px + (bn * a.C + g * a.Cg) * a.in_sp;
      const float* B = xg + p0;
      int64_t ldb = P;
      if (gather) {
        if (padded != img) {
          xpad.resize(static_cast<size_t>(a.Cg * pg.plane()));
          pad_planes(xg, a.Cg, a.win, pg, xpad.data());
          padded = img;
        }
        col.resize(static_cast<size_t>(R * pt));
        runs.clear();
        const int64_t OW = a.win.out[2];
        for (int64_t p = p0; p < p1;) {  // one run per output row piece of the tile
          const int64_t oh = p / OW, ow = p - oh * OW, len = std::min(OW - ow, p1 - p);
          runs.push_back({p - p0, oh * a.win.s[1] * pg.Wp + ow * a.win.s[2], len});
          p += len;
        }
        gather_rows(xpad.data(), a.win, pg, a.Cg, runs.data(), static_cast<int64_t>(runs.size()), pt, col.data());
        B = col.data();
        ldb = pt;
      } else if (!pointwise) {
        col.resize(static_cast<size_t>(R * pt));
        im2col(xg, a.win, a.Cg, p0, p1, col.data(), pt);
        B = col.data();
        ldb = pt;
      }
      float* C = py + (bn * a.M + g * a.Mg + m0) * P + p0;
      gemm_f32(false, false, mc, pt, R, 1.0f, pw + (g * a.Mg + m0) * R, R, B, ldb, 0.0f, C, P, false);
      if (pb || ep.active())
        apply_epilogue(C, ep.z ? ep.z + (C - py) : nullptr, pb ? pb + g * a.Mg + m0 : nullptr, mc, pt, P, ep.act);
    }
  });
  r.finish(out);
}

bool ConvRun::open(const ir::Node& n, const std::vector<const Tensor*>& in) {
  ops::check_arity(n, 2, n.domain.empty() ? 3 : 4);
  if (!conv_args(n, in, a) || !conv_epilogue(n, in, a.y_shape, ep)) return false;
  out_ = uninit_tensor(a.x->dtype(), a.y_shape);
  x = f32_data(*a.x, sx_);
  w = f32_data(*a.w, sw_);
  b = a.b ? f32_data(*a.b, sb_) : nullptr;
  yo_.emplace(out_);
  y = yo_->data();
  return true;
}

void ConvRun::finish(std::vector<Tensor>& out) {
  yo_->commit();
  out[0] = out_;
}

bool conv_epilogue(const ir::Node& n, const std::vector<const Tensor*>& in, const Shape& y, ConvEpilogue& e) {
  if (n.domain.empty()) return true;
  e.act = ops::fused_ops::conv_activation(n);
  if (in.size() > 3 && in[3]) {
    if (in[3]->shape() != y || in[3]->dtype() != in[0]->dtype()) return false;
    e.z = f32_data(*in[3], e.zbuf);
  }
  return true;
}

template <int Kind, bool HasZ>
KILN_CPU_INLINE void epilogue_rows(float* y, const float* z, const float* bias, int64_t rows, int64_t cols,
                                   int64_t ld, float lo, float hi) {
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * ld;
    const float* zr = HasZ ? z + r * ld : nullptr;
    const float b = bias ? bias[r] : 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      float v = yr[j] + b;
      if constexpr (HasZ) v += zr[j];
      if constexpr (Kind == 1) v = v > 0.0f ? v : 0.0f;
      if constexpr (Kind == 2) {
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
      }
      yr[j] = v;
    }
  }
}

template <bool HasZ>
KILN_CPU_INLINE void epilogue_kind(float* y, const float* z, const float* bias, int64_t rows, int64_t cols,
                                   int64_t ld, const ops::fused_ops::ConvActivation& act) {
  using A = ops::fused_ops::ConvActivation;
  switch (act.kind) {
    case A::None: epilogue_rows<0, HasZ>(y, z, bias, rows, cols, ld, act.lo, act.hi); break;
    case A::Relu: epilogue_rows<1, HasZ>(y, z, bias, rows, cols, ld, act.lo, act.hi); break;
    case A::Clip: epilogue_rows<2, HasZ>(y, z, bias, rows, cols, ld, act.lo, act.hi); break;
  }
}

KILN_CPU_CLONES void apply_epilogue(float* y, const float* z, const float* bias, int64_t rows, int64_t cols,
                                    int64_t ld, const ops::fused_ops::ConvActivation& act) {
  if (z)
    epilogue_kind<true>(y, z, bias, rows, cols, ld, act);
  else
    epilogue_kind<false>(y, z, bias, rows, cols, ld, act);
}

bool supports_conv(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!all_f32_like(in, 2) || (!n.domain.empty() && n.op_type != ops::fused_ops::kFusedConv)) return false;
  const ir::ValueType* x = in[0];
  return !x->has_rank || (x->dims.size() >= 3 && x->dims.size() <= 5);
}

}  // namespace cpu_conv

void register_conv_tactics() {
  // Depthwise first: where it applies it is the heuristic choice.
  register_cpu_tactic("", "Conv", {"direct_dw", cpu_conv::conv_direct_dw, cpu_conv::supports_dw});
  register_cpu_tactic("", "Conv", {"im2col_blas", cpu_conv::conv_im2col_blas, cpu_conv::supports_conv});
  register_cpu_tactic("", "Conv", {"direct", cpu_conv::conv_direct, cpu_conv::supports_direct});
  // kiln.FusedConv: the same tactics, with the epilogue applied to each output tile while it is in cache.
  const std::string kd = ops::fused_ops::kDomain, fc = ops::fused_ops::kFusedConv;
  register_cpu_tactic(kd, fc, {"direct_dw", cpu_conv::conv_direct_dw, cpu_conv::supports_dw});
  register_cpu_tactic(kd, fc, {"im2col_blas", cpu_conv::conv_im2col_blas, cpu_conv::supports_conv});
  register_cpu_tactic(kd, fc, {"direct", cpu_conv::conv_direct, cpu_conv::supports_direct});
}

}  // namespace kiln::runtime::cpu
