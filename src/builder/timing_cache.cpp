#include "builder/timing_cache.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/device.h"
#include "util/error.h"
#include "util/file_lock.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/sha256.h"
#if KILN_WITH_CUDA
#include "runtime/cuda/tactic_select.h"
#endif

namespace kiln::builder {
namespace timing_cache_impl {

using Json = nlohmann::ordered_json;

// Wins when `a` should replace `b` in a merge.
bool better(const TimingEntry& a, const TimingEntry& b) {
  if (a.timed() != b.timed()) return a.timed();
  return a.timed() && a.time_us < b.time_us;
}

std::string attr_str(const ir::Attr& a) {
  std::ostringstream os;
  if (const auto* i = std::get_if<int64_t>(&a)) {
    os << *i;
  } else if (const auto* f = std::get_if<float>(&a)) {
    os << *f;
  } else if (const auto* s = std::get_if<std::string>(&a)) {
    os << '"' << *s << '"';
  } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a)) {
    os << '[';
    for (size_t k = 0; k < is->size(); ++k) os << (k ? "," : "") << (*is)[k];
    os << ']';
  } else if (const auto* fs = std::get_if<std::vector<float>>(&a)) {
    os << '[';
    for (size_t k = 0; k < fs->size(); ++k) os << (k ? "," : "") << (*fs)[k];
    os << ']';
  } else if (const auto* ss = std::get_if<std::vector<std::string>>(&a)) {
    os << '[';
    for (size_t k = 0; k < ss->size(); ++k) os << (k ? "," : "") << '"' << (*ss)[k] << '"';
    os << ']';
  } else if (const auto* t = std::get_if<Tensor>(&a)) {
    os << "tensor " << t->type_str() << " sha256:" << (t->empty() ? "-" : util::sha256_hex(t->data(), t->nbytes()).substr(0, 16));
  } else {
    os << "graph";
  }
  return os.str();
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      if (c != std::string::npos) {
        std::string v = line.substr(c + 1);
        size_t b = v.find_first_not_of(' ');
        return b == std::string::npos ? "unknown" : v.substr(b);
      }
    }
  return "unknown";
}

}  // namespace timing_cache_impl

TimingCache TimingCache::parse(const std::string& text, const std::string& origin) {
  using timing_cache_impl::Json;
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    KILN_THROW(InvalidArgument, origin << ": not a timing cache (not JSON: " << e.what() << ")");
  }
  if (!j.is_object() || j.value("format", "") != kFormat)
    KILN_THROW(InvalidArgument, origin << ": not a kiln timing cache (format is not \"" << kFormat << "\")");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != kVersion)
    KILN_THROW(InvalidArgument, origin << ": timing cache version " << (j.contains("version") ? j["version"].dump() : "?")
                                       << ", this kiln reads version " << kVersion);
  if (!j.contains("entries") || !j["entries"].is_array())
    KILN_THROW(InvalidArgument, origin << ": timing cache has no \"entries\" list");
  TimingCache c;
  for (const auto& e : j["entries"]) {
    if (!e.is_object() || !e.contains("target") || !e["target"].is_string() || !e.contains("signature") ||
        !e["signature"].is_string() || !e.contains("tactic") || !e["tactic"].is_string() || !e.contains("time_us") ||
        !e["time_us"].is_number() || !e.contains("candidates") || !e["candidates"].is_number_integer())
      KILN_THROW(InvalidArgument, origin << ": malformed timing cache entry " << e.dump());
    TimingEntry t{e["tactic"].get<std::string>(), e["time_us"].get<double>(), e["candidates"].get<int>()};
    c.entries_[{e["target"].get<std::string>(), e["signature"].get<std::string>()}] = t;
  }
  return c;
}

TimingCache TimingCache::load(const std::string& path, std::string* status) {
  auto set = [&](const std::string& s) {
    if (status) *status = s;
  };
  if (!util::file_exists(path)) {
    set("no file");
    return {};
  }
  try {
    TimingCache c = parse(util::read_file(path), path);
    set(std::to_string(c.size()) + " entries");
    return c;
  } catch (const Error& e) {
    KILN_WARN("timing cache ignored: " << e.what());
    set(std::string("ignored: ") + e.what());
    return {};
  }
}

