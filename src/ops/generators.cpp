// Tensor generators: Constant (value / value_float / value_floats / value_int / value_ints),
// ConstantOfShape, Range.
#include <cmath>
#include <cstring>

#include "ops/common.h"

namespace kiln::ops::gen_detail {

// ---- Constant ---------------------------------------------------------------------------------------
// Empty list attributes may arrive as either list kind; both mean "empty".
template <class T>
std::vector<T> list_attr(const Node& n, const std::string& k) {
  const ir::Attr& a = n.attrs.at(k);
  if (const auto* v = std::get_if<std::vector<T>>(&a)) return *v;
  if (const auto* f = std::get_if<std::vector<float>>(&a); f && f->empty()) return {};
  if (const auto* i = std::get_if<std::vector<int64_t>>(&a); i && i->empty()) return {};
  if constexpr (std::is_same_v<T, float>) return n.attr_floats(k, {});  // throws the typed error
  else return n.attr_ints(k, {});
}

Tensor constant_value(const Node& n) {
  static const char* keys[] = {"value", "value_float", "value_floats", "value_int", "value_ints",
                               "value_string", "value_strings", "sparse_value"};
  const char* which = nullptr;
  int count = 0;
  for (const char* k : keys)
    if (n.has_attr(k)) which = k, ++count;
  if (count != 1)
    KILN_THROW(InvalidModel, n.label() << ": exactly one value attribute is required, got " << count);
  const std::string k = which;
  if (k == "value") return n.attr_tensor(k);
  if (k == "value_float") return Tensor::from_vector(DType::Float32, {}, std::vector<float>{n.attr_float(k, 0.f)});
  if (k == "value_int") return Tensor::from_vector(DType::Int64, {}, std::vector<int64_t>{n.attr_int(k)});
  if (k == "value_floats") {
    auto v = list_attr<float>(n, k);
    return Tensor::from_vector(DType::Float32, {static_cast<int64_t>(v.size())}, v);
  }
  if (k == "value_ints") {
    auto v = list_attr<int64_t>(n, k);
    return Tensor::from_vector(DType::Int64, {static_cast<int64_t>(v.size())}, v);
  }
  KILN_THROW(Unsupported, n.label() << ": attribute '" << k << "' (string / sparse constants) is not supported");
}

std::vector<ValueType> constant_infer(const InferContext& ctx) {
  check_arity(ctx.node, 0, 0);
  Tensor v = constant_value(ctx.node);
  return {ValueType::of(v.dtype(), v.shape())};
}

void constant_kernel(const Node& n, const std::vector<const Tensor*>&, std::vector<Tensor>& out) {
  check_arity(n, 0, 0);
  out[0] = constant_value(n).clone();  // never hand out the attribute's own buffer
}

// ---- ConstantOfShape --------------------------------------------------------------------------------
Tensor fill_value(const Node& n) {
  if (!n.has_attr("value")) return Tensor::from_vector(DType::Float32, {1}, std::vector<float>{0.f});
  const Tensor& v = n.attr_tensor("value");
  if (v.numel() != 1)
    KILN_THROW(InvalidModel, n.label() << ": value must hold exactly one element, got " << v.type_str());
  return v;
}

std::vector<int64_t> shape_values(const Node& n, const Tensor& s, ErrorCode negative_code) {
  if (s.dtype() != DType::Int64 || s.rank() != 1)
    KILN_THROW(InvalidModel, n.label() << ": shape input must be 1-D int64, got " << s.type_str());
  std::vector<int64_t> d = read_ints(s, n, "shape");
  for (int64_t v : d)
    if (v < 0) throw Error(negative_code, n.label() + ": negative dimension " + std::to_string(v) + " in shape");
  return d;
}

std::vector<ValueType> cos_infer(const InferContext& ctx) {
  check_arity(ctx.node, 1, 1);
  const DType dt = fill_value(ctx.node).dtype();
  if (const Tensor* s = const_input(ctx, 0)) return {ValueType::of(dt, shape_values(ctx.node, *s, ErrorCode::InvalidModel))};
  const ValueType& st = ctx.input(0);
  if (st.dtype != DType::Int64) KILN_THROW(InvalidModel, ctx.node.label() << ": shape input must be int64");
  if (st.has_rank && st.dims.size() == 1 && st.dims[0].is_static()) return {rank_only(dt, st.dims[0].value)};
  return {ValueType::unknown(dt)};
}

void cos_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 1, 1);
  Tensor v = fill_value(n);
  Shape ys = shape_values(n, in_tensor(n, in, 0), ErrorCode::InvalidArgument);
  check_output_size(n, v.dtype(), ys);
  Tensor y(v.dtype(), ys);
  const size_t es = dtype_size(v.dtype());
  auto* dst = static_cast<uint8_t*>(y.mutable_data());
  for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(dst + static_cast<size_t>(i) * es, v.data(), es);
  out[0] = y;
}

// ---- Range ------------------------------------------------------------------------------------------
// float16 / bfloat16 from Range-27 (computed in float64, rounded once per element).
using RangeTypes = DTypeList<DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int16, DType::Int32,
                             DType::Int64>;

constexpr int64_t kMaxRange = int64_t(1) << 40;  // beyond this the output cannot be allocated anyway

