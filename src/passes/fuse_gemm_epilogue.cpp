// GEMM epilogue fusion (CUDA engines, optimization_level >= 1; KILN_FUSE_GEMM_EPILOGUE=0 turns it off; docs/passes.md).
// Matches: MatMul(A, B) with B a 2-D initializer [K, N] (not an overridable input), whose output is read by exactly
// one node, an Add with a constant bias of the same float dtype shaped [N] or [1, ..., 1, N] (rank <= the MatMul
// output's), whose output in turn may be read by exactly one Relu, or Gelu (approximate="tanh"; the erf form only
// in float16 / bfloat16, see below). No hidden value is a graph output.
// Rewrites: the chain becomes one kiln.FusedMatMul(A, B, bias) node with activation none / relu / gelu / gelu_tanh,
// producing the chain's last output, at the chain's last position. Valid because the fused op is defined as the same
// ops in the same order (its reference kernel runs them; ops/fused_ops.h) and nothing else reads the hidden values.
// The CUDA kernel runs one cuBLASLt matmul with the BIAS / RELU_BIAS / GELU_BIAS epilogue (float accumulation, one
// rounding). cuBLASLt's GELU is the tanh approximation; against erf-GELU it differs by at most 4.7e-4 absolute
// (|x| ~ 2), far inside the FP16 / BF16 bounds (relative L2 1e-2 / 2e-2) but not the FP32 one, so an erf Gelu is
// fused only into float16 / bfloat16 MatMuls (docs/precision.md).
#include <set>

#include "ops/fused_ops.h"
#include "passes/pass.h"
#include "util/log.h"

namespace kiln::passes {
namespace fuse_gemm_epilogue_detail {

class Fuser {
 public:
  explicit Fuser(ir::Graph& g) : g_(g), consumers_(g.consumers()) {
    outputs_.insert(g.outputs.begin(), g.outputs.end());
  }

  bool run() {
    const size_t N = g_.nodes.size();
    std::vector<int> replace_at(N, -1);  // node index -> fused node (at the chain's last member)
    std::vector<bool> drop(N, false);
    std::vector<ir::Node> fused;
    std::vector<std::string> hidden;
    for (size_t i = 0; i < N; ++i) {
      const ir::Node& mm = g_.nodes[i];
      if (mm.domain != "" || mm.op_type != "MatMul" || mm.inputs.size() != 2 || mm.outputs.size() != 1) continue;
      const ir::ValueType* yt = g_.type_of(mm.outputs[0]);
      const ir::ValueType* at = g_.type_of(mm.inputs[0]);
      if (!yt || !at || !yt->has_rank || !at->has_rank || at->dims.empty() || !is_float3(yt->dtype)) continue;
      const Tensor* w = constant(mm.inputs[1]);
      if (!w || w->rank() != 2 || w->dtype() != yt->dtype) continue;
      // The bias Add.
      size_t add = 0;
      if (!sole_reader(mm.outputs[0], &add)) continue;
      const ir::Node& an = g_.nodes[add];
      if (an.domain != "" || an.op_type != "Add" || an.inputs.size() != 2 || an.outputs.size() != 1) continue;
      const std::string& bias = an.inputs[0] == mm.outputs[0] ? an.inputs[1] : an.inputs[0];
      const Tensor* b = constant(bias);
      if (!b || b->dtype() != yt->dtype || b->rank() == 0 || b->rank() > static_cast<int64_t>(yt->dims.size()) ||
          b->shape().back() != w->shape()[1] || b->numel() != w->shape()[1])
        continue;
      // The activation (optional).
      std::string act = "none";
      size_t last = add, actn = 0;
      if (sole_reader(an.outputs[0], &actn)) {
        const ir::Node& a = g_.nodes[actn];
        const bool low = yt->dtype != DType::Float32;
        if (a.domain == "" && a.inputs.size() == 1 && a.outputs.size() == 1) {
          if (a.op_type == "Relu") act = "relu";
          if (a.op_type == "Gelu") {
            const std::string ap = a.attr_string("approximate", "none");
            if (ap == "tanh") act = "gelu_tanh";
            else if (ap == "none" && low) act = "gelu";
          }
        }
        if (act != "none") last = actn;
      }
      ir::Node f;
      f.name = g_.unique_name("fused_" + mm.name);
      f.op_type = ops::fused_ops::kFusedMatMul;
      f.domain = ops::fused_ops::kDomain;
      f.opset = 1;
      f.inputs = {mm.inputs[0], mm.inputs[1], bias};
      f.outputs = {g_.nodes[last].outputs[0]};
      f.attrs["activation"] = act;
      hidden.push_back(mm.outputs[0]);
      drop[i] = drop[add] = true;
      if (last != add) {
        hidden.push_back(an.outputs[0]);
        drop[last] = true;
      }
      replace_at[last] = static_cast<int>(fused.size());
      KILN_DEBUG("fuse_gemm_epilogue: " << mm.label() << " + " << an.label() << (last != add ? " + " : "")
                                        << (last != add ? g_.nodes[last].label() : "") << " -> " << f.name << " ("
                                        << act << ")");
      fused.push_back(std::move(f));
    }
    if (fused.empty()) return false;
    const size_t count = fused.size(), kept = splice_fused(g_, replace_at, drop, fused);
    for (const std::string& v : hidden) g_.types.erase(v);
    KILN_INFO("fuse_gemm_epilogue: " << count << " MatMul + bias (+ activation) chains fused (" << N << " -> " << kept
                                     << " nodes)");
    return true;
  }

 private:
  const Tensor* constant(const std::string& v) const { return fixed_initializer(g_, v); }
  // v is not a graph output and exactly one node reads it, once; *reader = that node.
  bool sole_reader(const std::string& v, size_t* reader) const {
    if (outputs_.count(v)) return false;
    auto it = consumers_.find(v);
    if (it == consumers_.end() || it->second.size() != 1) return false;
    *reader = it->second[0];
    return true;
  }

  ir::Graph& g_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::set<std::string> outputs_;
};

}  // namespace fuse_gemm_epilogue_detail

bool fuse_gemm_epilogue(ir::Graph& g) {
  if (has_subgraphs(g)) return false;  // outer-scope reads are not in consumers()
  return fuse_gemm_epilogue_detail::Fuser(g).run();
}

}  // namespace kiln::passes
