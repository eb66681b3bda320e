// CUDA kernels: the elementwise family (kernels/families.h). The ops live in elementwise_unary.cu (math, Clip,
// Identity, Dropout), elementwise_cast.cu (Cast, CastLike), elementwise_binary.cu (arithmetic, Pow, Mod, compare,
// logical, PRelu) and elementwise_variadic.cu (Sum, Mean, Max, Min, Where); the shared kernels and operand
// indexing are in elementwise_impl.cuh. This file holds the host-side broadcast planning and the entry point.
#include "runtime/cuda/kernels/elementwise_impl.cuh"
#include "runtime/cuda/kernels/families.h"

namespace kiln::runtime::cuda {
namespace ew {

void plan_operands(const ir::Node& n, const Shape& out, const std::vector<const DTensor*>& ins, Operand* ops) {
  const size_t r = out.size();
  const size_t k_count = ins.size();
  const int64_t total = shape_numel(out);
  // Strides of every input aligned to the output's dims (0 where broadcast).
  std::vector<std::vector<int64_t>> st(k_count, std::vector<int64_t>(r, 0));
  for (size_t k = 0; k < k_count; ++k) {
    const Shape& s = ins[k]->shape;
    if (s.size() > r)
      KILN_THROW(InvalidArgument, n.label() << ": input " << k << " has rank " << s.size() << " > output rank " << r);
    int64_t stride = 1;
    for (size_t d = r; d-- > 0;) {
      const size_t lead = r - s.size();
      const int64_t dim = d >= lead ? s[d - lead] : 1;
      if (dim != 1 && dim != out[d])
        KILN_THROW(InvalidArgument, n.label() << ": input " << k << " of shape " << shape_str(s)
                                              << " does not broadcast to the output shape " << shape_str(out));
      if (dim != 1) st[k][d] = stride;
      stride *= dim;
    }
  }
  // Drop size-1 output dims, then merge neighbours every input walks contiguously (or broadcasts together).
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> cst(k_count);
  for (size_t d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    dims.push_back(out[d]);
    for (size_t k = 0; k < k_count; ++k) cst[k].push_back(st[k][d]);
  }
  for (size_t d = dims.size() >= 2 ? dims.size() - 1 : 0; d-- > 0;) {
    bool merge = true;
    for (size_t k = 0; k < k_count && merge; ++k) merge = cst[k][d] == cst[k][d + 1] * dims[d + 1];
    if (!merge) continue;
    dims[d] *= dims[d + 1];
    dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(d) + 1);
    for (size_t k = 0; k < k_count; ++k) {
      cst[k][d] = cst[k][d + 1];
      cst[k].erase(cst[k].begin() + static_cast<std::ptrdiff_t>(d) + 1);
    }
  }
  for (size_t k = 0; k < k_count; ++k) {
    Operand& o = ops[k];
    o = Operand{};
    o.p = ins[k]->data;
    o.dtype = ins[k]->dtype;
    const int64_t nk = ins[k]->numel();
    int nonzero = 0;
    size_t j = 0;
    for (size_t d = 0; d < dims.size(); ++d)
      if (cst[k][d] != 0) {
        ++nonzero;
        j = d;
      }
    if (nk == total) {
      o.kind = kFull;
    } else if (nk == 1) {
      o.kind = kScalar;
    } else if (nonzero == 1 && total <= INT32_MAX) {
      int64_t inner = 1;
      for (size_t d = j + 1; d < dims.size(); ++d) inner *= dims[d];
      o.kind = kTwoLevel;
      o.inner.init(static_cast<uint32_t>(inner));
      o.mid.init(static_cast<uint32_t>(dims[j]));
    } else {
      if (dims.size() > static_cast<size_t>(kMaxDims))
        KILN_THROW(Unsupported, n.label() << ": input " << k << " broadcasts over " << dims.size()
                                          << " collapsed dims; the CUDA kernel handles " << kMaxDims);
      o.kind = kGeneral;
      o.bi.rank = static_cast<int>(dims.size());
      for (size_t d = 0; d < dims.size(); ++d) {
        o.bi.out_dims[d] = dims[d];
        o.bi.in_strides[d] = cst[k][d];
      }
    }
  }
}

int64_t plan_vectors(int64_t n, int V, const void* y, int y_esize, Operand* ops, const int* esizes, int k) {
  auto aligned = [V](const void* p, int es) { return reinterpret_cast<uintptr_t>(p) % (uintptr_t(es) * V) == 0; };
  bool ok = aligned(y, y_esize);
  for (int i = 0; i < k; ++i) {
    Operand& o = ops[i];
    if (esizes[i] == 0) {  // AnyNum: on the vector path only as a scalar
      ok = ok && o.kind == kScalar;
      continue;
    }
    if (o.kind == kFull) ok = ok && aligned(o.p, esizes[i]);
    if (o.kind == kGeneral) ok = false;
    if (o.kind != kTwoLevel) continue;
    o.lanes = kPerLane;
    if (o.inner.d % static_cast<uint32_t>(V) == 0)
      o.lanes = kUniform;
    else if (o.inner.d == 1 && o.mid.d % static_cast<uint32_t>(V) == 0 && aligned(o.p, esizes[i]))
      o.lanes = kContig;
    else
      ok = false;
  }
  return ok ? n / V : 0;
}

bool ranks_ok(const ir::Node& n, const std::vector<ir::ValueType>& in, size_t max_rank) {
  for (size_t i = 0; i < in.size(); ++i)
    if (present(n, i) && in[i].has_rank && in[i].dims.size() > max_rank) return false;
  return true;
}

}  // namespace ew

void register_elementwise_kernels() {
  ew::register_unary();
  ew::register_cast();
  ew::register_binary();
  ew::register_variadic();
  ew::register_fused();
}

}  // namespace kiln::runtime::cuda
