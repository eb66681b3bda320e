#include "ops/common.h"

#include "ir/dtype_codes.h"

#include <algorithm>

namespace kiln::ops {

int64_t normalize_axis(int64_t axis, int64_t rank, const Node& n, const char* what) {
  if (axis < -rank || axis >= rank)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " " << axis << " is out of range for rank " << rank);
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank, const Node& n,
                                    const char* what) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int64_t a : axes) {
    int64_t v = normalize_axis(a, rank, n, what);
    if (std::find(out.begin(), out.end(), v) != out.end())
      KILN_THROW(InvalidModel, n.label() << ": " << what << " repeat axis " << a);
    out.push_back(v);
  }
  return out;
}

std::vector<int64_t> read_ints(const Tensor& t, const Node& n, const char* what) {
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " must be int64 or int32, got " << t.type_str());
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.at_int64(i);
  return v;
}

double read_scalar(const Tensor& t, const Node& n, const char* what) {
  if (t.numel() != 1)
    KILN_THROW(InvalidModel, n.label() << ": " << what << " must be a scalar, got " << t.type_str());
  return t.at_double(0);
}

void check_arity(const Node& n, size_t lo, size_t hi, size_t max_out) {
  size_t k = n.num_inputs();
  if (k < lo || n.inputs.size() > hi)
    KILN_THROW(InvalidModel, n.label() << ": expects " << lo << (lo == hi ? "" : " to " + std::to_string(hi))
                                       << " inputs, got " << n.inputs.size());
  for (size_t i = 0; i < lo; ++i)
    if (!n.has_input(i)) KILN_THROW(InvalidModel, n.label() << ": input " << i << " is required");
  if (n.outputs.size() > max_out || n.outputs.empty())
    KILN_THROW(InvalidModel, n.label() << ": expects 1" << (max_out > 1 ? " to " + std::to_string(max_out) : "")
                                       << " outputs, got " << n.outputs.size());
}

const Tensor& in_tensor(const Node& n, const std::vector<const Tensor*>& inputs, size_t i) {
  if (i >= inputs.size() || inputs[i] == nullptr)
    KILN_THROW(InvalidModel, n.label() << ": input " << i << " is required");
  return *inputs[i];
}

DType dtype_from_onnx(int64_t code, const Node& n) {
  if (auto t = ir::dtype_from_onnx_code(code)) return *t;
  switch (code) {
    case 4: case 8: case 12: case 13: case 14: case 15: case 17: case 18: case 19: case 20: case 21: case 22:
    case 23:
      KILN_THROW(Unsupported, n.label() << ": ONNX data type " << code << " is not supported by kiln");
    default:
      KILN_THROW(InvalidModel, n.label() << ": unknown ONNX data type " << code);
  }
}

void check_output_size(const Node& n, DType dt, const Shape& s) {
  int64_t numel;
  try {
    numel = shape_numel(s);
  } catch (const Error& e) {
    KILN_THROW(InvalidArgument, n.label() << ": output shape " << shape_str(s) << ": " << e.what());
  }
  if (static_cast<uint64_t>(numel) > (uint64_t(1) << 62) / dtype_size(dt))
    KILN_THROW(OutOfMemory, n.label() << ": output " << dtype_name(dt) << shape_str(s) << " needs " << numel << " x "
                                      << dtype_size(dt) << " bytes");
}

ValueType make_type(DType dt, std::vector<Dim> dims) { return ValueType{dt, true, std::move(dims)}; }

ValueType rank_only(DType dt, int64_t rank) {
  return make_type(dt, std::vector<Dim>(static_cast<size_t>(std::max<int64_t>(rank, 0)), unknown_dim()));
}

Dim static_dim(int64_t v) { return Dim{v, ""}; }
Dim unknown_dim() { return Dim{-1, ""}; }

bool same_dim(const Dim& a, const Dim& b) {
  if (a.is_static() || b.is_static()) return a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}

