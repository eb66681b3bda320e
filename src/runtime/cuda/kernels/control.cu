// CUDA kernels: the control family (kernels/families.h): Shape, Size, Constant (host-known results written through
// kernel parameters), ConstantOfShape (a fill), Range (start / delta read on the device), NonZero (data-dependent
// shape: count on the device, learn the count on the host, allocate, fill) and If (reads cond to the host, runs the
// chosen branch through the executor). NonZero and If synchronize the stream: their tactics are dynamic_output and
// not capturable.
#include "ir/subgraph.h"
#include "runtime/cuda/kernels/families.h"
#include "runtime/cuda/kernels/movement_common.cuh"

namespace kiln::runtime::cuda {
namespace move {

// ---- host bytes through kernel parameters, fills -------------------------------------------------------------------
struct ParamChunk {
  uint8_t* dst;
  uint32_t n;
  uint8_t bytes[kParamBytes];
};
static_assert(sizeof(ParamChunk) <= 4096, "kernel parameters are limited to 4 KB");

__global__ void param_write_kernel(const __grid_constant__ ParamChunk c) {
  for (uint32_t i = threadIdx.x; i < c.n; i += blockDim.x) c.dst[i] = c.bytes[i];
}

void write_bytes(const KernelContext& ctx, void* dst, const void* src, size_t n) {
  for (size_t off = 0; off < n; off += kParamBytes) {
    ParamChunk c;
    c.dst = static_cast<uint8_t*>(dst) + off;
    c.n = static_cast<uint32_t>(std::min(kParamBytes, n - off));
    std::memcpy(c.bytes, static_cast<const uint8_t*>(src) + off, c.n);
    param_write_kernel<<<1, kBlock, 0, ctx.stream>>>(c);
    KILN_CUDA_LAUNCH_CHECK("param_write_kernel");
  }
}

template <typename E>
__global__ void fill_kernel(E* dst, E v, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = v;
}

void fill_value(const KernelContext& ctx, void* dst, size_t esize, int64_t count, const void* value) {
  if (count <= 0) return;
  const size_t bytes = static_cast<size_t>(count) * esize;
  // 16-byte pattern of the value when the buffer allows it (16 is a multiple of every element size).
  if (reinterpret_cast<uintptr_t>(dst) % 16 == 0 && bytes % 16 == 0) {
    uint4 v;
    auto* p = reinterpret_cast<uint8_t*>(&v);
    for (size_t i = 0; i < 16; i += esize) std::memcpy(p + i, value, esize);
    const int64_t n = static_cast<int64_t>(bytes / 16);
    fill_kernel<uint4><<<grid_for(n), kBlock, 0, ctx.stream>>>(static_cast<uint4*>(dst), v, n);
    KILN_CUDA_LAUNCH_CHECK("fill_kernel");
    return;
  }
  auto go = [&](auto tag) {
    using E = decltype(tag);
    E v;
    std::memcpy(&v, value, sizeof(E));
    fill_kernel<E><<<grid_for(count), kBlock, 0, ctx.stream>>>(static_cast<E*>(dst), v, count);
  };
  switch (esize) {
    case 1: go(uint8_t{}); break;
    case 2: go(uint16_t{}); break;
    case 4: go(uint32_t{}); break;
    case 8: go(uint64_t{}); break;
    default: KILN_THROW(Unsupported, "fill: element size " << esize);
  }
  KILN_CUDA_LAUNCH_CHECK("fill_kernel");
}

}  // namespace move

namespace ctl {
namespace {
using move::fill_value;
using move::has_in;
using move::in_of;
using move::write_bytes;

// ---- Shape / Size / Constant ---------------------------------------------------------------------------------------
void write_host_tensor(const KernelContext& ctx, DTensor& y, const Tensor& t, const ir::Node& n) {
  if (y.dtype != t.dtype() || y.numel() != t.numel())
    KILN_THROW(InvalidArgument, n.label() << ": output buffer " << dtype_name(y.dtype) << shape_str(y.shape) << ", value "
                                          << t.type_str());
  write_bytes(ctx, y.data, t.data(), t.nbytes());
}

void shape_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const Shape& s = in_of(args, 0).shape;
  const int64_t rank = static_cast<int64_t>(s.size());
  auto clamp = [rank](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = n.opset >= 15 ? clamp(n.attr_int("start", 0)) : 0;
  const int64_t end = std::max(start, n.opset >= 15 && n.has_attr("end") ? clamp(n.attr_int("end")) : rank);
  const std::vector<int64_t> v(s.begin() + start, s.begin() + end);
  write_host_tensor(ctx, args.out[0], Tensor::from_vector(DType::Int64, {end - start}, v), n);
}

void size_run(const KernelContext& ctx, KernelArgs& args) {
  const std::vector<int64_t> v{in_of(args, 0).numel()};
  write_host_tensor(ctx, args.out[0], Tensor::from_vector(DType::Int64, {}, v), args.node);
}

// Constant: the CPU kernel builds the value (every value_* attribute), its bytes go through kernel parameters.
void constant_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
  if (!def) KILN_THROW(Unsupported, n.label() << ": no Constant at opset " << n.opset);
  std::vector<Tensor> out(1);
  def->reference(n, {}, out);
  write_host_tensor(ctx, args.out[0], out[0], n);
}

// ConstantOfShape: the 'value' attribute (one element; default float32 0) everywhere.
void constant_of_shape_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  DTensor& y = args.out[0];
  Tensor v = n.has_attr("value") ? n.attr_tensor("value") : Tensor::from_vector(DType::Float32, {1}, std::vector<float>{0.f});
  if (v.numel() != 1 || v.dtype() != y.dtype)
    KILN_THROW(InvalidModel, n.label() << ": value must hold exactly one " << dtype_name(y.dtype) << " element, got "
                                       << v.type_str());
  fill_value(ctx, y.data, dtype_size(y.dtype), y.numel(), v.data());
}

// ---- Range ------------------------------------------------------------------------------------------------------
template <typename T>
__global__ void range_kernel(T* __restrict__ y, int64_t n, const T* __restrict__ start, const T* __restrict__ delta) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_integral_v<T>) {
      const uint64_t s0 = static_cast<uint64_t>(static_cast<int64_t>(*start));
      const uint64_t d0 = static_cast<uint64_t>(static_cast<int64_t>(*delta));
      y[i] = static_cast<T>(static_cast<int64_t>(s0 + static_cast<uint64_t>(i) * d0));
    } else if constexpr (std::is_same_v<T, double>) {
      y[i] = __dadd_rn(*start, __dmul_rn(static_cast<double>(i), *delta));
    } else {
      // float64 arithmetic, then the CPU's conversions (to float, then to the storage type).
      const double v = __dadd_rn(static_cast<double>(to_f(*start)), __dmul_rn(static_cast<double>(i), static_cast<double>(to_f(*delta))));
      y[i] = from_f<T>(static_cast<float>(v));
    }
  }
}

