// Shared helpers for op definitions: dtype dispatch, broadcasting (types and index math), axis and
// constant-input handling, and inference utilities. Used by every src/ops/<family>.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ir/op_registry.h"
#include "util/error.h"
#include "util/half.h"

namespace kiln::ops {

using ir::InferContext;
using ir::Node;
using ir::ValueType;

// ---- dtype traits -------------------------------------------------------------------------------
// S = storage type, C = compute type; load/store convert (float16/bfloat16 compute in float).
template <DType D>
struct DT;
template <>
struct DT<DType::Float32> {
  using S = float;
  using C = float;
  static C load(S v) { return v; }
  static S store(C v) { return v; }
};
template <>
struct DT<DType::Float16> {
  using S = uint16_t;
  using C = float;
  static C load(S v) { return util::half_to_float(v); }
  static S store(C v) { return util::float_to_half(v); }
};
template <>
struct DT<DType::BFloat16> {
  using S = uint16_t;
  using C = float;
  static C load(S v) { return util::bf16_to_float(v); }
  static S store(C v) { return util::float_to_bf16(v); }
};
template <>
struct DT<DType::Float64> {
  using S = double;
  using C = double;
  static C load(S v) { return v; }
  static S store(C v) { return v; }
};
#define KILN_OPS_INT_TRAITS(D, T)          \
  template <>                              \
  struct DT<D> {                           \
    using S = T;                           \
    using C = T;                           \
    static C load(S v) { return v; }       \
    static S store(C v) { return v; }      \
  };
KILN_OPS_INT_TRAITS(DType::Int64, int64_t)
KILN_OPS_INT_TRAITS(DType::Int32, int32_t)
KILN_OPS_INT_TRAITS(DType::Int16, int16_t)
KILN_OPS_INT_TRAITS(DType::Int8, int8_t)
KILN_OPS_INT_TRAITS(DType::UInt8, uint8_t)
#undef KILN_OPS_INT_TRAITS
template <>
struct DT<DType::Bool> {
  using S = uint8_t;
  using C = bool;
  static C load(S v) { return v != 0; }
  static S store(C v) { return v ? 1 : 0; }
};

template <DType D>
using DTag = std::integral_constant<DType, D>;

// ---- dtype lists and dispatch -------------------------------------------------------------------
template <DType... Ds>
struct DTypeList {
  static bool contains(DType t) { return ((t == Ds) || ...); }
  static std::string names() {
    std::string s;
    ((s += (s.empty() ? "" : ", "), s += dtype_name(Ds)), ...);
    return s;
  }
};

using FloatTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64>;
using SignedIntTypes = DTypeList<DType::Int64, DType::Int32, DType::Int16, DType::Int8>;
using NumericTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                               DType::Int32, DType::Int16, DType::Int8, DType::UInt8>;
using SignedNumericTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                                     DType::Int32, DType::Int16, DType::Int8>;
using AllTypes = DTypeList<DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int64,
                           DType::Int32, DType::Int16, DType::Int8, DType::UInt8, DType::Bool>;
using IndexTypes = DTypeList<DType::Int64, DType::Int32>;

// Unsupported naming the node when `t` is not in the list.
template <DType... Ds>
void check_dtype(DTypeList<Ds...> list, DType t, const Node& n, const char* what) {
  if (!list.contains(t))
    KILN_THROW(Unsupported, n.label() << ": " << what << " has dtype " << dtype_name(t) << "; supported: "
                                      << list.names());
}

// Calls f(DTag<D>{}) for the D in the list equal to `t`; Unsupported otherwise.
template <DType... Ds, class F>
void dispatch(DTypeList<Ds...> list, DType t, const Node& n, const char* what, F&& f) {
  bool done = ((t == Ds ? (f(DTag<Ds>{}), true) : false) || ...);
  if (!done) check_dtype(list, t, n, what);
}

// Converts a compute value to another compute type without UB (NaN -> 0, saturating float -> int).
template <class To, class From>
To convert_value(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (std::isnan(v)) return To(0);
    constexpr double lo = static_cast<double>(std::numeric_limits<To>::min());
    constexpr double hi = static_cast<double>(std::numeric_limits<To>::max());
    double d = static_cast<double>(v);
    if (d <= lo) return std::numeric_limits<To>::min();
    if (d >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(d);
  } else {
    return static_cast<To>(v);
  }
}

// ---- axes, attributes, constant inputs ----------------------------------------------------------
// Maps axis in [-rank, rank) to [0, rank); InvalidModel naming the node otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& n, const char* what = "axis");
// Normalizes a list of axes; InvalidModel on out-of-range or duplicate axes.
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank, const Node& n,
                                    const char* what = "axes");
