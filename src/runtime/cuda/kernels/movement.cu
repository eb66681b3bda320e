// CUDA kernels: the movement family (kernels/families.h), part 1: the batched strided copy and the tiled
// transpose that most data-movement ops reduce to, and the ops built on them: Transpose, Slice, Expand, Tile,
// Concat, Split, DepthToSpace, SpaceToDepth, Reshape / Flatten / Squeeze / Unsqueeze (a device copy; the executor
// may alias them instead). Gather*, ScatterND (gather.cu), Pad, Trilu (pad.cu) and Resize (resize.cu) register
// from register_movement_kernels() too. Everything moves bytes: one instantiation per element size (1, 2, 4, 8
// bytes, widened to 16-byte vectors when the innermost run is contiguous and aligned), whatever the dtype.
#include <algorithm>
#include <type_traits>

#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/movement_common.cuh"

namespace kiln::runtime::cuda {
namespace move {

// ---- batched strided copy -------------------------------------------------------------------------------------
// One copy after simplification. Dims are stored innermost first; `div[k].d` == dim[k] on the 32-bit path.
struct CopyArgs {
  const char* src;
  char* dst;
  int64_t n;
  int64_t src_base, dst_base;
  int rank;
  FastDiv div[kCopyDims];
  int64_t dim[kCopyDims];
  int64_t ss[kCopyDims], ds[kCopyDims];
};
constexpr int kBatch = 6;  // copies per launch (kernel parameters stay under 4 KB)
struct CopyBatch {
  int count;
  CopyArgs c[kBatch];
};
static_assert(sizeof(CopyBatch) <= 4096, "kernel parameters are limited to 4 KB");

template <typename E, bool Small>
__global__ void copy_kernel(const __grid_constant__ CopyBatch b) {
  const CopyArgs& a = b.c[blockIdx.y];
  const E* src = reinterpret_cast<const E*>(a.src);
  E* dst = reinterpret_cast<E*>(a.dst);
  using I = std::conditional_t<Small, uint32_t, int64_t>;
  const I n = static_cast<I>(a.n);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    I r = i;
    int64_t so = a.src_base, dof = a.dst_base;
#pragma unroll
    for (int k = 0; k < kCopyDims; ++k) {
      if (k < a.rank) {
        I rem = r;
        if (k + 1 < a.rank) {
          I q;
          if constexpr (Small) q = a.div[k].div(r), rem = r - q * a.div[k].d;
          else q = r / a.dim[k], rem = r - q * a.dim[k];
          r = q;
        }
        so += static_cast<int64_t>(rem) * a.ss[k];
        dof += static_cast<int64_t>(rem) * a.ds[k];
      }
    }
    dst[dof] = src[so];
  }
}

namespace {

// A simplified copy: dims of size 1 dropped, adjacent dims merged where both sides are contiguous across them.
struct Simple {
  const char* src;
  char* dst;
  int64_t src_base, dst_base, n;
  std::vector<int64_t> dim, ss, ds;  // innermost first
  size_t esize;
};

Simple simplify(const CopyDesc& c, size_t esize) {
  Simple s{static_cast<const char*>(c.src), static_cast<char*>(c.dst), c.src_base, c.dst_base, 1, {}, {}, {}, esize};
  for (size_t d = c.dims.size(); d-- > 0;) {
    const int64_t n = c.dims[d];
    s.n *= n;
    if (n == 1) continue;
    if (!s.dim.empty() && c.src_strides[d] == s.ss.back() * s.dim.back() &&
        c.dst_strides[d] == s.ds.back() * s.dim.back()) {
      s.dim.back() *= n;
      continue;
    }
    s.dim.push_back(n);
    s.ss.push_back(c.src_strides[d]);
    s.ds.push_back(c.dst_strides[d]);
  }
  if (s.dim.empty()) s.dim = {1}, s.ss = {1}, s.ds = {1};
  return s;
}

// Reinterprets the copy with wider elements (up to 16 bytes) when the innermost run is contiguous on both sides
// and every stride, base, count and pointer is a multiple of the width.
void widen(Simple& s) {
  if (s.ss[0] != 1 || s.ds[0] != 1) return;
  for (size_t w = 16; w > s.esize; w /= 2) {
    const int64_t v = static_cast<int64_t>(w / s.esize);
    bool ok = s.dim[0] % v == 0 && s.src_base % v == 0 && s.dst_base % v == 0 &&
              reinterpret_cast<uintptr_t>(s.src) % w == 0 && reinterpret_cast<uintptr_t>(s.dst) % w == 0;
    for (size_t k = 1; ok && k < s.dim.size(); ++k) ok = s.ss[k] % v == 0 && s.ds[k] % v == 0;
    if (!ok) continue;
    s.dim[0] /= v;
    for (size_t k = 1; k < s.dim.size(); ++k) s.ss[k] /= v, s.ds[k] /= v;
    s.src_base /= v, s.dst_base /= v, s.n /= v;
    s.esize = w;
    return;
  }
}

template <typename E>
void launch_batch(const KernelContext& ctx, const std::vector<const Simple*>& group, bool small) {
  CopyBatch b{};
  b.count = static_cast<int>(group.size());
  int64_t most = 0;
  for (size_t j = 0; j < group.size(); ++j) {
    const Simple& s = *group[j];
    CopyArgs& a = b.c[j];
    a.src = s.src;
    a.dst = s.dst;
    a.n = s.n;
    a.src_base = s.src_base;
    a.dst_base = s.dst_base;
    a.rank = static_cast<int>(s.dim.size());
    for (size_t k = 0; k < s.dim.size(); ++k) {
      a.div[k] = FastDiv(small ? s.dim[k] : 1);
      a.dim[k] = s.dim[k];
      a.ss[k] = s.ss[k];
      a.ds[k] = s.ds[k];
    }
    most = std::max(most, s.n);
  }
  dim3 grid(grid_for(most, 1), static_cast<unsigned>(group.size()));
  if (small) copy_kernel<E, true><<<grid, kBlock, 0, ctx.stream>>>(b);
  else copy_kernel<E, false><<<grid, kBlock, 0, ctx.stream>>>(b);
  KILN_CUDA_LAUNCH_CHECK("copy_kernel");
}

void launch_group(const KernelContext& ctx, size_t esize, const std::vector<const Simple*>& group, bool small) {
  switch (esize) {
    case 1: launch_batch<uint8_t>(ctx, group, small); return;
    case 2: launch_batch<uint16_t>(ctx, group, small); return;
    case 4: launch_batch<uint32_t>(ctx, group, small); return;
    case 8: launch_batch<uint64_t>(ctx, group, small); return;
    case 16: launch_batch<uint4>(ctx, group, small); return;
  }
  KILN_THROW(Unsupported, "CUDA copy: element size " << esize);
}

}  // namespace

void launch_copies(const KernelContext& ctx, size_t esize, std::vector<CopyDesc> copies, const ir::Node& node) {
  std::vector<Simple> todo;
  for (const CopyDesc& c : copies) {
    if (shape_numel(c.dims) == 0) continue;
    Simple s = simplify(c, esize);
    if (s.dim.size() == 1 && s.ss[0] == 1 && s.ds[0] == 1) {
      KILN_CUDA_CHECK(cudaMemcpyAsync(s.dst + s.dst_base * static_cast<int64_t>(esize),
                                      s.src + s.src_base * static_cast<int64_t>(esize),
                                      static_cast<size_t>(s.n) * esize, cudaMemcpyDeviceToDevice, ctx.stream));
      continue;
    }
    if (s.dim.size() > static_cast<size_t>(kCopyDims))
      KILN_THROW(Unsupported, node.label() << ": CUDA copy over " << s.dim.size() << " non-mergeable dims (at most "
                                           << kCopyDims << ")");
    widen(s);
    todo.push_back(std::move(s));
  }
  // Batch copies of the same element width and index size.
  std::vector<bool> done(todo.size(), false);
  for (size_t i = 0; i < todo.size(); ++i) {
    if (done[i]) continue;
    const bool small = todo[i].n <= kSmallIndex;
    std::vector<const Simple*> group;
    for (size_t j = i; j < todo.size() && group.size() < static_cast<size_t>(kBatch); ++j) {
      if (done[j] || todo[j].esize != todo[i].esize || (todo[j].n <= kSmallIndex) != small) continue;
      group.push_back(&todo[j]);
      done[j] = true;
    }
    launch_group(ctx, todo[i].esize, group, small);
  }
}

// ---- tiled transpose ---------------------------------------------------------------------------------------------
// Output = a batch of 2-D tiles: axis A is contiguous in the source, axis B (the output's innermost) contiguous in
// the destination. 32 x 32 tiles through shared memory (padded against bank conflicts); the other dims form the
// batch, decomposed once per block.
constexpr int kTile = 32, kTileRows = 8;
struct TileArgs {
  const char* src;
  char* dst;
  int64_t A, B, sB, dA;  // sB: source stride of B; dA: destination stride of A
  int64_t tiles_a, batches;
  int nb;
  int64_t bdim[kCopyDims], bss[kCopyDims], bds[kCopyDims];
};

template <typename E>
__global__ void tile_transpose_kernel(const __grid_constant__ TileArgs a) {
  __shared__ E tile[kTile][kTile + 1];
  const E* src = reinterpret_cast<const E*>(a.src);
  E* dst = reinterpret_cast<E*>(a.dst);
  const int64_t a0 = (blockIdx.x % a.tiles_a) * kTile, b0 = (blockIdx.x / a.tiles_a) * kTile;
  for (int64_t bt = blockIdx.y; bt < a.batches; bt += gridDim.y) {
    int64_t r = bt, so = 0, dof = 0;
    for (int k = 0; k < a.nb; ++k) {
      const int64_t q = r / a.bdim[k], rem = r - q * a.bdim[k];
      so += rem * a.bss[k];
      dof += rem * a.bds[k];
      r = q;
    }
    for (int j = threadIdx.y; j < kTile; j += kTileRows) {
      const int64_t ai = a0 + threadIdx.x, bi = b0 + j;
      if (ai < a.A && bi < a.B) tile[j][threadIdx.x] = src[so + ai + bi * a.sB];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < kTile; j += kTileRows) {
      const int64_t bi = b0 + threadIdx.x, ai = a0 + j;
      if (ai < a.A && bi < a.B) dst[dof + ai * a.dA + bi] = tile[threadIdx.x][j];
    }
    __syncthreads();
  }
}

void launch_permute(const KernelContext& ctx, size_t esize, const void* src, void* dst, const Shape& in,
                    const std::vector<int64_t>& perm, const ir::Node& node) {
  const std::vector<int64_t> cs = row_strides(in);
  Shape out;
  std::vector<int64_t> st;
  for (int64_t p : perm) out.push_back(in[static_cast<size_t>(p)]), st.push_back(cs[static_cast<size_t>(p)]);
  CopyDesc c = gather_copy(src, dst, 0, out, st);
  if (shape_numel(out) == 0) return;
  Simple s = simplify(c, esize);
  size_t p = 0;
  while (p < s.dim.size() && s.ss[p] != 1) ++p;
  constexpr int64_t kMinTiled = 16;
  if (s.ss[0] == 1 || p == s.dim.size() || s.dim[p] < kMinTiled || s.dim[0] < kMinTiled || s.dim.size() > kCopyDims + 2u) {
    launch_copies(ctx, esize, {c}, node);
    return;
  }
  TileArgs a{};
  a.src = static_cast<const char*>(src);
  a.dst = static_cast<char*>(dst);
  a.A = s.dim[p];
  a.B = s.dim[0];
  a.sB = s.ss[0];
  a.dA = s.ds[p];
  a.tiles_a = (a.A + kTile - 1) / kTile;
  a.batches = 1;
  for (size_t k = 1; k < s.dim.size(); ++k) {
    if (k == p) continue;
    a.bdim[a.nb] = s.dim[k];
    a.bss[a.nb] = s.ss[k];
    a.bds[a.nb] = s.ds[k];
    a.batches *= s.dim[k];
    ++a.nb;
  }
  const int64_t tiles = a.tiles_a * ((a.B + kTile - 1) / kTile);
  if (tiles > 0x7fffffff) {
    launch_copies(ctx, esize, {c}, node);
    return;
  }
  dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(std::min<int64_t>(a.batches, 65535)));
  dim3 block(kTile, kTileRows);
  switch (esize) {
    case 1: tile_transpose_kernel<uint8_t><<<grid, block, 0, ctx.stream>>>(a); break;
    case 2: tile_transpose_kernel<uint16_t><<<grid, block, 0, ctx.stream>>>(a); break;
    case 4: tile_transpose_kernel<uint32_t><<<grid, block, 0, ctx.stream>>>(a); break;
    case 8: tile_transpose_kernel<uint64_t><<<grid, block, 0, ctx.stream>>>(a); break;
    default: KILN_THROW(Unsupported, node.label() << ": element size " << esize);
  }
  KILN_CUDA_LAUNCH_CHECK("tile_transpose_kernel");
}

