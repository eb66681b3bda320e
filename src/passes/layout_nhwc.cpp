// Channels-last layout for float16 / bfloat16 convolution chains (CUDA engines; docs/passes.md, "layout_nhwc").
// Matches: regions grown forwards (in topological order) from 2-D Conv nodes whose input is float16 / bfloat16 with
// a static channel count, whose weights (and bias) are initializers and whose pads cuDNN can take (symmetric, or an
// asymmetric end pad that does not change the output size); a node joins the region when one of its inputs is a
// region value and it is one of:
//   - such a Conv (also one fed from outside the region),
//   - an elementwise op (ops/fused_elementwise.h: fusable_op) or kiln.FusedElementwise whose output has rank 4 and
//     each input is a rank-4 value whose dims are the output's or 1 (a region value, or an outside value that gets
//     an entry transpose; a squeeze-excite scale [N, C, 1, 1] qualifies), a one-element initializer or a per-channel
//     initializer ([C, 1, 1] or [1, C, 1, 1]),
//   - MaxPool (one output) / AveragePool of rank 4, Concat of rank-4 values (the axis renumbered),
//   - GlobalAveragePool / GlobalMaxPool, or ReduceMean / ReduceMax / ReduceMin / ReduceSum over exactly the two
//     spatial axes (axes an attribute or an initializer).
// Rewrites: region nodes to their channels-last forms (kiln.Conv with KRSC weights re-laid at build time, kiln.Pool,
// the elementwise ops on NHWC values with per-channel constants re-laid to [1, 1, 1, C], the reductions over axes
// [1, 2]); one Transpose NCHW -> NHWC per outside value a region node reads; one Transpose NHWC -> NCHW (a Reshape
// when both spatial dims are 1) per region value read outside the region or being a graph output, which keeps its
// name. Then conv epilogues fold into kiln.Conv: Conv -> Relu, Conv -> Add(other region value of the same shape)
// [-> Relu], when the Conv's (and the Add's) output has no other reader and is no graph output. A group-1 conv with
// fewer than 8 input channels (an image stem) reads its input zero-padded to 8 channels with zero weights for the
// extra channels, which cuDNN's NHWC tensor-core kernels need: an outside input enters through one kiln.ToNhwc
// (transpose and zero channels in one kernel), a region value through a Pad node (KILN_NHWC_PAD_CHANNELS=0: no
// padding; =4: pad to 4 channels instead of 8).
// Valid because every rewritten op computes the same values in a permuted order (the elementwise ops and reductions
// do not depend on the layout once constants are re-laid and axes renumbered), the transposes restore NCHW wherever
// a value is seen outside, and the folded epilogue is evaluated in the same order (conv, + bias, + residual, ReLU;
// the reference kernel rounds after each as the unfused ops did). Returns whether it changed the graph.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "ir/op_registry.h"
#include "ops/common.h"
#include "ops/fused_elementwise.h"
#include "ops/nhwc.h"
#include "ops/spatial.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace layout_nhwc_detail {

namespace nhwc = ops::nhwc;

bool low_float(DType t) { return t == DType::Float16 || t == DType::BFloat16; }

bool same_dims(const ir::ValueType* a, const ir::ValueType* b) {
  if (!a || !b || !a->has_rank || !b->has_rank || a->dims.size() != b->dims.size()) return false;
  for (size_t d = 0; d < a->dims.size(); ++d)
    if (!ops::same_dim(a->dims[d], b->dims[d])) return false;
  return true;
}

// A rank-4 value whose dims equal the output's or are 1 (a squeeze-excite scale [N, C, 1, 1] against [N, C, H, W]):
// permuted alike, it broadcasts alike.
bool broadcasts_to(const ir::ValueType* t, const ir::ValueType& out) {
  if (!t || !t->has_rank || t->dims.size() != 4) return false;
  for (size_t d = 0; d < 4; ++d)
    if (!ops::same_dim(t->dims[d], out.dims[d]) && !ops::same_dim(t->dims[d], ops::static_dim(1))) return false;
  return true;
}

bool is_reduce(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "ReduceMean" || n.op_type == "ReduceMax" || n.op_type == "ReduceMin" ||
                              n.op_type == "ReduceSum");
}
// Reduce ops whose axes are an input from this opset on (ReduceSum: 13).
int64_t axes_input_opset(const std::string& op) { return op == "ReduceSum" ? 13 : 18; }

