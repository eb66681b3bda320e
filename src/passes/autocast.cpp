// Autocast: float32 graph -> strongly typed float16 / bfloat16 graph.
// Matches: every node that reads a float32 value (except inputs whose dtype the op ignores or fixes: Shape/Size
// data, Cast's input, Resize roi/scales, Dropout ratio). Each such node is assigned a precision:
//   float32 when its op type or name is on the user keep-list, when it holds a subgraph (If/Loop: the branches stay
//   as they are), when it is precision-sensitive (autocast_fp32_ops(): normalizations and softmax, whose reductions
//   of squares and exponentials overflow float16; sum-like reductions; Exp/Log/Pow), when it is an elementwise or
//   data-movement op reading a value computed in float32 (type promotion, as in PyTorch autocast: keeps decomposed
//   LayerNorm/Softmax chains such as Sub -> Pow -> ReduceMean -> Sqrt -> Div whole), or when the op's inference
//   refuses the low type;
//   the low type otherwise (Conv, MatMul, Gemm, pooling, activations, ...).
// Rewrites: float32 inputs of a node are brought to its precision by one shared Cast per (value, type); float32
// initializers read in the low type are converted at build time (the Cast kernel's rounding, finite values beyond
// the low type's range clamped to its largest finite value, see saturate()); a Cast(to=float32)
// assigned the low type casts to the low type; asking for the float32 version of a value that autocast itself made
// by casting a float32 value returns that original value (no lossy Cast pair). Graph inputs/outputs stay float32
// (keep_io_types) or become the low type. Valid because only the dtype of float values changes: every op computes
// the same function, and its kernel computes in float and rounds once to the output type, so results differ from
// float32 by rounding alone (the tolerance table's FP16/BF16 rows) as long as values stay inside the low type's
// range; the computations that leave it (sums of squares, exponentials, long sums) are the ones kept in float32.
#include <algorithm>
#include <cmath>
#include <set>

#include "ir/op_registry.h"
#include "passes/pass.h"
#include "util/error.h"
#include "util/half.h"
#include "util/log.h"

namespace kiln::passes {
namespace autocast_detail {

const std::set<std::string>& sensitive_ops() {
  static const std::set<std::string> s = {
      "LayerNormalization", "GroupNormalization", "InstanceNormalization", "RMSNormalization",
      "LpNormalization",    "MeanVarianceNormalization", "Softmax", "LogSoftmax",
      "ReduceSum",          "ReduceMean", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
      "ReduceLogSumExp",    "ReduceProd", "CumSum", "Exp", "Log", "Pow", "Softplus",
      "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"};
  return s;
}

// Elementwise and data-movement ops: computed in float32 when they read a value computed in float32.
const std::set<std::string>& promoting_ops() {
  static const std::set<std::string> s = {
      "Add", "Sub", "Mul", "Div", "Sqrt", "Reciprocal", "Neg", "Abs", "Max", "Min", "Mean", "Sum", "Clip", "Where",
      "Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Concat", "Slice", "Gather",
      "GatherElements", "GatherND", "Expand", "Split", "Tile", "Pad", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf",
      "Gelu", "Elu", "HardSigmoid", "HardSwish", "Mish", "Sign", "Ceil", "Floor", "Round", "Dropout", "Cast",
      "CastLike", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "ReduceMax", "ReduceMin", "ArgMax",
      "ArgMin"};
  return s;
}

// Inputs whose dtype the op ignores (Shape/Size read only the shape; Cast converts anything) or fixes
// (Resize roi/scales, Upsample scales, Dropout ratio): never cast.
bool agnostic_input(const ir::Node& n, size_t i) {
  if (n.domain != "") return false;
  const std::string& op = n.op_type;
  if (op == "Shape" || op == "Size" || op == "Cast") return true;
  if (op == "CastLike") return i == 0;
  if (op == "Resize") return i == 1 || i == 2;
  if (op == "Upsample" || op == "Dropout") return i == 1;
  return false;
}

int64_t onnx_code(DType t) {
  switch (t) {
    case DType::Float32: return 1;
    case DType::Float16: return 10;
    case DType::Float64: return 11;
    case DType::BFloat16: return 16;
    default: break;
  }
  KILN_THROW(Unsupported, "autocast: no cast target for " << dtype_name(t));
}

const char* short_name(DType t) { return t == DType::Float16 ? "fp16" : t == DType::BFloat16 ? "bf16" : "fp32"; }

class Autocast {
 public:
  Autocast(ir::Graph& g, const AutocastOptions& o) : g_(g), o_(o) {
    for (const auto& [v, t] : g.types) orig_[v] = t.dtype;
    for (const auto& [v, t] : g.initializers) orig_[v] = t.dtype();
    for (const auto& n : g.nodes) {
      if (n.domain == "") cast_opset_ = std::max(cast_opset_, n.opset);
      used_.insert(n.name);
      used_.insert(n.inputs.begin(), n.inputs.end());
      used_.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& [v, t] : g.types) used_.insert(v);
    for (const auto& [v, t] : g.initializers) used_.insert(v);
    for (const auto& [v, t] : g.input_defaults) used_.insert(v);
    used_.insert(g.inputs.begin(), g.inputs.end());
    used_.insert(g.outputs.begin(), g.outputs.end());
  }

