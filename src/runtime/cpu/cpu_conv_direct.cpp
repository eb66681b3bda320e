// Conv "direct": 1-D and 2-D convolutions with stride 1 along the last axis (any stride along the other, any
// dilation, pads, groups), float32 (float16 / bfloat16 through float32). No unrolled matrix: the input of each
// image is copied once into a zero-padded buffer (so no bounds checks remain), then every output row of a block of
// 8 output channels is computed 16 outputs at a time in registers: for each input channel and kernel tap one
// vector load of the input row and 8 multiply-adds with broadcast weights. Work items (image, group, channel block,
// output row) are split over kiln's threads. Best where channels are few and maps are wide (small CNNs), where
// im2col + GEMM spends its time unrolling; the builder times it against "im2col_blas".
#include <algorithm>
#include <cstring>

#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_conv {

constexpr int kMB = 8;    // output channels per block
constexpr int kVW = 16;   // outputs per vector

struct DirectGeom {
  int64_t Cg, KH, KW, sh, dh, dw, Hp, Wp, OH, OW;
};

// One output row of one channel block: y[j * plane + ow] for j < mcount, all ow.
KILN_CPU_CLONES void direct_row(const float* xp, const float* wpk, const float* bias, const DirectGeom& g, int64_t oh,
                                float* y, int64_t plane, int mcount) {
  for (int64_t ow = 0; ow < g.OW; ow += kVW) {
    KilnV16f acc[kMB];
    for (int j = 0; j < kMB; ++j) {
      const float b = bias[j];
      acc[j] = KilnV16f{b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b};
    }
    for (int64_t c = 0; c < g.Cg; ++c) {
      const float* xc = xp + c * g.Hp * g.Wp + ow;
      const float* wc = wpk + c * g.KH * g.KW * kMB;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const float* xr = xc + (oh * g.sh + kh * g.dh) * g.Wp;
        const float* wr = wc + kh * g.KW * kMB;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          KilnV16f xv;
          std::memcpy(&xv, xr + kw * g.dw, sizeof xv);
          const float* wk = wr + kw * kMB;
          for (int j = 0; j < kMB; ++j) acc[j] += xv * wk[j];
        }
      }
    }
    const size_t nbytes = static_cast<size_t>(std::min<int64_t>(kVW, g.OW - ow)) * sizeof(float);
    for (int j = 0; j < mcount; ++j) std::memcpy(y + j * plane + oh * g.OW + ow, &acc[j], nbytes);
  }
}

void conv_direct(const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  ops::check_arity(n, 2, 3);
  ConvArgs a;
  if (!conv_args(n, in, a) || a.win.in[0] != 1 || a.win.k[0] != 1 || a.win.s[2] != 1)
    return run_reference(n, in, out);
  const ops::Window3& w = a.win;
  DirectGeom g;
  g.Cg = a.Cg;
  g.KH = w.k[1];
  g.KW = w.k[2];
  g.sh = w.s[1];
  g.dh = w.d[1];
  g.dw = w.d[2];
  g.Hp = w.in[1] + w.pb[1] + w.pe[1];
  g.Wp = w.in[2] + w.pb[2] + w.pe[2] + kVW;  // slack: the last vector of a row may read past the row's end
  g.OH = w.out[1];
  g.OW = w.out[2];
  Tensor y = uninit_tensor(a.x->dtype(), a.y_shape);
  std::vector<float> sx, sw, sb;
  const float* px = f32_data(*a.x, sx);
  const float* pw = f32_data(*a.w, sw);
  const float* pb = a.b ? f32_data(*a.b, sb) : nullptr;
  F32Out yo(y);
  float* py = yo.data();
  const int64_t planes_in = a.N * a.C, plane = g.OH * g.OW, H = w.in[1], W = w.in[2];
  if (plane > 0 && a.N > 0 && a.M > 0) {
    // Zero-padded input, one [Hp, Wp] plane per (image, channel).
    Tensor xpad_t = uninit_tensor(DType::Float32, {planes_in * g.Hp * g.Wp});
    float* xpad = xpad_t.mutable_as<float>();
    parallel_for(planes_in, std::max<int64_t>(1, 262144 / std::max<int64_t>(1, g.Hp * g.Wp)), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        float* dst = xpad + p * g.Hp * g.Wp;
        std::fill(dst, dst + g.Hp * g.Wp, 0.0f);
        for (int64_t h = 0; h < H; ++h)
          std::memcpy(dst + (h + w.pb[1]) * g.Wp + w.pb[2], px + (p * H + h) * W, static_cast<size_t>(W) * 4);
      }
    });
    // Weights as [group][channel block][Cg][KH][KW][kMB], zero beyond the last channel; bias per block.
    const int64_t blocks = (a.Mg + kMB - 1) / kMB, taps = g.Cg * g.KH * g.KW;
    std::vector<float> wpk(static_cast<size_t>(a.G * blocks * taps * kMB), 0.0f);
    std::vector<float> bpk(static_cast<size_t>(a.G * blocks * kMB), 0.0f);
    for (int64_t gr = 0; gr < a.G; ++gr)
      for (int64_t m = 0; m < a.Mg; ++m) {
        const int64_t blk = gr * blocks + m / kMB, j = m % kMB, mo = gr * a.Mg + m;
        for (int64_t t = 0; t < taps; ++t) wpk[static_cast<size_t>((blk * taps + t) * kMB + j)] = pw[mo * taps + t];
        if (pb) bpk[static_cast<size_t>(blk * kMB + j)] = pb[mo];
      }
    const int64_t items = a.N * a.G * blocks * g.OH;
    const int64_t row_work = std::max<int64_t>(1, taps * ((g.OW + kVW - 1) / kVW));
    parallel_for(items, std::max<int64_t>(1, 4096 / row_work), [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t oh = it % g.OH, rest = it / g.OH, blk = rest % blocks, ng = rest / blocks;
        const int64_t bn = ng / a.G, gr = ng % a.G;
        const int64_t m0 = gr * a.Mg + blk * kMB;
        const int mcount = static_cast<int>(std::min<int64_t>(kMB, a.Mg - blk * kMB));
        const float* xp = xpad + (bn * a.C + gr * a.Cg) * g.Hp * g.Wp;
        const int64_t kb = gr * blocks + blk;
        direct_row(xp, wpk.data() + kb * taps * kMB, bpk.data() + kb * kMB, g, oh, py + (bn * a.M + m0) * plane,
                   plane, mcount);
      }
    });
  }
  yo.commit();
  out[0] = y;
}

bool supports_direct(const ir::Node& n, const std::vector<const ir::ValueType*>& in) {
  if (!supports_conv(n, in)) return false;
  const ir::ValueType* x = in[0];
  if (x->has_rank && x->dims.size() > 4) return false;
  const std::vector<int64_t> strides = n.attr_ints("strides", {});
  return strides.empty() || strides.back() == 1;
}

}  // namespace cpu_conv
}  // namespace kiln::runtime::cpu
