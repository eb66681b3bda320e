// Gemm (alpha, beta, transA, transB, optional unidirectionally broadcast C) and MatMul (numpy semantics:
// batch broadcasting, 1-D operands promoted then squeezed). Reference kernels: naive triple loops,
// float64 accumulation for floating types, wrapping int64 accumulation for integers.
#include "ops/common.h"

namespace kiln::ops::matmul_detail {

using GemmTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                            DType::Int32>;

// Accumulator: double for floats, int64 (wrapping) for integers.
template <class C>
using Acc = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;

template <class A>
A mac(A acc, A x, A y) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<uint64_t>(acc) + static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
  else
    return acc + x * y;
}

// ---- Gemm -------------------------------------------------------------------------------------------
void check_gemm_c(const Node& n, const std::vector<Dim>& c, const Dim& m, const Dim& nn) {
  if (c.size() > 2) KILN_THROW(InvalidModel, n.label() << ": C must have rank <= 2, got " << c.size());
  const Dim* want[2] = {&m, &nn};
  for (size_t i = 0; i < c.size(); ++i) {
    const Dim& d = c[i];
    const Dim& w = *want[i + 2 - c.size()];
    if (d.is_static() && d.value != 1 && w.is_static() && d.value != w.value)
      KILN_THROW(InvalidModel, n.label() << ": C dim " << d.value << " cannot broadcast to " << w.value);
  }
}

std::vector<ValueType> gemm_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, n.opset >= 11 ? 2 : 3, 3);
  const ValueType& a = ctx.input(0);
  const ValueType& b = ctx.input(1);
  check_dtype(GemmTypes{}, a.dtype, n, "A");
  if (b.dtype != a.dtype || (ctx.has(2) && ctx.in[2]->dtype != a.dtype))
    KILN_THROW(InvalidModel, n.label() << ": A, B and C must share a dtype");
  if (!a.has_rank || !b.has_rank) return {rank_only(a.dtype, 2)};
  if (a.dims.size() != 2 || b.dims.size() != 2)
    KILN_THROW(InvalidModel, n.label() << ": A and B must be 2-D, got " << a.str() << " and " << b.str());
  const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  const Dim& m = a.dims[ta ? 1 : 0];
  const Dim& ka = a.dims[ta ? 0 : 1];
  const Dim& kb = b.dims[tb ? 1 : 0];
  const Dim& nn = b.dims[tb ? 0 : 1];
  merge_dim(ka, kb, n, "inner dimensions of A and B");
  if (ctx.has(2) && ctx.in[2]->has_rank) check_gemm_c(n, ctx.in[2]->dims, m, nn);
  return {make_type(a.dtype, {m, nn})};
}

void gemm_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, n.opset >= 11 ? 2 : 3, 3);
  const Tensor& a = in_tensor(n, in, 0);
  const Tensor& b = in_tensor(n, in, 1);
  const Tensor* c = in.size() > 2 ? in[2] : nullptr;
  if (b.dtype() != a.dtype() || (c && c->dtype() != a.dtype()))
    KILN_THROW(InvalidModel, n.label() << ": A, B and C must share a dtype");
  if (a.rank() != 2 || b.rank() != 2)
    KILN_THROW(InvalidModel, n.label() << ": A and B must be 2-D, got " << a.type_str() << " and " << b.type_str());
  const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  const double alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const int64_t M = a.shape()[ta ? 1 : 0], K = a.shape()[ta ? 0 : 1];
  const int64_t Kb = b.shape()[tb ? 1 : 0], N = b.shape()[tb ? 0 : 1];
  if (K != Kb)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: A " << a.type_str() << (ta ? " (transposed)" : "")
                                       << ", B " << b.type_str() << (tb ? " (transposed)" : ""));
  std::vector<int64_t> cst[1];
  if (c) {
    std::vector<Dim> cd;
    for (int64_t d : c->shape()) cd.push_back(static_dim(d));
    check_gemm_c(n, cd, static_dim(M), static_dim(N));
    cst[0] = broadcast_strides(c->shape(), {M, N});
  }
  Tensor y(a.dtype(), {M, N});
  dispatch(GemmTypes{}, a.dtype(), n, "A", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using A = Acc<typename T::C>;
    const auto* pa = a.as<typename T::S>();
    const auto* pb = b.as<typename T::S>();
    const auto* pc = c ? c->as<typename T::S>() : nullptr;
    auto* py = y.mutable_as<typename T::S>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        A acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          A av = static_cast<A>(T::load(pa[ta ? k * M + i : i * K + k]));
          A bv = static_cast<A>(T::load(pb[tb ? j * K + k : k * N + j]));
          acc = mac(acc, av, bv);
        }
        A cv = pc ? static_cast<A>(T::load(pc[i * cst[0][0] + j * cst[0][1]])) : A(0);
        typename T::C r;
        if (std::is_integral_v<A> && alpha == 1.0 && beta == 1.0)
          r = static_cast<typename T::C>(mac(acc, A(1), cv));
        else
          r = convert_value<typename T::C>(alpha * static_cast<double>(acc) + beta * static_cast<double>(cv));
        py[i * N + j] = T::store(r);
      }
  });
  out[0] = y;
}