  bool run() {
    std::set<std::string> keep(o_.keep_fp32.begin(), o_.keep_fp32.end()), matched;
    if (!o_.keep_io_types) lower_inputs();
    size_t low = 0, kept = 0;
    for (const ir::Node& n0 : g_.nodes) {
      ir::Node n = n0;
      if (!relevant(n)) {
        finish(std::move(n), false);
        continue;
      }
      bool fp32 = false;
      for (const std::string& k : {n.op_type, n.name}) {
        if (!keep.count(k)) continue;
        fp32 = true;
        matched.insert(k);
      }
      fp32 = fp32 || has_subgraph(n) || (o_.keep_sensitive_ops && sensitive(n));
      if (!fp32 && n.domain == "" && promoting_ops().count(n.op_type))
        for (size_t i = 0; i < n.inputs.size(); ++i)
          fp32 = fp32 || fp32_computed_.count(n.inputs[i]) != 0;
      if (!fp32 && !low_type_accepted(n)) {
        KILN_DEBUG("autocast: " << n.label() << " does not accept " << dtype_name(o_.low) << "; stays float32");
        fp32 = true;
      }
      const DType target = fp32 ? DType::Float32 : o_.low;
      for (size_t i = 0; i < n.inputs.size(); ++i)
        if (converts(n, i)) n.inputs[i] = as_type(n.inputs[i], target, n);
      if (n.op_type == "Cast" && !fp32 && n.attr_int("to", 0) == onnx_code(DType::Float32))
        n.attrs["to"] = onnx_code(o_.low);
      (fp32 ? kept : low)++;
      finish(std::move(n), fp32);
    }
    fix_outputs();
    for (const auto& k : keep)
      if (!matched.count(k)) KILN_WARN("autocast: keep-list entry '" << k << "' matches no op type or node name");
    g_.nodes = std::move(out_);
    KILN_INFO("autocast: " << low << " node(s) in " << dtype_name(o_.low) << ", " << kept << " kept in float32, "
                           << casts_ << " Cast(s) inserted, " << converted_ << " initializer(s) converted");
    return low + casts_ + converted_ + lowered_io_ > 0;
  }

 private:
  std::string fresh(const std::string& prefix) {
    std::string s = prefix;
    for (int i = 1; used_.count(s); ++i) s = prefix + "_" + std::to_string(i);
    used_.insert(s);
    return s;
  }

  // A precision-sensitive op that must run in float32. With low_precision_norms, LayerNormalization / Softmax /
  // LogSoftmax follow their input instead: float32 when X was computed in float32, else the low type (their CUDA
  // kernels accumulate in float, so only the input and output roundings remain; docs/precision.md).
  bool sensitive(const ir::Node& n) const {
    if (n.domain != "" || !sensitive_ops().count(n.op_type)) return false;
    if (!o_.low_precision_norms || n.inputs.empty()) return true;
    const std::string& op = n.op_type;
    if (op != "LayerNormalization" && op != "Softmax" && op != "LogSoftmax") return true;
    return fp32_computed_.count(n.inputs[0]) != 0;
  }

  DType dtype_of(const std::string& v) const {
    auto c = g_.initializers.find(v);
    if (c != g_.initializers.end()) return c->second.dtype();
    const ir::ValueType* t = g_.type_of(v);
    if (!t) KILN_THROW(InvalidModel, "autocast: value '" << v << "' has no known type");
    return t->dtype;
  }
  bool was_fp32(const std::string& v) const {
    auto it = orig_.find(v);
    return it != orig_.end() && it->second == DType::Float32;
  }
  // Input i is a float32 value of the original graph that this op's precision applies to.
  bool converts(const ir::Node& n, size_t i) const {
    return !n.inputs[i].empty() && !agnostic_input(n, i) && was_fp32(n.inputs[i]);
  }
  bool relevant(const ir::Node& n) const {
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (converts(n, i)) return true;
    if (n.domain == "" && n.op_type == "Cast" && n.has_input(0) && dtype_is_float(dtype_of(n.inputs[0])))
      return n.attr_int("to", 0) == onnx_code(DType::Float32);
    return false;
  }