Dim merge_dim(const Dim& a, const Dim& b, const Node& n, const char* what) {
  if (a.is_static() && b.is_static()) {
    if (a.value != b.value)
      KILN_THROW(InvalidModel, n.label() << ": " << what << ": dimension " << a.value << " vs " << b.value);
    return a;
  }
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  if (!a.symbol.empty()) return a;
  return b;
}

std::vector<Dim> broadcast_dims(const std::vector<Dim>& a, const std::vector<Dim>& b, const Node& n) {
  size_t r = std::max(a.size(), b.size());
  std::vector<Dim> out(r);
  for (size_t i = 0; i < r; ++i) {
    const Dim* da = i + a.size() >= r ? &a[i + a.size() - r] : nullptr;
    const Dim* db = i + b.size() >= r ? &b[i + b.size() - r] : nullptr;
    if (!da) { out[i] = *db; continue; }
    if (!db) { out[i] = *da; continue; }
    if (da->is_static() && db->is_static()) {
      if (da->value != db->value && da->value != 1 && db->value != 1)
        KILN_THROW(InvalidModel, n.label() << ": cannot broadcast dimension " << da->value << " with "
                                           << db->value);
      out[i] = da->value == 1 ? *db : *da;
    } else if (da->is_static()) {
      out[i] = da->value == 1 ? *db : *da;  // a dynamic dim against n > 1 must be 1 or n
    } else if (db->is_static()) {
      out[i] = db->value == 1 ? *da : *db;
    } else {
      out[i] = same_dim(*da, *db) ? *da : unknown_dim();
    }
  }
  return out;
}

ValueType broadcast_types(const InferContext& ctx, DType out_dtype, size_t first, size_t last) {
  std::vector<Dim> dims;
  bool any = false;
  for (size_t i = first; i < ctx.in.size() && i < last; ++i) {
    if (!ctx.has(i)) continue;
    const ValueType& t = *ctx.in[i];
    if (!t.has_rank) return ValueType::unknown(out_dtype);
    dims = any ? broadcast_dims(dims, t.dims, ctx.node) : t.dims;
    any = true;
  }
  return make_type(out_dtype, dims);
}

int64_t dims_product(const std::vector<Dim>& d, size_t lo, size_t hi) {
  int64_t p = 1;
  for (size_t i = lo; i < hi && i < d.size(); ++i) {
    if (!d[i].is_static()) return -1;
    p *= d[i].value;
  }
  return p;
}

Shape broadcast_shape(const Shape& a, const Shape& b, const Node& n) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      KILN_THROW(InvalidModel, n.label() << ": cannot broadcast shapes " << shape_str(a) << " and "
                                         << shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> cs = contiguous_strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[off + i] = in[i] == 1 ? 0 : cs[i];
  return st;
}

namespace common_detail {
template <class E>
void strided_copy_typed(const Tensor& src, int64_t base, const std::vector<int64_t>& strides, Tensor& dst) {
  const E* ps = src.as<E>() + base;
  E* pd = dst.mutable_as<E>();
  const std::vector<int64_t> st[1] = {strides};
  for_each_broadcast(dst.shape(), st, [&](int64_t i, const int64_t* off) { pd[i] = ps[off[0]]; });
}
}  // namespace common_detail

Tensor strided_copy(const Tensor& src, int64_t base, const std::vector<int64_t>& strides, const Shape& out) {
  Tensor dst(src.dtype(), out);
  switch (dtype_size(src.dtype())) {
    case 1: common_detail::strided_copy_typed<uint8_t>(src, base, strides, dst); break;
    case 2: common_detail::strided_copy_typed<uint16_t>(src, base, strides, dst); break;
    case 4: common_detail::strided_copy_typed<uint32_t>(src, base, strides, dst); break;
    default: common_detail::strided_copy_typed<uint64_t>(src, base, strides, dst); break;
  }
  return dst;
}

}  // namespace kiln::ops