std::string TimingCache::serialize() const {
  using timing_cache_impl::Json;
  Json j = Json::object();
  j["format"] = kFormat;
  j["version"] = kVersion;
  Json list = Json::array();
  for (const auto& [k, e] : entries_) {
    Json o = Json::object();
    o["target"] = k.first;
    o["signature"] = k.second;
    o["tactic"] = e.tactic;
    o["time_us"] = e.time_us;
    o["candidates"] = e.candidates;
    list.push_back(o);
  }
  j["entries"] = list;
  return j.dump(1) + "\n";
}

const TimingEntry* TimingCache::lookup(const std::string& target, const std::string& signature) const {
  auto it = entries_.find({target, signature});
  return it == entries_.end() ? nullptr : &it->second;
}

void TimingCache::record(const std::string& target, const std::string& signature, const TimingEntry& e) {
  entries_[{target, signature}] = e;
}

void TimingCache::merge(const TimingCache& other) {
  for (const auto& [k, e] : other.entries_) {
    auto it = entries_.find(k);
    if (it == entries_.end())
      entries_.emplace(k, e);
    else if (timing_cache_impl::better(e, it->second))
      it->second = e;
  }
}

bool TimingCache::save_merged(const std::string& path) const {
  try {
    util::FileLock lock(path + ".lock", 30.0);
    TimingCache merged;
    if (util::file_exists(path)) {
      try {
        merged = parse(util::read_file(path), path);
      } catch (const Error& e) {
        KILN_WARN("timing cache: replacing an unreadable file: " << e.what());
      }
    }
    merged.merge(*this);
    util::write_file_atomic(path, merged.serialize());
    KILN_DEBUG("timing cache: wrote " << merged.size() << " entries to '" << path << "'");
    return true;
  } catch (const std::exception& e) {
    KILN_WARN("timing cache not saved to '" << path << "': " << e.what());
    return false;
  }
}

std::string tactic_signature(const ir::Graph& g, const ir::Node& n) {
  std::ostringstream os;
  os << n.op_type;
  if (!n.domain.empty()) os << "@" << n.domain;
  os << " opset " << n.opset << " in";
  for (const auto& in : n.inputs) {
    os << " ";
    if (in.empty()) {
      os << "-";
      continue;
    }
    auto c = g.initializers.find(in);
    if (c != g.initializers.end()) {
      os << "const " << c->second.type_str();
    } else if (const ir::ValueType* t = g.type_of(in)) {
      os << t->str();
    } else {
      os << "?";
    }
  }
  os << " attrs";
  for (const auto& [k, a] : n.attrs) os << " " << k << "=" << timing_cache_impl::attr_str(a);
  os << " layout default";
  return os.str();
}

std::string timing_target(Target target, int device) {
  if (target == Target::Cpu) {
    // The thread count is part of the target: a tactic that wins on one thread may lose on eight.
    static const std::string cpu = "cpu:" + timing_cache_impl::cpu_model_name();
    return cpu + " (" + std::to_string(cpu_threads()) + (cpu_threads() == 1 ? " thread)" : " threads)");
  }
  // The GPU and the library versions: an algorithm's speed, and whether a "cublaslt#<algo>" variant runs at all,
  // depend on both.
  std::string libs;
#if KILN_WITH_CUDA
  libs = ", " + runtime::cuda::cuda_library_versions();
#endif
  try {
    return "cuda:" + cuda_device_name(device) + libs;
  } catch (const Error&) {
    return "cuda:" + std::to_string(device) + libs;
  }
}

void set_profile_tactics(ir::Graph& g, std::vector<std::vector<std::string>>& per_profile) {
  if (per_profile.empty()) return;
  for (const auto& per : per_profile)
    if (per.size() != g.nodes.size())
      KILN_THROW(InvalidState, "tactics: a per-profile list has " << per.size() << " tactics for " << g.nodes.size()
                                                                  << " nodes");
  bool alike = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    g.nodes[i].tactic = per_profile[0][i];
    for (const auto& per : per_profile) alike = alike && per[i] == per_profile[0][i];
  }
  if (alike) per_profile.clear();
}

}  // namespace kiln::builder
