// kiln CLI — input tensors (random, from files), output summaries and file names.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include "common.h"

namespace kiln_cli {
namespace {

[[noreturn]] void bad(const std::string& msg) {
  throw kiln::Error(kiln::ErrorCode::InvalidArgument, msg);
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0u));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (static_cast<uint32_t>(e) << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;  // may carry into the exponent: still correct
  return static_cast<uint16_t>(sign | r);
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest even (inputs are finite)
  return static_cast<uint16_t>(x >> 16);
}

// Uniform in [0, 1) from the top 53 bits: the same on every platform.
double unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

kiln::Tensor convert_float(const kiln::Tensor& t, kiln::DType to) {
  using kiln::DType;
  if (t.dtype() == to) return t;
  if (!kiln::dtype_is_float(t.dtype()) || !kiln::dtype_is_float(to))
    bad(std::string("cannot convert ") + kiln::dtype_name(t.dtype()) + " to " + kiln::dtype_name(to));
  kiln::Tensor r(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = t.at_double(i);
    const float f = static_cast<float>(v);
    switch (to) {
      case DType::Float32: r.mutable_as<float>()[i] = f; break;
      case DType::Float64: r.mutable_as<double>()[i] = v; break;
      case DType::Float16: r.mutable_as<uint16_t>()[i] = float_to_half(f); break;
      default: r.mutable_as<uint16_t>()[i] = std::isnan(f) ? uint16_t(0x7fc0) : float_to_bf16(f); break;
    }
  }
  return r;
}

kiln::Tensor random_tensor(kiln::DType dtype, const kiln::Shape& shape, std::mt19937_64& rng, const RandomSpec& spec) {
  using kiln::DType;
  kiln::Tensor t(dtype, shape);
  const int64_t n = t.numel();
  const uint64_t span = static_cast<uint64_t>(spec.int_hi - spec.int_lo);
  auto rand_int = [&] { return spec.int_lo + static_cast<int64_t>(rng() % span); };
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::Float32:
        t.mutable_as<float>()[i] = static_cast<float>(2.0 * unit(rng) - 1.0);
        break;
      case DType::Float64:
        t.mutable_as<double>()[i] = 2.0 * unit(rng) - 1.0;
        break;
      case DType::Float16:
        t.mutable_as<uint16_t>()[i] = float_to_half(static_cast<float>(2.0 * unit(rng) - 1.0));
        break;
      case DType::BFloat16:
        t.mutable_as<uint16_t>()[i] = float_to_bf16(static_cast<float>(2.0 * unit(rng) - 1.0));
        break;
      case DType::Int64:
        t.mutable_as<int64_t>()[i] = rand_int();
        break;
      case DType::Int32:
        t.mutable_as<int32_t>()[i] = static_cast<int32_t>(rand_int());
        break;
      case DType::Int16:
        t.mutable_as<int16_t>()[i] = static_cast<int16_t>(rand_int());
        break;
      case DType::Int8:
        t.mutable_as<int8_t>()[i] = static_cast<int8_t>(rand_int());
        break;
      case DType::UInt8:
        t.mutable_as<uint8_t>()[i] = static_cast<uint8_t>(rand_int());
        break;
      case DType::Bool:
        t.mutable_as<uint8_t>()[i] = static_cast<uint8_t>(rng() >> 63);
        break;
    }
  }
  return t;
}

void parse_int_range(const std::string& text, RandomSpec* spec) {
  size_t colon = text.find(':', text.empty() ? 0 : 1);  // allow a leading minus sign
  try {
    if (colon == std::string::npos) throw std::invalid_argument("");
    size_t a = 0, b = 0;
    std::string lo_s = text.substr(0, colon), hi_s = text.substr(colon + 1);
    int64_t lo = std::stoll(lo_s, &a), hi = std::stoll(hi_s, &b);
    if (a != lo_s.size() || b != hi_s.size() || hi <= lo) throw std::invalid_argument("");
    spec->int_lo = lo;
    spec->int_hi = hi;
  } catch (const std::logic_error&) {
    bad("--int-range: '" + text + "' is not a range LO:HI with LO < HI (integers drawn from [LO, HI))");
  }
}

void check_input_names(const ShapeMap& shapes, const std::vector<kiln::TensorInfo>& inputs, const std::string& flag) {
  for (const auto& [name, s] : shapes) {
    bool found = false;
    for (const auto& in : inputs) found |= in.name == name;
    if (found) continue;
    std::string list;
    for (const auto& in : inputs) list += (list.empty() ? "" : ", ") + in.name + " " + in.str();
    bad(flag + ": '" + name + "' is not an input; the inputs are: " + list);
  }
}

kiln::Shape run_shape(const kiln::TensorInfo& in, const kiln::Profile& p0, const ShapeMap& shapes) {
  auto it = shapes.find(in.name);
  if (it == shapes.end()) return p0.at(in.name).opt;
  if (it->second.size() != in.dims.size())
    bad("--shapes: input '" + in.name + "' is " + in.str() + " (rank " + std::to_string(in.dims.size()) + "), got " +
        dims_str(it->second));
  return it->second;
}

kiln::TensorMap complete_inputs(const kiln::Engine& engine, const kiln::TensorMap& given, const ShapeMap& shapes,
                                const RandomSpec& spec) {
  kiln::TensorMap out = given;
  std::mt19937_64 rng(spec.seed);
  const auto& profiles = engine.profiles();
  if (profiles.empty()) throw kiln::Error(kiln::ErrorCode::InvalidState, "the engine has no optimization profile");
  for (const auto& in : engine.inputs()) {
    if (out.count(in.name)) continue;
    out[in.name] = random_tensor(in.dtype, run_shape(in, profiles[0], shapes), rng, spec);
  }
  return out;
}

std::string tensor_summary(const kiln::Tensor& t, size_t first_n) {
  std::ostringstream os;
  os << std::setprecision(6);
  const int64_t n = t.numel();
  if (n == 0) return "(empty)";
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
  int64_t nan = 0, inf = 0, finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = t.at_double(i);
    if (std::isnan(v)) {
      ++nan;
      continue;
    }
    if (std::isinf(v)) {
      ++inf;
      continue;
    }
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    sum += v;
    ++finite;
  }
  if (finite) os << "min " << mn << "  max " << mx << "  mean " << sum / static_cast<double>(finite);
  if (nan) os << (finite ? "  " : "") << "NaN " << nan;
  if (inf) os << (finite || nan ? "  " : "") << "Inf " << inf;
  os << "  [";
  const bool is_int = !kiln::dtype_is_float(t.dtype());
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(first_n); ++i) {
    if (i) os << ", ";
    if (is_int)
      os << t.at_int64(i);
    else
      os << t.at_double(i);
  }
  os << (n > static_cast<int64_t>(first_n) ? ", ...]" : "]");
  return os.str();
}

std::string sanitize_name(const std::string& name) {
  std::string s;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    s += ok ? c : '_';
  }
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

kiln::Tensor load_tensor_file(const std::string& path, std::string* pb_name) {
  require_file(path);
  std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npy") return kiln::load_npy(path);
  if (ext == ".pb") return kiln::load_tensor_pb(path, pb_name);
  bad("'" + path + "': unknown tensor file type (use .npy or .pb)");
}

}  // namespace kiln_cli
