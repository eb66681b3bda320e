#include "kiln/logging.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "util/log.h"

namespace kiln {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Warning)};
std::mutex g_mu;
LogSink& sink() {
  static LogSink s;
  return s;
}
thread_local detail::LogCapture* t_capture = nullptr;
}  // namespace

namespace detail {
LogCapture::LogCapture(LogLevel level) : level_(level), outer_(t_capture) { t_capture = this; }
LogCapture::~LogCapture() { t_capture = outer_; }
void LogCapture::add(LogLevel level, const std::string& message) {
  lines_.push_back(std::string(log_level_name(level)) + " " + message);
}
bool log_wanted(LogLevel level) {
  if (level == LogLevel::Off) return false;
  if (t_capture && static_cast<int>(level) >= static_cast<int>(t_capture->level())) return true;
  return static_cast<int>(level) >= g_level.load();
}
}  // namespace detail

const char* log_level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Trace: return "T";
    case LogLevel::Debug: return "D";
    case LogLevel::Info: return "I";
    case LogLevel::Warning: return "W";
    case LogLevel::Error: return "E";
    case LogLevel::Off: return "-";
  }
  return "?";
}

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }
void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lk(g_mu);
  sink() = std::move(s);
}
void log(LogLevel level, const std::string& message) {
  if (level == LogLevel::Off) return;
  if (t_capture && static_cast<int>(level) >= static_cast<int>(t_capture->level())) t_capture->add(level, message);
  if (static_cast<int>(level) < g_level.load()) return;
  std::lock_guard<std::mutex> lk(g_mu);
  if (sink()) {
    sink()(level, message);
  } else {
    std::fprintf(stderr, "kiln [%s] %s\n", log_level_name(level), message.c_str());
  }
}

}  // namespace kiln
