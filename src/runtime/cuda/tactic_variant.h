// Parameterized CUDA tactics (docs/cuda.md, "Tactics and variants"). A tactic name recorded in a plan may carry a
// variant after '#': "cublaslt#<128 hex digits>" (the cublasLtMatmulAlgo_t to run) or
// "cudnn#algo=IMPLICIT_PRECOMP_GEMM,math=tensor" (a cuDNN algorithm and math type). The registry matches the part
// before '#'; the kernel reads the variant from node.tactic. A plain name ("cublaslt") is the heuristic's choice, as
// before variants existed. A variant the library refuses at run time (another GPU or library version) falls back to
// the heuristic with one warning. Host code.
#pragma once
#include <cublasLt.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime::cuda {

// "cublaslt#abc" -> "cublaslt"; a name without '#' is its own base.
std::string_view tactic_base(std::string_view name);
// "cublaslt#abc" -> "abc"; "" when the name has no variant.
std::string_view tactic_variant(std::string_view name);
// "base#variant", or "base" when the variant is empty.
std::string with_variant(std::string_view base, std::string_view variant);

// cuBLASLt: the algorithm's 64 bytes as 128 lowercase hex digits (the struct is documented as serializable for the
// same library version), and back. decode is false, leaving *algo alone, on anything but 128 hex digits.
std::string encode_lt_algo(const cublasLtMatmulAlgo_t& algo);
bool decode_lt_algo(std::string_view hex, cublasLtMatmulAlgo_t* algo);

// cuDNN legacy convolution: an algorithm (cudnnConvolutionFwdAlgo_t, or cudnnConvolutionBwdDataAlgo_t for
// ConvTranspose) and a cudnnMathType_t, written "algo=<NAME>,math=<default|tensor|tensor_conversion|fma>" with the
// enum's name less its prefix (IMPLICIT_PRECOMP_GEMM, WINOGRAD_NONFUSED; ALGO_0, ALGO_1, FFT_TILING for backward
// data). decode is false on anything else (an unknown name, a missing field, an out-of-range value).
struct DnnVariant {
  int algo = -1;
  int math = -1;
  bool operator==(const DnnVariant& o) const { return algo == o.algo && math == o.math; }  // C++17 (nvcc)
};
std::string encode_dnn_variant(bool backward_data, const DnnVariant& v);
bool decode_dnn_variant(std::string_view text, bool backward_data, DnnVariant* v);

// Listing a library tactic's variants (the builder's timing harness). While a VariantProbe lives on a thread, the
// first algorithm choice a library tactic makes on that thread (cuBLASLt's heuristic, cuDNN's algorithm list) also
// records every candidate variant of that call, heuristic order, within the workspace the call has, at most max():
// the first is what the plain tactic name runs. A tactic that makes no such choice records nothing.
class VariantProbe {
 public:
  explicit VariantProbe(size_t max);
  ~VariantProbe();
  VariantProbe(const VariantProbe&) = delete;
  VariantProbe& operator=(const VariantProbe&) = delete;
  // The thread's probe while it still waits for its first record; nullptr otherwise.
  static VariantProbe* active();
  size_t max() const { return max_; }
  // Records the variants (only the first call counts; later ones are ignored).
  void record(std::vector<std::string> variants);
  bool recorded() const { return recorded_; }
  const std::vector<std::string>& variants() const { return variants_; }

 private:
  size_t max_;
  bool recorded_ = false;
  std::vector<std::string> variants_;
  VariantProbe* prev_;
};

}  // namespace kiln::runtime::cuda
