// Element rearrangement: DepthToSpace (opset 1, 11 modes DCR/CRD, 13), SpaceToDepth (1, 13, 28 modes DCR/CRD),
// Trilu (14).
// DepthToSpace / SpaceToDepth are a 6-D reshape + transpose, done as one strided copy; any dtype.
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::rearrange_detail {

int64_t blocksize_of(const Node& n) {
  const int64_t b = n.attr_int("blocksize");
  if (b <= 0) KILN_THROW(InvalidModel, n.label() << ": blocksize must be positive, got " << b);
  return b;
}

// `mode` exists from DepthToSpace-11 / SpaceToDepth-28.
bool crd_mode(const Node& n, int64_t since = 11) {
  if (n.opset < since) return false;
  const std::string m = n.attr_string("mode", "DCR");
  if (m != "DCR" && m != "CRD") KILN_THROW(InvalidModel, n.label() << ": mode must be DCR or CRD, got '" << m << "'");
  return m == "CRD";
}

void check_rank4(const Node& n, const ValueType& x) {
  if (x.has_rank && x.dims.size() != 4)
    KILN_THROW(InvalidModel, n.label() << ": input must be 4-D [N,C,H,W], got " << x.str());
}

Dim scaled(const Dim& d, int64_t mul, int64_t div, const Node& n, const char* what) {
  if (!d.is_static()) return unknown_dim();
  if (d.value % div != 0)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " " << d.value << " is not divisible by " << div);
  return static_dim(d.value / div * mul);
}

std::vector<ValueType> d2s_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  const ValueType& x = ctx.input(0);
  const int64_t b = blocksize_of(n);
  crd_mode(n);
  check_rank4(n, x);
  if (!x.has_rank) return {rank_only(x.dtype, 4)};
  return {make_type(x.dtype, {x.dims[0], scaled(x.dims[1], 1, b * b, n, "channels"), scaled(x.dims[2], b, 1, n, "H"),
                              scaled(x.dims[3], b, 1, n, "W")})};
}

std::vector<ValueType> s2d_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 1);
  const ValueType& x = ctx.input(0);
  const int64_t b = blocksize_of(n);
  crd_mode(n, 28);
  check_rank4(n, x);
  if (!x.has_rank) return {rank_only(x.dtype, 4)};
  return {make_type(x.dtype, {x.dims[0], scaled(x.dims[1], b * b, 1, n, "channels"), scaled(x.dims[2], 1, b, n, "H"),
                              scaled(x.dims[3], 1, b, n, "W")})};
}

// Copies x viewed as the 6-D shape `v` into the permutation `perm` of it, then reshapes to `out`.
Tensor permute6(const Tensor& x, const Shape& v, const int (&perm)[6], const Shape& out) {
  const std::vector<int64_t> st = contiguous_strides(v);
  Shape ps;
  std::vector<int64_t> pst;
  for (int p : perm) ps.push_back(v[static_cast<size_t>(p)]), pst.push_back(st[static_cast<size_t>(p)]);
  return strided_copy(x, 0, pst, ps).reshaped(out);
}

void check_kernel_input(const Node& n, const Tensor& x) {
  if (x.rank() != 4) KILN_THROW(InvalidModel, n.label() << ": input must be 4-D [N,C,H,W], got " << x.type_str());
}

void d2s_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  check_kernel_input(n, x);
  const int64_t b = blocksize_of(n);
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (C % (b * b) != 0)
    KILN_THROW(InvalidModel, n.label() << ": channels " << C << " are not divisible by blocksize^2 = " << b * b);
  const int64_t c = C / (b * b);
  const Shape ys = {N, c, H * b, W * b};
  if (crd_mode(n)) {
    const int perm[6] = {0, 1, 4, 2, 5, 3};
    out[0] = permute6(x, {N, c, b, b, H, W}, perm, ys);
  } else {
    const int perm[6] = {0, 3, 4, 1, 5, 2};
    out[0] = permute6(x, {N, b, b, c, H, W}, perm, ys);
  }
}

void s2d_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  const Tensor& x = in_tensor(n, in, 0);
  check_kernel_input(n, x);
  const int64_t b = blocksize_of(n);
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  if (H % b != 0 || W % b != 0)
    KILN_THROW(InvalidModel, n.label() << ": spatial dims " << H << "x" << W << " are not divisible by blocksize " << b);
  // x viewed as [N, C, H/b, b, W/b, b]; DCR gives [N, b, b, C, H/b, W/b], CRD [N, C, b, b, H/b, W/b].
  const int dcr[6] = {0, 3, 5, 1, 2, 4}, crd[6] = {0, 1, 3, 5, 2, 4};
  out[0] = permute6(x, {N, C, H / b, b, W / b, b}, crd_mode(n, 28) ? crd : dcr, {N, C * b * b, H / b, W / b});
}

// ---- Trilu ------------------------------------------------------------------------------------------
std::vector<ValueType> trilu_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 1, 2);
  const ValueType& x = ctx.input(0);
  if (x.has_rank && x.dims.size() < 2)
    KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2, got " << x.str());
  if (ctx.has(1)) {
    const ValueType& k = ctx.input(1);
    if (k.dtype != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": k must be int64, got " << k.str());
  }
  return {x};
}

void trilu_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 2);
  const Tensor& x = in_tensor(n, in, 0);
  if (x.rank() < 2) KILN_THROW(InvalidModel, n.label() << ": input must have rank >= 2, got " << x.type_str());
  int64_t k = 0;
  if (n.has_input(1)) {
    const Tensor& kt = in_tensor(n, in, 1);
    if (kt.dtype() != DType::Int64) KILN_THROW(InvalidModel, n.label() << ": k must be int64, got " << kt.type_str());
    k = static_cast<int64_t>(read_scalar(kt, n, "k"));
  }
  const bool upper = n.attr_int("upper", 1) != 0;
  Tensor y = x.clone();
  const int64_t rows = x.shape()[x.shape().size() - 2], cols = x.shape().back();
  const int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  const size_t es = dtype_size(x.dtype());
  auto* p = static_cast<uint8_t*>(y.mutable_data());
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const bool keep = upper ? j - i >= k : j - i <= k;
        if (!keep) std::memset(p + static_cast<size_t>((m * rows + i) * cols + j) * es, 0, es);
      }
  out[0] = y;
}

}  // namespace kiln::ops::rearrange_detail

namespace kiln::ops {
void register_rearrange() {
  using namespace rearrange_detail;
  auto& r = ir::OpRegistry::instance();
  r.add(ir::OpDef{"DepthToSpace", "", {1, 11, 13, 28}, d2s_infer, d2s_kernel});
  r.add(ir::OpDef{"SpaceToDepth", "", {1, 13, 28}, s2d_infer, s2d_kernel});
  r.add(ir::OpDef{"Trilu", "", {14}, trilu_infer, trilu_kernel});
}
}  // namespace kiln::ops