// ---- MatMul -----------------------------------------------------------------------------------------
std::vector<ValueType> matmul_infer(const InferContext& ctx) {
  const Node& n = ctx.node;
  check_arity(n, 2, 2);
  const ValueType& a = ctx.input(0);
  const ValueType& b = ctx.input(1);
  check_dtype(GemmTypes{}, a.dtype, n, "A");
  if (b.dtype != a.dtype) KILN_THROW(InvalidModel, n.label() << ": A and B must share a dtype");
  if (!a.has_rank || !b.has_rank) return {ValueType::unknown(a.dtype)};
  if (a.dims.empty() || b.dims.empty()) KILN_THROW(InvalidModel, n.label() << ": MatMul operands must not be scalars");
  std::vector<Dim> ad = a.dims, bd = b.dims;
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), static_dim(1));
  if (b1) bd.push_back(static_dim(1));
  merge_dim(ad.back(), bd[bd.size() - 2], n, "inner dimensions of A and B");
  std::vector<Dim> batch = broadcast_dims(std::vector<Dim>(ad.begin(), ad.end() - 2),
                                          std::vector<Dim>(bd.begin(), bd.end() - 2), n);
  if (!a1) batch.push_back(ad[ad.size() - 2]);
  if (!b1) batch.push_back(bd.back());
  return {make_type(a.dtype, batch)};
}

}  // namespace kiln::ops::matmul_detail

namespace kiln::ops {
MatMulShapes matmul_shapes(const Node& n, const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  MatMulShapes r;
  r.M = as[as.size() - 2], r.K = as.back(), r.N = bs.back();
  if (bs[bs.size() - 2] != r.K)
    KILN_THROW(InvalidModel, n.label() << ": inner dimensions differ: " << a.type_str() << " x " << b.type_str());
  r.a_batch.assign(as.begin(), as.end() - 2);
  r.b_batch.assign(bs.begin(), bs.end() - 2);
  r.batch = broadcast_shape(r.a_batch, r.b_batch, n);
  r.y = r.batch;
  if (!a1) r.y.push_back(r.M);
  if (!b1) r.y.push_back(r.N);
  return r;
}
}  // namespace kiln::ops

namespace kiln::ops::matmul_detail {

void matmul_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 2, 2);
  const Tensor& a = in_tensor(n, in, 0);
  const Tensor& b = in_tensor(n, in, 1);
  if (b.dtype() != a.dtype()) KILN_THROW(InvalidModel, n.label() << ": A and B must share a dtype");
  if (a.rank() == 0 || b.rank() == 0) KILN_THROW(InvalidModel, n.label() << ": MatMul operands must not be scalars");
  const MatMulShapes ms = matmul_shapes(n, a, b);
  const int64_t M = ms.M, K = ms.K, N = ms.N;
  const Shape& batch = ms.batch;
  std::vector<int64_t> st[2] = {broadcast_strides(ms.a_batch, batch), broadcast_strides(ms.b_batch, batch)};
  Tensor y(a.dtype(), ms.y);
  dispatch(GemmTypes{}, a.dtype(), n, "A", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    using A = Acc<typename T::C>;
    const auto* pa = a.as<typename T::S>();
    const auto* pb = b.as<typename T::S>();
    auto* py = y.mutable_as<typename T::S>();
    for_each_broadcast(batch, st, [&](int64_t bi, const int64_t* off) {
      const auto* ma = pa + off[0] * M * K;
      const auto* mb = pb + off[1] * K * N;
      auto* my = py + bi * M * N;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          A acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc = mac(acc, static_cast<A>(T::load(ma[i * K + k])), static_cast<A>(T::load(mb[k * N + j])));
          my[i * N + j] = T::store(static_cast<typename T::C>(acc));
        }
    });
  });
  out[0] = y;
}

}  // namespace kiln::ops::matmul_detail

namespace kiln::ops {
void register_matmul() {
  using namespace matmul_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"Gemm", "", {7, 9, 11, 13}, gemm_infer, gemm_kernel});
  reg.add(ir::OpDef{"MatMul", "", {1, 9, 13}, matmul_infer, matmul_kernel});
}
}  // namespace kiln::ops