// Reads an int32/int64 tensor as int64 values (InvalidModel for other dtypes).
std::vector<int64_t> read_ints(const Tensor& t, const Node& n, const char* what);
// A scalar (or one-element) tensor as double.
double read_scalar(const Tensor& t, const Node& n, const char* what);
// InvalidModel when the number of present inputs is outside [lo, hi] or outputs exceed max_out.
void check_arity(const Node& n, size_t lo, size_t hi, size_t max_out = 1);
// Kernel-side input fetch: InvalidModel when a required input is missing.
const Tensor& in_tensor(const Node& n, const std::vector<const Tensor*>& inputs, size_t i);
// ONNX TensorProto.DataType code -> DType (Unsupported for kinds kiln lacks, InvalidModel for unknown codes).
DType dtype_from_onnx(int64_t code, const Node& n);

// For outputs whose size comes from data (ConstantOfShape, Expand): InvalidArgument when the element count
// overflows, OutOfMemory (naming the size) when the byte count cannot be represented. Tensor's constructor
// does not guard numel * dtype_size against size_t overflow.
void check_output_size(const Node& n, DType dt, const Shape& s);

// ---- inference helpers --------------------------------------------------------------------------
ValueType make_type(DType dt, std::vector<Dim> dims);
ValueType rank_only(DType dt, int64_t rank);  // known rank, every dim unknown
Dim static_dim(int64_t v);
Dim unknown_dim();
// Two dims known to be equal (symbolic or static) where "same" holds.
bool same_dim(const Dim& a, const Dim& b);
// Merges two dims that must be equal (e.g. Concat non-axis dims); InvalidModel when both static and differ.
Dim merge_dim(const Dim& a, const Dim& b, const Node& n, const char* what);
// Numpy multidirectional broadcasting of types (keeps symbols where they agree).
std::vector<Dim> broadcast_dims(const std::vector<Dim>& a, const std::vector<Dim>& b, const Node& n);
// Broadcast type of all present inputs (rank unknown if any rank is unknown).
ValueType broadcast_types(const InferContext& ctx, DType out_dtype, size_t first = 0, size_t last = SIZE_MAX);
// Product of dims [lo, hi) or -1 when any is unknown.
int64_t dims_product(const std::vector<Dim>& d, size_t lo, size_t hi);
// Constant value of input i if known at inference.
inline const Tensor* const_input(const InferContext& ctx, size_t i) {
  return i < ctx.values.size() ? ctx.values[i] : nullptr;
}

// ---- broadcast index math (kernels) -------------------------------------------------------------
// Output shape of numpy broadcasting; InvalidModel naming the node when incompatible.
Shape broadcast_shape(const Shape& a, const Shape& b, const Node& n);
// Strides of `in` aligned to `out` (out.size() entries), 0 where `in` is broadcast.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// MatMul's numpy semantics for operands of these shapes: a 1-D A gets a leading 1, a 1-D B a trailing 1 (and the
// result drops them), the batch dims broadcast. InvalidModel naming the node when the inner dimensions differ.
struct MatMulShapes {
  int64_t M = 0, K = 0, N = 0;
  Shape a_batch, b_batch, batch;  // A's and B's batch dims, and their broadcast
  Shape y;                        // the result's shape
};
MatMulShapes matmul_shapes(const Node& n, const Tensor& a, const Tensor& b);
// Row-major strides.
std::vector<int64_t> contiguous_strides(const Shape& s);

// Walks every index of `out`, calling f(out_flat, offsets) with one offset per stride vector.
template <size_t K, class F>
void for_each_broadcast(const Shape& out, const std::vector<int64_t> (&strides)[K], F&& f) {
  const int64_t total = shape_numel(out);
  if (total == 0) return;
  const size_t r = out.size();
  std::vector<int64_t> idx(r, 0);
  int64_t off[K] = {};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
      if (idx[d] < out[d]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

// dst (contiguous, shape `out`, same dtype as src) [i] = src.data[base + sum(idx[d] * strides[d])].
// Serves Transpose (permuted strides), Expand (0 strides), Slice (scaled, possibly negative strides).
Tensor strided_copy(const Tensor& src, int64_t base, const std::vector<int64_t>& strides, const Shape& out);

// Slice node n on its inputs (opset 1 attributes or opset 10+ inputs) as a strided view of input 0: the first
// element read, the input stride (elements) of each output dim, and the output shape. InvalidModel on malformed
// parameters, with the reference kernel's messages (it uses this too).
void slice_view(const Node& n, const std::vector<const Tensor*>& in, int64_t& base, std::vector<int64_t>& strides,
                Shape& ys);

}  // namespace kiln::ops

namespace kiln::ops {
// Family registration functions (called by ir::register_all_ops).
void register_control_flow();  // ops3
void register_rearrange();  // ops3
void register_selection();  // ops3
void register_gather_scatter_nd();  // ops3
void register_pad();  // ops3
void register_conv_transpose();  // ops3
void register_resize();  // ops3
void register_einsum();  // ops3
void register_attention();  // ops3
void register_elementwise_unary();
void register_elementwise_binary();
void register_conv();
void register_pool();
void register_normalization();
void register_matmul();
void register_shape_ops();
void register_tensor_ops();
void register_generators();
void register_reduce();
void register_variadic();
void register_reduce_arg();
void register_layer_norm();
void register_split_tile();
}  // namespace kiln::ops