class Layout {
 public:
  explicit Layout(ir::Graph& g) : g_(g) {
    for (const auto& n : g.nodes) {
      taken_.insert(n.name);
      for (const auto& o : n.outputs) taken_.insert(o);
    }
    for (const auto& [k, v] : g.initializers) taken_.insert(k);
    for (const auto& i : g.inputs) taken_.insert(i);
    for (const auto& o : g.outputs) outputs_.insert(o);
  }

  bool run() {
    find_region();
    if (region_.empty()) return false;
    rewrite();
    const size_t folded = fold_epilogues();
    g_.topo_sort();
    KILN_DEBUG("layout_nhwc: " << region_.size() << " nodes channels-last, " << entries_ << " entry and " << exits_
                               << " exit transposes, " << folded << " epilogues folded into kiln.Conv, "
                               << padded_convs_ << " convs with channels padded to " << pad_to_);
    return true;
  }

 private:
  ir::Graph& g_;
  std::set<std::string> taken_, outputs_;
  std::set<size_t> region_;
  std::set<std::string> region_values_;      // original names of values region nodes produce in NHWC
  std::map<std::string, std::string> nhwc_;  // original value -> its NHWC name
  std::map<std::string, std::string> relaid_;  // initializer -> its re-laid copy
  std::map<std::string, std::string> padded_;  // NHWC value -> its channel-padded copy
  std::map<std::string, std::string> padded_entry_;  // outside NCHW value -> its kiln.ToNhwc (padded) output
  const int64_t pad_to_ = pad_to_from_env();
  size_t padded_convs_ = 0;
  size_t entries_ = 0, exits_ = 0;

  const ir::ValueType* type(const std::string& v) const { return g_.type_of(v); }
  std::string fresh(const std::string& prefix) {
    std::string s = prefix;
    for (int i = 1; taken_.count(s); ++i) s = prefix + "_" + std::to_string(i);
    taken_.insert(s);
    return s;
  }
  bool is_region_value(const std::string& v) const { return region_values_.count(v) != 0; }
  const Tensor* init(const std::string& v) const {
    auto it = g_.initializers.find(v);
    return it == g_.initializers.end() ? nullptr : &it->second;
  }

  // ---- matching -----------------------------------------------------------------------------------------------------
  bool conv_ok(const ir::Node& n) const {
    if (!n.domain.empty() || n.op_type != "Conv" || n.outputs.size() != 1 || !n.has_input(0) || !n.has_input(1))
      return false;
    const ir::ValueType* x = type(n.inputs[0]);
    const Tensor* w = init(n.inputs[1]);
    if (!x || !x->has_rank || x->dims.size() != 4 || !low_float(x->dtype) || !x->dims[1].is_static()) return false;
    if (!w || w->rank() != 4 || w->dtype() != x->dtype) return false;
    if (n.has_input(2) && !init(n.inputs[2])) return false;
    try {  // cuDNN takes symmetric pads: the begin pad on both sides must give the same output size
      const std::vector<int64_t> k = {w->shape()[2], w->shape()[3]};
      const ops::SpatialAttrs a = ops::read_spatial_attrs(n, 2, k, false, true);
      for (size_t i = 0; i < 2; ++i) {
        const int64_t in = x->dims[2 + i].is_static() ? x->dims[2 + i].value : -1;
        if (a.auto_pad == "VALID" || (a.auto_pad == "NOTSET" && a.pads[i] == a.pads[i + 2])) continue;
        if (in < 0) return false;
        const ops::SpatialDim sd = ops::resolve_spatial_dim(n, a, i, in);
        const int64_t eff = a.dilations[i] * (k[i] - 1) + 1;
        const int64_t num = in + 2 * sd.pad_begin - eff;
        if (num < 0 || num / a.strides[i] + 1 != sd.out) return false;
      }
    } catch (const Error&) {
      return false;
    }
    return true;
  }

  // A constant operand of a region elementwise op: one element, or one value per channel of `out`.
  bool constant_ok(const Tensor& t, const ir::ValueType& out) const {
    if (t.numel() == 1) return true;
    const Shape& s = t.shape();
    if (!out.dims[1].is_static() || t.numel() != out.dims[1].value) return false;
    return (s.size() == 3 && s[1] == 1 && s[2] == 1) || (s.size() == 4 && s[0] == 1 && s[2] == 1 && s[3] == 1);
  }

