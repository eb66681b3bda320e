// The builder's timing cache: which tactic won for a node signature on a target, and how long it took.
// File format (JSON, docs/backend.md): {"format": "kiln-timing-cache", "version": 1, "entries": [{"target",
// "signature", "tactic", "time_us", "candidates"}, ...]}. Loaded if present; merged and written back atomically
// under "<path>.lock"; a corrupt or foreign file is ignored with a warning, never fatal.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <utility>

#include "ir/graph.h"
#include "kiln/builder.h"

namespace kiln::builder {

struct TimingEntry {
  std::string tactic;
  double time_us = -1;  // median measured time; -1 when chosen without timing (a single candidate, or heuristic)
  int candidates = 1;   // how many tactics competed
  bool timed() const { return time_us >= 0; }
  bool operator==(const TimingEntry&) const = default;
};

class TimingCache {
 public:
  static constexpr const char* kFormat = "kiln-timing-cache";
  static constexpr int kVersion = 1;

  // A missing file is an empty cache. A corrupt or foreign file reads as empty, with a warning; `status` (if given)
  // receives what happened ("12 entries", "no file", "ignored: ..."). Never throws.
  static TimingCache load(const std::string& path, std::string* status = nullptr);
  // InvalidArgument when `text` is not a timing cache of this format and version.
  static TimingCache parse(const std::string& text, const std::string& origin);
  std::string serialize() const;

  const TimingEntry* lookup(const std::string& target, const std::string& signature) const;
  void record(const std::string& target, const std::string& signature, const TimingEntry& e);
  // Adds `other`'s entries. Where both have one: a timed entry beats an untimed one, the faster of two timed ones
  // wins, otherwise this cache's entry stays.
  void merge(const TimingCache& other);
  size_t size() const { return entries_.size(); }

  // Under the lock file "<path>.lock": re-reads the file (ignoring it when corrupt or foreign), merges this cache
  // into it and writes the result atomically. Returns false, with a warning, on any failure; never throws.
  bool save_merged(const std::string& path) const;

 private:
  std::map<std::pair<std::string, std::string>, TimingEntry> entries_;  // (target, signature) -> entry
};

// The tactics steps' result (per profile, per node of `g`): node.tactic becomes profile 0's choice, and `per_profile`
// is cleared when every profile chose alike (the engine then stores the single-tactic form; EngineImpl's
// profile_tactics).
void set_profile_tactics(ir::Graph& g, std::vector<std::vector<std::string>>& per_profile);

// A node's tactic signature: op, domain, opset, input dtypes and shapes, attributes, layout.
std::string tactic_signature(const ir::Graph& g, const ir::Node& n);
// The timing target: "cpu:<CPU model> (<N> threads)" or "cuda:<GPU name> (sm_XX), cuBLASLt <v>, cuDNN <v>", so
// timings never cross machines of another kind, CPU thread counts or CUDA library versions.
std::string timing_target(Target target, int device);

}  // namespace kiln::builder
