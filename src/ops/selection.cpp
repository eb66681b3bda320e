// Data-dependent selection: TopK (opset 1 k attribute, 10 K input, 11 largest/sorted, 24) and NonZero (9, 13).
// TopK breaks ties by the lower index first and always returns sorted results (sorted=0 leaves the order
// unspecified, so sorted order is a valid answer); NaN counts as larger than every number. NonZero's output
// size depends on the data: inference gives [rank, -1] and the kernel allocates the exact output.
#include <algorithm>
#include <numeric>

#include "ops/common.h"

namespace kiln::ops::selection_detail {

// ---- TopK -------------------------------------------------------------------------------------------
void check_topk_arity(const Node& n) {
  if (n.opset < 10) check_arity(n, 1, 1, 2);
  else check_arity(n, 2, 2, 2);
}

int64_t topk_k(const Node& n, const Tensor* kt) {
  if (n.opset < 10) return n.attr_int("k");
  if (!kt) return -1;
  if (kt->dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": K must be int64, got " << kt->type_str());
  if (kt->numel() != 1) KILN_THROW(InvalidModel, n.label() << ": K must hold one value, got " << kt->type_str());
  return kt->at_int64(0);
}

std::vector<ValueType> topk_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_topk_arity(n);
  const ValueType& x = ctx.input(0);
  check_dtype(NumericTypes{}, x.dtype, n, "input");
  if (n.opset >= 10 && ctx.input(1).dtype != DType::Int64)
    KILN_THROW(InvalidModel, n.label() << ": K must be int64, got " << ctx.input(1).str());
  if (!x.has_rank) return {ValueType::unknown(x.dtype), ValueType::unknown(DType::Int64)};
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", -1), static_cast<int64_t>(x.dims.size()), n));
  const int64_t k = topk_k(n, n.opset < 10 ? nullptr : const_input(ctx, 1));
  std::vector<Dim> dims = x.dims;
  if (k >= 0 || n.opset < 10) {
    if (k < 0) KILN_THROW(InvalidModel, n.label() << ": K must be >= 0, got " << k);
    if (x.dims[axis].is_static() && k > x.dims[axis].value)
      KILN_THROW(InvalidModel, n.label() << ": K = " << k << " exceeds axis " << axis << " of size " << x.dims[axis].value);
    dims[axis] = static_dim(k);
  } else {
    dims[axis] = unknown_dim();
  }
  return {make_type(x.dtype, dims), make_type(DType::Int64, dims)};
}

template <class C>
bool topk_before(C a, C b, bool largest) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a) || std::isnan(b)) return largest ? std::isnan(a) && !std::isnan(b) : !std::isnan(a) && std::isnan(b);
  }
  return largest ? a > b : a < b;
}

void topk_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_topk_arity(n);
  const Tensor& x = in_tensor(n, in, 0);
  const int64_t k = topk_k(n, n.opset < 10 ? nullptr : &in_tensor(n, in, 1));
  const size_t axis = static_cast<size_t>(normalize_axis(n.attr_int("axis", -1), x.rank(), n));
  const bool largest = n.opset < 11 || n.attr_int("largest", 1) != 0;
  const int64_t dim = x.shape()[axis];
  if (k < 0 || k > dim)
    KILN_THROW(InvalidArgument, n.label() << ": K = " << k << " is outside [0, " << dim << "] (axis " << axis << " of "
                                          << x.type_str() << ")");
  Shape ys = x.shape();
  ys[axis] = k;
  Tensor vals(x.dtype(), ys), idx(DType::Int64, ys);
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (size_t d = axis + 1; d < x.shape().size(); ++d) inner *= x.shape()[d];
  dispatch(NumericTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    auto* pv = vals.mutable_as<typename T::S>();
    auto* pi = idx.mutable_as<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(dim));
    std::vector<typename T::C> row(static_cast<size_t>(dim));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * dim * inner + i;
        for (int64_t j = 0; j < dim; ++j) row[static_cast<size_t>(j)] = T::load(px[base + j * inner]);
        std::iota(order.begin(), order.end(), int64_t(0));
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return topk_before(row[static_cast<size_t>(a)], row[static_cast<size_t>(b)], largest);
        });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t src = order[static_cast<size_t>(j)];
          pv[(o * k + j) * inner + i] = px[base + src * inner];
          pi[(o * k + j) * inner + i] = src;
        }
      }
  });
  out[0] = vals;
  if (out.size() > 1) out[1] = idx;
}

// ---- NonZero ----------------------------------------------------------------------------------------
std::vector<ValueType> nonzero_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  const ValueType& x = ctx.input(0);
  check_dtype(AllTypes{}, x.dtype, n, "input");
  if (!x.has_rank) return {make_type(DType::Int64, {unknown_dim(), unknown_dim()})};
  // A scalar counts as a 1-element vector (onnxruntime's convention).
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(x.dims.size()));
  return {make_type(DType::Int64, {static_dim(rank), unknown_dim()})};
}

void nonzero_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  Shape xs = x.shape();
  if (xs.empty()) xs = {1};
  std::vector<int64_t> hits;
  dispatch(AllTypes{}, x.dtype(), n, "input", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    const auto* px = x.as<typename T::S>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (T::load(px[i]) != typename T::C(0)) hits.push_back(i);
  });
  const int64_t r = static_cast<int64_t>(xs.size()), nnz = static_cast<int64_t>(hits.size());
  Tensor y(DType::Int64, {r, nnz});
  auto* py = y.mutable_as<int64_t>();
  for (int64_t j = 0; j < nnz; ++j) {
    int64_t rem = hits[static_cast<size_t>(j)];
    for (int64_t d = r; d-- > 0;) {
      py[d * nnz + j] = rem % xs[static_cast<size_t>(d)];
      rem /= xs[static_cast<size_t>(d)];
    }
  }
  out[0] = y;
}

}  // namespace kiln::ops::selection_detail

namespace kiln::ops {
void register_selection() {
  using namespace selection_detail;
  auto& r = ir::OpRegistry::instance();
  r.add(ir::OpDef{"TopK", "", {1, 10, 11, 24}, topk_infer, topk_kernel});
  r.add(ir::OpDef{"NonZero", "", {9, 13}, nonzero_infer, nonzero_kernel});
}
}  // namespace kiln::ops
