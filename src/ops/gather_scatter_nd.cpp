// GatherND (opset 11, 12 batch_dims, 13) and ScatterND (11, 13, 16 reduction add/mul, 18 max/min).
// Index tuples address slices of `data`; negative indices count from the end; an index outside its dimension
// is InvalidArgument naming the node. ScatterND applies updates in index order (duplicates: the last wins for
// reduction none, as onnxruntime and the reference evaluator do).
#include <algorithm>
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::gather_scatter_nd_detail {

// ---- shared: index tuples -> element offsets ---------------------------------------------------------
// Offset (in elements of `data`) of the slice addressed by tuple `t` (k values) within batch `b`.
int64_t tuple_offset(const Node& n, const Tensor& idx, int64_t t, int64_t k, const Shape& ds, size_t batch_dims,
                     const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (int64_t j = 0; j < k; ++j) {
    const size_t d = batch_dims + static_cast<size_t>(j);
    int64_t v = idx.at_int64(t * k + j);
    if (v < -ds[d] || v >= ds[d])
      KILN_THROW(InvalidArgument, n.label() << ": index " << v << " is out of range for data axis " << d << " of size "
                                            << ds[d]);
    if (v < 0) v += ds[d];
    off += v * strides[d];
  }
  return off;
}

// ---- GatherND ---------------------------------------------------------------------------------------
size_t batch_dims_of(const Node& n) {
  const int64_t b = n.opset >= 12 ? n.attr_int("batch_dims", 0) : 0;
  if (b < 0) KILN_THROW(InvalidModel, n.label() << ": batch_dims must be >= 0, got " << b);
  return static_cast<size_t>(b);
}

std::vector<ValueType> gather_nd_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& data = ctx.input(0);
  const ValueType& idx = ctx.input(1);
  if (idx.dtype != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": indices must be int64, got " << idx.str());
  const size_t b = batch_dims_of(n);
  if (!data.has_rank || !idx.has_rank) return {ValueType::unknown(data.dtype)};
  if (idx.dims.empty()) KILN_THROW(InvalidModel, n.label() << ": indices must have rank >= 1");
  if (b >= idx.dims.size() || b >= data.dims.size())
    KILN_THROW(InvalidModel, n.label() << ": batch_dims " << b << " must be below the ranks of data (" << data.dims.size()
                                       << ") and indices (" << idx.dims.size() << ")");
  std::vector<Dim> out(idx.dims.begin(), idx.dims.end() - 1);
  for (size_t i = 0; i < b; ++i) out[i] = merge_dim(data.dims[i], idx.dims[i], n, "batch dimensions");
  const Dim& kd = idx.dims.back();
  if (!kd.is_static()) return {ValueType::unknown(data.dtype)};  // the rank depends on k
  const size_t k = static_cast<size_t>(kd.value);
  if (k < 1 || b + k > data.dims.size())
    KILN_THROW(InvalidModel, n.label() << ": indices' last dim " << k << " must be in [1, " << data.dims.size() - b << "]");
  out.insert(out.end(), data.dims.begin() + static_cast<std::ptrdiff_t>(b + k), data.dims.end());
  return {make_type(data.dtype, out)};
}

void gather_nd_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& data = in_tensor(n, in, 0);
  const Tensor& idx = in_tensor(n, in, 1);
  if (idx.dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": indices must be int64, got " << idx.type_str());
  const size_t b = batch_dims_of(n);
  const Shape &ds = data.shape(), &is = idx.shape();
  if (is.empty() || b >= is.size() || b >= ds.size())
    KILN_THROW(InvalidModel, n.label() << ": batch_dims " << b << " with data " << data.type_str() << " and indices "
                                       << idx.type_str());
  const int64_t k = is.back();
  if (k < 1 || b + static_cast<size_t>(k) > ds.size())
    KILN_THROW(InvalidModel, n.label() << ": indices' last dim " << k << " must be in [1, " << ds.size() - b << "]");
  for (size_t i = 0; i < b; ++i)
    if (ds[i] != is[i])
      KILN_THROW(InvalidModel, n.label() << ": batch dim " << i << " is " << ds[i] << " in data but " << is[i] << " in indices");
  Shape ys(is.begin(), is.end() - 1);
  ys.insert(ys.end(), ds.begin() + static_cast<std::ptrdiff_t>(b + static_cast<size_t>(k)), ds.end());
  Tensor y(data.dtype(), ys);
  const std::vector<int64_t> strides = contiguous_strides(ds);
  int64_t batches = 1, slice = 1;
  for (size_t i = 0; i < b; ++i) batches *= ds[i];
  for (size_t i = b + static_cast<size_t>(k); i < ds.size(); ++i) slice *= ds[i];
  const int64_t tuples = shape_numel(is) / k;
  const int64_t per_batch = batches == 0 ? 0 : tuples / batches;
  const int64_t batch_stride = b == 0 ? 0 : strides[b - 1];
  const size_t es = dtype_size(data.dtype()), bytes = static_cast<size_t>(slice) * es;
  const auto* src = static_cast<const uint8_t*>(data.data());
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  for (int64_t t = 0; t < tuples; ++t) {
    const int64_t off = (t / per_batch) * batch_stride + tuple_offset(n, idx, t, k, ds, b, strides);
    if (bytes) std::memcpy(dst + static_cast<size_t>(t) * bytes, src + static_cast<size_t>(off) * es, bytes);
  }
  out[0] = y;
}

