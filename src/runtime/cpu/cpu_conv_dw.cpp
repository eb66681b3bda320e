// The "direct_dw" Conv tactic: depthwise convolutions (one input channel per group), 1-D and 2-D, float32 (float16 /
// bfloat16 through float32).
//  - Small maps (the flat path): vector lanes over the whole flattened output plane, see flat_geometry.
//  - Otherwise: per output plane, its input plane padded into a small per-thread buffer (cpu_conv_direct.h), then
//    blocks of output rows x vectors of 16 outputs (4 accumulators) accumulate in registers over the kernel taps.
// Work items: output planes. A kiln.FusedConv's epilogue is applied per chunk of planes.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "runtime/cpu/cpu_conv_direct.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_conv {

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

// Flat depthwise, for maps small enough that rows of outputs would leave vector lanes idle (an 8x8 map has rows
// of 8): lanes run over the whole flattened output plane. The input plane is split by stride phase into s x s
// sub-planes with rows of OW floats (stride 1: the plane itself, read in place where W = OW), so every kernel tap
// reads one vector at a fixed offset from the output index; lanes whose input is padding, or lies past a row's end,
// are cleared by a per-(tap, vector) mask. The mask is bitwise, so whatever the buffer holds there (a neighbouring
// plane, NaN included) contributes +0.
constexpr int64_t kFlatMaxMasks = 1024;  // taps x vectors: at most 64 KiB of masks

struct FlatGeom {
  int64_t s = 1, H = 0, W = 0, OH = 0, OW = 0, Hs = 0;  // Hs: rows per sub-plane
  int64_t plane = 0, nvec = 0, taps = 0;
  int64_t sub = 0;         // floats per sub-plane (Hs x OW)
  int64_t lo = 0, hi = 0;  // slack before and after the sub-planes (reads of masked lanes)
  std::vector<int64_t> off;     // per tap: offset of its first input from the output index
  std::vector<int32_t> mask;    // [tap][vector][lane]: all ones where the lane's input is in the image
  int64_t buf() const { return lo + s * s * sub + hi; }
};

bool flat_geometry(const ConvArgs& a, FlatGeom& f) {
  const ops::Window3& w = a.win;
  if (w.in[0] != 1 || w.k[0] != 1 || w.d[1] != 1 || w.d[2] != 1 || w.s[1] != w.s[2] || w.s[1] > 2) return false;
  f.s = w.s[1], f.H = w.in[1], f.W = w.in[2], f.OH = w.out[1], f.OW = w.out[2];
  f.taps = w.k[1] * w.k[2];
  f.plane = f.OH * f.OW;
  f.nvec = (f.plane + kVW - 1) / kVW;
  if (f.plane <= 0 || f.H <= 0 || f.W <= 0 || f.taps * f.nvec > kFlatMaxMasks) return false;
  if (f.s == 1 && f.W != f.OW) return false;  // rows of the plane must be rows of the output
  f.Hs = (f.H + f.s - 1) / f.s;
  f.sub = f.Hs * f.OW;
  auto fdiv = [](int64_t p, int64_t q) { return p >= 0 ? p / q : -((-p + q - 1) / q); };
  f.off.assign(static_cast<size_t>(f.taps), 0);
  f.mask.assign(static_cast<size_t>(f.taps * f.nvec * kVW), 0);
  std::vector<int64_t> lane_oh(static_cast<size_t>(f.nvec * kVW)), lane_ow(lane_oh.size());
  for (int64_t i = 0, oh = 0, ow = 0; i < f.nvec * kVW; ++i) {
    lane_oh[static_cast<size_t>(i)] = i < f.plane ? oh : -(1 << 30);  // lanes past the plane: never valid
    lane_ow[static_cast<size_t>(i)] = ow;
    if (++ow == f.OW) ow = 0, ++oh;
  }
  int64_t min_off = 0, max_off = 0;
  for (int64_t kh = 0; kh < w.k[1]; ++kh)
    for (int64_t kw = 0; kw < w.k[2]; ++kw) {
      const int64_t t = kh * w.k[2] + kw, th = kh - w.pb[1], tw = kw - w.pb[2];
      const int64_t dr = fdiv(th, f.s), ph = th - dr * f.s, dc = fdiv(tw, f.s), pw = tw - dc * f.s;
      // Sub-plane rows hold OW columns: an input column past them that this tap reads would be lost.
      if (dc >= 1 && f.s * f.OW + pw < f.W) return false;
      const int64_t rows = (f.H - ph + f.s - 1) / f.s;             // input rows in this row phase
      const int64_t cols = std::min(f.OW, (f.W - pw + f.s - 1) / f.s);  // input columns in this column phase
      const int64_t o = (ph * f.s + pw) * f.sub + dr * f.OW + dc;
      f.off[static_cast<size_t>(t)] = o;
      min_off = std::min(min_off, o);
      max_off = std::max(max_off, o);
      int32_t* mk = f.mask.data() + t * f.nvec * kVW;
      for (size_t i = 0; i < lane_oh.size(); ++i) {
        const int64_t r = lane_oh[i] + dr, c = lane_ow[i] + dc;
        mk[i] = r >= 0 && r < rows && c >= 0 && c < cols ? -1 : 0;
      }
    }
  f.lo = -min_off;
  f.hi = std::max<int64_t>(0, max_off + f.nvec * kVW - f.s * f.s * f.sub);
  return true;
}