// ---- ops ---------------------------------------------------------------------------------------------------------
namespace {

size_t esize_of(const DTensor& t) { return dtype_size(t.dtype); }

void check_out(const ir::Node& n, const DTensor& out, const Shape& want) {
  if (out.shape != want)
    KILN_THROW(InvalidArgument, n.label() << ": output buffer has shape " << shape_str(out.shape) << ", the kernel computes "
                                   << shape_str(want));
}

// Transpose: perm attribute or reversed axes.
void transpose_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const size_t r = x.shape.size();
  std::vector<int64_t> perm(r);
  for (size_t i = 0; i < r; ++i) perm[i] = static_cast<int64_t>(r - 1 - i);
  if (n.has_attr("perm")) {
    perm = n.attr_ints("perm", {});
    std::vector<bool> seen(r, false);
    bool ok = perm.size() == r;
    for (int64_t p : perm) {
      ok = ok && p >= 0 && p < static_cast<int64_t>(r) && !seen[static_cast<size_t>(p)];
      if (ok) seen[static_cast<size_t>(p)] = true;
    }
    if (!ok) KILN_THROW(InvalidModel, n.label() << ": perm is not a permutation of 0.." << r - 1);
  }
  Shape ys;
  for (int64_t p : perm) ys.push_back(x.shape[static_cast<size_t>(p)]);
  check_out(n, args.out[0], ys);
  launch_permute(ctx, esize_of(x), x.data, args.out[0].data, x.shape, perm, n);
}