  bool elementwise_ok(const ir::Node& n) const {
    const bool fused = n.domain == ops::fused::kDomain && n.op_type == ops::fused::kOpType;
    if (!fused && !(n.domain.empty() && ops::fused::fusable_op(n.op_type))) return false;
    if (n.outputs.size() != 1) return false;
    const ir::ValueType* out = type(n.outputs[0]);
    if (!out || !out->has_rank || out->dims.size() != 4) return false;
    bool reads_region = false;
    for (const auto& in : n.inputs) {
      if (in.empty()) continue;
      if (const Tensor* t = init(in)) {
        if (!constant_ok(*t, *out)) return false;
        continue;
      }
      if (!broadcasts_to(type(in), *out)) return false;
      reads_region |= is_region_value(in);
    }
    return reads_region;
  }

  // Concat of rank-4 values, at least one from the region (any axis: renumbered).
  bool concat_ok(const ir::Node& n) const {
    if (!n.domain.empty() || n.op_type != "Concat" || n.outputs.size() != 1 || n.inputs.empty()) return false;
    bool reads_region = false;
    for (const auto& in : n.inputs) {
      const ir::ValueType* t = type(in);
      if (in.empty() || init(in) || !t || !t->has_rank || t->dims.size() != 4) return false;
      reads_region |= is_region_value(in);
    }
    const int64_t axis = n.attr_int("axis", 1);
    return reads_region && axis >= -4 && axis < 4;
  }

  bool pool_ok(const ir::Node& n) const {
    if (!n.domain.empty() || (n.op_type != "MaxPool" && n.op_type != "AveragePool")) return false;
    if (n.inputs.size() != 1 || !is_region_value(n.inputs[0])) return false;
    if (n.outputs.size() != 1 && !(n.outputs.size() == 2 && n.outputs[1].empty())) return false;
    if (n.attr_int("storage_order", 0) != 0) return false;
    const ir::ValueType* x = type(n.inputs[0]);
    return x && x->has_rank && x->dims.size() == 4;
  }

