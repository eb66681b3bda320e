// Pieces shared by the direct Conv tactics (cpu_conv_direct.cpp: "direct"; cpu_conv_dw.cpp: "direct_dw"): the
// zero-padded, column-phase-split copy of input planes and the geometry the kernels read.
#pragma once
#include <cstring>
#include <vector>

#include "runtime/cpu/cpu_conv.h"
#include "runtime/cpu/cpu_math.h"

namespace kiln::runtime::cpu::cpu_conv {

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

Padded padded_geometry(const ops::Window3& w);
// One padded, phase-split plane from input plane `src` ([H, W]); `ranges` holds each phase's valid [lo, hi). (A
// plain function around the per-ISA clones: a target_clones function is called only from its own file.)
void fill_plane(const float* src, float* d, const Padded& p, int64_t H, int64_t W, int64_t pbh, int64_t pbw,
                const int64_t* ranges);
std::vector<int64_t> kernel_column_offsets(const ops::Window3& w, const Padded& p);
// The geometry of a 1-D / 2-D convolution; false for 3-D.
bool direct_geometry(const ConvArgs& a, DirectGeom& g);

// Stores the first n (<= lanes) floats of v: a full vector as one store (a variable-size memcpy is a library call).
template <class V>
KILN_CPU_INLINE void store_head(float* dst, const V& v, int64_t n) {
  if (n >= static_cast<int64_t>(sizeof v / sizeof(float)))
    std::memcpy(dst, &v, sizeof v);
  else
    std::memcpy(dst, &v, static_cast<size_t>(n) * sizeof(float));
}

typedef float KilnV8f __attribute__((vector_size(32)));

}  // namespace kiln::runtime::cpu::cpu_conv