// Slice: the CPU's clamping (src/ops/tensor_ops.cpp), then one strided copy.
struct SliceAxis {
  int64_t start = 0, step = 1, len = 0;
};
SliceAxis clamp_slice(int64_t dim, int64_t s, int64_t e, int64_t step) {
  SliceAxis r;
  r.step = std::max<int64_t>(step, -std::numeric_limits<int64_t>::max());
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (r.step > 0) {
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    r.len = e > s ? (e - s - 1) / r.step + 1 : 0;
  } else if (dim > 0) {
    s = std::clamp<int64_t>(s, 0, dim - 1);
    e = std::clamp<int64_t>(e, -1, dim - 1);
    r.len = s > e ? (s - e - 1) / -r.step + 1 : 0;
  }
  r.start = r.len > 0 ? s : 0;
  return r;
}

void slice_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.opset < 10) {
    starts = n.attr_ints("starts", {});
    ends = n.attr_ints("ends", {});
    axes = n.attr_ints("axes", {});
  } else {
    std::vector<int64_t>* dst[5] = {nullptr, &starts, &ends, &axes, &steps};
    static const char* names[5] = {"", "starts", "ends", "axes", "steps"};
    for (size_t i = 1; i < 5; ++i)
      if (has_in(args, i)) *dst[i] = ops::read_ints(host_input(ctx, args, i), n, names[i]);
  }
  if (ends.size() != starts.size())
    KILN_THROW(InvalidModel, n.label() << ": starts and ends have " << starts.size() << " and " << ends.size() << " values");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    KILN_THROW(InvalidModel, n.label() << ": starts, ends, axes and steps must have the same length");
  axes = ops::normalize_axes(axes, x.rank(), n);
  Shape ys = x.shape;
  std::vector<int64_t> st = row_strides(x.shape);
  int64_t base = 0;
  for (size_t i = 0; i < axes.size(); ++i) {
    if (steps[i] == 0) KILN_THROW(InvalidModel, n.label() << ": slice step must not be 0");
    const size_t ax = static_cast<size_t>(axes[i]);
    const SliceAxis s = clamp_slice(x.shape[ax], starts[i], ends[i], steps[i]);
    ys[ax] = s.len;
    base += s.start * st[ax];
    st[ax] *= s.step;
  }
  check_out(n, args.out[0], ys);
  launch_copies(ctx, esize_of(x), {gather_copy(x.data, args.out[0].data, base, ys, st)}, n);
}

