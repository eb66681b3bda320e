#include "runtime/cuda/tactic_variant.h"

#include <cudnn.h>

#include <cstring>
#include <iterator>

namespace kiln::runtime::cuda {
namespace {

constexpr const char* kFwdAlgos[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                     "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
constexpr const char* kBwdDataAlgos[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
constexpr const char* kMaths[] = {"default", "tensor", "tensor_conversion", "fma"};
static_assert(CUDNN_CONVOLUTION_FWD_ALGO_COUNT == 8 && CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED == 7);
static_assert(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT == 6 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 == 1);
static_assert(CUDNN_DEFAULT_MATH == 0 && CUDNN_TENSOR_OP_MATH == 1 && CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION == 2 &&
              CUDNN_FMA_MATH == 3);

template <size_t N>
int index_of(const char* const (&names)[N], std::string_view s) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i]) return static_cast<int>(i);
  return -1;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

thread_local VariantProbe* t_probe = nullptr;

}  // namespace

std::string_view tactic_base(std::string_view name) {
  const size_t at = name.find('#');
  return at == std::string_view::npos ? name : name.substr(0, at);
}

std::string_view tactic_variant(std::string_view name) {
  const size_t at = name.find('#');
  return at == std::string_view::npos ? std::string_view{} : name.substr(at + 1);
}

std::string with_variant(std::string_view base, std::string_view variant) {
  std::string s(base);
  if (!variant.empty()) {
    s += '#';
    s += variant;
  }
  return s;
}

std::string encode_lt_algo(const cublasLtMatmulAlgo_t& algo) {
  static const char* digits = "0123456789abcdef";
  unsigned char bytes[sizeof(algo.data)];
  std::memcpy(bytes, algo.data, sizeof(bytes));
  std::string s;
  s.reserve(2 * sizeof(bytes));
  for (unsigned char b : bytes) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

bool decode_lt_algo(std::string_view hex, cublasLtMatmulAlgo_t* algo) {
  unsigned char bytes[sizeof(algo->data)];
  if (hex.size() != 2 * sizeof(bytes)) return false;
  for (size_t i = 0; i < sizeof(bytes); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  std::memcpy(algo->data, bytes, sizeof(bytes));
  return true;
}

std::string encode_dnn_variant(bool backward_data, const DnnVariant& v) {
  const size_t n_algos = backward_data ? std::size(kBwdDataAlgos) : std::size(kFwdAlgos);
  std::string s = "algo=";
  if (v.algo >= 0 && static_cast<size_t>(v.algo) < n_algos)
    s += backward_data ? kBwdDataAlgos[v.algo] : kFwdAlgos[v.algo];
  else
    s += std::to_string(v.algo);
  s += ",math=";
  if (v.math >= 0 && static_cast<size_t>(v.math) < std::size(kMaths)) s += kMaths[v.math];
  else s += std::to_string(v.math);
  return s;
}

bool decode_dnn_variant(std::string_view text, bool backward_data, DnnVariant* v) {
  DnnVariant r;
  bool have_algo = false, have_math = false;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view field = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view key = field.substr(0, eq), val = field.substr(eq + 1);
    if (key == "algo" && !have_algo) {
      r.algo = backward_data ? index_of(kBwdDataAlgos, val) : index_of(kFwdAlgos, val);
      if (r.algo < 0) return false;
      have_algo = true;
    } else if (key == "math" && !have_math) {
      r.math = index_of(kMaths, val);
      if (r.math < 0) return false;
      have_math = true;
    } else {
      return false;
    }
  }
  if (!have_algo || !have_math) return false;
  *v = r;
  return true;
}

VariantProbe::VariantProbe(size_t max) : max_(max), prev_(t_probe) { t_probe = this; }
VariantProbe::~VariantProbe() { t_probe = prev_; }

VariantProbe* VariantProbe::active() { return t_probe && !t_probe->recorded_ ? t_probe : nullptr; }

void VariantProbe::record(std::vector<std::string> variants) {
  if (recorded_) return;
  recorded_ = true;
  if (variants.size() > max_) variants.resize(max_);
  variants_ = std::move(variants);
}

}  // namespace kiln::runtime::cuda
