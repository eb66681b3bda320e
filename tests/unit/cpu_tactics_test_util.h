// Helpers for the CPU tactic tests: run every candidate tactic of a one-node graph and compare it with "ref".
#pragma once
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/thread_pool.h"
#include "test_ops_util.h"

namespace kiln::test_ops {
namespace cpu_tactics_test {

using runtime::cpu::Tactic;

inline Tensor rand_of(DType dt, Shape s, uint32_t seed) {
  Tensor f = rand_f32(std::move(s), seed);
  if (dt == DType::Float32) return f;
  std::vector<float> v(f.as<float>(), f.as<float>() + f.numel());
  return dt == DType::Float16 ? f16(f.shape(), v) : bf16(f.shape(), v);
}

inline const char* precision_of(DType dt) {
  return dt == DType::Float16 ? "fp16" : dt == DType::BFloat16 ? "bf16" : "fp32";
}

// Runs every candidate tactic of the one-node graph and compares it with "ref"; `want` must all be candidates.
// Returns the candidate names (heuristic first).
// check_tactics_in names the op's domain ("kiln" for kiln's private ops).
inline std::vector<std::string> check_tactics_in(const std::string& domain, const std::string& op, int64_t opset,
                                                 const std::vector<In>& inputs, const Attrs& attrs,
                                                 const std::vector<std::string>& want) {
  ir::Graph g = make_graph(op, opset, inputs, attrs, 1);
  g.nodes[0].domain = domain;
  ir::infer_types(g);
  const ir::Node& n = g.nodes[0];
  std::vector<Tactic> cands = runtime::cpu::tactics_for(g, n);
  std::vector<std::string> names;
  for (const auto& t : cands) names.push_back(t.name);
  EXPECT_FALSE(cands.empty());
  if (cands.empty()) return names;
  EXPECT_EQ(cands.back().name, "ref");
  for (const auto& w : want)
    EXPECT_NE(std::find(names.begin(), names.end(), w), names.end()) << op << ": no candidate '" << w << "'";
  std::vector<const Tensor*> ins;
  for (const auto& i : inputs) ins.push_back(i.t.empty() ? nullptr : &i.t);
  std::vector<Tensor> ref(1);
  cands.back().run(n, ins, ref);
  const Tolerance tol = tolerance_for(precision_of(ref[0].dtype()));
  for (size_t k = 0; k + 1 < cands.size(); ++k) {
    std::vector<Tensor> out(1);
    cands[k].run(n, ins, out);
    EXPECT_EQ(out[0].dtype(), ref[0].dtype()) << op << " " << cands[k].name;
    EXPECT_EQ(out[0].shape(), ref[0].shape()) << op << " " << cands[k].name;
    Comparison c = compare(out[0], ref[0], tol);
    EXPECT_TRUE(c.passed) << op << " tactic " << cands[k].name << " vs ref: " << c.reason << " (max abs " << c.max_abs
                          << ", rel L2 " << c.rel_l2 << ")";
  }
  return names;
}

inline std::vector<std::string> check_tactics(const std::string& op, int64_t opset, const std::vector<In>& inputs,
                                              const Attrs& attrs, const std::vector<std::string>& want) {
  return check_tactics_in("", op, opset, inputs, attrs, want);
}

// Runs `f` at several thread counts (1, 2, 3), restoring the default afterwards.
inline void for_thread_counts(const std::function<void(int)>& f) {
  for (int t : {1, 2, 3}) {
    runtime::cpu::set_cpu_threads(t);
    SCOPED_TRACE("threads " + std::to_string(t));
    f(t);
  }
  runtime::cpu::set_cpu_threads(0);
}

}  // namespace cpu_tactics_test
}  // namespace kiln::test_ops