// Expand: numpy broadcasting of x to the output shape (stride 0 on broadcast dims).
void expand_run(const KernelContext& ctx, KernelArgs& args) {
  const DTensor& x = in_of(args, 0);
  const Shape& ys = args.out[0].shape;
  if (ys.size() < x.shape.size())
    KILN_THROW(InvalidArgument, args.node.label() << ": output rank " << ys.size() << " below the input's");
  const std::vector<int64_t> cs = row_strides(x.shape);
  std::vector<int64_t> st(ys.size(), 0);
  for (size_t d = ys.size() - x.shape.size(); d < ys.size(); ++d) {
    const size_t id = d - (ys.size() - x.shape.size());
    const int64_t dim = x.shape[id];
    if (dim != 1 && dim != ys[d])
      KILN_THROW(InvalidArgument, args.node.label() << ": cannot expand " << shape_str(x.shape) << " to " << shape_str(ys));
    st[d] = dim == 1 ? 0 : cs[id];
  }
  launch_copies(ctx, esize_of(x), {gather_copy(x.data, args.out[0].data, 0, ys, st)}, args.node);
}

// Tile: the output [r0*d0, r1*d1, ...] read as [r0, d0, r1, d1, ...] is x broadcast along the repeat axes.
void tile_run(const KernelContext& ctx, KernelArgs& args) {
  const DTensor& x = in_of(args, 0);
  const Shape& ys = args.out[0].shape;
  if (ys.size() != x.shape.size() || shape_numel(ys) == 0) {
    if (ys.size() != x.shape.size()) KILN_THROW(InvalidArgument, args.node.label() << ": output rank differs from the input's");
    return;
  }
  const std::vector<int64_t> cs = row_strides(x.shape);
  Shape dims;
  std::vector<int64_t> st;
  for (size_t d = 0; d < ys.size(); ++d) {
    if (ys[d] % x.shape[d] != 0)
      KILN_THROW(InvalidArgument, args.node.label() << ": output dim " << ys[d] << " is not a multiple of " << x.shape[d]);
    dims.push_back(ys[d] / x.shape[d]);
    st.push_back(0);
    dims.push_back(x.shape[d]);
    st.push_back(cs[d]);
  }
  launch_copies(ctx, esize_of(x), {gather_copy(x.data, args.out[0].data, 0, dims, st)}, args.node);
}

