// CUDA kernels: Einsum (opset 12; gemm family, registered by register_gemm_kernels). The equation is parsed as the
// CPU reference does (src/ops/einsum.cpp: letters, a right-aligned broadcasting ellipsis, repeated labels take the
// diagonal, implicit output in ASCII order). Two-operand contractions whose label groups (batch, M, N, K) each merge
// into one stride per operand run as one strided-batched cuBLASLt GEMM ("bij,bjk->bik", "bhqd,bhkd->bhqk",
// "...ij,...jk->...ik", ...); everything else runs in one generic kernel (one thread per output element, float
// accumulation for the float types, double for float64, wrapping int64 for integers).
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "runtime/cuda/kernels/common.cuh"
#include "runtime/cuda/kernels/gemm_lt.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kLetters = 52;
constexpr int kMaxIn = 4;
constexpr int kMaxLoop = 16;

struct EinsumSpec {
  std::vector<std::vector<int>> in;  // label per input dim
  std::vector<int> out;              // label per output dim
  int num_labels = kLetters;
};

int letter_id(char c) { return c >= 'a' && c <= 'z' ? c - 'a' : 26 + (c - 'A'); }

// Labels of one term; -1 where the ellipsis stands.
std::vector<int> parse_term(const ir::Node& n, const std::string& t, bool* ellipsis) {
  std::vector<int> l;
  *ellipsis = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '.') {
      if (*ellipsis || t.compare(i, 3, "...") != 0) KILN_THROW(InvalidModel, n.label() << ": malformed ellipsis");
      *ellipsis = true;
      l.push_back(-1);
      i += 2;
      continue;
    }
    if (!std::isalpha(static_cast<unsigned char>(c)))
      KILN_THROW(InvalidModel, n.label() << ": invalid character '" << c << "' in the equation");
    l.push_back(letter_id(c));
  }
  return l;
}

EinsumSpec parse_spec(const ir::Node& n, const std::vector<int64_t>& ranks) {
  const std::string eq = n.attr_string("equation", "");
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::vector<int>> terms;
  std::vector<bool> ell;
  size_t pos = 0;
  while (true) {
    const size_t comma = lhs.find(',', pos);
    bool e = false;
    terms.push_back(parse_term(n, lhs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos), &e));
    ell.push_back(e);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (terms.size() != ranks.size())
    KILN_THROW(InvalidModel, n.label() << ": equation '" << eq << "' has " << terms.size() << " terms for "
                                       << ranks.size() << " inputs");
  std::vector<int64_t> ell_rank(terms.size(), 0);
  int64_t er = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const int64_t explicit_dims = static_cast<int64_t>(terms[i].size()) - (ell[i] ? 1 : 0);
    if (ell[i] ? ranks[i] < explicit_dims : ranks[i] != explicit_dims)
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " has rank " << ranks[i] << ", equation '" << eq
                                         << "' gives it " << explicit_dims << " dims");
    ell_rank[i] = ell[i] ? ranks[i] - explicit_dims : 0;
    er = std::max(er, ell_rank[i]);
  }
  EinsumSpec spec;
  spec.num_labels = kLetters + static_cast<int>(er);
  std::vector<int> count(static_cast<size_t>(spec.num_labels), 0);
  spec.in.resize(terms.size());
  for (size_t i = 0; i < terms.size(); ++i)
    for (int l : terms[i]) {
      if (l >= 0) {
        spec.in[i].push_back(l), ++count[static_cast<size_t>(l)];
        continue;
      }
      for (int64_t j = 0; j < ell_rank[i]; ++j) spec.in[i].push_back(kLetters + static_cast<int>(er - ell_rank[i] + j));
    }
  if (arrow == std::string::npos) {
    for (int64_t j = 0; j < er; ++j) spec.out.push_back(kLetters + static_cast<int>(j));
    std::vector<int> once;
    for (int l = 0; l < kLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1) once.push_back(l);
    std::stable_sort(once.begin(), once.end(), [](int a, int b) { return (a >= 26) > (b >= 26); });
    spec.out.insert(spec.out.end(), once.begin(), once.end());
    return spec;
  }
  bool e = false;
  for (int l : parse_term(n, eq.substr(arrow + 2), &e)) {
    if (l >= 0) {
      spec.out.push_back(l);
      continue;
    }
    for (int64_t j = 0; j < er; ++j) spec.out.push_back(kLetters + static_cast<int>(j));
  }
  return spec;
}