  std::vector<ir::ValueType> infer(const ir::Node& n, const std::vector<DType>* override_dtypes) const {
    const ir::OpDef* def = ir::OpRegistry::instance().find(n.domain, n.op_type, n.opset);
    if (!def) KILN_THROW(Unsupported, "autocast: no kernel for " << n.label());
    std::vector<ir::ValueType> types;
    types.reserve(n.inputs.size());
    ir::InferContext ctx{n, {}, {}};
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& in = n.inputs[i];
      if (in.empty()) {
        types.emplace_back();
        continue;
      }
      auto c = g_.initializers.find(in);
      const ir::ValueType* t = g_.type_of(in);
      if (c != g_.initializers.end())
        types.push_back(ir::ValueType::of(c->second.dtype(), c->second.shape()));
      else if (t)
        types.push_back(*t);
      else
        KILN_THROW(InvalidModel, "autocast: " << n.label() << ": input '" << in << "' has no known type");
      if (override_dtypes) types.back().dtype = (*override_dtypes)[i];
    }
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      ctx.in.push_back(n.inputs[i].empty() ? nullptr : &types[i]);
      auto c = n.inputs[i].empty() ? g_.initializers.end() : g_.initializers.find(n.inputs[i]);
      bool same = c != g_.initializers.end() && c->second.dtype() == types[i].dtype;
      ctx.values.push_back(same ? &c->second : nullptr);
    }
    return def->infer(ctx);
  }

