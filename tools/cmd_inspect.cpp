// kiln inspect PLAN|MODEL [--json]
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>

#include "common.h"

namespace kiln_cli {
namespace {

using json = nlohmann::ordered_json;

struct InspectArgs {
  std::string path;
  bool json = false;
};

json dims_json(const kiln::TensorInfo& t) {
  json d = json::array();
  for (const kiln::Dim& dim : t.dims) {
    if (dim.is_static())
      d.push_back(dim.value);
    else
      d.push_back(dim.symbol.empty() ? "?" : dim.symbol);
  }
  return d;
}

json infos_json(const std::vector<kiln::TensorInfo>& v) {
  json a = json::array();
  for (const auto& t : v)
    a.push_back({{"name", t.name}, {"dtype", kiln::dtype_name(t.dtype)}, {"dims", dims_json(t)}, {"type", t.str()}});
  return a;
}

void print_infos(std::ostream& os, const char* title, const std::vector<kiln::TensorInfo>& v) {
  os << "  " << title << ":\n";
  size_t w = 0;
  for (const auto& t : v) w = std::max(w, t.name.size());
  for (const auto& t : v)
    os << "    " << std::left << std::setw(static_cast<int>(w)) << t.name << "  " << t.str() << "\n";
}

void print_ops(std::ostream& os, const std::map<std::string, size_t>& ops) {
  os << "  ops:\n";
  for (const auto& [op, n] : ops) os << "    " << std::left << std::setw(20) << op << " " << n << "\n";
}

// FLOPs at profile 0's opt shapes: the total, and the GEMM-shaped part by compute dtype with the share that runs
// in float16 / bfloat16 (docs/precision.md).
struct FlopSummary {
  int64_t total = 0, gemm = 0, gemm_low = 0;
  size_t unknown = 0;
  std::map<std::string, int64_t> gemm_by_dtype;
};

FlopSummary summarize_flops(const std::vector<kiln::NodeInfo>& nodes) {
  FlopSummary f;
  for (const auto& n : nodes) {
    if (n.flops < 0) {
      ++f.unknown;
      continue;
    }
    f.total += n.flops;
    if (!n.gemm_like) continue;
    f.gemm += n.flops;
    f.gemm_by_dtype[n.dtype] += n.flops;
    if (n.dtype == "float16" || n.dtype == "bfloat16") f.gemm_low += n.flops;
  }
  return f;
}

json flops_json(const FlopSummary& f) {
  json j;
  j["shapes"] = "profile 0 opt";
  j["total"] = f.total;
  j["unknown_nodes"] = f.unknown;
  j["gemm_like"] = {{"total", f.gemm},
                    {"by_dtype", f.gemm_by_dtype},
                    {"low_precision_share", f.gemm > 0 ? json(double(f.gemm_low) / double(f.gemm)) : json(nullptr)}};
  return j;
}

std::string human_flops(int64_t v) {
  if (v < 0) return "?";
  const char* units[] = {"", "K", "M", "G", "T"};
  double d = double(v);
  int u = 0;
  while (d >= 1000 && u < 4) d /= 1000, ++u;
  std::ostringstream os;
  os << std::setprecision(u == 0 ? 0 : 3) << (u == 0 ? std::fixed : std::defaultfloat) << d << units[u];
  return os.str();
}

// Nodes whose tactic differs between profiles.
size_t differing_nodes(const std::vector<kiln::NodeInfo>& nodes) {
  size_t n = 0;
  for (const auto& ni : nodes) {
    bool differs = false;
    for (const auto& t : ni.profile_tactics) differs |= t != ni.tactic;
    n += differs;
  }
  return n;
}

// Profile 0's tactic, then "[pN: tactic]" for each profile that runs another one.
std::string tactic_cell(const kiln::NodeInfo& n) {
  std::string s = n.tactic;
  for (size_t p = 1; p < n.profile_tactics.size(); ++p)
    if (n.profile_tactics[p] != n.tactic) s += " [p" + std::to_string(p) + ": " + n.profile_tactics[p] + "]";
  return s;
}

int inspect_plan(const InspectArgs& a) {
  kiln::Engine e = kiln::Engine::load(a.path);
  std::vector<kiln::NodeInfo> nodes = e.nodes();
  std::map<std::string, size_t> ops;
  for (const auto& n : nodes) ops[n.op]++;
  const size_t size = file_size_or_zero(a.path);
  if (a.json) {
    json j;
    j["kind"] = "plan";
    j["path"] = a.path;
    j["file_size"] = size;
    j["kiln_version"] = e.kiln_version();
    j["build_id"] = e.build_id();
    j["target"] = e.target();
    j["precision"] = e.precision();
    j["weights_bytes"] = e.weights_bytes();
    const kiln::MemoryInfo mem = e.memory_info();
    j["memory"] = {{"planned_arena_bytes", mem.planned_arena_bytes},
                   {"activation_bytes", mem.activation_bytes},
                   {"workspace_bytes", mem.workspace_bytes},
                   {"host_fallback_nodes", mem.host_fallback_nodes}};
    j["inputs"] = infos_json(e.inputs());
    j["outputs"] = infos_json(e.outputs());
    json profiles = json::array();
    for (const auto& p : e.profiles()) {
      json pj = json::object();
      for (const auto& [name, r] : p.shapes()) pj[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
      profiles.push_back(pj);
    }
    j["profiles"] = profiles;
    j["op_counts"] = ops;
    j["node_count"] = nodes.size();
    json nj = json::array();
    for (const auto& n : nodes) {
      json node = {{"name", n.name},
                   {"op", n.op},
                   {"dtype", n.dtype},
                   {"tactic", n.tactic},
                   {"flops", n.flops >= 0 ? json(n.flops) : json(nullptr)},
                   {"gemm_like", n.gemm_like}};
      // One tactic per profile (profile_tactics[p]); absent when every profile runs "tactic".
      if (!n.profile_tactics.empty()) node["profile_tactics"] = n.profile_tactics;
      nj.push_back(node);
    }
    j["per_profile_tactics"] = differing_nodes(nodes);
    j["nodes"] = nj;
    j["flops"] = flops_json(summarize_flops(nodes));
    j["inspected_by"] = {{"kiln_version", kiln::version()}, {"build_id", kiln::build_id()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::ostream& os = std::cout;
  os << "plan " << a.path << "\n"
     << "  size:         " << human_bytes(size) << "\n"
     << "  kiln version: " << e.kiln_version() << "\n"
     << "  build id:     " << e.build_id() << "\n"
     << "  target:       " << e.target() << "\n"
     << "  precision:    " << e.precision() << "\n"
     << "  weights:      " << human_bytes(e.weights_bytes()) << "\n";
  if (e.target().rfind("cuda:", 0) == 0) {
    const kiln::MemoryInfo mem = e.memory_info();
    os << "  arena:        " << human_bytes(mem.planned_arena_bytes) << " planned per context (activations "
       << human_bytes(mem.activation_bytes) << " summed without reuse, workspace " << human_bytes(mem.workspace_bytes)
       << ")\n"
       << "  host nodes:   " << mem.host_fallback_nodes << " of " << nodes.size()
       << " nodes run with the host fallback\n";
  }
  print_engine_io(os, e);
  print_ops(os, ops);
  const FlopSummary f = summarize_flops(nodes);
  os << "  flops:        " << human_flops(f.total) << " per run at profile 0 opt shapes";
  if (f.unknown) os << " (" << f.unknown << " node(s) unknown)";
  os << "\n";
  if (f.gemm > 0)
    os << "  GEMM/conv:    " << human_flops(f.gemm) << ", " << std::fixed << std::setprecision(1)
       << 100.0 * double(f.gemm_low) / double(f.gemm) << "% in float16/bfloat16\n"
       << std::defaultfloat;
  size_t wn = 4, wo = 2, wd = 5;
  for (const auto& n : nodes) {
    wn = std::max(wn, n.name.size());
    wo = std::max(wo, n.op.size());
    wd = std::max(wd, n.dtype.size());
  }
  const int wi = static_cast<int>(std::to_string(nodes.size()).size());
  auto row = [&](const std::string& i, const std::string& n, const std::string& o, const std::string& d,
                 const std::string& fl, const std::string& t) {
    os << "    " << std::right << std::setw(wi) << i << "  " << std::left << std::setw(static_cast<int>(wn)) << n
       << "  " << std::setw(static_cast<int>(wo)) << o << "  " << std::setw(static_cast<int>(wd)) << d << "  "
       << std::right << std::setw(7) << fl << "  " << std::left << t << "\n";
  };
  const size_t differ = differing_nodes(nodes);
  if (differ)
    os << "  tactics:      per profile: " << differ << " node(s) run another tactic under some profile (shown as "
       << "\"[pN: tactic]\" after profile 0's)\n";
  os << "  nodes (" << nodes.size() << "):\n";
  row("#", "name", "op", "dtype", "flops", "tactic");
  for (size_t i = 0; i < nodes.size(); ++i)
    row(std::to_string(i), nodes[i].name, nodes[i].op, nodes[i].dtype, human_flops(nodes[i].flops),
        tactic_cell(nodes[i]));
  return 0;
}

int inspect_model(const InspectArgs& a) {
  kiln::Model m = kiln::Model::load(a.path);
  const size_t size = file_size_or_zero(a.path);
  if (a.json) {
    json j;
    j["kind"] = "model";
    j["path"] = a.path;
    j["file_size"] = size;
    j["ir_version"] = m.ir_version();
    j["opset"] = m.opset();
    j["producer"] = m.producer();
    j["sha256"] = m.content_hash();
    j["inputs"] = infos_json(m.inputs());
    j["outputs"] = infos_json(m.outputs());
    j["node_count"] = m.node_count();
    j["op_counts"] = m.op_counts();
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::ostream& os = std::cout;
  os << "model " << a.path << "\n"
     << "  size:       " << human_bytes(size) << "\n"
     << "  ir_version: " << m.ir_version() << "\n"
     << "  opset:      " << m.opset() << "\n"
     << "  producer:   " << (m.producer().empty() ? "(none)" : m.producer()) << "\n"
     << "  sha256:     " << m.content_hash() << "\n";
  print_infos(os, "inputs", m.inputs());
  print_infos(os, "outputs", m.outputs());
  os << "  nodes:      " << m.node_count() << "\n";
  print_ops(os, m.op_counts());
  return 0;
}

}  // namespace

void print_engine_io(std::ostream& os, const kiln::Engine& e) {
  print_infos(os, "inputs", e.inputs());
  print_infos(os, "outputs", e.outputs());
  os << "  profiles:\n";
  for (size_t i = 0; i < e.profiles().size(); ++i) os << "    [" << i << "] " << e.profiles()[i].str() << "\n";
}

Command register_inspect(CLI::App& parent) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* sub = parent.add_subcommand("inspect", "Describe a plan (nodes, tactics, profiles) or an ONNX model");
  sub->add_option("file", args->path, "Plan file, or ONNX model (.onnx)")->required();
  sub->add_flag("--json", args->json, "Print one JSON object instead of text");
  return {sub, [args] {
            require_file(args->path);
            return is_model_path(args->path) ? inspect_model(*args) : inspect_plan(*args);
          }};
}

}  // namespace kiln_cli
