#include "builder/cuda_tactics.h"

#include <chrono>
#include <map>
#include <memory>
#include <sstream>

#include "runtime/shape_instance.h"
#include "util/error.h"
#include "util/log.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/tactic_bench.h"
#endif

namespace kiln::builder {
namespace cuda_tactics_impl {

bool timed_op(const ir::Node& n) {
  if (n.domain == "kiln")  // a MatMul with its epilogue (fuse_gemm_epilogue); kiln.Conv (layout_nhwc pass)
    return n.op_type == "FusedMatMul" || n.op_type == "Conv";
  return n.domain.empty() &&
         (n.op_type == "MatMul" || n.op_type == "Gemm" || n.op_type == "Conv" || n.op_type == "ConvTranspose");
}

std::string_view base_of(const std::string& name) {
  const size_t at = name.find('#');
  return at == std::string::npos ? std::string_view(name) : std::string_view(name).substr(0, at);
}

bool has_candidate(const std::vector<std::string>& cands, const std::string& tactic) {
  for (const auto& c : cands)
    if (c == base_of(tactic)) return true;
  return false;
}

// Whether every non-constant input of the node has a static type in the graph (then its signature is complete).
bool inputs_static(const ir::Graph& g, const ir::Node& n) {
  for (const auto& in : n.inputs) {
    if (in.empty() || g.is_constant(in)) continue;
    const ir::ValueType* t = g.type_of(in);
    if (!t || !t->is_static()) return false;
  }
  return true;
}

// Graph-input types at the profile's opt shapes (static dims as they are, unknown ones as 1; defaults' shapes).
std::vector<ir::ValueType> opt_types(const ir::Graph& g, const std::vector<TensorInfo>& inputs, const Profile& p) {
  std::vector<ir::ValueType> types;
  for (const auto& name : g.inputs) {
    const ir::ValueType* t = g.type_of(name);
    DType dt = t ? t->dtype : DType::Float32;
    Shape s;
    auto d = g.input_defaults.find(name);
    if (p.has(name)) {
      s = p.at(name).opt;
    } else if (d != g.input_defaults.end()) {
      s = d->second.shape();
      dt = d->second.dtype();
    } else {
      bool found = false;
      for (const auto& ti : inputs)
        if (ti.name == name) {
          for (const auto& dim : ti.dims) s.push_back(dim.is_static() ? dim.value : 1);
          found = true;
        }
      if (!found && t && t->has_rank)
        for (const auto& dim : t->dims) s.push_back(dim.is_static() ? dim.value : 1);
    }
    types.push_back(ir::ValueType::of(dt, s));
  }
  return types;
}

}  // namespace cuda_tactics_impl

size_t cuda_variant_breadth(int optimization_level) {
  if (optimization_level <= 2) return 4;
  if (optimization_level == 3) return 8;
  return optimization_level == 4 ? 16 : 32;
}

std::string cuda_signature_suffix(bool allow_tf32, size_t workspace_cap) {
  std::string s = " | cuda";
  if (allow_tf32) s += " tf32";
  if (workspace_cap) s += " ws<=" + std::to_string(workspace_cap);
  return s;
}

void choose_cuda_tactics(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles,
                         const std::vector<std::vector<std::string>>& candidates, TimingCache* cache,
                         const std::string& target, const CudaTacticOptions& opt, BuildStats& stats,
                         std::vector<std::vector<std::string>>& per_profile,
                         const std::function<void(size_t, size_t)>& progress) {
  using namespace cuda_tactics_impl;
  const size_t count = g.nodes.size();
  if (candidates.size() != count) KILN_THROW(InvalidState, "CUDA tactics: " << candidates.size() << " candidate lists for " << count << " nodes");
  const std::vector<Profile> one{Profile()};
  const std::vector<Profile>& ps = profiles.empty() ? one : profiles;
  const runtime::GraphIndex idx(g);
  const std::string suffix = cuda_signature_suffix(opt.allow_tf32, opt.workspace_cap);
  per_profile.assign(ps.size(), std::vector<std::string>(count));
  // Per node, the signatures earlier profiles looked up: a profile whose signature for the node equals an earlier
  // one's (static shapes, or the same opt shapes) takes that choice without a second lookup or timing.
  std::vector<std::map<std::string, size_t>> seen(count);  // signature -> profile that decided it
  std::map<std::string, std::string> decided;  // signature -> tactic timed earlier in this build (any node, profile)
  size_t todo_total = 0, done = 0;
#if KILN_WITH_CUDA
  std::unique_ptr<runtime::cuda::TacticBench> bench;
  bool bench_failed = false;
  double timing_s = 0;
#endif
  for (size_t p = 0; p < ps.size(); ++p) {
    std::vector<std::string>& chosen = per_profile[p];
    // Shapes at this profile's opt (host inference): what the timing runs at, and the signature of nodes whose
    // graph types are symbolic.
    std::unique_ptr<runtime::InstanceShapes> at_opt;
    try {
      at_opt = std::make_unique<runtime::InstanceShapes>(runtime::infer_instance(idx, opt_types(g, inputs, ps[p])));
    } catch (const Error& e) {
      KILN_WARN("build: shape inference at profile " << p << "'s opt shapes failed (" << e.what()
                                                     << "); its CUDA tactics are not timed");
    }
    auto node_types = [&](const std::vector<int>& ids, std::vector<ir::ValueType>& t) {
      t.clear();
      for (int v : ids) t.push_back(v < 0 ? ir::ValueType{} : at_opt->type[static_cast<size_t>(v)]);
    };
    std::vector<std::string> sigs(count);
    std::vector<char> need(count, 0), missed(count, 0);
    std::vector<ir::ValueType> in_t, out_t;
    for (size_t i = 0; i < count; ++i) {
      const ir::Node& n = g.nodes[i];
      const std::vector<std::string>& cands = candidates[i];
      chosen[i] = cands.front();  // the heuristic choice
      const bool opt_static = at_opt && at_opt->static_node[i];
      const bool timed_here = opt.time && opt_static && timed_op(n) && cands.front() != "host";
      sigs[i] = tactic_signature(g, n);
      if (!inputs_static(g, n) && opt_static) {
        node_types(idx.node_in[i], in_t);
        sigs[i] += " at";
        for (const auto& t : in_t) {
          sigs[i] += ' ';
          sigs[i] += t.has_rank ? t.str() : std::string("-");
        }
      }
      sigs[i] += suffix;
      auto earlier = seen[i].find(sigs[i]);
      if (earlier != seen[i].end()) {  // an earlier profile decided this signature: its choice, not counted again
        chosen[i] = per_profile[earlier->second][i];
        sigs[i].clear();
        continue;
      }
      seen[i].emplace(sigs[i], p);
      if (cache) {
        const TimingEntry* hit = cache->lookup(target, sigs[i]);
        if (hit && (hit->timed() || !timed_here) && has_candidate(cands, hit->tactic)) {
          chosen[i] = hit->tactic;
          ++stats.timing_cache_hits;
          continue;
        }
        ++stats.timing_cache_misses;
        missed[i] = 1;
      }
      need[i] = timed_here;
    }

#if KILN_WITH_CUDA
    size_t todo = 0;
    for (char c : need) todo += c != 0;
    todo_total += todo;
    if (todo && !bench_failed) {
      const auto t0 = std::chrono::steady_clock::now();
      size_t i = 0;
      try {
        if (!bench) bench = std::make_unique<runtime::cuda::TacticBench>(opt.device, opt.allow_tf32, opt.workspace_cap);
        runtime::cuda::BenchOptions bo;
        bo.min_runs = opt.min_runs, bo.max_runs = opt.max_runs, bo.min_total_ms = opt.min_total_ms;
        bo.tie = opt.tie, bo.cutoff = opt.cutoff, bo.variants = opt.variants;
        std::vector<const Tensor*> host_in;
        for (; i < count; ++i) {
          if (!need[i]) continue;
          const ir::Node& n = g.nodes[i];
          auto known = decided.find(sigs[i]);
          if (known != decided.end()) {  // a node with the same signature was just timed: same choice
            if (has_candidate(candidates[i], known->second)) chosen[i] = known->second;
            missed[i] = 0;  // its cache entry is the one just recorded
            continue;
          }
          node_types(idx.node_in[i], in_t);
          node_types(idx.node_out[i], out_t);
          host_in.clear();
          for (int v : idx.node_in[i]) {
            const Tensor* h = v < 0 ? nullptr : &at_opt->host[static_cast<size_t>(v)];
            // Weights are random for timing (their values do not change the speed); small host values are real.
            const bool small = h && !h->empty() && h->numel() <= runtime::kHostValueMaxElems;
            host_in.push_back(small ? h : nullptr);
          }
          std::vector<std::string> bases;
          for (const auto& c : candidates[i])
            if (c != "host") bases.push_back(c);
          const runtime::cuda::NodeTiming r = bench->time_node(n, in_t, out_t, host_in, bases, bo);
          if (!r.timed) {
            KILN_DEBUG("tactics: " << n.label() << " (profile " << p << "): not timed (" << r.line() << "); heuristic '"
                                   << chosen[i] << "'");
            continue;
          }
          chosen[i] = r.candidates[r.best];
          ++stats.tactics_timed;
          stats.tactic_candidates_timed += r.candidates.size();
          decided[sigs[i]] = chosen[i];
          KILN_DEBUG("tactics: " << n.label() << " (profile " << p << "): " << r.line() << " -> #" << r.best);
          if (cache)
            cache->record(target, sigs[i], TimingEntry{chosen[i], r.ms[r.best] * 1e3, static_cast<int>(r.candidates.size())});
          missed[i] = 0;
          if (progress && ++done % 10 == 0) progress(done, todo_total);
        }
      } catch (const std::exception& e) {
        std::string where;
        if (i < count) where = std::string(" at ").append(g.nodes[i].label());
        KILN_WARN("build: CUDA tactic timing stopped" << where << " (profile " << p << "; " << e.what()
                                                      << "); the nodes from there on keep their heuristic tactic");
        bench_failed = true;
      }
      timing_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
#endif
    // Misses that were not timed: recorded with the heuristic's choice (untimed; a later timed build replaces them).
    if (cache)
      for (size_t i = 0; i < count; ++i)
        if (missed[i]) cache->record(target, sigs[i], TimingEntry{chosen[i], -1, static_cast<int>(candidates[i].size())});
  }
#if KILN_WITH_CUDA
  if (todo_total)
    KILN_INFO("build: timed " << stats.tactics_timed << " nodes (" << stats.tactic_candidates_timed
                              << " candidates) over " << ps.size() << " profile(s) on cuda:" << opt.device << " in "
                              << timing_s << " s");
#endif
  (void)done;
  (void)todo_total;
  set_profile_tactics(g, per_profile);
}

}  // namespace kiln::builder
