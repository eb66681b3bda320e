// The "direct" Conv tactic, for 1-D and 2-D convolutions (any strides, dilations, pads), float32 (float16 / bfloat16
// through float32). No unrolled matrix: the input rows a band of output rows reads are copied into a zero-padded
// per-thread buffer whose rows are split by column phase (column j of a padded row goes to phase j % stride_w at
// j / stride_w), so every kernel tap reads 16 consecutive floats for 16 consecutive outputs, whatever the stride,
// and no bounds checks remain. 12 (or 8) output channels x 16 (or 8, for short rows) outputs accumulate in
// registers; per input channel and tap one vector load and 8 multiply-adds with broadcast weights. Work items
// (image, group, band of output rows) over the threads. Wins where channels are few and maps wide (small CNNs),
// where im2col + GEMM spends its time unrolling. The depthwise tactic is in cpu_conv_dw.cpp; the builder times
// both against "im2col_blas".
#include <algorithm>
#include <cstring>

#include "runtime/cpu/cpu_conv_direct.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_conv {

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

// Plain loops with fixed strides (no per-row library calls: the rows of small maps are a few dozen floats).
KILN_CPU_CLONES void fill_plane_isa(const float* src, float* d, const Padded& p, int64_t H, int64_t W, int64_t pbh,
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

void fill_plane(const float* src, float* d, const Padded& p, int64_t H, int64_t W, int64_t pbh, int64_t pbw,
                const int64_t* ranges) {
  fill_plane_isa(src, d, p, H, W, pbh, pbw, ranges);
}

std::vector<int64_t> kernel_column_offsets(const ops::Window3& w, const Padded& p) {
  std::vector<int64_t> off(static_cast<size_t>(w.k[2]));
  for (int64_t kw = 0; kw < w.k[2]; ++kw) {
    const int64_t j = kw * w.d[2];
    off[static_cast<size_t>(kw)] = (j % p.sw) * p.Wq + j / p.sw;
  }
  return off;
}

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
KILN_DIRECT_ROW(direct_row16x16, KilnV16f, 16, 16)
KILN_DIRECT_ROW(direct_row8x8, KilnV8f, 8, 8)
KILN_DIRECT_ROW(direct_row8x12, KilnV8f, 8, 12)
#undef KILN_DIRECT_ROW

// Channels per block: 12 unless that leaves more padding channels than 8 (16, 8, 3, ...).
bool cpu_has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

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
  ConvRun r;
  DirectGeom g;
  if (!r.open(n, in) || !direct_geometry(r.a, g)) return run_reference(n, in, out);
  const ConvArgs& a = r.a;
  const ConvEpilogue& ep = r.ep;
  const float *px = r.x, *pw = r.w, *pb = r.b;
  float* py = r.y;
  const int64_t plane = g.OH * g.OW;
  if (plane > 0 && a.N > 0 && a.M > 0) {
    // Rows of at most 8 outputs take vectors of 8 floats (no idle lanes; on AVX-512 machines that split 512-bit
    // operations in two, as fast per float). Multiply-adds as computed (whole blocks of channels, whole vectors)
    // decide the threads.
    // 16 channels per block where they divide the group and rows take 16-float vectors, on AVX-512 (16
    // accumulators: half the registers; AVX2 would spill them): each input vector feeds 16 multiply-adds.
    const int64_t vw = g.OW <= 8 ? 8 : kVW;
    const int64_t kMB = vw == kVW && a.Mg % 16 == 0 && cpu_has_avx512() ? 16 : block_channels(a.Mg);
    const int64_t blocks = (a.Mg + kMB - 1) / kMB, taps = g.Cg * g.KH * g.KW;
    const int64_t items = a.N * a.G * blocks * g.OH;
    const int64_t row_work = std::max<int64_t>(1, taps * ((g.OW + vw - 1) / vw) * vw);
    const int64_t threads =
        threads_for_work(static_cast<double>(items) * row_work * kMB, min_macs_per_thread(), cpu_threads());
    const RowFn row = vw == 8 ? (kMB == 12 ? direct_row8x12 : direct_row8x8)
                              : (kMB == 16 ? direct_row16x16 : kMB == 12 ? direct_row16x12 : direct_row16x8);
    // Weights as [group][channel block][Cg][KH][KW][kMB], zero beyond the last channel; bias per block. Written in
    // one sequential pass into buffers the calling thread keeps (no zero fill, no allocation per call).
    thread_local std::vector<float> wpk, bpk;
    wpk.resize(static_cast<size_t>(a.G * blocks * taps * kMB));
    bpk.resize(static_cast<size_t>(a.G * blocks * kMB));
    for (int64_t kb = 0; kb < a.G * blocks; ++kb) {
      const int64_t gr = kb / blocks, m0 = (kb % blocks) * kMB, mc = std::min<int64_t>(kMB, a.Mg - m0);
      const float* wg = pw + (gr * a.Mg + m0) * taps;
      float* dst = wpk.data() + kb * taps * kMB;
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t j = 0; j < kMB; ++j) dst[t * kMB + j] = j < mc ? wg[j * taps + t] : 0.0f;
      for (int64_t j = 0; j < kMB; ++j)
        bpk[static_cast<size_t>(kb * kMB + j)] = pb && j < mc ? pb[gr * a.Mg + m0 + j] : 0.0f;
    }
    // (The workers read this thread's buffers through these pointers: a thread_local named in the loop body below
    // would be each worker's own.)
    const float* wp = wpk.data();
    const float* bp = bpk.data();
    // Items: (image, group, band of output rows). Each item pads only the input rows its band reads, into a
    // per-thread buffer, and computes every channel block of the band from it: the copy is split over the threads
    // with the multiply-adds, and each thread reads what it wrote itself (from its own cache). Bands: enough items
    // for the threads (2 each; 4 measured 6-10 % slower on a small CNN at batch 1, 2 threads), and few enough padded
    // rows per band that the buffer stays near 128 KiB.
    const int64_t halo = (g.KH - 1) * g.dh + 1 - g.sh;  // padded rows a band reads beyond sh per output row
    const int64_t want = threads > 1 ? (2 * threads + a.N * a.G - 1) / (a.N * a.G) : 1;
    const int64_t by_size = (a.Cg * (g.OH * g.sh + halo) * g.pad.row() * 4 + (128 << 10) - 1) / (128 << 10);
    const int64_t bands = std::clamp<int64_t>(std::max(want, by_size), 1, g.OH);
    const int64_t H = a.win.in[1], W = a.win.in[2], pbh = a.win.pb[1], pbw = a.win.pb[2];
    std::vector<int64_t> ranges(static_cast<size_t>(2 * g.pad.sw));
    for (int64_t ph = 0; ph < g.pad.sw; ++ph)
      valid_range(g.pad.sw, ph - pbw, W, 0, g.pad.Wq, ranges[static_cast<size_t>(2 * ph)],
                  ranges[static_cast<size_t>(2 * ph + 1)]);
    parallel_for_threads(a.N * a.G * bands, threads, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<float> buf;
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t band = it % bands, ng = it / bands, bn = ng / a.G, gr = ng % a.G;
        const int64_t r0 = g.OH * band / bands, r1 = g.OH * (band + 1) / bands;
        if (r1 <= r0) continue;
        // The band's geometry: padded rows [r0 * sh, (r1 - 1) * sh + halo + sh) of each input channel.
        DirectGeom gb = g;
        gb.pad.Hp = (r1 - r0) * g.sh + halo;
        const int64_t bplane = gb.pad.plane();
        const size_t need = static_cast<size_t>(a.Cg * bplane + kTail);
        if (buf.size() < need) buf.assign(need, 0.0f);
        for (int64_t c = 0; c < a.Cg; ++c)
          fill_plane(px + (bn * a.C + gr * a.Cg + c) * H * W, buf.data() + c * bplane, gb.pad, H, W,
                     pbh - r0 * g.sh, pbw, ranges.data());
        for (int64_t blk = 0; blk < blocks; ++blk) {
          const int64_t m0 = gr * a.Mg + blk * kMB, kb = gr * blocks + blk;
          const int mcount = static_cast<int>(std::min<int64_t>(kMB, a.Mg - blk * kMB));
          float* yb = py + (bn * a.M + m0) * plane + r0 * g.OW;
          for (int64_t oh = 0; oh < r1 - r0; ++oh)
            row(buf.data(), wp + kb * taps * kMB, bp + kb * kMB, gb, oh, yb, plane, mcount);
          if (ep.active())
            apply_epilogue(yb, ep.z ? ep.z + (yb - py) : nullptr, nullptr, mcount, (r1 - r0) * g.OW, plane, ep.act);
        }
      }
    });
  }
  r.finish(out);
}

bool supports_direct(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!supports_conv(n, in)) return false;
  const ir::ValueType* x = in[0];
  return !x->has_rank || x->dims.size() <= 4;
}

}  // namespace cpu_conv
}  // namespace kiln::runtime::cpu