// flat_geometry for this window, or nullptr where the flat path does not apply: built once per window geometry and
// calling thread (the masks of a 32x32 map are 36 KiB; a function of the geometry alone, so safe to keep).
const FlatGeom* cached_flat_geometry(const ConvArgs& a) {
  const ops::Window3& w = a.win;
  const std::vector<int64_t> key = {w.in[0], w.in[1], w.in[2], w.out[0], w.out[1], w.out[2], w.k[0],  w.k[1],
                                    w.k[2],  w.s[1],  w.s[2],  w.d[1],   w.d[2],   w.pb[1],  w.pb[2], w.pe[1], w.pe[2]};
  thread_local std::map<std::vector<int64_t>, std::unique_ptr<FlatGeom>> cache;
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() >= 16) cache.clear();  // at most 16 geometries (~1 MiB of masks) per thread
    auto f = std::make_unique<FlatGeom>();
    if (!flat_geometry(a, *f)) f.reset();
    it = cache.emplace(key, std::move(f)).first;
  }
  return it->second.get();
}

// The sub-planes of one input plane x [H, W] at d (the first sub-plane; lanes the masks clear are left as they are).
KILN_CPU_CLONES void flat_fill(const float* x, const FlatGeom& f, float* d) {
  if (f.s == 1) {
    std::memcpy(d, x, static_cast<size_t>(f.H * f.W) * sizeof(float));
    return;
  }
  const int64_t n0 = std::min(f.OW, (f.W + 1) / 2), n1 = std::min(f.OW, f.W / 2);
  for (int64_t ph = 0; ph < 2; ++ph)
    for (int64_t r = 0; 2 * r + ph < f.H; ++r) {
      const float* src = x + (2 * r + ph) * f.W;
      float* d0 = d + (ph * 2) * f.sub + r * f.OW;
      float* d1 = d0 + f.sub;
      // Even and odd columns: 16 of each from 32 floats while the row has them, then one by one.
      int64_t c = 0;
      for (; 2 * c + 32 <= f.W && c + 16 <= n1; c += 16) {
        KilnV16f a, b;
        std::memcpy(&a, src + 2 * c, sizeof a);
        std::memcpy(&b, src + 2 * c + 16, sizeof b);
        const KilnV16f e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const KilnV16f o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        std::memcpy(d0 + c, &e, sizeof e);
        std::memcpy(d1 + c, &o, sizeof o);
      }
      for (; 2 * c + 16 <= f.W && c + 8 <= n1; c += 8) {
        KilnV8f a, b;
        std::memcpy(&a, src + 2 * c, sizeof a);
        std::memcpy(&b, src + 2 * c + 8, sizeof b);
        const KilnV8f e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        const KilnV8f o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
        std::memcpy(d0 + c, &e, sizeof e);
        std::memcpy(d1 + c, &o, sizeof o);
      }
      for (int64_t k = c; k < n0; ++k) d0[k] = src[2 * k];
      for (int64_t k = c; k < n1; ++k) d1[k] = src[2 * k + 1];
    }
}

// NP planes x NV vectors from vector v0 on, accumulated over the taps, then stored.
template <int NP, int NV>
KILN_CPU_INLINE void flat_block(const float* const* src, const float* const* wt, const float* bias, const FlatGeom& f,
                                int64_t v0, float* const* y) {
  KilnV16f acc[NP][NV];
  for (int p = 0; p < NP; ++p)
    for (int v = 0; v < NV; ++v) acc[p][v] = KilnV16f{} + bias[p];
  for (int64_t t = 0; t < f.taps; ++t) {
    const int32_t* mk = f.mask.data() + (t * f.nvec + v0) * kVW;
    const int64_t o = f.off[static_cast<size_t>(t)] + v0 * kVW;
    for (int p = 0; p < NP; ++p) {
      const float wv = wt[p][t];
      for (int v = 0; v < NV; ++v) {
        KilnV16f xv;
        std::memcpy(&xv, src[p] + o + v * kVW, sizeof xv);
        KilnV16i mv;  // (a std::vector of vector types loses their alignment: unaligned loads)
        std::memcpy(&mv, mk + v * kVW, sizeof mv);
        acc[p][v] += (KilnV16f)((KilnV16i)xv & mv) * wv;
      }
    }
  }
  for (int p = 0; p < NP; ++p)
    for (int v = 0; v < NV; ++v) {
      const int64_t i = (v0 + v) * kVW;
      store_head(y[p] + i, acc[p][v], f.plane - i);
    }
}

