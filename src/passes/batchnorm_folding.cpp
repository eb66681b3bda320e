// BatchNormalization folding into Conv.
// Matches: Conv(X, W[, B]) -> BatchNormalization(scale, bias, mean, var) where W, B and the BN parameters are
// float32 constants, the Conv output feeds only that BN, and the BN's optional training outputs are absent.
// Rewrites the Conv with W' = W * s and B' = (B - mean) * s + bias per output channel, s = scale / sqrt(var + eps),
// and removes the BN. Valid because inference-mode BN is a per-channel affine map, and Conv is linear in W and B.
#include <cmath>

#include "passes/pass.h"

namespace kiln::passes {
namespace batchnorm_folding_detail {

const Tensor* const_f32(const ir::Graph& g, const std::string& v) {
  auto it = g.initializers.find(v);
  if (it == g.initializers.end() || it->second.dtype() != DType::Float32) return nullptr;
  return &it->second;
}

}  // namespace batchnorm_folding_detail

bool fold_batchnorm_into_conv(ir::Graph& g) {
  using namespace batchnorm_folding_detail;
  bool changed = false;
  auto consumers = g.consumers();
  auto producers = g.producers();
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    ir::Node& bn = g.nodes[bi];
    if (bn.op_type != "BatchNormalization" || bn.domain != "" || bn.inputs.size() < 5) continue;
    bool training_outputs = false;
    for (size_t o = 1; o < bn.outputs.size(); ++o) training_outputs |= !bn.outputs[o].empty();
    if (training_outputs || bn.attr_int("training_mode", 0) != 0) continue;
    auto pit = producers.find(bn.inputs[0]);
    if (pit == producers.end() || removed[pit->second]) continue;
    ir::Node& conv = g.nodes[pit->second];
    if (conv.op_type != "Conv" || conv.domain != "" || conv.outputs.size() != 1) continue;
    if (consumers[conv.outputs[0]].size() != 1) continue;
    bool is_graph_output = false;
    for (const auto& o : g.outputs) is_graph_output |= o == conv.outputs[0];
    if (is_graph_output) continue;
    const Tensor* w = const_f32(g, conv.inputs.size() > 1 ? conv.inputs[1] : "");
    const Tensor* b = conv.has_input(2) ? const_f32(g, conv.inputs[2]) : nullptr;
    if (!w || w->rank() < 3 || (conv.has_input(2) && !b)) continue;
    const Tensor *scale = const_f32(g, bn.inputs[1]), *bias = const_f32(g, bn.inputs[2]),
                 *mean = const_f32(g, bn.inputs[3]), *var = const_f32(g, bn.inputs[4]);
    const int64_t cout = w->shape()[0];
    bool ok = scale && bias && mean && var;
    for (const Tensor* t : {scale, bias, mean, var}) ok = ok && t->numel() == cout;
    if (ok && b) ok = b->numel() == cout;
    if (!ok) continue;
    const double eps = bn.attr_float("epsilon", 1e-5f);
    const int64_t per = w->numel() / std::max<int64_t>(cout, 1);
    Tensor nw(DType::Float32, w->shape()), nb(DType::Float32, {cout});
    for (int64_t c = 0; c < cout; ++c) {
      double s = double(scale->as<float>()[c]) / std::sqrt(double(var->as<float>()[c]) + eps);
      for (int64_t k = 0; k < per; ++k)
        nw.mutable_as<float>()[c * per + k] = static_cast<float>(w->as<float>()[c * per + k] * s);
      double b0 = b ? b->as<float>()[c] : 0.0;
      nb.mutable_as<float>()[c] = static_cast<float>((b0 - mean->as<float>()[c]) * s + bias->as<float>()[c]);
    }
    std::string wname = g.unique_name(conv.name + "_bnfold_W");
    g.initializers[wname] = nw;
    std::string bname = g.unique_name(conv.name + "_bnfold_B");
    g.initializers[bname] = nb;
    conv.inputs.resize(3);
    conv.inputs[1] = wname;
    conv.inputs[2] = bname;
    g.types.erase(conv.outputs[0]);
    conv.outputs[0] = bn.outputs[0];
    removed[bi] = true;
    changed = true;
  }
  if (changed) {
    std::vector<ir::Node> kept;
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (!removed[i]) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
  }
  return changed;
}

}  // namespace kiln::passes
