// "fast" reduction CPU tactics, float32 only: ReduceSum, ReduceMean and ReduceSumSquare over trailing axes (the
// last k axes, or all of them: the form of decomposed normalizations, RMSNorm in T5 for one). One contiguous row
// per output element, summed in 16 float lanes and combined in float64, rows split over kiln's threads. Other axes,
// dtypes, noop_with_empty_axes and non-constant forms the kernel cannot read run the reference kernel.
#include <algorithm>

#include "ops/common.h"
#include "runtime/cpu/cpu_math.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/cpu_util.h"
#include "runtime/cpu/thread_pool.h"

namespace kiln::runtime::cpu {
namespace cpu_reduce {

enum class Kind { Sum, Mean, SumSquare };

// The first reduced axis when the reduced axes are exactly [first, rank); false otherwise (or when unsure).
bool trailing_axes(const ir::Node& n, int input_opset, const std::vector<const Tensor*>& in, int64_t rank,
                   int64_t& first) {
  std::vector<int64_t> raw;
  if (n.opset >= input_opset) {
    if (in.size() > 2) return false;
    if (in.size() > 1 && in[1]) {
      if (in[1]->rank() > 1 || (in[1]->dtype() != DType::Int64 && in[1]->dtype() != DType::Int32)) return false;
      for (int64_t i = 0; i < in[1]->numel(); ++i) raw.push_back(in[1]->at_int64(i));
    }
    if (raw.empty() && n.attr_int("noop_with_empty_axes", 0) != 0) return false;
  } else {
    if (in.size() > 1) return false;
    raw = n.attr_ints("axes", {});
  }
  if (raw.empty()) {
    first = 0;
    return true;
  }
  for (auto& a : raw) {
    if (a < -rank || a >= rank) return false;
    if (a < 0) a += rank;
  }
  std::sort(raw.begin(), raw.end());
  for (size_t i = 0; i < raw.size(); ++i)
    if (raw[i] != rank - static_cast<int64_t>(raw.size()) + static_cast<int64_t>(i)) return false;
  first = raw.front();
  return true;
}

KILN_CPU_CLONES void reduce_rows(const float* x, float* y, int64_t rows, int64_t len, Kind kind) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * len;
    const double s = kind == Kind::SumSquare ? lane_sum(len, [xr](int64_t k) { return xr[k] * xr[k]; })
                                             : lane_sum(len, [xr](int64_t k) { return xr[k]; });
    y[r] = static_cast<float>(kind == Kind::Mean ? s / static_cast<double>(len) : s);
  }
}

void reduce_fast(Kind kind, int input_opset, const ir::Node& n, const std::vector<const Tensor*>& in,
                 std::vector<Tensor>& out) {
  int64_t first = 0;
  if (in.empty() || !in[0] || in[0]->dtype() != DType::Float32 ||
      !trailing_axes(n, input_opset, in, in[0]->rank(), first))
    return run_reference(n, in, out);
  const Tensor& x = *in[0];
  const bool keep = n.attr_int("keepdims", 1) != 0;
  Shape ys;
  int64_t rows = 1, len = 1;
  for (int64_t d = 0; d < x.rank(); ++d) {
    const int64_t v = x.shape()[static_cast<size_t>(d)];
    if (d < first) {
      ys.push_back(v);
      rows *= v;
    } else {
      len *= v;
      if (keep) ys.push_back(1);
    }
  }
  Tensor y = uninit_tensor(DType::Float32, ys);
  const float* px = x.as<float>();
  float* py = y.mutable_as<float>();
  parallel_for(rows, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, len)), [&](int64_t lo, int64_t hi) {
    reduce_rows(px + lo * len, py + lo, hi - lo, len, kind);
  });
  out[0] = y;
}

bool supports_f32(const ir::Node&, const std::vector<const ir::ValueType*>& in) {
  return !in.empty() && in[0] && in[0]->dtype == DType::Float32;
}

}  // namespace cpu_reduce

void register_reduce_tactics() {
  using namespace cpu_reduce;
  // The opset from which the axes come as an input, per op (as in src/ops/reduce.cpp).
  const std::tuple<const char*, Kind, int> ops[] = {
      {"ReduceSum", Kind::Sum, 13}, {"ReduceMean", Kind::Mean, 18}, {"ReduceSumSquare", Kind::SumSquare, 18}};
  for (const auto& [op, kind, input_opset] : ops) {
    const Kind k = kind;
    const int io = input_opset;
    register_cpu_tactic("", op,
                        {"fast",
                         [k, io](const ir::Node& n, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) {
                           reduce_fast(k, io, n, in, out);
                         },
                         supports_f32});
  }
}

}  // namespace kiln::runtime::cpu
