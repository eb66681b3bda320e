// The direct Conv tactics, for 1-D and 2-D convolutions (any strides, dilations, pads), float32 (float16 / bfloat16
// through float32). No unrolled matrix: the input of each image is copied once into a zero-padded buffer whose
// rows are split by column phase (column j of a padded row goes to phase j % stride_w at j / stride_w), so every
// kernel tap reads 16 consecutive floats for 16 consecutive outputs, whatever the stride, and no bounds checks
// remain.
//  - "direct": 12 (or 8) output channels x 16 (or 8, for short rows) outputs accumulate in registers; per input channel and tap one vector load
//    and 8 multiply-adds with broadcast weights. Work items (image, group, channel block, output row) over the
//    threads. Wins where channels are few and maps wide (small CNNs), where im2col + GEMM spends its time
//    unrolling.
//  - "direct_dw": depthwise (one input channel per group): per output plane, its input plane padded into a small
//    per-thread buffer, then blocks of output rows x vectors of 16 outputs (4 accumulators) accumulate in registers
//    over the kernel taps. Work items: output planes.
// The builder times them against "im2col_blas".
#include <algorithm>
#include <cstring>

#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_conv {

constexpr int kVW = 16;  // outputs per vector

// The padded, phase-split input: per (image, channel) plane Hp rows of `sw` phases of Wq floats, then kTail floats
// of slack after the last plane (vector reads past the end of the last row).
constexpr int64_t kTail = 4 * kVW;
struct Padded {
  int64_t Hp = 0, sw = 1, Wq = 0;
  int64_t row() const { return sw * Wq; }
  int64_t plane() const { return Hp * sw * Wq; }
};

struct DirectGeom {
  int64_t Cg, KH, KW, sh, dh, OH, OW;
  Padded pad;
  std::vector<int64_t> kw_off;  // per kernel column: offset of its phase row plus its index in the phase
};

Padded padded_geometry(const ops::Window3& w) {
  Padded p;
  p.Hp = w.in[1] + w.pb[1] + w.pe[1];
  p.sw = w.s[2];
  const int64_t Wp = w.in[2] + w.pb[2] + w.pe[2];
  // No slack per row: a vector that runs past a row's last output reads the next row, and those lanes are never
  // stored. The buffer as a whole ends with kTail floats of slack.
  p.Wq = (Wp + p.sw - 1) / p.sw;
  return p;
}

// One padded, phase-split plane from input plane `src` ([H, W]); `ranges` holds each phase's valid [lo, hi).
// Plain loops with fixed strides (no per-row library calls: the rows of small maps are a few dozen floats).
KILN_CPU_CLONES void fill_plane(const float* src, float* d, const Padded& p, int64_t H, int64_t W, int64_t pbh,
                                int64_t pbw, const int64_t* ranges) {
  const int64_t row = p.row();
  for (int64_t r = 0; r < p.Hp; ++r) {
    float* drow = d + r * row;
    const int64_t h = r - pbh;
    if (h < 0 || h >= H) {
      for (int64_t i = 0; i < row; ++i) drow[i] = 0.0f;
      continue;
    }
    const float* srow = src + h * W;
    for (int64_t ph = 0; ph < p.sw; ++ph) {
      float* dp = drow + ph * p.Wq;
      const int64_t lo = ranges[2 * ph], hi = ranges[2 * ph + 1];
      const float* sp = srow + ph - pbw;  // phase index i reads input column i * sw + ph - pbw
      for (int64_t i = 0; i < lo; ++i) dp[i] = 0.0f;
      if (p.sw == 1)
        for (int64_t i = lo; i < hi; ++i) dp[i] = sp[i];
      else if (p.sw == 2)
        for (int64_t i = lo; i < hi; ++i) dp[i] = sp[2 * i];
      else
        for (int64_t i = lo; i < hi; ++i) dp[i] = sp[i * p.sw];
      for (int64_t i = hi; i < p.Wq; ++i) dp[i] = 0.0f;
    }
  }
}

// Fills the padded, phase-split copy of `planes` input planes [H, W].
void fill_padded(const float* x, int64_t planes, const ops::Window3& w, const Padded& p, float* dst, int64_t threads) {
  const int64_t H = w.in[1], W = w.in[2];
  std::vector<int64_t> ranges(static_cast<size_t>(2 * p.sw));
  for (int64_t ph = 0; ph < p.sw; ++ph)
    valid_range(p.sw, ph - w.pb[2], W, 0, p.Wq, ranges[static_cast<size_t>(2 * ph)],
                ranges[static_cast<size_t>(2 * ph + 1)]);
  parallel_for_threads(planes, threads, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q)
      fill_plane(x + q * H * W, dst + q * p.plane(), p, H, W, w.pb[1], w.pb[2], ranges.data());
  });
}