// Number of elements: max(ceil((limit - start) / delta), 0).
int64_t range_count(const Node& n, const Tensor& start, const Tensor& limit, const Tensor& delta, ErrorCode code) {
  if (dtype_is_float(start.dtype())) {
    const double s = start.at_double(0), l = limit.at_double(0), d = delta.at_double(0);
    if (d == 0 || std::isnan(s) || std::isnan(l) || std::isnan(d) || std::isinf(s) || std::isinf(l))
      throw Error(code, n.label() + ": invalid range (delta 0, NaN or infinite bounds)");
    const double c = std::ceil((l - s) / d);
    if (c > static_cast<double>(kMaxRange)) throw Error(code, n.label() + ": range has too many elements");
    return c > 0 ? static_cast<int64_t>(c) : 0;
  }
  const int64_t s = start.at_int64(0), l = limit.at_int64(0), d = delta.at_int64(0);
  if (d == 0) throw Error(code, n.label() + ": range delta must not be 0");
  int64_t diff;
  if (__builtin_sub_overflow(l, s, &diff)) throw Error(code, n.label() + ": range bounds overflow");
  if ((diff > 0) != (d > 0) || diff == 0) return 0;
  // ceil(diff / d) with diff and d of the same sign.
  const int64_t c = diff > 0 ? (diff - 1) / d + 1 : (diff + 1) / d + 1;
  if (c > kMaxRange) throw Error(code, n.label() + ": range has too many elements");
  return c;
}

void check_range_inputs(const Node& n, const std::vector<const ValueType*>& t) {
  check_dtype(RangeTypes{}, t[0]->dtype, n, "start");
  if (n.opset < 27 && (t[0]->dtype == DType::Float16 || t[0]->dtype == DType::BFloat16))
    KILN_THROW(InvalidModel, n.label() << ": Range takes " << dtype_name(t[0]->dtype) << " from opset 27, model has " << n.opset);
  for (size_t i = 0; i < 3; ++i) {
    if (t[i]->dtype != t[0]->dtype) KILN_THROW(InvalidModel, n.label() << ": start, limit and delta must share a dtype");
    // Scalars, or one-element 1-D tensors as onnxruntime accepts (an unknown 1-D length is checked at run time).
    if (t[i]->has_rank && !(t[i]->dims.empty() || (t[i]->dims.size() == 1 && t[i]->dims[0].value <= 1 &&
                                                   t[i]->dims[0].value != 0)))
      KILN_THROW(InvalidModel, n.label() << ": input " << i << " must be a scalar, got " << t[i]->str());
  }
}

std::vector<ValueType> range_infer(const InferContext& ctx) {
  check_arity(ctx.node, 3, 3);
  check_range_inputs(ctx.node, {&ctx.input(0), &ctx.input(1), &ctx.input(2)});
  const DType dt = ctx.input(0).dtype;
  const Tensor *s = const_input(ctx, 0), *l = const_input(ctx, 1), *d = const_input(ctx, 2);
  if (s && l && d) return {make_type(dt, {static_dim(range_count(ctx.node, *s, *l, *d, ErrorCode::InvalidModel))})};
  return {make_type(dt, {unknown_dim()})};
}

void range_kernel(const Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
  check_arity(n, 3, 3);
  const Tensor &s = in_tensor(n, in, 0), &l = in_tensor(n, in, 1), &d = in_tensor(n, in, 2);
  ValueType ts = ValueType::of(s.dtype(), s.shape()), tl = ValueType::of(l.dtype(), l.shape()),
            td = ValueType::of(d.dtype(), d.shape());
  check_range_inputs(n, {&ts, &tl, &td});
  const int64_t count = range_count(n, s, l, d, ErrorCode::InvalidArgument);
  Tensor y(s.dtype(), {count});
  dispatch(RangeTypes{}, s.dtype(), n, "start", [&](auto tag) {
    using T = DT<decltype(tag)::value>;
    auto* py = y.mutable_as<typename T::S>();
    if constexpr (std::is_floating_point_v<typename T::C>) {
      const double s0 = s.at_double(0), d0 = d.at_double(0);
      for (int64_t i = 0; i < count; ++i) py[i] = T::store(static_cast<typename T::C>(s0 + static_cast<double>(i) * d0));
    } else {
      const uint64_t s0 = static_cast<uint64_t>(s.at_int64(0)), d0 = static_cast<uint64_t>(d.at_int64(0));
      for (int64_t i = 0; i < count; ++i) py[i] = static_cast<typename T::S>(static_cast<int64_t>(s0 + static_cast<uint64_t>(i) * d0));
    }
  });
  out[0] = y;
}

}  // namespace kiln::ops::gen_detail

namespace kiln::ops {
void register_generators() {
  using namespace gen_detail;
  auto& reg = ir::OpRegistry::instance();
  reg.add(ir::OpDef{"Constant", "", {1, 9, 11, 12, 13, 19, 21, 23, 24, 25}, constant_infer, constant_kernel});
  reg.add(ir::OpDef{"ConstantOfShape", "", {9, 20, 21, 23, 24, 25}, cos_infer, cos_kernel});
  reg.add(ir::OpDef{"Range", "", {11, 27}, range_infer, range_kernel});
}
}  // namespace kiln::ops
