#include "builder/tactic_timing.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>

#include "runtime/cpu/cpu_executor.h"
#include "runtime/cpu/cpu_tactics.h"
#include "runtime/cpu/thread_pool.h"
#include "util/error.h"
#include "util/half.h"
#include "util/log.h"

namespace kiln::builder {
namespace tactic_timing_impl {

using Clock = std::chrono::steady_clock;
using runtime::cpu::Tactic;

// Floats uniform in [-1, 1) without exact zeros, integers and bools 0 or 1.
Tensor random_tensor(DType dt, const Shape& s, uint32_t seed) {
  Tensor t(dt, s);
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint32_t r = next();
    const float f = (static_cast<float>(r >> 8) + 0.5f) / 8388608.0f - 1.0f;  // never 0
    switch (dt) {
      case DType::Float32: t.mutable_as<float>()[i] = f; break;
      case DType::Float16: t.mutable_as<uint16_t>()[i] = util::float_to_half(f); break;
      case DType::BFloat16: t.mutable_as<uint16_t>()[i] = util::float_to_bf16(f); break;
      case DType::Float64: t.mutable_as<double>()[i] = f; break;
      case DType::Int64: t.mutable_as<int64_t>()[i] = r & 1; break;
      case DType::Int32: t.mutable_as<int32_t>()[i] = r & 1; break;
      case DType::Int16: t.mutable_as<int16_t>()[i] = r & 1; break;
      case DType::Int8: t.mutable_as<int8_t>()[i] = r & 1; break;
      case DType::UInt8:
      case DType::Bool: t.mutable_as<uint8_t>()[i] = r & 1; break;
    }
  }
  return t;
}

// The shape an input is timed at: the profile's opt, else its static dims (unknown dims as 1).
Shape opt_shape(const TensorInfo& ti, const Profile& p) {
  auto it = p.shapes().find(ti.name);
  if (it != p.shapes().end()) return it->second.opt;
  Shape s;
  for (const auto& d : ti.dims) s.push_back(d.is_static() ? d.value : 1);
  return s;
}

std::string opt_suffix(const std::vector<TensorInfo>& inputs, const Profile& p) {
  std::ostringstream os;
  os << " at opt";
  for (const auto& ti : inputs) os << " " << ti.name << shape_str(opt_shape(ti, p));
  return os.str();
}

bool inputs_static(const ir::Graph& g, const ir::Node& n) {
  for (const auto& in : n.inputs) {
    if (in.empty() || g.is_constant(in)) continue;
    const ir::ValueType* t = g.type_of(in);
    if (!t || !t->is_static()) return false;
  }
  return true;
}

double run_ms(const ir::KernelFn& k, const ir::Node& n, const std::vector<const Tensor*>& ins,
              std::vector<Tensor>& outs) {
  outs.assign(n.outputs.size(), Tensor());
  const auto t0 = Clock::now();
  k(n, ins, outs);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

Choice time_candidates(const ir::Node& n, const std::vector<Tactic>& cands, const std::vector<const Tensor*>& ins,
                       const TacticTimingOptions& opt) {
  // On one thread: every candidate gets the same thread split at run time (threads_for_work), and one thread's
  // timings rank kernels without measuring when another process let the second core go.
  runtime::cpu::InlineScope one_thread;
  Choice c;
  const size_t K = cands.size();
  c.ms.assign(K, std::numeric_limits<double>::infinity());
  std::vector<std::vector<Tensor>> outs(K);
  std::vector<size_t> active;
  // Warm-up runs, in candidate order: failures, the cut-off and the ref budget drop candidates here.
  double best_warm = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < K; ++k) {
    if (!active.empty() && cands[k].name == "ref" && opt.ref_budget_ms >= 0 && best_warm > opt.ref_budget_ms) {
      KILN_DEBUG("tactics: " << n.label() << ": 'ref' not timed (a faster candidate takes " << best_warm << " ms)");
      continue;
    }
    double warm;
    try {
      warm = run_ms(cands[k].run, n, ins, outs[k]);
    } catch (const Error& e) {
      KILN_DEBUG("tactics: " << n.label() << ": candidate '" << cands[k].name << "' failed: " << e.what());
      if (k + 1 == K && active.empty()) throw;  // nothing ran: the node itself is at fault
      continue;
    }
    // One slow run may be a preemption on a busy machine: a candidate is cut off only when a second warm-up is
    // far behind too.
    if (warm > opt.cutoff * best_warm) warm = std::min(warm, run_ms(cands[k].run, n, ins, outs[k]));
    if (warm > opt.cutoff * best_warm) {
      c.ms[k] = warm;  // not a quartile: warm-ups only, already far behind
      continue;
    }
    best_warm = std::min(best_warm, warm);
    active.push_back(k);
  }
  // Timed rounds, one run of every remaining candidate per round, so a change of load on a shared machine hits all.
  std::vector<std::vector<double>> t(K);
  std::vector<double> total(K, 0.0);
  for (int r = 0; r < opt.max_runs; ++r) {
    bool enough = r >= opt.min_runs;
    for (size_t k : active) enough = enough && total[k] >= opt.min_total_ms;
    if (enough) break;
    for (size_t k : active) {
      t[k].push_back(run_ms(cands[k].run, n, ins, outs[k]));
      total[k] += t[k].back();
    }
  }
  // The lower quartile of the rounds: noise on a shared machine (preemption, another process's cache traffic)
  // only ever adds time, so the fast runs tell the kernels apart best, and a quartile is not one lucky run.
  bool have = false;
  for (size_t k : active) {
    const size_t q = t[k].size() / 4;
    std::nth_element(t[k].begin(), t[k].begin() + static_cast<std::ptrdiff_t>(q), t[k].end());
    c.ms[k] = t[k][q];
    if (!have || c.ms[k] < (1.0 - opt.tie) * c.ms[c.best]) {
      c.best = k;
      have = true;
    }
  }
  c.outs = std::move(outs[c.best]);
  return c;
}

std::string timing_line(const std::vector<Tactic>& cands, const Choice& c) {
  std::ostringstream os;
  for (size_t k = 0; k < cands.size(); ++k) os << (k ? ", " : "") << cands[k].name << " " << c.ms[k] * 1e3 << " us";
  return os.str();
}

}  // namespace tactic_timing_impl