// Concat / Split: one copy per input / output, [outer, inner_i] blocks at column offsets of the joined tensor.
void concat_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  DTensor& y = args.out[0];
  const size_t axis = static_cast<size_t>(ops::normalize_axis(n.attr_int("axis"), y.rank(), n));
  int64_t outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= y.shape[d];
  const int64_t total = outer == 0 ? 0 : y.numel() / outer;
  std::vector<CopyDesc> copies;
  int64_t off = 0;
  for (size_t i = 0; i < args.in.size(); ++i) {
    const DTensor& t = in_of(args, i);
    const int64_t inner = outer == 0 ? 0 : t.numel() / outer;
    CopyDesc c;
    c.src = t.data;
    c.dst = y.data;
    c.dst_base = off;
    c.dims = {outer, inner};
    c.src_strides = {inner, 1};
    c.dst_strides = {total, 1};
    copies.push_back(std::move(c));
    off += inner;
  }
  if (off != total) KILN_THROW(InvalidArgument, n.label() << ": inputs hold " << off << " columns, output " << total);
  launch_copies(ctx, esize_of(y), std::move(copies), n);
}

// Split sizes as the CPU computes them (src/ops/split_tile.cpp): the split input (13+) or attribute (< 13), else
// num_outputs (18+: equal chunks, the last smaller), else equal parts.
std::vector<int64_t> split_sizes(const KernelContext& ctx, const KernelArgs& args, int64_t dim) {
  const ir::Node& n = args.node;
  const int64_t k = static_cast<int64_t>(n.outputs.size());
  std::vector<int64_t> sizes;
  if (n.opset < 13) sizes = n.attr_ints("split", {});
  else if (has_in(args, 1)) sizes = ops::read_ints(host_input(ctx, args, 1), n, "split");
  if (!sizes.empty()) {
    int64_t sum = 0;
    for (int64_t v : sizes) sum += v;
    if (static_cast<int64_t>(sizes.size()) != k || sum != dim)
      KILN_THROW(InvalidModel, n.label() << ": split sizes do not fit " << k << " outputs and an axis of " << dim);
    return sizes;
  }
  const bool has_num = n.opset >= 18 && n.has_attr("num_outputs");
  if (!has_num && dim % k != 0)
    KILN_THROW(InvalidModel, n.label() << ": axis of length " << dim << " cannot be split evenly into " << k << " outputs");
  const int64_t chunk = (dim + k - 1) / k;
  sizes.assign(static_cast<size_t>(k), chunk);
  sizes.back() = dim - chunk * (k - 1);
  if (sizes.back() < 0) KILN_THROW(InvalidModel, n.label() << ": axis of length " << dim << " cannot be split in " << k);
  return sizes;
}