void range_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor &s = in_of(args, 0), &l = in_of(args, 1), &d = in_of(args, 2);
  DTensor& y = args.out[0];
  if (s.numel() != 1 || l.numel() != 1 || d.numel() != 1)
    KILN_THROW(InvalidArgument, n.label() << ": start, limit and delta must hold one element each");
  if (y.dtype != s.dtype || d.dtype != s.dtype) KILN_THROW(InvalidModel, n.label() << ": start, limit and delta must share a dtype");
  const int64_t count = y.numel();
  if (count == 0) return;
  auto go = [&](auto tag) {
    using T = decltype(tag);
    range_kernel<T><<<grid_for(count), kBlock, 0, ctx.stream>>>(static_cast<T*>(y.data), count,
                                                                 static_cast<const T*>(s.data), static_cast<const T*>(d.data));
  };
  switch (y.dtype) {
    case DType::Float32: go(float{}); break;
    case DType::Float64: go(double{}); break;
    case DType::Float16: go(__half{}); break;
    case DType::BFloat16: go(__nv_bfloat16{}); break;
    case DType::Int16: go(int16_t{}); break;
    case DType::Int32: go(int32_t{}); break;
    case DType::Int64: go(int64_t{}); break;
    default: KILN_THROW(Unsupported, n.label() << ": Range of " << dtype_name(y.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK("range_kernel");
}

// ---- NonZero -----------------------------------------------------------------------------------------------------
// Pass 1: nonzeros per chunk (one block per chunk). Host: the total. Pass 2: each block finds its chunk's first
// output column (sum of the earlier chunks' counts), then writes coordinates in order with a block-wide scan.
constexpr int kNzBlocks = 1024;

template <typename T>
__device__ __forceinline__ bool nonzero(T v) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>) return to_f(v) != 0.0f;
  else return v != T(0);
}