std::vector<int64_t> kernel_column_offsets(const ops::Window3& w, const Padded& p) {
  std::vector<int64_t> off(static_cast<size_t>(w.k[2]));
  for (int64_t kw = 0; kw < w.k[2]; ++kw) {
    const int64_t j = kw * w.d[2];
    off[static_cast<size_t>(kw)] = (j % p.sw) * p.Wq + j / p.sw;
  }
  return off;
}

// Stores the first n (<= lanes) floats of v: a full vector as one store (a variable-size memcpy is a library call).
template <class V>
KILN_CPU_INLINE void store_head(float* dst, const V& v, int64_t n) {
  if (n >= static_cast<int64_t>(sizeof v / sizeof(float)))
    std::memcpy(dst, &v, sizeof v);
  else
    std::memcpy(dst, &v, static_cast<size_t>(n) * sizeof(float));
}

typedef float KilnV8f __attribute__((vector_size(32)));

// One output row of one block of MB channels: y[j * plane + ow] for j < mcount, all ow; vectors V of VW floats.
template <class V, int VW, int MB>
KILN_CPU_INLINE void direct_row_mb(const float* xp, const float* wpk, const float* bias, const DirectGeom& g,
                                   int64_t oh, float* y, int64_t plane, int mcount) {
  const int64_t* kwo = g.kw_off.data();
  for (int64_t ow = 0; ow < g.OW; ow += VW) {
    V acc[MB];
    for (int j = 0; j < MB; ++j) acc[j] = V{} + bias[j];
    for (int64_t c = 0; c < g.Cg; ++c) {
      const float* xc = xp + c * g.pad.plane() + ow;
      const float* wc = wpk + c * g.KH * g.KW * MB;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const float* xr = xc + (oh * g.sh + kh * g.dh) * g.pad.row();
        const float* wr = wc + kh * g.KW * MB;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          V xv;
          std::memcpy(&xv, xr + kwo[kw], sizeof xv);
          const float* wk = wr + kw * MB;
          for (int j = 0; j < MB; ++j) acc[j] += xv * wk[j];
        }
      }
    }
    for (int j = 0; j < mcount; ++j) store_head(y + j * plane + oh * g.OW + ow, acc[j], g.OW - ow);
  }
}

using RowFn = void (*)(const float*, const float*, const float*, const DirectGeom&, int64_t, float*, int64_t, int);
#define KILN_DIRECT_ROW(NAME, V, VW, MB)                                                                         \
  KILN_CPU_CLONES void NAME(const float* xp, const float* wpk, const float* bias, const DirectGeom& g, int64_t oh, \
                            float* y, int64_t plane, int mcount) {                                               \
    direct_row_mb<V, VW, MB>(xp, wpk, bias, g, oh, y, plane, mcount);                                           \
  }
KILN_DIRECT_ROW(direct_row16x8, KilnV16f, 16, 8)
KILN_DIRECT_ROW(direct_row16x12, KilnV16f, 16, 12)
KILN_DIRECT_ROW(direct_row8x8, KilnV8f, 8, 8)
KILN_DIRECT_ROW(direct_row8x12, KilnV8f, 8, 12)
#undef KILN_DIRECT_ROW

// Channels per block: 12 unless that leaves more padding channels than 8 (16, 8, 3, ...).
int64_t block_channels(int64_t Mg) {
  const int64_t pad8 = (Mg + 7) / 8 * 8, pad12 = (Mg + 11) / 12 * 12;
  return pad12 <= pad8 ? 12 : 8;
}

bool direct_geometry(const ConvArgs& a, DirectGeom& g) {
  const ops::Window3& w = a.win;
  if (w.in[0] != 1 || w.k[0] != 1) return false;  // 3-D
  g.Cg = a.Cg;
  g.KH = w.k[1];
  g.KW = w.k[2];
  g.sh = w.s[1];
  g.dh = w.d[1];
  g.OH = w.out[1];
  g.OW = w.out[2];
  g.pad = padded_geometry(w);
  g.kw_off = kernel_column_offsets(w, g.pad);
  return true;
}

