// kiln bench PLAN|MODEL [--warmup N] [--iterations N] [--duration S] [--shapes ...] [--json [FILE]]
//            [--layers [--chart FILE.svg] [--top N]]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common.h"
#include "layer_report.h"

namespace kiln_cli {
namespace {

struct BenchArgs {
  std::string path, int_range;
  std::vector<std::string> shapes;
  int warmup = 10, iterations = 50;
  double duration = 0;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false, cuda_graphs = false;
  std::string json_path;  // --json FILE ("" or "-": stdout)
  bool layers = false;
  std::string chart;
  int top = 25;
  BuildOptions b;
};

// Writes `text` to `path`, or stdout for "" / "-".
void emit(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text;
    return;
  }
  std::ofstream f(path, std::ios::binary);
  if (!f) throw kiln::Error(kiln::ErrorCode::Io, "cannot write '" + path + "'");
  f << text;
  if (!f.flush()) throw kiln::Error(kiln::ErrorCode::Io, "cannot write '" + path + "'");
}

// --layers: each node's median time over the timed runs, as a table (and JSON / an SVG chart when asked).
int run_layers(BenchArgs& a, const kiln::Engine& e, const kiln::TensorMap& inputs) {
  kiln::LayerProfileOptions o;
  o.iterations = a.iterations;
  o.warmup = a.warmup;
  o.use_cuda_graphs = a.cuda_graphs;
  const kiln::LayerProfile p = kiln::profile_layers(e, inputs, o);
  const bool json_stdout = a.json && (a.json_path.empty() || a.json_path == "-");
  if (a.json) {
    nlohmann::ordered_json j;
    j["file"] = a.path;
    j["target"] = e.target();
    j["precision"] = e.precision();
    nlohmann::ordered_json in = nlohmann::ordered_json::object();
    for (const auto& info : e.inputs()) in[info.name] = inputs.at(info.name).shape();
    j["input_shapes"] = in;
    j["cuda_graphs_end_to_end"] = a.cuda_graphs;
    add_layer_json(j, p);
    j["kiln_version"] = kiln::version();
    emit(a.json_path, j.dump(2) + "\n");
  }
  if (!a.chart.empty())
    emit(a.chart, layer_svg(p, a.top, "kiln layers: " + a.path + " (" + e.target() + ", " + e.precision() + ")"));
  if (json_stdout) return 0;
  std::ostream& os = std::cout;
  os << "layers of " << a.path << " (" << e.target() << ", " << e.precision() << ") on " << p.device << ": "
     << p.layers.size() << " nodes, median of " << p.iterations << " runs (" << p.method << "; " << p.profile_note
     << ")\n  inputs:";
  for (const auto& info : e.inputs()) os << " " << info.name << " " << inputs.at(info.name).type_str();
  os << " (profile " << p.profile << " of " << e.profiles().size() << "; the tactics shown are that profile's)\n";
  print_layer_table(os, p, a.top);
  if (a.json) os << "JSON written to " << a.json_path << "\n";
  if (!a.chart.empty()) os << "chart written to " << a.chart << "\n";
  return 0;
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double p) {
  size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  return sorted[std::clamp<size_t>(rank, 1, n) - 1];
}

int run_bench(BenchArgs& a, const CLI::App& sub) {
  a.b.prepare(sub);
  if (a.threads > 0) kiln::set_cpu_threads(a.threads);
  ShapeMap shapes;
  for (const std::string& s : a.shapes)
    for (auto& [n, sh] : parse_shapes(s, "--shapes"))
      if (!shapes.emplace(n, sh).second)
        throw kiln::Error(kiln::ErrorCode::InvalidArgument, "--shapes: input '" + n + "' is given twice");
  RandomSpec rs;
  rs.seed = a.seed;
  if (!a.int_range.empty()) parse_int_range(a.int_range, &rs);

  Source src;
  src.open(a.path);
  check_input_names(shapes, src.inputs(), "--shapes");
  src.build(sub, a.b, shapes);
  const kiln::Engine& e = src.engine;
  kiln::TensorMap inputs = complete_inputs(e, {}, shapes, rs);
  a.json = sub.count("--json") > 0;
  if (a.layers) return run_layers(a, e, inputs);
  if (!a.chart.empty() || sub.count("--top"))
    throw kiln::Error(kiln::ErrorCode::InvalidArgument, "--chart and --top go with --layers");
  kiln::ContextOptions co;
  co.use_cuda_graphs = a.cuda_graphs;
  kiln::ExecutionContext ctx = e.create_context(co);

  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < a.warmup; ++i) ctx.run(inputs);
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(a.iterations));
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < a.iterations ||
         std::chrono::duration<double>(Clock::now() - start).count() < a.duration) {
    auto t0 = Clock::now();
    ctx.run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double total_s = std::accumulate(ms.begin(), ms.end(), 0.0) / 1000.0;
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double n = static_cast<double>(ms.size());
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / n;
  double var = 0;
  for (double v : ms) var += (v - mean) * (v - mean);
  const double stddev = std::sqrt(var / n);
  // Batch = axis 0 of the first input (1 for a scalar or an input-less engine).
  int64_t batch = 1;
  if (!e.inputs().empty()) {
    const kiln::Shape& s0 = inputs.at(e.inputs()[0].name).shape();
    if (!s0.empty()) batch = s0[0];
  }
  const double ips = total_s > 0 ? n / total_s : 0.0;
  const double sps = ips * static_cast<double>(batch);
  const double p50 = percentile(sorted, 50), p90 = percentile(sorted, 90), p99 = percentile(sorted, 99);

  if (a.json) {
    nlohmann::ordered_json j;
    j["file"] = a.path;
    j["target"] = e.target();
    j["precision"] = e.precision();
    j["profile"] = ctx.last_profile();
    nlohmann::ordered_json in = nlohmann::ordered_json::object();
    for (const auto& info : e.inputs()) in[info.name] = inputs.at(info.name).shape();
    j["input_shapes"] = in;
    j["batch"] = batch;
    j["threads"] = kiln::cpu_threads();
    j["warmup"] = a.warmup;
    j["iterations"] = ms.size();
    j["total_s"] = total_s;
    j["latency_ms"] = {{"p50", p50},           {"p90", p90},      {"p99", p99}, {"mean", mean}, {"min", sorted.front()},
                       {"max", sorted.back()}, {"stddev", stddev}};
    j["throughput"] = {{"inferences_per_s", ips}, {"samples_per_s", sps}};
    if (src.build_seconds >= 0) j["build_s"] = src.build_seconds;
    const kiln::ContextStats cs = ctx.stats();
    if (cs.device != "cpu")
      j["device"] = {{"name", cs.device},
                     {"arena_bytes", cs.arena_bytes},
                     {"weight_bytes", cs.weight_bytes},
                     {"cuda_graph_captures", cs.cuda_graph_captures},
                     {"cuda_graph_replays", cs.cuda_graph_replays},
                     {"cuda_graph_fallbacks", cs.cuda_graph_fallbacks}};
    j["kiln_version"] = kiln::version();
    emit(a.json_path, j.dump(2) + "\n");
    if (a.json_path.empty() || a.json_path == "-") return 0;
  }
  std::ostream& os = std::cout;
  os << "bench " << a.path << " (" << e.target() << ", " << e.precision() << ", profile " << ctx.last_profile()
     << ")\n";
  if (src.build_seconds >= 0)
    os << "  built in " << std::fixed << std::setprecision(3) << src.build_seconds << " s\n" << std::defaultfloat;
  os << "  inputs:";
  for (const auto& info : e.inputs()) os << " " << info.name << " " << inputs.at(info.name).type_str();
  os << "\n  " << kiln::cpu_threads() << " CPU thread(s), " << a.warmup << " warm-up run(s), " << ms.size() << " timed run(s) in " << std::setprecision(4)
     << total_s * 1000.0 << " ms\n"
     << "  latency (ms): p50 " << p50 << "  p90 " << p90 << "  p99 " << p99 << "  mean " << mean << "  min "
     << sorted.front() << "  max " << sorted.back() << "  stddev " << stddev << "\n"
     << std::fixed << std::setprecision(1) << "  throughput:   " << ips << " inferences/s, " << sps
     << " samples/s (batch " << batch << ")\n";
  return 0;
}

}  // namespace

