// Where CPU time goes: builds an engine for a model at fixed input shapes, runs it, and prints per op type and per
// node the wall time (summed over the runs) with each node's tactic. A developer tool (not installed):
//
//   cmake --build build --target kiln_cpu_profile
//   build/kiln_cpu_profile MODEL.onnx name:1x3x224x224 [name2:...] [--iterations 20] [--threads N] [--level L]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/cpu/thread_pool.h"

using namespace kiln;

namespace {
Tensor random_input(DType dt, const Shape& s, unsigned seed) {
  Tensor t(dt, s);
  srand(seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float f = static_cast<float>(rand()) / RAND_MAX * 2.0f - 1.0f;
    switch (dt) {
      case DType::Float32: t.mutable_as<float>()[i] = f; break;
      case DType::Int64: t.mutable_as<int64_t>()[i] = rand() % 2; break;
      case DType::Int32: t.mutable_as<int32_t>()[i] = rand() % 2; break;
      default: break;
    }
  }
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL name:AxBxC... [--iterations N] [--threads T] [--level L]\n", argv[0]);
    return 2;
  }
  int iters = 20, level = 3;
  std::map<std::string, Shape> shapes;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      runtime::cpu::set_cpu_threads(std::atoi(argv[++i]));
    } else if (a == "--level" && i + 1 < argc) {
      level = std::atoi(argv[++i]);
    } else {
      size_t c = a.find(':');
      Shape s;
      for (size_t p = c + 1; p < a.size();) {
        size_t x = a.find('x', p);
        if (x == std::string::npos) x = a.size();
        s.push_back(std::stoll(a.substr(p, x - p)));
        p = x + 1;
      }
      shapes[a.substr(0, c)] = s;
    }
  }
  Model model = Model::load(argv[1]);
  BuildConfig cfg;
  cfg.optimization_level = level;
  Profile p;
  for (const auto& [name, s] : shapes) p.add_input_shape(name, s, s, s);
  cfg.profiles.push_back(p);
  const auto b0 = std::chrono::steady_clock::now();
  Engine engine = build_engine(model, cfg);
  const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count();
  TensorMap feeds;
  unsigned seed = 1;
  for (const auto& ti : engine.inputs()) feeds[ti.name] = random_input(ti.dtype, shapes.at(ti.name), seed++);
  runtime::cpu::CpuExecutor exec(engine.impl());
  for (int i = 0; i < 3; ++i) exec.run(feeds);
  exec.set_profiling(true);
  std::vector<double> wall;
  const auto& g = engine.impl()->graph;
  std::vector<std::vector<double>> per_node(g.nodes.size());
  std::vector<double> before(g.nodes.size(), 0.0);
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    exec.run(feeds);
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      per_node[k].push_back(exec.node_ms()[k] - before[k]);
      before[k] = exec.node_ms()[k];
    }
  }
  std::sort(wall.begin(), wall.end());
  // Per node: the median over the runs (robust on a shared machine), scaled to `iters` runs for the sums below.
  std::vector<double> ms(g.nodes.size());
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    std::sort(per_node[k].begin(), per_node[k].end());
    ms[k] = per_node[k][per_node[k].size() / 2] * iters;
  }
  double total = 0;
  for (double v : ms) total += v;
  std::map<std::string, std::pair<double, int>> by_op;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    auto& e = by_op[g.nodes[i].op_type + " [" + g.nodes[i].tactic + "]"];
    e.first += ms[i];
    e.second++;
  }
  std::vector<std::pair<double, std::string>> ops;
  for (const auto& [k, v] : by_op) ops.push_back({v.first, k + " x" + std::to_string(v.second)});
  std::sort(ops.rbegin(), ops.rend());
  std::printf("build %.0f ms; threads %d; run p50 %.3f ms (min %.3f); sum of node medians %.3f ms over %zu nodes\n",
              build_ms, runtime::cpu::cpu_threads(), wall[wall.size() / 2], wall.front(), total / iters,
              g.nodes.size());
  for (const auto& [t, k] : ops) std::printf("  %6.1f%%  %8.3f ms  %s\n", 100 * t / total, t / iters, k.c_str());
  std::vector<size_t> idx(g.nodes.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ms[a] > ms[b]; });
  std::printf("top nodes:\n");
  for (size_t k = 0; k < std::min<size_t>(15, idx.size()); ++k) {
    const auto& n = g.nodes[idx[k]];
    std::printf("  %6.1f%%  %8.3f ms  %s '%s' [%s]\n", 100 * ms[idx[k]] / total, ms[idx[k]] / iters,
                n.op_type.c_str(), n.name.c_str(), n.tactic.c_str());
  }
  return 0;
}