void conv_direct(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 3);
  ConvArgs a;
  DirectGeom g;
  if (!conv_args(n, in, a) || !direct_geometry(a, g)) return run_reference(n, in, out);
  Tensor y = uninit_tensor(a.x->dtype(), a.y_shape);
  std::vector<float> sx, sw, sb;
  const float* px = f32_data(*a.x, sx);
  const float* pw = f32_data(*a.w, sw);
  const float* pb = a.b ? f32_data(*a.b, sb) : nullptr;
  F32Out yo(y);
  float* py = yo.data();
  const int64_t planes_in = a.N * a.C, plane = g.OH * g.OW;
  if (plane > 0 && a.N > 0 && a.M > 0) {
    // Rows of at most 8 outputs take vectors of 8 floats (no idle lanes; on AVX-512 machines that split 512-bit
    // operations in two, as fast per float). Multiply-adds as computed (whole blocks of channels, whole vectors)
    // decide the threads.
    const int64_t kMB = block_channels(a.Mg), vw = g.OW <= 8 ? 8 : kVW;
    const int64_t blocks = (a.Mg + kMB - 1) / kMB, taps = g.Cg * g.KH * g.KW;
    const int64_t items = a.N * a.G * blocks * g.OH;
    const int64_t row_work = std::max<int64_t>(1, taps * ((g.OW + vw - 1) / vw) * vw);
    const int64_t threads =
        threads_for_work(static_cast<double>(items) * row_work * kMB, min_macs_per_thread(), cpu_threads());
    const RowFn row = vw == 8 ? (kMB == 12 ? direct_row8x12 : direct_row8x8)
                              : (kMB == 12 ? direct_row16x12 : direct_row16x8);
    Tensor xpad_t = uninit_tensor(DType::Float32, {planes_in * g.pad.plane() + kTail});
    float* xpad = xpad_t.mutable_as<float>();
    fill_padded(px, planes_in, a.win, g.pad, xpad,
                threads_for_work(static_cast<double>(planes_in * g.pad.plane()), kMinCopyPerThread, threads));
    std::fill(xpad + planes_in * g.pad.plane(), xpad + planes_in * g.pad.plane() + kTail, 0.0f);
    // Weights as [group][channel block][Cg][KH][KW][kMB], zero beyond the last channel; bias per block.
    std::vector<float> wpk(static_cast<size_t>(a.G * blocks * taps * kMB), 0.0f);
    std::vector<float> bpk(static_cast<size_t>(a.G * blocks * kMB), 0.0f);
    for (int64_t gr = 0; gr < a.G; ++gr)
      for (int64_t m = 0; m < a.Mg; ++m) {
        const int64_t blk = gr * blocks + m / kMB, j = m % kMB, mo = gr * a.Mg + m;
        for (int64_t t = 0; t < taps; ++t) wpk[static_cast<size_t>((blk * taps + t) * kMB + j)] = pw[mo * taps + t];
        if (pb) bpk[static_cast<size_t>(blk * kMB + j)] = pb[mo];
      }
    parallel_for_threads(items, threads, [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t oh = it % g.OH, rest = it / g.OH, blk = rest % blocks, ng = rest / blocks;
        const int64_t bn = ng / a.G, gr = ng % a.G;
        const int64_t m0 = gr * a.Mg + blk * kMB;
        const int mcount = static_cast<int>(std::min<int64_t>(kMB, a.Mg - blk * kMB));
        const float* xp = xpad + (bn * a.C + gr * a.Cg) * g.pad.plane();
        const int64_t kb = gr * blocks + blk;
        row(xp, wpk.data() + kb * taps * kMB, bpk.data() + kb * kMB, g, oh, py + (bn * a.M + m0) * plane, plane,
            mcount);
      }
    });
  }
  yo.commit();
  out[0] = y;
}

// Depthwise: kNR output rows x kNV vectors of 16 outputs of one channel, accumulated over the kernel taps (up to 4
// independent accumulators, so narrow maps do not wait on one chain of multiply-adds).
template <int kNR, int kNV>
KILN_CPU_INLINE void dw_block(const float* xp, const float* wc, float bias, const DirectGeom& g, int64_t oh,
                              int64_t ow, float* yplane) {
  KilnV16f acc[kNR][kNV];
  for (int r = 0; r < kNR; ++r)
    for (int v = 0; v < kNV; ++v)
      acc[r][v] = KilnV16f{bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias, bias};
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const float wv = wc[kh * g.KW + kw];
      const int64_t off = g.kw_off[static_cast<size_t>(kw)] + ow;
      for (int r = 0; r < kNR; ++r) {
        const float* xs = xp + ((oh + r) * g.sh + kh * g.dh) * g.pad.row() + off;
        for (int v = 0; v < kNV; ++v) {
          KilnV16f xv;
          std::memcpy(&xv, xs + v * kVW, sizeof xv);
          acc[r][v] += xv * wv;
        }
      }
    }
  for (int r = 0; r < kNR; ++r)
    for (int v = 0; v < kNV; ++v) {
      const int64_t o = ow + v * kVW;
      if (o >= g.OW) break;
      store_head(yplane + (oh + r) * g.OW + o, acc[r][v], g.OW - o);
    }
}