// Size of every label (-1: unused); ellipsis dims broadcast.
std::vector<int64_t> label_sizes(const ir::Node& n, const EinsumSpec& spec, const std::vector<Shape>& dims) {
  std::vector<int64_t> size(static_cast<size_t>(spec.num_labels), -1);
  for (size_t i = 0; i < spec.in.size(); ++i)
    for (size_t d = 0; d < spec.in[i].size(); ++d) {
      const int l = spec.in[i][d];
      int64_t& s = size[static_cast<size_t>(l)];
      const int64_t v = dims[i][d];
      if (s < 0 || (l >= kLetters && s == 1)) s = v;
      else if (s != v && !(l >= kLetters && v == 1))
        KILN_THROW(InvalidModel, n.label() << ": dimension " << d << " of input " << i << " is " << v
                                           << ", the same label has size " << s << " elsewhere");
    }
  return size;
}

// ---- generic kernel ------------------------------------------------------------------------------------------------
struct EinsumParams {
  int nin, nloop, nout;
  int64_t size[kMaxLoop];
  int64_t stride[kMaxIn][kMaxLoop];  // per input and loop label (0: broadcast or absent)
  const void* in[kMaxIn];
  int64_t red_total;
};

template <typename T, typename Acc>
__global__ void einsum_kernel(EinsumParams p, T* __restrict__ y, int64_t out_total) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < out_total;
       o += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[kMaxIn] = {0, 0, 0, 0};
    int64_t r = o;
    for (int k = p.nout - 1; k >= 0; --k) {
      const int64_t ik = r % p.size[k];
      r /= p.size[k];
      for (int i = 0; i < p.nin; ++i) off[i] += ik * p.stride[i][k];
    }
    int64_t idx[kMaxLoop];
    for (int k = p.nout; k < p.nloop; ++k) idx[k] = 0;
    Acc acc = 0;
    for (int64_t red = 0; red < p.red_total; ++red) {
      Acc prod = 1;
      for (int i = 0; i < p.nin; ++i) {
        const T v = static_cast<const T*>(p.in[i])[off[i]];
        if constexpr (std::is_integral_v<Acc>) {
          prod = static_cast<Acc>(static_cast<uint64_t>(prod) * static_cast<uint64_t>(static_cast<int64_t>(v)));
        } else if constexpr (std::is_same_v<T, double>) {
          prod *= v;
        } else {
          prod *= to_f(v);
        }
      }
      if constexpr (std::is_integral_v<Acc>) acc = static_cast<Acc>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(prod));
      else acc += prod;
      for (int k = p.nloop - 1; k >= p.nout; --k) {
        for (int i = 0; i < p.nin; ++i) off[i] += p.stride[i][k];
        if (++idx[k] < p.size[k]) break;
        for (int i = 0; i < p.nin; ++i) off[i] -= p.stride[i][k] * p.size[k];
        idx[k] = 0;
      }
    }
    if constexpr (std::is_integral_v<Acc> || std::is_same_v<T, double>) y[o] = static_cast<T>(acc);
    else y[o] = from_f<T>(acc);
  }
}

template <typename F>
void dispatch_einsum(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(float{}, float{}); return;
    case DType::Float16: f(__half{}, float{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}, float{}); return;
    case DType::Float64: f(double{}, double{}); return;
    case DType::Int64: f(int64_t{}, int64_t{}); return;
    case DType::Int32: f(int32_t{}, int64_t{}); return;
    case DType::Int16: f(int16_t{}, int64_t{}); return;
    case DType::Int8: f(int8_t{}, int64_t{}); return;
    case DType::UInt8: f(uint8_t{}, int64_t{}); return;
    default: break;
  }
  KILN_THROW(Unsupported, "CUDA Einsum: dtype " << dtype_name(dt));
}

// ---- cuBLASLt route ------------------------------------------------------------------------------------------------
struct Mat {
  int64_t r, sr, c, sc;  // rows / cols with their strides (elements)
};
// Row-major view of m: stored [r, c] (trans = false) or [c, r] (trans = true) with leading dimension *ld.
bool row_major_view(const Mat& m, bool* trans, int64_t* ld) {
  if (m.c == 1 || m.sc == 1) {
    if (m.r == 1 || m.sr >= m.c) {
      *trans = false, *ld = m.r == 1 ? m.c : m.sr;
      return true;
    }
  }
  if (m.r == 1 || m.sr == 1) {
    if (m.c == 1 || m.sc >= m.r) {
      *trans = true, *ld = m.c == 1 ? m.r : m.sc;
      return true;
    }
  }
  return false;
}