void split_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  const size_t axis = static_cast<size_t>(ops::normalize_axis(n.attr_int("axis", 0), x.rank(), n));
  const std::vector<int64_t> sizes = split_sizes(ctx, args, x.shape[axis]);
  int64_t outer = 1, inner1 = 1;
  for (size_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner1 *= x.shape[d];
  const int64_t total = x.shape[axis] * inner1;
  std::vector<CopyDesc> copies;
  int64_t off = 0;
  for (size_t i = 0; i < args.out.size() && i < sizes.size(); ++i) {
    DTensor& y = args.out[i];
    const int64_t inner = sizes[i] * inner1;
    if (y.data) {
      Shape want = x.shape;
      want[axis] = sizes[i];
      check_out(n, y, want);
      CopyDesc c;
      c.src = x.data;
      c.dst = y.data;
      c.src_base = off;
      c.dims = {outer, inner};
      c.src_strides = {total, 1};
      c.dst_strides = {inner, 1};
      copies.push_back(std::move(c));
    }
    off += inner;
  }
  launch_copies(ctx, esize_of(x), std::move(copies), n);
}

// DepthToSpace / SpaceToDepth: the CPU's 6-D view + permutation (src/ops/rearrange.cpp).
bool crd_mode(const ir::Node& n, int64_t since) {
  if (n.opset < since) return false;
  const std::string m = n.attr_string("mode", "DCR");
  if (m != "DCR" && m != "CRD") KILN_THROW(InvalidModel, n.label() << ": mode must be DCR or CRD, got '" << m << "'");
  return m == "CRD";
}

