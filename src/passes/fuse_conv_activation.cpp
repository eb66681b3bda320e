// Conv epilogue fusion (CPU engines, optimization_level >= 1, after autocast; KILN_FUSE_CONV_ACTIVATION=0 turns it
// off; docs/passes.md). Matches an ai.onnx Conv whose output has one reader and is not a graph output, followed by
//   - Add(conv, Z) or Add(Z, conv), Z a value of the conv output's dtype and dims (no broadcasting), and/or
//   - Relu, or Clip with constant scalar bounds (attributes before opset 11; absent or initializer inputs after),
// each link read only by the next. Rewrites the chain into one kiln.FusedConv(X, W, B, Z) node named like the Conv,
// with activation none / relu / clip, at the position of the chain's last node. Valid because kiln.FusedConv is defined as exactly
// those ops in that order (its reference kernel runs them; ops/fused_ops.h), every input exists at that position
// (Z is read by the Add there, X / W / B before), and the intermediate values had no other reader. The CPU tactics
// then add Z and apply the activation while the output tile is in cache, instead of one more pass over memory per op.
#include <set>

#include "ops/common.h"
#include "ops/fused_ops.h"
#include "passes/pass.h"
#include "util/half.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_conv_activation_detail {

// The float value of a one-element float initializer.
bool scalar_of(const Tensor* t, float& v) {
  if (!t || t->numel() != 1) return false;
  switch (t->dtype()) {
    case DType::Float32: v = t->as<float>()[0]; return true;
    case DType::Float16: v = util::half_to_float(t->as<uint16_t>()[0]); return true;
    case DType::BFloat16: v = util::bf16_to_float(t->as<uint16_t>()[0]); return true;
    default: return false;
  }
}

// Whether n is a Relu or a Clip with constant bounds; sets the fused node's activation attributes.
bool activation_of(const ir::Graph& g, const ir::Node& n, ir::Node& f) {
  if (n.domain != "" || n.outputs.size() != 1 || n.inputs.empty()) return false;
  if (n.op_type == "Relu" && n.inputs.size() == 1) {
    f.attrs["activation"] = std::string("relu");
    return true;
  }
  if (n.op_type != "Clip") return false;
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (n.opset < 11) {
    if (n.inputs.size() != 1) return false;
    lo = n.attr_float("min", lo);
    hi = n.attr_float("max", hi);
  } else {
    if (n.inputs.size() > 3) return false;
    if (n.inputs.size() > 1 && !n.inputs[1].empty() && !scalar_of(fixed_initializer(g, n.inputs[1]), lo)) return false;
    if (n.inputs.size() > 2 && !n.inputs[2].empty() && !scalar_of(fixed_initializer(g, n.inputs[2]), hi)) return false;
  }
  f.attrs["activation"] = std::string("clip");
  f.attrs["clip_min"] = lo;
  f.attrs["clip_max"] = hi;
  return true;
}

bool run(ir::Graph& g) {
  if (has_subgraphs(g)) return false;  // outer-scope reads are not in consumers()
  const auto consumers = g.consumers();
  const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  // The one node reading v (nullptr when v is a graph output or has zero or several readers).
  auto sole_reader = [&](const std::string& v) -> size_t {
    auto it = consumers.find(v);
    if (outputs.count(v) || it == consumers.end() || it->second.size() != 1) return SIZE_MAX;
    return it->second[0];
  };
  const size_t N = g.nodes.size();
  std::vector<int> replace_at(N, -1);
  std::vector<bool> drop(N, false);
  std::vector<ir::Node> fused;
  for (size_t i = 0; i < N; ++i) {
    const ir::Node& conv = g.nodes[i];
    if (conv.domain != "" || conv.op_type != "Conv" || conv.outputs.size() != 1 || conv.inputs.size() < 2 || drop[i])
      continue;
    const std::string& y = conv.outputs[0];
    const ir::ValueType* yt = g.type_of(y);
    if (!yt || !is_float3(yt->dtype)) continue;
    ir::Node f;
    f.attrs = conv.attrs;
    f.inputs = conv.inputs;
    f.inputs.resize(3);  // X, W, B ("" when absent)
    std::vector<size_t> chain;
    std::string out = y;
    size_t r = sole_reader(out);
    if (r != SIZE_MAX && g.nodes[r].domain == "" && g.nodes[r].op_type == "Add" && g.nodes[r].inputs.size() == 2 &&
        g.nodes[r].outputs.size() == 1) {
      const ir::Node& add = g.nodes[r];
      const std::string& z = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
      const ir::ValueType* zt = g.type_of(z);
      if (z != y && (add.inputs[0] == y || add.inputs[1] == y) && zt && zt->dtype == yt->dtype && same_dims(*zt, *yt)) {
        f.inputs.push_back(z);
        chain.push_back(r);
        out = add.outputs[0];
        r = sole_reader(out);
      }
    }
    if (r != SIZE_MAX && activation_of(g, g.nodes[r], f)) {
      chain.push_back(r);
      out = g.nodes[r].outputs[0];
    } else {
      f.attrs["activation"] = std::string("none");
    }
    if (chain.empty()) continue;
    if (f.inputs.size() == 3 && f.inputs[2].empty()) f.inputs.resize(2);
    bool free = true;  // no node of the chain already taken by another fusion
    for (size_t c : chain) free = free && !drop[c] && replace_at[c] < 0;
    if (!free) continue;
    // The fused node keeps the conv's name (the conv node goes away): profiles and keep-lists name it as before.
    f.name = conv.name.empty() ? g.unique_name("fused_conv") : conv.name;
    f.op_type = ops::fused_ops::kFusedConv;
    f.domain = ops::fused_ops::kDomain;
    f.opset = 1;
    f.outputs = {out};
    KILN_DEBUG("fuse_conv_activation: " << conv.label() << " + " << chain.size() << " nodes -> " << f.name);
    drop[i] = true;
    g.types.erase(y);
    for (size_t k = 0; k + 1 < chain.size(); ++k) {
      drop[chain[k]] = true;
      g.types.erase(g.nodes[chain[k]].outputs[0]);
    }
    replace_at[chain.back()] = static_cast<int>(fused.size());
    fused.push_back(std::move(f));
  }
  if (fused.empty()) return false;
  const size_t count = fused.size(), kept = splice_fused(g, replace_at, drop, fused);
  KILN_INFO("fuse_conv_activation: " << count << " Conv epilogues fused (" << N << " -> " << kept
                                     << " nodes)");
  return true;
}

}  // namespace fuse_conv_activation_detail

bool fuse_conv_activation(ir::Graph& g) { return fuse_conv_activation_detail::run(g); }

}  // namespace kiln::passes