// (size, stride) of labels `ls` merged into one dim of a tensor with per-label strides `st`; false when they do
// not merge in this order. Labels of size 1 are ignored; no labels: size 1.
bool merge_group(const std::vector<int>& ls, const std::vector<int64_t>& size, const std::vector<int64_t>& st,
                 int64_t* msize, int64_t* mstride) {
  *msize = 1, *mstride = 0;
  int64_t expect = -1;
  for (size_t i = ls.size(); i-- > 0;) {
    const size_t l = static_cast<size_t>(ls[i]);
    if (size[l] == 1) continue;
    if (expect >= 0 && st[l] != expect) return false;
    if (expect < 0) *mstride = st[l];
    *msize *= size[l];
    expect = st[l] * size[l];
  }
  return true;
}

// Tries the two-operand contraction as one strided-batched GEMM. False when its shape does not fit (nothing run).
bool try_gemm(const KernelContext& ctx, const EinsumSpec& spec, const std::vector<int64_t>& size,
              const std::vector<Shape>& dims, const DTensor& A, const DTensor& B, DTensor& Y) {
  if (spec.in.size() != 2 || !lt_types_supported(A.dtype, A.dtype)) return false;
  const size_t L = static_cast<size_t>(spec.num_labels);
  // Per tensor: stride of each label (-1: absent). Repeated labels (diagonals) and broadcast dims do not fit.
  std::vector<std::vector<int64_t>> st(3, std::vector<int64_t>(L, -1));
  for (size_t i = 0; i < 2; ++i) {
    int64_t stride = 1;
    for (size_t d = spec.in[i].size(); d-- > 0;) {
      const size_t l = static_cast<size_t>(spec.in[i][d]);
      if (st[i][l] != -1 || dims[i][d] != size[l]) return false;
      st[i][l] = stride;
      stride *= dims[i][d];
    }
  }
  int64_t stride = 1;
  for (size_t d = spec.out.size(); d-- > 0;) {
    const size_t l = static_cast<size_t>(spec.out[d]);
    st[2][l] = stride;
    stride *= size[l];
  }
  std::vector<int> batch, mm, nn, kk;
  for (int l : spec.out) {
    const bool a = st[0][static_cast<size_t>(l)] >= 0, b = st[1][static_cast<size_t>(l)] >= 0;
    (a && b ? batch : a ? mm : nn).push_back(l);
  }
  for (int l : spec.in[0]) {
    const size_t u = static_cast<size_t>(l);
    if (st[2][u] >= 0) continue;
    if (st[1][u] < 0) return false;  // summed over A alone
    kk.push_back(l);
  }
  for (int l : spec.in[1])
    if (st[2][static_cast<size_t>(l)] < 0 && st[0][static_cast<size_t>(l)] < 0) return false;  // summed over B alone
  int64_t nb = 1, sba = 0, sbb = 0, sbd = 0, m = 1, n = 1, k = 1, t = 0;
  int64_t am = 0, ak = 0, bk = 0, bn = 0, dm = 0, dn = 0;
  if (!merge_group(batch, size, st[0], &nb, &sba) || !merge_group(batch, size, st[1], &t, &sbb) ||
      !merge_group(batch, size, st[2], &t, &sbd) || !merge_group(mm, size, st[0], &m, &am) ||
      !merge_group(mm, size, st[2], &t, &dm) || !merge_group(nn, size, st[1], &n, &bn) ||
      !merge_group(nn, size, st[2], &t, &dn) || !merge_group(kk, size, st[0], &k, &ak) ||
      !merge_group(kk, size, st[1], &t, &bk))
    return false;
  if (nb > INT32_MAX || k == 0 || m * n * nb == 0) return false;
  Mat ma{m, am, k, ak}, mb{k, bk, n, bn}, md{m, dm, n, dn};
  const void* pa = A.data;
  const void* pb = B.data;
  int64_t sa = sba, sb = sbb;
  bool td = false;
  int64_t ldd = 0;
  if (!row_major_view(md, &td, &ldd)) return false;
  if (td) {  // D is column-major here: compute D^T = B^T A^T
    ma = Mat{n, bn, k, bk}, mb = Mat{k, ak, m, am}, md = Mat{n, dn, m, dm};
    std::swap(pa, pb), std::swap(sa, sb), std::swap(m, n);
    if (!row_major_view(md, &td, &ldd) || td) return false;
  }
  LtGemm g;
  g.ab = g.d = A.dtype;
  g.m = m, g.n = n, g.k = k, g.batch = nb;
  if (!row_major_view(ma, &g.trans_a, &g.lda) || !row_major_view(mb, &g.trans_b, &g.ldb)) return false;
  g.a = pa, g.stride_a = nb > 1 ? sa : 0;
  g.b = pb, g.stride_b = nb > 1 ? sb : 0;
  g.dptr = Y.data, g.ldd = ldd, g.stride_d = nb > 1 ? sbd : 0;
  return lt_gemm(ctx, g, ctx.workspace, ctx.workspace_size);
}

