// Shared pieces of the data-movement kernel family (movement.cu, gather.cu, pad.cu, resize.cu) and the control
// family (control.cu): fast 32-bit index division, the batched strided copy that most movement ops reduce to,
// host copies of shape-like inputs, and small host-to-device writes through kernel parameters.
// Include only from .cu files.
#pragma once
#include <cstring>
#include <vector>

#include "ops/common.h"
#include "runtime/cuda/kernels/common.cuh"

namespace kiln::runtime::cuda::move {

// Unsigned division by a divisor fixed at launch (Granlund-Montgomery): q = (umulhi(n, m) + n) >> s. Exact for
// n < 2^31 and 1 <= d < 2^31, which the "small" index paths guarantee (every count and offset < 2^31).
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  explicit FastDiv(int64_t div) : d(static_cast<uint32_t>(div < 1 ? 1 : div)) {
    s = 0;
    while ((uint64_t(1) << s) < d) ++s;
    m = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << s) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

// Largest element count or offset the 32-bit index paths take.
constexpr int64_t kSmallIndex = (int64_t(1) << 31) - 1;

// Most dims a strided copy handles after simplification (Tile interleaves repeats with dims: 2 x rank).
constexpr int kCopyDims = 12;

// One strided copy: dst[dst_base + sum(i_d * dst_strides[d])] = src[src_base + sum(i_d * src_strides[d])] for
// every index i of `dims`. Offsets and strides are in elements of `esize` bytes; strides may be 0 or negative.
struct CopyDesc {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t src_base = 0, dst_base = 0;
  Shape dims;
  std::vector<int64_t> src_strides, dst_strides;
};

// Row-major strides.
inline std::vector<int64_t> row_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

// A copy from `src` (shape `in`, row-major) into contiguous `dst` (shape `out`) with per-output-dim source
// strides `src_strides` and element offset `src_base`.
inline CopyDesc gather_copy(const void* src, void* dst, int64_t src_base, const Shape& out,
                            std::vector<int64_t> src_strides) {
  CopyDesc c;
  c.src = src;
  c.dst = dst;
  c.src_base = src_base;
  c.dims = out;
  c.src_strides = std::move(src_strides);
  c.dst_strides = row_strides(out);
  return c;
}

// Runs every copy (same element size), batching several into one launch; a copy that reduces to one contiguous
// block becomes a cudaMemcpyAsync. `what` names the node in errors. Defined in movement.cu.
void launch_copies(const KernelContext& ctx, size_t esize, std::vector<CopyDesc> copies, const ir::Node& node);

// Copies x (row-major, shape `in`) permuted by `perm` (output dim d = input dim perm[d]) into contiguous dst: the
// tiled shared-memory transpose when the contiguous input axis and the output's last axis are both long enough,
// else one strided copy. Defined in movement.cu.
void launch_permute(const KernelContext& ctx, size_t esize, const void* src, void* dst, const Shape& in,
                    const std::vector<int64_t>& perm, const ir::Node& node);

// Host copy of input i: the executor's host value when it has one, else a synchronous device-to-host copy (the
// node then cannot be captured in a CUDA graph; the executor normally knows these small shape-like values).
inline Tensor host_input(const KernelContext& ctx, const KernelArgs& args, size_t i) {
  if (i < args.host_in.size() && args.host_in[i]) return *args.host_in[i];
  if (i >= args.in.size() || !args.in[i])
    KILN_THROW(InvalidModel, args.node.label() << ": input " << i << " is required");
  const DTensor& d = *args.in[i];
  Tensor t(d.dtype, d.shape);
  if (t.nbytes() > 0) {
    KILN_CUDA_CHECK(cudaMemcpyAsync(t.mutable_data(), d.data, t.nbytes(), cudaMemcpyDeviceToHost, ctx.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }
  return t;
}

inline bool has_in(const KernelArgs& a, size_t i) { return i < a.in.size() && a.in[i] != nullptr; }
inline const DTensor& in_of(const KernelArgs& a, size_t i) {
  if (!has_in(a, i)) KILN_THROW(InvalidModel, a.node.label() << ": input " << i << " is required");
  return *a.in[i];
}

// Writes `n` bytes of host data to device memory `dst` through kernel parameters (capturable, no pageable copy,
// no allocation): chunks of kParamBytes per launch. Defined in control.cu.
constexpr size_t kParamBytes = 3072;
void write_bytes(const KernelContext& ctx, void* dst, const void* src, size_t n);

// Fills `count` elements of `esize` bytes at dst with the value at `value` (host). Defined in control.cu.
void fill_value(const KernelContext& ctx, void* dst, size_t esize, int64_t count, const void* value);

// Supports helper: every given input has a known rank of at most `max_rank` (unknown ranks are accepted: the
// kernels check the real rank and throw Unsupported).
inline bool ranks_at_most(const std::vector<ir::ValueType>& in, size_t max_rank) {
  for (const auto& t : in)
    if (t.has_rank && t.dims.size() > max_rank) return false;
  return true;
}

// Unsupported naming the node when a runtime shape exceeds what the kernels index.
inline void check_rank(const ir::Node& n, const Shape& s, size_t max_rank = kMaxDims) {
  if (s.size() > max_rank)
    KILN_THROW(Unsupported, n.label() << ": CUDA kernel takes rank <= " << max_rank << ", got " << shape_str(s));
}

// The family's other files register their ops here; register_movement_kernels() (movement.cu) calls each.
void register_gather_kernels();  // gather.cu: Gather, GatherElements, GatherND, ScatterND
void register_pad_kernels();     // pad.cu: Pad, Trilu
void register_resize_kernels();  // resize.cu: Resize

}  // namespace kiln::runtime::cuda::move
