// What one build() did, step by step: the backend's report.json (AITune's telemetry record) and build.log.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "backend/memory_monitor.h"
#include "backend/nvtx.h"
#include "backend/python_json.h"
#include "util/log.h"

namespace kiln::backend {

class BuildRecorder {
 public:
  // `memory_device`: CUDA ordinal whose memory is sampled, -1 for host only.
  BuildRecorder(const std::string& describe, int memory_device);

  // Runs `f(fields)` as the step `name`: an NVTX range "build: <name>", a build.log line, and a report entry
  // {"step", "success", "duration_s", "peak_rss_bytes", ...fields}. Rethrows what `f` throws, recorded as failed.
  template <class F>
  void step(const std::string& name, F&& f) {
    NvtxRange range("build: " + name, NvtxColor::Step);
    begin_step(name);
    pyjson::Json fields = pyjson::Json::object();
    try {
      f(fields);
    } catch (const std::exception& e) {
      end_step(name, fields, false, e.what());
      throw;
    }
    end_step(name, fields, true, "");
  }
  // A line in build.log (time-stamped).
  void note(const std::string& line);
  // Top-level report fields (set before report()).
  pyjson::Json& fields() { return top_; }
  double elapsed_s() const;
  int64_t peak_rss() const { return peak_rss_; }
  int64_t peak_device() const { return peak_device_; }

  // report.json (indent 2) and build.log text.
  std::string report(bool success, const std::string& exception);
  std::string log_text();

 private:
  void begin_step(const std::string& name);
  void end_step(const std::string& name, pyjson::Json& fields, bool ok, const std::string& error);
  void drain_captured();

  std::chrono::steady_clock::time_point start_, step_start_;
  detail::LogCapture capture_;
  size_t captured_ = 0;
  MemorySampler sampler_;
  int memory_device_;
  int64_t peak_rss_ = -1, peak_device_ = -1;
  pyjson::Json top_ = pyjson::Json::object();
  pyjson::Json steps_ = pyjson::Json::array();
  std::vector<std::string> log_;
};

}  // namespace kiln::backend