template <typename T>
__global__ void nz_count_kernel(const T* __restrict__ x, int64_t n, int64_t chunk, unsigned long long* counts) {
  const int64_t lo = static_cast<int64_t>(blockIdx.x) * chunk, hi = min(n, lo + chunk);
  unsigned long long c = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) c += nonzero(x[i]) ? 1 : 0;
  for (int o = 16; o > 0; o /= 2) c += __shfl_down_sync(0xffffffffu, c, o);
  __shared__ unsigned long long warp[kBlock / 32];
  if (threadIdx.x % 32 == 0) warp[threadIdx.x / 32] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long t = 0;
    for (int w = 0; w < kBlock / 32; ++w) t += warp[w];
    counts[blockIdx.x] = t;
  }
}

struct NzShape {
  int rank;
  int64_t dim[kMaxDims];
};

template <typename T>
__global__ void nz_write_kernel(const T* __restrict__ x, int64_t n, int64_t chunk,
                                const unsigned long long* __restrict__ counts, int64_t total, int64_t* __restrict__ y,
                                const __grid_constant__ NzShape s) {
  __shared__ unsigned long long warp[kBlock / 32];
  __shared__ unsigned long long base;
  // First output column of this chunk.
  unsigned long long c = 0;
  for (unsigned b = threadIdx.x; b < blockIdx.x; b += blockDim.x) c += counts[b];
  for (int o = 16; o > 0; o /= 2) c += __shfl_down_sync(0xffffffffu, c, o);
  if (threadIdx.x % 32 == 0) warp[threadIdx.x / 32] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long t = 0;
    for (int w = 0; w < kBlock / 32; ++w) t += warp[w];
    base = t;
  }
  __syncthreads();
  const int64_t lo = static_cast<int64_t>(blockIdx.x) * chunk, hi = min(n, lo + chunk);
  const unsigned lane = threadIdx.x % 32, wid = threadIdx.x / 32;
  for (int64_t tile = lo; tile < hi; tile += blockDim.x) {
    const int64_t i = tile + threadIdx.x;
    const unsigned f = i < hi && nonzero(x[i]) ? 1u : 0u;
    // Block-wide exclusive scan of the flags: warp ballots, then the warp totals.
    const unsigned ballot = __ballot_sync(0xffffffffu, f);
    const unsigned before = __popc(ballot & ((1u << lane) - 1));
    __syncthreads();  // `warp` / `base` reads of the previous tile are done
    if (lane == 0) warp[wid] = __popc(ballot);
    __syncthreads();
    unsigned long long pos = base + before;
    unsigned long long tile_total = 0;
    for (unsigned w = 0; w < kBlock / 32; ++w) {
      if (w < wid) pos += warp[w];
      tile_total += warp[w];
    }
    if (f) {
      int64_t r = i;
      for (int d = s.rank - 1; d >= 0; --d) {
        const int64_t q = r / s.dim[d];
        y[static_cast<int64_t>(d) * total + static_cast<int64_t>(pos)] = r - q * s.dim[d];
        r = q;
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) base += tile_total;
  }
}

struct NzPlan {
  int64_t n, chunk;
  unsigned blocks;
};
NzPlan nz_plan(int64_t n) {
  NzPlan p;
  p.n = n;
  p.blocks = static_cast<unsigned>(std::clamp<int64_t>((n + kBlock * 8 - 1) / (kBlock * 8), 1, kNzBlocks));
  p.chunk = (n + p.blocks - 1) / p.blocks;
  return p;
}