// ---- ScatterND --------------------------------------------------------------------------------------
enum class Reduction { None, Add, Mul, Max, Min };

Reduction reduction_of(const Node& n) {
  if (n.opset < 16) return Reduction::None;
  const std::string r = n.attr_string("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if (n.opset >= 18 && r == "max") return Reduction::Max;
  if (n.opset >= 18 && r == "min") return Reduction::Min;
  KILN_THROW(InvalidModel, n.label() << ": unknown reduction '" << r << "' at opset " << n.opset
                                     << " (none, add, mul; max, min from opset 18)");
}

std::vector<ValueType> scatter_nd_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 3, 3);
  const ValueType& data = ctx.input(0);
  const ValueType& idx = ctx.input(1);
  const ValueType& upd = ctx.input(2);
  if (idx.dtype != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": indices must be int64, got " << idx.str());
  if (upd.dtype != data.dtype)
    KILN_THROW(InvalidModel, n.label() << ": updates are " << dtype_name(upd.dtype) << ", data is " << dtype_name(data.dtype));
  if (reduction_of(n) != Reduction::None) check_dtype(NumericTypes{}, data.dtype, n, "data");
  if (data.has_rank && idx.has_rank && upd.has_rank && !idx.dims.empty() && idx.dims.back().is_static()) {
    const size_t k = static_cast<size_t>(idx.dims.back().value);
    const size_t want = idx.dims.size() - 1 + data.dims.size() - std::min(k, data.dims.size());
    if (k < 1 || k > data.dims.size() || upd.dims.size() != want)
      KILN_THROW(InvalidModel, n.label() << ": updates " << upd.str() << " do not match indices " << idx.str()
                                         << " and data " << data.str());
  }
  return {data};
}

template <class C>
C reduce_value(Reduction r, C a, C b) {
  switch (r) {
    case Reduction::Add: return static_cast<C>(a + b);
    case Reduction::Mul: return static_cast<C>(a * b);
    case Reduction::Max: return std::max(a, b);
    case Reduction::Min: return std::min(a, b);
    default: return b;
  }
}

void scatter_nd_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 3, 3);
  const Tensor& data = in_tensor(n, in, 0);
  const Tensor& idx = in_tensor(n, in, 1);
  const Tensor& upd = in_tensor(n, in, 2);
  if (idx.dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": indices must be int64, got " << idx.type_str());
  if (upd.dtype() != data.dtype())
    KILN_THROW(InvalidModel, n.label() << ": updates are " << upd.type_str() << ", data is " << data.type_str());
  const Reduction red = reduction_of(n);
  const Shape &ds = data.shape(), &is = idx.shape();
  if (is.empty() || is.back() < 1 || static_cast<size_t>(is.back()) > ds.size())
    KILN_THROW(InvalidModel, n.label() << ": indices " << idx.type_str() << " do not fit data " << data.type_str());
  const int64_t k = is.back();
  Shape want(is.begin(), is.end() - 1);
  want.insert(want.end(), ds.begin() + k, ds.end());
  if (upd.shape() != want)
    KILN_THROW(InvalidModel, n.label() << ": updates must have shape " << shape_str(want) << ", got " << upd.type_str());
  Tensor y = data.clone();
  const std::vector<int64_t> strides = contiguous_strides(ds);
  int64_t slice = 1;
  for (size_t i = static_cast<size_t>(k); i < ds.size(); ++i) slice *= ds[i];
  const int64_t tuples = shape_numel(is) / k;
  if (red == Reduction::None) {
    const size_t es = dtype_size(data.dtype()), bytes = static_cast<size_t>(slice) * es;
    auto* dst = static_cast<uint8_t*>(y.mutable_data());
    const auto* src = static_cast<const uint8_t*>(upd.data());
    for (int64_t t = 0; t < tuples; ++t) {
      const int64_t off = tuple_offset(n, idx, t, k, ds, 0, strides);
      if (bytes) std::memcpy(dst + static_cast<size_t>(off) * es, src + static_cast<size_t>(t) * bytes, bytes);
    }
  } else {
    dispatch(NumericTypes{}, data.dtype(), n, "data", [&](auto tag) {
      using T = DT<decltype(tag)::value>;
      auto* py = y.mutable_as<typename T::S>();
      const auto* pu = upd.as<typename T::S>();
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t off = tuple_offset(n, idx, t, k, ds, 0, strides);
        for (int64_t e = 0; e < slice; ++e)
          py[off + e] = T::store(reduce_value(red, T::load(py[off + e]), T::load(pu[t * slice + e])));
      }
    });
  }
  out[0] = y;
}

}  // namespace kiln::ops::gather_scatter_nd_detail

namespace kiln::ops {
void register_gather_scatter_nd() {
  using namespace gather_scatter_nd_detail;
  auto& r = ir::OpRegistry::instance();
  r.add(ir::OpDef{"GatherND", "", {11, 12, 13}, gather_nd_infer, gather_nd_kernel});
  r.add(ir::OpDef{"ScatterND", "", {11, 13, 16, 18}, scatter_nd_infer, scatter_nd_kernel});
}
}  // namespace kiln::ops
