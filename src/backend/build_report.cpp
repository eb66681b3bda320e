#include "backend/build_report.h"

#include <cstdio>

#include "kiln/version.h"

namespace kiln::backend {

BuildRecorder::BuildRecorder(const std::string& describe, int memory_device)
    : start_(std::chrono::steady_clock::now()),
      step_start_(start_),
      capture_(LogLevel::Info),
      sampler_(memory_device, 5),
      memory_device_(memory_device) {
  sampler_.enter();
  note("kiln " + std::string(version()) + " (build " + build_id() + "): building " + describe);
}

double BuildRecorder::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void BuildRecorder::note(const std::string& line) {
  drain_captured();
  char ts[32];
  std::snprintf(ts, sizeof ts, "[%9.3f s] ", elapsed_s());
  log_.push_back(ts + line);
}

void BuildRecorder::drain_captured() {
  const auto& lines = capture_.lines();
  while (captured_ < lines.size()) {
    char ts[32];
    std::snprintf(ts, sizeof ts, "[%9.3f s] ", elapsed_s());
    log_.push_back(std::string(ts) + "kiln " + lines[captured_++]);
  }
}

void BuildRecorder::begin_step(const std::string& name) {
  note("step '" + name + "' started");
  sampler_.reset_peak();
  step_start_ = std::chrono::steady_clock::now();
}

void BuildRecorder::end_step(const std::string& name, pyjson::Json& fields, bool ok, const std::string& error) {
  sampler_.sample_now();
  const double dur = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start_).count();
  const int64_t rss = sampler_.peak_rss(), dev = sampler_.peak_device();
  peak_rss_ = std::max(peak_rss_, rss);
  peak_device_ = std::max(peak_device_, dev);
  pyjson::Json o = pyjson::Json::object();
  o["step"] = name;
  o["success"] = ok;
  o["duration_s"] = dur;
  o["peak_rss_bytes"] = rss;
  o["peak_device_bytes"] = dev >= 0 ? pyjson::Json(dev) : pyjson::Json(nullptr);
  if (!ok) o["exception"] = error;
  for (const auto& [k, v] : fields.items()) o[k] = v;
  steps_.push_back(o);
  char buf[160];
  std::snprintf(buf, sizeof buf, "step '%s' %s in %.3f s, peak RSS %.1f MiB", name.c_str(), ok ? "done" : "FAILED", dur,
                static_cast<double>(rss) / 1048576.0);
  note(buf + (ok ? std::string() : ": " + error));
}

std::string BuildRecorder::report(bool success, const std::string& exception) {
  pyjson::Json r = pyjson::Json::object();
  for (const auto& [k, v] : top_.items()) r[k] = v;
  r["success"] = success;
  r["exception"] = success ? pyjson::Json(nullptr) : pyjson::Json(exception);
  r["duration_s"] = elapsed_s();
  r["build_results"] = steps_;
  pyjson::Json mem = pyjson::Json::object();
  mem["peak_rss_bytes"] = peak_rss_;
  mem["peak_device_bytes"] = peak_device_ >= 0 ? pyjson::Json(peak_device_) : pyjson::Json(nullptr);
  mem["process_peak_rss_bytes"] = process_peak_rss_bytes();
  r["memory"] = mem;
  return pyjson::dumps(r, 2) + "\n";
}

std::string BuildRecorder::log_text() {
  drain_captured();
  std::string s;
  for (const auto& l : log_) s += l + "\n";
  return s;
}

}  // namespace kiln::backend