void nonzero_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& x = in_of(args, 0);
  Shape xs = x.shape.empty() ? Shape{1} : x.shape;
  move::check_rank(n, xs);
  const int64_t numel = x.numel();
  const NzPlan p = nz_plan(numel);
  const size_t need = kNzBlocks * sizeof(unsigned long long);
  if (ctx.workspace_size < need || !ctx.workspace)
    KILN_THROW(InvalidArgument, n.label() << ": workspace of " << ctx.workspace_size << " bytes, NonZero needs " << need);
  auto* counts = static_cast<unsigned long long*>(ctx.workspace);
  auto launch = [&](auto tag, bool write, int64_t total, int64_t* y) {
    using T = decltype(tag);
    auto* px = static_cast<const T*>(x.data);
    if (!write) {
      nz_count_kernel<T><<<p.blocks, kBlock, 0, ctx.stream>>>(px, p.n, p.chunk, counts);
    } else {
      NzShape s{};
      s.rank = static_cast<int>(xs.size());
      for (size_t d = 0; d < xs.size(); ++d) s.dim[d] = xs[d];
      nz_write_kernel<T><<<p.blocks, kBlock, 0, ctx.stream>>>(px, p.n, p.chunk, counts, total, y, s);
    }
  };
  auto dispatch = [&](bool write, int64_t total, int64_t* y) {
    switch (x.dtype) {
      case DType::Float32: launch(float{}, write, total, y); break;
      case DType::Float16: launch(__half{}, write, total, y); break;
      case DType::BFloat16: launch(__nv_bfloat16{}, write, total, y); break;
      case DType::Float64: launch(double{}, write, total, y); break;
      default:  // integers and bool: nonzero bits
        switch (dtype_size(x.dtype)) {
          case 1: launch(uint8_t{}, write, total, y); break;
          case 2: launch(uint16_t{}, write, total, y); break;
          case 4: launch(uint32_t{}, write, total, y); break;
          default: launch(uint64_t{}, write, total, y); break;
        }
    }
    KILN_CUDA_LAUNCH_CHECK("nonzero");
  };
  int64_t total = 0;
  if (numel > 0) {
    dispatch(false, 0, nullptr);
    std::vector<unsigned long long> host(p.blocks);
    KILN_CUDA_CHECK(cudaMemcpyAsync(host.data(), counts, p.blocks * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                    ctx.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    for (unsigned long long c : host) total += static_cast<int64_t>(c);
  }
  DTensor& y = args.out[0];
  if (!ctx.alloc_dynamic) KILN_THROW(InvalidState, n.label() << ": the executor gave no dynamic allocator");
  const size_t bytes = static_cast<size_t>(total) * xs.size() * sizeof(int64_t);
  y.dtype = DType::Int64;
  y.shape = {static_cast<int64_t>(xs.size()), total};
  y.data = ctx.alloc_dynamic(std::max<size_t>(bytes, 16));
  if (total > 0) dispatch(true, total, static_cast<int64_t*>(y.data));
}

// ---- If ------------------------------------------------------------------------------------------------------------
const ir::Graph& branch(const ir::Node& n, const char* name) {
  if (!n.has_attr(name)) KILN_THROW(InvalidModel, n.label() << ": required attribute '" << name << "' is missing");
  const auto* g = std::get_if<ir::GraphPtr>(&n.attrs.at(name));
  if (!g || !*g) KILN_THROW(InvalidModel, n.label() << ": attribute '" << name << "' must be a graph");
  if ((*g)->outputs.size() != n.outputs.size())
    KILN_THROW(InvalidModel, n.label() << ": " << name << " has " << (*g)->outputs.size() << " outputs, the node has "
                                       << n.outputs.size());
  return **g;
}

void if_run(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  const DTensor& cond = in_of(args, 0);
  if (cond.dtype != DType::Bool) KILN_THROW(InvalidModel, n.label() << ": cond must be bool, got " << dtype_name(cond.dtype));
  if (cond.numel() != 1)
    KILN_THROW(InvalidArgument, n.label() << ": cond must hold a single element, got " << shape_str(cond.shape));
  uint8_t c = 0;
  if (!args.host_in.empty() && args.host_in[0]) {
    c = args.host_in[0]->at_int64(0) != 0;
  } else {
    KILN_CUDA_CHECK(cudaMemcpyAsync(&c, cond.data, 1, cudaMemcpyDeviceToHost, ctx.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }
  const char* which = c ? "then_branch" : "else_branch";
  const ir::Graph& g = branch(n, which);
  std::vector<std::string> names;
  if (n.has_attr(ir::kCapturedNames)) {
    const auto* v = std::get_if<std::vector<std::string>>(&n.attrs.at(ir::kCapturedNames));
    if (!v) KILN_THROW(InvalidModel, n.label() << ": attribute " << ir::kCapturedNames << " must be a string list");
    names = *v;
  }
  const size_t formal = ir::num_formal_inputs(n);
  if (formal + names.size() != args.in.size())
    KILN_THROW(InvalidModel, n.label() << ": " << names.size() << " captured names for " << args.in.size() - formal
                                       << " captured inputs");
  std::vector<std::pair<std::string, DTensor>> captured;
  for (size_t k = 0; k < names.size(); ++k) captured.emplace_back(names[k], in_of(args, formal + k));
  if (!ctx.run_subgraph) KILN_THROW(InvalidState, n.label() << ": the executor gave no subgraph runner");
  std::vector<DTensor> res = ctx.run_subgraph(g, captured);
  if (res.size() != n.outputs.size())
    KILN_THROW(InvalidModel, n.label() << ": " << which << " returned " << res.size() << " outputs, the node has "
                                       << n.outputs.size());
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i].empty()) continue;
    DTensor o = res[i];
    // A branch output that is an outer value would alias a buffer the executor may reuse after this node: copy it.
    bool aliases = false;
    for (const auto& cap : captured) aliases |= cap.second.data != nullptr && cap.second.data == o.data;
    if (aliases) {
      if (!ctx.alloc_dynamic) KILN_THROW(InvalidState, n.label() << ": the executor gave no dynamic allocator");
      void* p = ctx.alloc_dynamic(std::max<size_t>(o.nbytes(), 16));
      if (o.nbytes() > 0) KILN_CUDA_CHECK(cudaMemcpyAsync(p, o.data, o.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
      o.data = p;
    }
    args.out[i] = o;
  }
}

size_t nonzero_workspace(const ir::Node&, const std::vector<ir::ValueType>&, const std::vector<ir::ValueType>&) {
  return kNzBlocks * sizeof(unsigned long long);
}

CudaTactic tactic(KernelFn fn, SupportsFn sup = nullptr) {
  CudaTactic t;
  t.name = "cuda";
  t.run = std::move(fn);
  t.supports = std::move(sup);
  return t;
}

}  // namespace
}  // namespace ctl

void register_control_kernels() {
  using namespace ctl;
  register_cuda_tactic("", "Shape", tactic(shape_run));
  register_cuda_tactic("", "Size", tactic(size_run));
  register_cuda_tactic("", "Constant", tactic(constant_run));
  register_cuda_tactic("", "ConstantOfShape", tactic(constant_of_shape_run));
  register_cuda_tactic("", "Range", tactic(range_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
                         if (in.empty()) return false;
                         const DType d = in[0].dtype;
                         return d == DType::Float32 || d == DType::Float64 || d == DType::Float16 ||
                                d == DType::BFloat16 || d == DType::Int16 || d == DType::Int32 || d == DType::Int64;
                       }));
  CudaTactic nz = tactic(nonzero_run, [](const ir::Node&, const std::vector<ir::ValueType>& in) {
    return move::ranks_at_most(in, kMaxDims);
  });
  nz.workspace = nonzero_workspace;
  nz.dynamic_output = true;
  nz.capturable = false;
  register_cuda_tactic("", "NonZero", std::move(nz));
  CudaTactic cond = tactic(if_run);
  cond.dynamic_output = true;
  cond.capturable = false;
  register_cuda_tactic("", "If", std::move(cond));
}

}  // namespace kiln::runtime::cuda