void choose_cpu_tactics(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles,
                        TimingCache* cache, const std::string& target, const TacticTimingOptions& opt,
                        BuildStats& stats, std::vector<std::vector<std::string>>& per_profile,
                        const std::function<void(size_t, size_t)>& progress) {
  using namespace tactic_timing_impl;
  const size_t count = g.nodes.size();
  const std::vector<Profile> one{Profile()};
  const std::vector<Profile>& ps = profiles.empty() ? one : profiles;
  std::vector<std::vector<Tactic>> cands(count);
  for (size_t i = 0; i < count; ++i) {
    cands[i] = runtime::cpu::tactics_for(g, g.nodes[i]);
    if (cands[i].empty()) KILN_THROW(Unsupported, g.nodes[i].label() << ": no CPU kernel (opset " << g.nodes[i].opset << ")");
  }
  per_profile.assign(ps.size(), std::vector<std::string>(count));
  // Per node, the signatures earlier profiles decided (static inputs, or equal opt shapes): reused, not looked up or
  // timed again.
  std::vector<std::map<std::string, size_t>> seen(count);
  std::map<std::string, std::string> decided;  // signature -> tactic timed earlier in this build
  for (size_t p = 0; p < ps.size(); ++p) {
    const Profile& profile = ps[p];
    std::vector<std::string>& chosen = per_profile[p];
    std::vector<std::string> sigs(count);
    std::vector<char> need(count, 0), missed(count, 0);
    const std::string suffix = opt_suffix(inputs, profile);
    for (size_t i = 0; i < count; ++i) {
      const ir::Node& n = g.nodes[i];
      chosen[i] = cands[i].front().name;  // the heuristic choice
      const bool timed_here = opt.time && cands[i].size() > 1;
      sigs[i] = tactic_signature(g, n);
      if (!inputs_static(g, n)) sigs[i] += suffix;
      auto earlier = seen[i].find(sigs[i]);
      if (earlier != seen[i].end()) {
        chosen[i] = per_profile[earlier->second][i];
        continue;
      }
      seen[i].emplace(sigs[i], p);
      if (cache) {
        const TimingEntry* hit = cache->lookup(target, sigs[i]);
        bool usable = false;
        if (hit && (hit->timed() || !timed_here))
          for (const auto& c : cands[i]) usable |= c.name == hit->tactic;
        if (usable) {
          chosen[i] = hit->tactic;
          ++stats.timing_cache_hits;
          continue;
        }
        ++stats.timing_cache_misses;
        missed[i] = 1;
      }
      need[i] = timed_here;
    }

    size_t last = 0;
    bool any = false;
    for (size_t i = 0; i < count; ++i)
      if (need[i]) {
        last = i;
        any = true;
      }
    if (any) {
      // The graph runs at this profile's opt shapes up to the last node to time; every node runs its choice so far.
      runtime::cpu::register_subgraph_runner();
      const auto frees = runtime::cpu::plan_frees(g);
      std::unordered_map<std::string, Tensor> env;
      uint32_t seed = 1;
      for (const auto& ti : inputs) {
        auto d = g.input_defaults.find(ti.name);
        if (d != g.input_defaults.end())
          env[ti.name] = d->second;
        else
          env[ti.name] = random_tensor(ti.dtype, opt_shape(ti, profile), seed++);
      }
      size_t i = 0;
      try {
        std::vector<const Tensor*> ins;
        std::vector<Tensor> outs;
        for (; i <= last; ++i) {
          const ir::Node& n = g.nodes[i];
          runtime::cpu::gather_inputs(g, n, env, ins);
          auto known = need[i] ? decided.find(sigs[i]) : decided.end();
          if (known != decided.end()) {  // a node with the same signature was just timed: same choice
            chosen[i] = known->second;
            need[i] = 0;
            missed[i] = 0;  // its cache entry is the one just recorded
          }
          if (need[i]) {
            Choice c = time_candidates(n, cands[i], ins, opt);
            chosen[i] = cands[i][c.best].name;
            outs = std::move(c.outs);
            ++stats.tactics_timed;
            stats.tactic_candidates_timed += cands[i].size();
            decided[sigs[i]] = chosen[i];
            KILN_DEBUG("tactics: " << n.label() << " (profile " << p << "): " << timing_line(cands[i], c) << " -> "
                                   << chosen[i]);
            if (cache) cache->record(target, sigs[i], TimingEntry{chosen[i], c.ms[c.best] * 1e3,
                                                                  static_cast<int>(cands[i].size())});
            need[i] = 0;
            missed[i] = 0;
          } else {
            const ir::KernelFn* k = nullptr;
            for (const auto& t : cands[i])
              if (t.name == chosen[i]) k = &t.run;
            run_ms(k ? *k : cands[i].front().run, n, ins, outs);
          }
          for (size_t o = 0; o < n.outputs.size() && o < outs.size(); ++o)
            if (!n.outputs[o].empty()) env[n.outputs[o]] = std::move(outs[o]);
          for (const auto& v : frees[i]) env.erase(v);
          if (progress && count > 50 && i % 50 == 0) progress(p * count + i, ps.size() * count);
        }
      } catch (const std::exception& e) {
        KILN_WARN("build: tactic timing stopped at " << g.nodes[i].label() << " (profile " << p << "; " << e.what()
                                                     << "); the nodes from there on keep their heuristic tactic");
      }
    }
    if (cache)
      for (size_t i = 0; i < count; ++i)
        if (missed[i])
          cache->record(target, sigs[i], TimingEntry{chosen[i], -1, static_cast<int>(cands[i].size())});
  }
  set_profile_tactics(g, per_profile);
}

}  // namespace kiln::builder