Command register_bench(CLI::App& parent) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub = parent.add_subcommand("bench", "Time a plan (or an ONNX model built on the fly) on random inputs");
  BenchArgs& a = *args;
  sub->add_option("file", a.path, "Plan file, or ONNX model (.onnx) to build on the fly")->required();
  sub->add_option("--warmup", a.warmup, "Untimed runs first (default 10)")->check(CLI::NonNegativeNumber);
  sub->add_option("--iterations", a.iterations, "At least this many timed runs (default 50)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--duration", a.duration, "And keep timing for at least this many seconds (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--shapes", a.shapes, "Input shapes, e.g. x:8x3x224x224 (default: profile 0's opt)")
      ->allow_extra_args(false);
  sub->add_option("--seed", a.seed, "Seed of the random inputs (default 0)");
  sub->add_option("--int-range", a.int_range, "Random integer inputs from [LO, HI) (default 0:10)");
  sub->add_option("--threads", a.threads, "CPU threads (default: KILN_CPU_THREADS, else the hardware threads)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--json", a.json_path,
                  "Print one JSON object instead of text; with FILE, write it there (and print text as well)")
      ->expected(0, 1);
  sub->add_flag("--layers", a.layers,
                "Per-layer profile: each node's median time and share (CUDA engines: CUDA events, no CUDA graphs)");
  sub->add_option("--chart", a.chart, "--layers: write an SVG bar chart of the slowest layers to FILE");
  sub->add_option("--top", a.top, "--layers: rows in the table and bars in the chart (default 25; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--cuda-graphs", a.cuda_graphs, "CUDA engines: replay each input shape's run as a CUDA graph");
  add_build_options(sub, a.b, false);
  return {sub, [args, sub] { return run_bench(*args, *sub); }};
}

}  // namespace kiln_cli
