#include "backend/correctness_gate.h"

#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "onnx/model_impl.h"
#include "runtime/cpu/cpu_executor.h"
#include "util/error.h"
#include "util/half.h"
#include "util/log.h"

namespace kiln::backend {
namespace gate_impl {

struct Case {
  std::string label;  // "sample 0 (batch sliced to 2)", "profile 1 max"
  Sample inputs;
};

std::string shapes_str(const Sample& s) {
  std::string out;
  for (const auto& [n, t] : s) out += (out.empty() ? "" : ", ") + n + ":" + shape_str(t.shape());
  return out;
}

bool fits_some_profile(const Engine& e, const Sample& s) {
  std::map<std::string, Shape> shapes;
  for (const auto& [n, t] : s) shapes[n] = t.shape();
  for (const auto& p : e.profiles()) {
    bool ok = true;
    for (const auto& [n, sh] : shapes) ok = ok && p.has(n) && p.at(n).contains(sh);
    if (ok) return true;
  }
  return false;
}

// The sample with every batch axis cut to at most `max_batch`.
Sample slice_batch(const Sample& s, const GraphSpec& spec, int64_t max_batch, bool* changed) {
  Sample out;
  *changed = false;
  for (const auto& [n, t] : s) {
    const TensorSpec* ts = spec.input(n);
    if (ts && !ts->axes.empty() && ts->axes[0] == AxisKind::Batch && t.rank() > 0 && t.shape()[0] > max_batch) {
      Shape sh = t.shape();
      sh[0] = max_batch;
      out[n] = resize_by_tiling(t, sh);
      *changed = true;
    } else {
      out[n] = t;
    }
  }
  return out;
}

int64_t count_nonfinite(const Tensor& t) {
  if (!dtype_is_float(t.dtype())) return 0;
  int64_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += !std::isfinite(t.at_double(i));
  return n;
}

// `t` as `dt` when both are floating point types (an FP16 engine without keep_io_types takes and gives float16).
Tensor float_as(const Tensor& t, DType dt) {
  if (t.dtype() == dt || !dtype_is_float(t.dtype()) || !dtype_is_float(dt)) return t;
  Tensor out(dt, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = t.at_double(i);
    switch (dt) {
      case DType::Float32: out.mutable_as<float>()[i] = static_cast<float>(v); break;
      case DType::Float64: out.mutable_as<double>()[i] = v; break;
      case DType::Float16: out.mutable_as<uint16_t>()[i] = util::float_to_half(static_cast<float>(v)); break;
      case DType::BFloat16: out.mutable_as<uint16_t>()[i] = util::float_to_bf16(static_cast<float>(v)); break;
      default: return t;
    }
  }
  return out;
}

void check_case(const Case& c, const Model& model, ExecutionContext& ctx, const Engine& engine, const Tolerance& tol) {
  TensorMap got;
  TensorMap engine_inputs = c.inputs;
  for (const auto& in : engine.inputs()) {
    auto it = engine_inputs.find(in.name);
    if (it != engine_inputs.end()) it->second = float_as(it->second, in.dtype);
  }
  try {
    got = ctx.run(engine_inputs);
  } catch (const Error& e) {
    KILN_THROW(Correctness, "correctness gate: the engine failed on " << c.label << " (" << shapes_str(c.inputs)
                                                                      << "): " << error_code_name(e.code()) << ": " << e.what());
  }
  TensorMap want;
  try {
    want = runtime::cpu::run_graph_reference(model.impl()->m.graph, c.inputs);
  } catch (const Error& e) {
    throw Error(e.code(), "correctness gate: the oracle (reference kernels) failed on " + c.label + ": " + e.what());
  }
  for (const auto& o : engine.outputs()) {
    auto g = got.find(o.name);
    auto w = want.find(o.name);
    if (g == got.end() || w == want.end())
      KILN_THROW(Correctness, "correctness gate: output '" << o.name << "' is missing on " << c.label);
    const int64_t bad = count_nonfinite(g->second);
    if (bad > 0)
      KILN_THROW(Correctness, "correctness gate: output '" << o.name << "' has " << bad << " NaN/Inf value(s) on " << c.label
                                                           << " (" << shapes_str(c.inputs) << ")");
    // Low-precision outputs are compared in the oracle's dtype, with the engine precision's bound.
    Comparison cmp = compare(float_as(g->second, w->second.dtype()), w->second, tol);
    if (!cmp.passed)
      KILN_THROW(Correctness, "correctness gate: output '" << o.name << "' on " << c.label << " (" << shapes_str(c.inputs)
                                                           << "): max abs error " << cmp.max_abs << ", max rel error "
                                                           << cmp.max_rel << ", bound " << tol.str() << ": " << cmp.reason);
  }
}

}  // namespace gate_impl

Tensor resize_by_tiling(const Tensor& t, const Shape& shape) {
  if (shape.size() != t.shape().size())
    KILN_THROW(InvalidArgument, "cannot resize " << t.type_str() << " to " << shape_str(shape) << ": ranks differ");
  if (t.shape() == shape) return t;
  const Shape& src = t.shape();
  for (size_t a = 0; a < shape.size(); ++a)
    if (src[a] == 0 && shape[a] > 0)
      KILN_THROW(InvalidArgument, "cannot resize " << t.type_str() << " to " << shape_str(shape) << ": axis " << a << " is empty");
  Tensor out(t.dtype(), shape);
  const size_t es = dtype_size(t.dtype());
  const size_t rank = shape.size();
  std::vector<int64_t> src_stride(rank, 1);
  for (size_t a = rank; a-- > 1;) src_stride[a - 1] = src_stride[a] * src[a];
  const auto* in = static_cast<const unsigned char*>(t.data());
  auto* o = static_cast<unsigned char*>(out.mutable_data());
  std::vector<int64_t> idx(rank, 0);
  const int64_t n = out.numel();
  for (int64_t k = 0; k < n; ++k) {
    int64_t off = 0;
    for (size_t a = 0; a < rank; ++a) off += (idx[a] % src[a]) * src_stride[a];
    std::memcpy(o + static_cast<size_t>(k) * es, in + static_cast<size_t>(off) * es, es);
    for (size_t a = rank; a-- > 0;) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

GateSummary run_correctness_gate(const Model& model, const Engine& engine, const GraphSpec& spec,
                                 const std::vector<Sample>& samples, const Tolerance& tol) {
  using namespace gate_impl;
  GateSummary summary;
  std::vector<Case> cases;
  std::set<std::string> seen;  // (source, shapes): the same source cut to the same shapes is the same data
  auto add = [&](const std::string& label, size_t source, Sample in) {
    if (seen.insert(std::to_string(source) + "|" + shapes_str(in)).second) cases.push_back({label, std::move(in)});
  };
  for (size_t s = 0; s < samples.size(); ++s) {
    bool sliced = false;
    Sample small = slice_batch(samples[s], spec, 2, &sliced);
    if (sliced && fits_some_profile(engine, small)) {
      add("sample " + std::to_string(s) + " (batch cut to 2)", s, std::move(small));
    } else if (fits_some_profile(engine, samples[s])) {
      add("sample " + std::to_string(s), s, samples[s]);
    } else {
      summary.notes.push_back("sample " + std::to_string(s) + " (" + shapes_str(samples[s]) + ") fits no profile: skipped");
    }
  }
  if (samples.empty()) summary.notes.push_back("no samples: the profile min/max inputs cannot be made");
  const auto& profiles = engine.profiles();
  for (size_t p = 0; p < profiles.size() && !samples.empty(); ++p) {
    for (int which = 0; which < 2; ++which) {
      Sample in;
      bool ok = true;
      for (const auto& [n, t] : samples[0]) {
        if (!profiles[p].has(n)) continue;
        const ShapeRange& r = profiles[p].at(n);
        try {
          in[n] = resize_by_tiling(t, which == 0 ? r.min : r.max);
        } catch (const Error& e) {
          summary.notes.push_back("profile " + std::to_string(p) + (which ? " max" : " min") + ": " + e.what());
          ok = false;
        }
      }
      if (ok) add("profile " + std::to_string(p) + (which == 0 ? " min" : " max") + " shapes", 0, std::move(in));
    }
  }
  ExecutionContext ctx = engine.create_context();
  for (const auto& c : cases) check_case(c, model, ctx, engine, tol);
  summary.cases = cases.size();
  for (const auto& n : summary.notes) KILN_WARN("correctness gate: " << n);
  return summary;
}

}  // namespace kiln::backend