  // The reduction axes of a Reduce* node ({} when they are not known at build time).
  std::vector<int64_t> reduce_axes(const ir::Node& n) const {
    std::vector<int64_t> axes;
    if (n.opset >= axes_input_opset(n.op_type)) {
      if (!n.has_input(1)) return {};
      const Tensor* t = init(n.inputs[1]);
      if (!t) return {};
      for (int64_t i = 0; i < t->numel(); ++i) axes.push_back(t->at_int64(i));
    } else {
      axes = n.attr_ints("axes", {});
    }
    for (auto& a : axes) a = a < 0 ? a + 4 : a;
    std::sort(axes.begin(), axes.end());
    return axes;
  }
  bool reduce_ok(const ir::Node& n) const {
    if (n.domain.empty() && (n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool"))
      return n.inputs.size() == 1 && is_region_value(n.inputs[0]);
    if (!is_reduce(n) || n.inputs.empty() || !is_region_value(n.inputs[0])) return false;
    return reduce_axes(n) == std::vector<int64_t>{2, 3};
  }

  void find_region() {
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      bool in = conv_ok(n) || elementwise_ok(n) || pool_ok(n) || concat_ok(n);
      bool keeps_layout = in;
      if (!in && reduce_ok(n)) {
        in = true;  // keepdims = 0 gives [N, C] in either layout: a plain value
        keeps_layout = n.attr_int("keepdims", 1) != 0 || n.op_type.rfind("Global", 0) == 0;
      }
      if (!in) continue;
      region_.insert(i);
      if (keeps_layout) region_values_.insert(n.outputs[0]);
    }
  }

  // ---- rewriting ----------------------------------------------------------------------------------------------------
  // The NHWC name of an activation input: the region value's, or an entry transpose of an outside value.
  std::string activation_in(const std::string& v, std::vector<ir::Node>& out) {
    auto it = nhwc_.find(v);
    if (it != nhwc_.end()) return it->second;
    ir::Node t;
    t.name = fresh(v + "_to_nhwc");
    t.op_type = "Transpose", t.opset = 13;
    t.inputs = {v};
    t.outputs = {fresh(v + "_nhwc")};
    t.attrs["perm"] = std::vector<int64_t>{0, 2, 3, 1};
    if (const ir::ValueType* vt = type(v)) g_.types[t.outputs[0]] = permuted(*vt);
    out.push_back(t);
    ++entries_;
    return nhwc_[v] = t.outputs[0];
  }
  static ir::ValueType permuted(const ir::ValueType& t) {
    ir::ValueType r = t;
    if (t.has_rank && t.dims.size() == 4) r.dims = {t.dims[0], t.dims[2], t.dims[3], t.dims[1]};
    return r;
  }

  // A per-channel initializer re-laid to [1, 1, 1, C] (one-element ones stay).
  std::string constant_in(const std::string& v) {
    const Tensor& t = *init(v);
    if (t.numel() == 1) return v;
    auto it = relaid_.find(v);
    if (it != relaid_.end()) return it->second;
    const std::string name = fresh(v + "_nhwc");
    g_.initializers[name] = t.reshaped({1, 1, 1, t.numel()});
    return relaid_[v] = name;
  }

  std::string krsc_weights(const std::string& v) {
    const std::string key = v + "\x01krsc";
    auto it = relaid_.find(key);
    if (it != relaid_.end()) return it->second;
    const Tensor& w = *init(v);
    const Shape& s = w.shape();  // [M, C/g, kH, kW] -> [M, kH, kW, C/g]
    const std::vector<int64_t> st = ops::contiguous_strides(s);
    const std::string name = fresh(v + "_krsc");
    g_.initializers[name] = ops::strided_copy(w, 0, {st[0], st[2], st[3], st[1]}, {s[0], s[2], s[3], s[1]});
    return relaid_[key] = name;
  }

  // Channel padding of a narrow group-1 conv input (an image's 3 channels): cuDNN's NHWC tensor-core kernels want
  // 16-byte channel vectors, so the input gets zero channels up to pad_to_ (8 by default) and the weights zero input
  // channels; the zeros add nothing. KILN_NHWC_PAD_CHANNELS=0 turns it off, =4 pads to 4 channels (8 bytes in
  // float16: cuDNN may still take tensor cores for the stem, and the entry writes half the bytes).
  static int64_t pad_to_from_env() {
    const char* e = std::getenv("KILN_NHWC_PAD_CHANNELS");
    if (!e || !*e) return 8;
    const std::string v(e);
    if (v == "0" || v == "4" || v == "8") return std::stoll(v);
    KILN_WARN("KILN_NHWC_PAD_CHANNELS=" << v << " is not 0, 4 or 8; padding to 8 channels");
    return 8;
  }
  // 0 when no padding applies.
  int64_t padded_channels(const ir::Node& n, const Tensor& w) const {
    const int64_t c = w.shape()[1];
    return pad_to_ > 0 && n.attr_int("group", 1) == 1 && c < pad_to_ ? pad_to_ : 0;
  }
  // An outside NCHW value `v` entering the region zero-padded to `to` channels: one kiln.ToNhwc.
  std::string padded_entry(const std::string& v, int64_t to, std::vector<ir::Node>& out) {
    auto it = padded_entry_.find(v);
    if (it != padded_entry_.end()) return it->second;
    ir::Node t;
    t.name = fresh(v + "_to_nhwc_pad" + std::to_string(to));
    t.domain = nhwc::kDomain, t.op_type = nhwc::kToNhwc, t.opset = 1;
    t.attrs["channels"] = to;
    t.inputs = {v};
    t.outputs = {fresh(v + "_nhwc_pad" + std::to_string(to))};
    if (const ir::ValueType* vt = type(v)) {
      ir::ValueType pt = permuted(*vt);
      if (pt.has_rank && pt.dims.size() == 4) pt.dims[3] = ops::static_dim(to);
      g_.types[t.outputs[0]] = pt;
    }
    out.push_back(t);
    ++entries_;
    return padded_entry_[v] = t.outputs[0];
  }
  std::string pad_channels(const std::string& v_nhwc, int64_t c, std::vector<ir::Node>& out) {
    auto it = padded_.find(v_nhwc);
    if (it != padded_.end()) return it->second;
    ir::Node p;
    p.name = fresh(v_nhwc + "_pad_channels");
    p.op_type = "Pad", p.opset = 13;
    const std::string pads = fresh(v_nhwc + "_channel_pads");
    g_.initializers[pads] = Tensor::from_vector<int64_t>(DType::Int64, {8}, {0, 0, 0, 0, 0, 0, 0, pad_to_ - c});
    p.inputs = {v_nhwc, pads};
    p.outputs = {fresh(v_nhwc + "_pad" + std::to_string(pad_to_))};
    out.push_back(p);
    return padded_[v_nhwc] = p.outputs[0];
  }
  // KRSC weights with zero input channels up to `to`.
  std::string padded_weights(const std::string& krsc, int64_t to) {
    const Tensor& w = g_.initializers.at(krsc);
    const Shape& s = w.shape();
    const std::string name = fresh(krsc + "_pad" + std::to_string(to));
    Tensor p(w.dtype(), {s[0], s[1], s[2], to});
    std::fill_n(static_cast<char*>(p.mutable_data()), p.nbytes(), 0);
    const size_t es = dtype_size(w.dtype());
    for (int64_t r = 0; r < s[0] * s[1] * s[2]; ++r)
      std::memcpy(static_cast<char*>(p.mutable_data()) + static_cast<size_t>(r * to) * es,
                  static_cast<const char*>(w.data()) + static_cast<size_t>(r * s[3]) * es, static_cast<size_t>(s[3]) * es);
    g_.initializers[name] = p;
    return name;
  }

  std::string zero_bias(DType dt, int64_t m) {
    const std::string name = fresh("nhwc_zero_bias");
    Tensor b(dt, {m});
    std::fill_n(static_cast<char*>(b.mutable_data()), b.nbytes(), 0);
    g_.initializers[name] = b;
    return name;
  }

  ir::Node rewrite_node(const ir::Node& n, std::vector<ir::Node>& out) {
    ir::Node r = n;
    r.tactic.clear();
    if (n.op_type == "Conv" && n.domain.empty()) {
      r.domain = nhwc::kDomain, r.op_type = nhwc::kConv, r.opset = 1;
      r.attrs["layout"] = std::string(nhwc::kLayout);
      const Tensor& w = *init(n.inputs[1]);
      const int64_t to = padded_channels(n, w);
      std::string x;
      if (to && !nhwc_.count(n.inputs[0]))
        x = padded_entry(n.inputs[0], to, out);  // an outside value: transpose and pad in one kernel
      else if (to)
        x = pad_channels(activation_in(n.inputs[0], out), w.shape()[1], out);
      else
        x = activation_in(n.inputs[0], out);
      r.inputs = {x, krsc_weights(n.inputs[1]), n.has_input(2) ? n.inputs[2] : zero_bias(w.dtype(), w.shape()[0])};
      if (to) {
        r.inputs[1] = padded_weights(r.inputs[1], to);
        ++padded_convs_;
      }
    } else if (n.domain.empty() && (n.op_type == "MaxPool" || n.op_type == "AveragePool")) {
      r.domain = nhwc::kDomain, r.op_type = nhwc::kPool, r.opset = 1;
      r.attrs["layout"] = std::string(nhwc::kLayout);
      r.attrs["op"] = n.op_type;
      r.attrs["onnx_opset"] = n.opset;
      r.inputs = {activation_in(n.inputs[0], out)};
      r.outputs = {n.outputs[0]};
    } else if (n.domain.empty() && (n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool")) {
      r.op_type = n.op_type == "GlobalAveragePool" ? "ReduceMean" : "ReduceMax", r.opset = 13;
      r.attrs = {{"axes", std::vector<int64_t>{1, 2}}, {"keepdims", int64_t(1)}};
      r.inputs = {activation_in(n.inputs[0], out)};
    } else if (is_reduce(n)) {
      r.inputs[0] = activation_in(n.inputs[0], out);
      if (n.opset >= axes_input_opset(n.op_type)) {
        const std::string axes = fresh(n.name + "_axes_nhwc");
        g_.initializers[axes] = Tensor::from_vector<int64_t>(DType::Int64, {2}, {1, 2});
        r.inputs[1] = axes;
      } else {
        r.attrs["axes"] = std::vector<int64_t>{1, 2};
      }
    } else if (n.domain.empty() && n.op_type == "Concat") {
      static constexpr int64_t kNhwcAxis[4] = {0, 3, 1, 2};  // NCHW axis -> NHWC axis
      const int64_t axis = n.attr_int("axis", 1);
      r.attrs["axis"] = kNhwcAxis[axis < 0 ? axis + 4 : axis];
      for (auto& in : r.inputs) in = activation_in(in, out);
    } else {  // elementwise
      for (auto& in : r.inputs) {
        if (in.empty()) continue;
        in = init(in) ? constant_in(in) : activation_in(in, out);
      }
    }
    return r;
  }

  // The NCHW value `v` from its NHWC form (a Reshape when both spatial dims are 1: the same bytes).
  ir::Node exit_node(const std::string& v) {
    const std::string& src = nhwc_.at(v);
    const ir::ValueType* t = type(v);
    ir::Node e;
    e.name = fresh(v + "_to_nchw");
    e.outputs = {v};
    if (t && t->has_rank && t->dims.size() == 4 && t->dims[1].is_static() && ops::same_dim(t->dims[2], ops::static_dim(1)) &&
        ops::same_dim(t->dims[3], ops::static_dim(1))) {
      const std::string shape = fresh(v + "_nchw_shape");
      g_.initializers[shape] = Tensor::from_vector<int64_t>(DType::Int64, {4}, {0, t->dims[1].value, 1, 1});
      e.op_type = "Reshape", e.opset = 14;
      e.inputs = {src, shape};
    } else {
      e.op_type = "Transpose", e.opset = 13;
      e.inputs = {src};
      e.attrs["perm"] = std::vector<int64_t>{0, 3, 1, 2};
    }
    ++exits_;
    return e;
  }

  void rewrite() {
    // Values read outside the region (by non-region nodes or as graph outputs) need an exit.
    std::set<std::string> read_outside(outputs_.begin(), outputs_.end());
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      if (!region_.count(i))
        for (const auto& in : g_.nodes[i].inputs) read_outside.insert(in);
    std::vector<ir::Node> out;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      ir::Node& n = g_.nodes[i];
      if (!region_.count(i)) {
        out.push_back(std::move(n));
        continue;
      }
      ir::Node r = rewrite_node(n, out);
      const std::string v = n.outputs[0];
      if (region_values_.count(v)) {
        const std::string name = fresh(v + "_nhwc");
        nhwc_[v] = name;
        r.outputs[0] = name;
        if (const ir::ValueType* t = type(v)) g_.types[name] = permuted(*t);
        out.push_back(std::move(r));
        if (read_outside.count(v)) out.push_back(exit_node(v));
        else g_.types.erase(v);  // the NCHW value no longer exists
      } else {
        out.push_back(std::move(r));  // a keepdims = 0 reduction: [N, C] as before
      }
    }
    g_.nodes = std::move(out);
  }

  // ---- epilogue folding ---------------------------------------------------------------------------------------------
  size_t fold_epilogues() {
    size_t folded = 0;
    for (bool again = true; again;) {
      again = false;
      const auto consumers = g_.consumers();
      for (size_t i = 0; i < g_.nodes.size() && !again; ++i) {
        ir::Node& c = g_.nodes[i];
        if (!nhwc::is_conv(c) || !c.attr_string("activation", "").empty()) continue;
        const std::string y = c.outputs[0];
        auto it = consumers.find(y);
        if (outputs_.count(y) || it == consumers.end() || it->second.size() != 1) continue;
        const size_t ui = it->second.front();
        ir::Node& u = g_.nodes[ui];
        if (!u.domain.empty() || u.outputs.size() != 1) continue;
        if (u.op_type == "Relu" && u.inputs.size() == 1) {
          c.attrs["activation"] = std::string("Relu");
        } else if (u.op_type == "Add" && u.inputs.size() == 2 && !c.has_input(3) && u.inputs[0] != u.inputs[1]) {
          const std::string z = u.inputs[0] == y ? u.inputs[1] : u.inputs[0];
          if (init(z) || !same_dims(type(z), type(y)) || type(z)->dtype != type(y)->dtype) continue;
          c.inputs.resize(4);
          c.inputs[3] = z;
        } else {
          continue;
        }
        c.outputs = u.outputs;
        g_.types.erase(y);
        g_.nodes.erase(g_.nodes.begin() + static_cast<std::ptrdiff_t>(ui));
        ++folded;
        again = true;  // indices moved: recompute consumers (a Conv -> Add -> Relu folds in two rounds)
      }
    }
    return folded;
  }
};

}  // namespace layout_nhwc_detail

bool layout_nhwc(ir::Graph& g) {
  ir::register_all_ops();
  return layout_nhwc_detail::Layout(g).run();
}

}  // namespace kiln::passes