void space_depth_run(const KernelContext& ctx, KernelArgs& args, bool to_space) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  if (x.rank() != 4) KILN_THROW(InvalidModel, n.label() << ": input must be 4-D [N,C,H,W], got " << shape_str(x.shape));
  const int64_t b = n.attr_int("blocksize");
  if (b <= 0) KILN_THROW(InvalidModel, n.label() << ": blocksize must be positive, got " << b);
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  Shape view;
  std::vector<int64_t> perm;
  if (to_space) {
    if (C % (b * b) != 0) KILN_THROW(InvalidModel, n.label() << ": channels " << C << " not divisible by " << b * b);
    const int64_t c = C / (b * b);
    if (crd_mode(n, 11)) view = {N, c, b, b, H, W}, perm = {0, 1, 4, 2, 5, 3};
    else view = {N, b, b, c, H, W}, perm = {0, 3, 4, 1, 5, 2};
    check_out(n, args.out[0], {N, c, H * b, W * b});
  } else {
    if (H % b != 0 || W % b != 0) KILN_THROW(InvalidModel, n.label() << ": spatial dims not divisible by " << b);
    view = {N, C, H / b, b, W / b, b};
    perm = crd_mode(n, 28) ? std::vector<int64_t>{0, 1, 3, 5, 2, 4} : std::vector<int64_t>{0, 3, 5, 1, 2, 4};
    check_out(n, args.out[0], {N, C * b * b, H / b, W / b});
  }
  launch_permute(ctx, esize_of(x), x.data, args.out[0].data, view, perm, n);
}

// Reshape / Flatten / Squeeze / Unsqueeze: same bytes, new shape (the executor may alias instead).
void reshape_run(const KernelContext& ctx, KernelArgs& args) {
  const DTensor& x = in_of(args, 0);
  DTensor& y = args.out[0];
  if (y.numel() != x.numel())
    KILN_THROW(InvalidArgument, args.node.label() << ": output " << shape_str(y.shape) << " and input " << shape_str(x.shape)
                                           << " differ in size");
  if (y.data != x.data && x.nbytes() > 0)
    KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
}

CudaTactic tactic(KernelFn fn, SupportsFn sup = nullptr) {
  CudaTactic t;
  t.name = "cuda";
  t.run = std::move(fn);
  t.supports = std::move(sup);
  return t;
}

}  // namespace
}  // namespace move

void register_movement_kernels() {
  using namespace move;
  auto any_rank = [](size_t r) { return [r](const ir::Node&, const std::vector<ir::ValueType>& in) { return ranks_at_most(in, r); }; };
  register_cuda_tactic("", "Transpose", tactic(transpose_run, any_rank(kCopyDims)));
  register_cuda_tactic("", "Slice", tactic(slice_run, any_rank(kCopyDims)));
  register_cuda_tactic("", "Expand", tactic(expand_run, any_rank(kCopyDims)));
  register_cuda_tactic("", "Tile", tactic(tile_run, any_rank(kCopyDims / 2)));
  register_cuda_tactic("", "Concat", tactic(concat_run));
  register_cuda_tactic("", "Split", tactic(split_run));
  register_cuda_tactic("", "DepthToSpace", tactic([](const KernelContext& c, KernelArgs& a) { space_depth_run(c, a, true); }));
  register_cuda_tactic("", "SpaceToDepth", tactic([](const KernelContext& c, KernelArgs& a) { space_depth_run(c, a, false); }));
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}) register_cuda_tactic("", op, tactic(reshape_run));
  register_gather_kernels();
  register_pad_kernels();
  register_resize_kernels();
}

}  // namespace kiln::runtime::cuda