  // Whether the op's type inference accepts the node with its float32 inputs in the low type.
  bool low_type_accepted(const ir::Node& n) const {
    std::vector<DType> dts;
    for (size_t i = 0; i < n.inputs.size(); ++i)
      dts.push_back(n.inputs[i].empty() ? DType::Float32 : converts(n, i) ? o_.low : dtype_of(n.inputs[i]));
    ir::Node probe = n;
    if (probe.op_type == "Cast" && probe.attr_int("to", 0) == onnx_code(DType::Float32))
      probe.attrs["to"] = onnx_code(o_.low);
    try {
      infer(probe, &dts);
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  // Finite float32 weights beyond the low type's range become its largest finite value, not Inf (as TensorRT and
  // onnxconverter-common's float16 converter clamp weights). Exporters write masks as Mul(1 - mask, float32 min)
  // (Hugging Face T5): float32 min cast to float16 / bfloat16 is -Inf, and 0 * -Inf is NaN for every unmasked
  // position; -65504 / -3.39e38 keep the product 0 and still mask. Only autocast's own conversions saturate: a
  // model's Cast node keeps ONNX's IEEE rounding.
  void saturate(const std::string& v, const Tensor& src, Tensor& dst) {
    if (src.dtype() != DType::Float32 || (dst.dtype() != DType::Float16 && dst.dtype() != DType::BFloat16)) return;
    const bool half = dst.dtype() == DType::Float16;
    const uint16_t max_bits = half ? 0x7BFF : 0x7F7F;  // 65504, 3.3895e38
    const float* in = src.as<float>();
    uint16_t* out = dst.mutable_as<uint16_t>();
    int64_t clamped = 0;
    for (int64_t i = 0; i < src.numel(); ++i) {
      const float back = half ? util::half_to_float(out[i]) : util::bf16_to_float(out[i]);
      if (std::isinf(back) && std::isfinite(in[i])) {
        out[i] = static_cast<uint16_t>(max_bits | (in[i] < 0 ? 0x8000 : 0));
        ++clamped;
      }
    }
    if (clamped)
      KILN_WARN("autocast: initializer '" << v << "': " << clamped << " finite value(s) beyond " << dtype_name(dst.dtype())
                                          << "'s range clamped to its largest finite value");
  }

  // The name of `v` converted to `dt`: v itself, a cached conversion, the float32 value autocast cast `v` from,
  // a converted initializer, or the output of a new Cast node emitted before `consumer`.
  std::string as_type(const std::string& v, DType dt, const ir::Node& consumer) {
    const DType cur = dtype_of(v);
    if (cur == dt) return v;
    auto key = std::make_pair(v, dt);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    std::string name = fresh(v + "_" + short_name(dt));
    ir::Node cast;
    cast.name = fresh("autocast_" + v + "_" + short_name(dt));
    cast.op_type = "Cast";
    cast.opset = cast_opset_;
    cast.inputs = {v};
    cast.outputs = {name};
    cast.attrs["to"] = onnx_code(dt);
    auto c = g_.initializers.find(v);
    if (c != g_.initializers.end()) {
      const ir::OpDef* def = ir::OpRegistry::instance().find("", "Cast", cast_opset_);
      if (!def || !def->reference) KILN_THROW(Unsupported, "autocast: no Cast kernel");
      std::vector<Tensor> outs(1);
      def->reference(cast, {&c->second}, outs);
      saturate(v, c->second, outs[0]);
      g_.initializers[name] = std::move(outs[0]);
      ++converted_;
    } else {
      const ir::ValueType* t = g_.type_of(v);
      ir::ValueType nt = t ? *t : ir::ValueType::unknown(dt);
      nt.dtype = dt;
      g_.types[name] = nt;
      KILN_DEBUG("autocast: Cast '" << v << "' to " << dtype_name(dt) << " for " << consumer.label());
      out_.push_back(std::move(cast));
      ++casts_;
    }
    cache_[key] = name;
    cache_[std::make_pair(name, cur)] = v;  // back to the original: no lossy pair
    return name;
  }

  void finish(ir::Node n, bool fp32) {
    std::vector<ir::ValueType> outs = infer(n, nullptr);
    for (size_t i = 0; i < n.outputs.size() && i < outs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      g_.types[n.outputs[i]] = outs[i];
      if (fp32 && outs[i].dtype == DType::Float32) fp32_computed_.insert(n.outputs[i]);
    }
    out_.push_back(std::move(n));
  }

  void lower_inputs() {
    for (const auto& in : g_.inputs) {
      if (!was_fp32(in)) continue;
      g_.types[in].dtype = o_.low;
      auto d = g_.input_defaults.find(in);
      if (d != g_.input_defaults.end()) {
        ir::Node cast;
        cast.name = "autocast_default";
        cast.op_type = "Cast";
        cast.opset = cast_opset_;
        cast.inputs = {in};
        cast.outputs = {in};
        cast.attrs["to"] = onnx_code(o_.low);
        std::vector<Tensor> outs(1);
        ir::OpRegistry::instance().find("", "Cast", cast_opset_)->reference(cast, {&d->second}, outs);
        d->second = std::move(outs[0]);
      }
      ++lowered_io_;
    }
  }

  // Graph outputs that were float32 get the io dtype: the producer's value is renamed and a final Cast restores
  // the output's name. Outputs that are graph inputs keep the input's (same policy) dtype.
  void fix_outputs() {
    const std::set<std::string> inputs(g_.inputs.begin(), g_.inputs.end());
    std::set<std::string> done;
    for (const std::string& o : g_.outputs) {
      if (!done.insert(o).second || inputs.count(o) || !was_fp32(o)) continue;
      const DType want = o_.keep_io_types ? DType::Float32 : o_.low;
      const DType cur = dtype_of(o);
      if (cur == want) continue;
      std::string pre = fresh(o + "_" + short_name(cur));
      for (ir::Node& n : out_) {
        for (auto& v : n.inputs)
          if (v == o) v = pre;
        for (auto& v : n.outputs)
          if (v == o) v = pre;
      }
      if (auto c = g_.initializers.find(o); c != g_.initializers.end()) {
        g_.initializers[pre] = c->second;
        g_.initializers.erase(o);
      }
      if (auto t = g_.types.find(o); t != g_.types.end()) {
        g_.types[pre] = t->second;
        t->second.dtype = want;
      }
      ir::Node cast;
      cast.name = fresh("autocast_output_" + o);
      cast.op_type = "Cast";
      cast.opset = cast_opset_;
      cast.inputs = {pre};
      cast.outputs = {o};
      cast.attrs["to"] = onnx_code(want);
      out_.push_back(std::move(cast));
      ++casts_;
    }
  }

  ir::Graph& g_;
  const AutocastOptions& o_;
  std::map<std::string, DType> orig_;
  std::set<std::string> used_;  // node and value names, for fresh()
  std::set<std::string> fp32_computed_;  // outputs of nodes computed in float32
  std::map<std::pair<std::string, DType>, std::string> cache_;
  std::vector<ir::Node> out_;
  int64_t cast_opset_ = 13;
  size_t casts_ = 0, converted_ = 0, lowered_io_ = 0;
};

}  // namespace autocast_detail

const std::vector<std::string>& autocast_fp32_ops() {
  static const std::vector<std::string> v(autocast_detail::sensitive_ops().begin(),
                                          autocast_detail::sensitive_ops().end());
  return v;
}

bool autocast(ir::Graph& g, const AutocastOptions& options) {
  if (options.low != DType::Float16 && options.low != DType::BFloat16)
    KILN_THROW(InvalidArgument, "autocast: target type must be float16 or bfloat16, got " << dtype_name(options.low));
  ir::register_all_ops();
  ir::infer_types(g);
  return autocast_detail::Autocast(g, options).run();
}

}  // namespace kiln::passes