void run_einsum(const KernelContext& ctx, KernelArgs& args) {
  const ir::Node& n = args.node;
  std::vector<int64_t> ranks;
  std::vector<Shape> dims;
  for (size_t i = 0; i < args.in.size(); ++i) {
    if (!args.in[i]) KILN_THROW(InvalidModel, n.label() << ": input " << i << " is missing");
    ranks.push_back(args.in[i]->rank());
    dims.push_back(args.in[i]->shape);
  }
  if (args.in.empty() || args.in.size() > static_cast<size_t>(kMaxIn))
    KILN_THROW(Unsupported, n.label() << ": CUDA Einsum takes 1 to " << kMaxIn << " inputs, got " << args.in.size());
  const EinsumSpec spec = parse_spec(n, ranks);
  const std::vector<int64_t> size = label_sizes(n, spec, dims);
  DTensor& Y = args.out[0];
  const int64_t out_total = Y.numel();
  if (out_total == 0) return;
  if (try_gemm(ctx, spec, size, dims, *args.in[0], *args.in.back(), Y)) return;
  std::vector<int> loop = spec.out;
  for (int l = 0; l < spec.num_labels; ++l)
    if (size[static_cast<size_t>(l)] >= 0 && std::find(loop.begin(), loop.end(), l) == loop.end()) loop.push_back(l);
  if (loop.size() > static_cast<size_t>(kMaxLoop))
    KILN_THROW(Unsupported, n.label() << ": CUDA Einsum handles up to " << kMaxLoop << " labels, got " << loop.size());
  EinsumParams p{};
  p.nin = static_cast<int>(args.in.size());
  p.nloop = static_cast<int>(loop.size());
  p.nout = static_cast<int>(spec.out.size());
  p.red_total = 1;
  for (size_t k = 0; k < loop.size(); ++k) {
    p.size[k] = size[static_cast<size_t>(loop[k])];
    if (k >= spec.out.size()) p.red_total *= p.size[k];
  }
  for (size_t i = 0; i < args.in.size(); ++i) {
    p.in[i] = args.in[i]->data;
    int64_t stride = 1;
    for (size_t d = dims[i].size(); d-- > 0;) {
      const int l = spec.in[i][d];
      if (!(dims[i][d] == 1 && size[static_cast<size_t>(l)] != 1)) {
        const size_t k = static_cast<size_t>(std::find(loop.begin(), loop.end(), l) - loop.begin());
        p.stride[i][k] += stride;
      }
      stride *= dims[i][d];
    }
  }
  dispatch_einsum(Y.dtype, [&](auto t, auto a) {
    using T = decltype(t);
    using A = decltype(a);
    einsum_kernel<T, A><<<grid_for(out_total), kBlock, 0, ctx.stream>>>(p, Y.as<T>(), out_total);
  });
  KILN_CUDA_LAUNCH_CHECK("einsum");
}

size_t einsum_workspace(const ir::Node& n, const std::vector<ir::ValueType>& in,
                        const std::vector<ir::ValueType>& out) {
  if (in.size() != 2 || !lt_types_supported(in[0].dtype, in[0].dtype)) return 0;
  (void)n;
  if (out.empty() || !out[0].is_static()) return lt_workspace_bytes(-1);
  return lt_workspace_bytes(shape_numel(out[0].static_shape()));
}

bool supports_einsum(const ir::Node& n, const std::vector<ir::ValueType>& in) {
  if (in.empty() || in.size() > static_cast<size_t>(kMaxIn)) return false;
  switch (in[0].dtype) {
    case DType::Bool: return false;
    default: break;
  }
  // Labels: distinct letters plus the ellipsis dims (known when the ranks are).
  const std::string eq = n.attr_string("equation", "");
  std::vector<bool> seen(kLetters, false);
  int labels = 0;
  for (char c : eq)
    if (std::isalpha(static_cast<unsigned char>(c)) && !seen[static_cast<size_t>(letter_id(c))])
      seen[static_cast<size_t>(letter_id(c))] = true, ++labels;
  int64_t max_rank = 0;
  for (const ir::ValueType& t : in) max_rank = std::max<int64_t>(max_rank, t.has_rank ? static_cast<int64_t>(t.dims.size()) : kMaxLoop);
  if (eq.find("...") != std::string::npos) labels += static_cast<int>(max_rank);
  return labels <= kMaxLoop;
}

}  // namespace

void register_einsum_kernels() {
  register_cuda_tactic("", "Einsum", CudaTactic{"cuda", supports_einsum, run_einsum, einsum_workspace});
}

}  // namespace kiln::runtime::cuda