// Output rows [oh0, oh1) of one channel.
KILN_CPU_CLONES void dw_rows(const float* xp, const float* wc, float bias, const DirectGeom& g, int64_t oh0,
                             int64_t oh1, float* yplane) {
  const int64_t nvec = (g.OW + kVW - 1) / kVW;
  int64_t oh = oh0;
  if (nvec == 1) {
    for (; oh + 4 <= oh1; oh += 4) dw_block<4, 1>(xp, wc, bias, g, oh, 0, yplane);
  } else if (nvec == 2) {
    for (; oh + 2 <= oh1; oh += 2) dw_block<2, 2>(xp, wc, bias, g, oh, 0, yplane);
  }
  for (; oh < oh1; ++oh) {
    int64_t ow = 0;
    for (; ow + 3 * kVW < g.OW; ow += 4 * kVW) dw_block<1, 4>(xp, wc, bias, g, oh, ow, yplane);
    if (ow + kVW < g.OW) {
      dw_block<1, 2>(xp, wc, bias, g, oh, ow, yplane);
      ow += 2 * kVW;
    }
    if (ow < g.OW) dw_block<1, 1>(xp, wc, bias, g, oh, ow, yplane);
  }
}

void conv_direct_dw(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 3);
  ConvArgs a;
  DirectGeom g;
  if (!conv_args(n, in, a) || a.Cg != 1 || !direct_geometry(a, g)) return run_reference(n, in, out);
  Tensor y = uninit_tensor(a.x->dtype(), a.y_shape);
  std::vector<float> sx, sw, sb;
  const float* px = f32_data(*a.x, sx);
  const float* pw = f32_data(*a.w, sw);
  const float* pb = a.b ? f32_data(*a.b, sb) : nullptr;
  F32Out yo(y);
  float* py = yo.data();
  const int64_t plane = g.OH * g.OW, ksp = g.KH * g.KW;
  if (plane > 0 && a.N > 0 && a.M > 0) {
    // Per output plane: its input plane padded into a small per-thread buffer (it stays in cache while the rows
    // are computed; a whole padded copy of the input would go out to memory and back), then all its rows.
    const ops::Window3& w = a.win;
    const int64_t H = w.in[1], W = w.in[2];
    std::vector<int64_t> ranges(static_cast<size_t>(2 * g.pad.sw));
    for (int64_t ph = 0; ph < g.pad.sw; ++ph)
      valid_range(g.pad.sw, ph - w.pb[2], W, 0, g.pad.Wq, ranges[static_cast<size_t>(2 * ph)],
                  ranges[static_cast<size_t>(2 * ph + 1)]);
    const int64_t plane_work = std::max<int64_t>(1, g.OH * ksp * ((g.OW + kVW - 1) / kVW));
    // A depthwise multiply-add costs several dense ones (a load each, no reuse across channels: ~9 GMAC/s against
    // ~45 on one core), so it counts 4 times in the thread rule.
    const int64_t threads = threads_for_work(4.0 * static_cast<double>(a.N * a.M) * plane_work * kVW,
                                             min_macs_per_thread(), cpu_threads());
    parallel_for_threads(a.N * a.M, threads, [&](int64_t lo, int64_t hi) {
      std::vector<float> buf(static_cast<size_t>(g.pad.plane() + kTail), 0.0f);
      for (int64_t nm = lo; nm < hi; ++nm) {
        const int64_t bn = nm / a.M, m = nm % a.M, gr = m / a.Mg;
        fill_plane(px + (bn * a.C + gr) * H * W, buf.data(), g.pad, H, W, w.pb[1], w.pb[2], ranges.data());
        dw_rows(buf.data(), pw + m * ksp, pb ? pb[m] : 0.0f, g, 0, g.OH, py + nm * plane);
      }
    });
  }
  yo.commit();
  out[0] = y;
}

bool supports_direct(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!supports_conv(n, in)) return false;
  const ir::ValueType* x = in[0];
  return !x->has_rank || x->dims.size() <= 4;
}

// Depthwise: weights [M, 1, k...] with group > 1.
bool supports_dw(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!supports_direct(n, in) || n.attr_int("group", 1) <= 1) return false;
  const ir::ValueType* w = in[1];
  return w->has_rank && w->dims.size() >= 3 && w->dims[1].is_static() && w->dims[1].value == 1;
}

}  // namespace cpu_conv
}  // namespace kiln::runtime::cpu