template <int NP, int NV>
KILN_CPU_INLINE void flat_planes_np(const float* const* src, const float* const* wt, const float* bias,
                                    const FlatGeom& f, float* const* y) {
  int64_t v = 0;
  for (; v + NV <= f.nvec; v += NV) flat_block<NP, NV>(src, wt, bias, f, v, y);
  for (; v < f.nvec; ++v) flat_block<NP, 1>(src, wt, bias, f, v, y);
}

// Output planes [q0, q1) of a depthwise conv (plane q = image q / M, channel q % M). `scratch` holds kFlatGroup
// buffers of f.buf() floats.
constexpr int kFlatGroup = 4;
struct FlatConv {
  const float* x;
  const float* w;
  const float* b;
  int64_t M, Mg, C, N;
  float* y;
};

KILN_CPU_CLONES void flat_planes(const FlatConv& c, const FlatGeom& f, int64_t q0, int64_t q1, float* scratch) {
  const int64_t in_plane = f.H * f.W, total = c.N * c.C * in_plane;
  // Planes per group: enough independent accumulators (4) when a plane is only one or two vectors.
  const int np = f.nvec >= 4 ? 1 : f.nvec >= 2 ? 2 : 4;
  for (int64_t q = q0; q < q1;) {
    const int cnt = static_cast<int>(std::min<int64_t>(np, q1 - q));
    const float* src[kFlatGroup];
    const float* wt[kFlatGroup];
    float bias[kFlatGroup];
    float* y[kFlatGroup];
    for (int p = 0; p < cnt; ++p) {
      const int64_t qq = q + p, bn = qq / c.M, m = qq % c.M;
      const int64_t xo = (bn * c.C + m / c.Mg) * in_plane;
      // Stride 1 reads the plane in place unless the masked reads around it would leave the tensor.
      if (f.s == 1 && xo - f.lo >= 0 && xo + in_plane + f.hi <= total) {
        src[p] = c.x + xo;
      } else {
        float* d = scratch + p * f.buf() + f.lo;
        flat_fill(c.x + xo, f, d);
        src[p] = d;
      }
      wt[p] = c.w + m * f.taps;
      bias[p] = c.b ? c.b[m] : 0.0f;
      y[p] = c.y + qq * f.plane;
    }
    if (cnt == 4) flat_planes_np<4, 1>(src, wt, bias, f, y);
    else if (cnt == 2) flat_planes_np<2, 2>(src, wt, bias, f, y);
    else
      for (int p = 0; p < cnt; ++p) flat_planes_np<1, 4>(src + p, wt + p, bias + p, f, y + p);
    q += cnt;
  }
}

void conv_direct_dw(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ConvRun r;
  DirectGeom g;
  if (!r.open(n, in) || r.a.Cg != 1 || !direct_geometry(r.a, g)) return run_reference(n, in, out);
  const ConvArgs& a = r.a;
  const ConvEpilogue& ep = r.ep;
  const float *px = r.x, *pw = r.w, *pb = r.b;
  float* py = r.y;
  const int64_t plane = g.OH * g.OW, ksp = g.KH * g.KW;
  const FlatGeom* fg = plane > 0 && a.N > 0 && a.M > 0 ? cached_flat_geometry(a) : nullptr;
  if (fg) {
    const FlatGeom& f = *fg;
    // A flat multiply-add (a load, a mask, a multiply-add per 16) costs about two dense ones.
    const int64_t threads = threads_for_work(2.0 * static_cast<double>(a.N * a.M) * f.taps * f.nvec * kVW,
                                             min_macs_per_thread(), cpu_threads());
    const FlatConv c{px, pw, pb, a.M, a.Mg, a.C, a.N, py};
    parallel_for_threads(a.N * a.M, threads, [&](int64_t lo, int64_t hi) {
      std::vector<float> scratch(static_cast<size_t>(kFlatGroup * f.buf()), 0.0f);
      flat_planes(c, f, lo, hi, scratch.data());
      if (ep.active())
        apply_epilogue(py + lo * plane, ep.z ? ep.z + lo * plane : nullptr, nullptr, hi - lo, plane, plane, ep.act);
    });
  } else if (plane > 0 && a.N > 0 && a.M > 0) {
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
        if (ep.active())
          apply_epilogue(py + nm * plane, ep.z ? ep.z + nm * plane : nullptr, nullptr, 1, plane, plane, ep.act);
      }
    });
  }
  r.finish(out);
}

// Depthwise: weights [M, 1, k...] with group > 1.
bool supports_dw(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!supports_direct(n, in) || n.attr_int("group", 1) <= 1) return false;
  const ir::ValueType* w = in[1];
  return w->has_rank && w->dims.size() >= 3 && w->dims[1].is_static() && w->dims[1].value == 1;
}

}  // namespace cpu_conv
}  // namespace kiln::runtime::cpu
