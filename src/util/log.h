// Internal logging helpers over the public kiln/logging.h API.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "kiln/logging.h"

namespace kiln::detail {

// While alive, messages this thread logs at `level` or above are also appended to lines() ("W message"),
// whatever the global level; the sink still gets only what the global level lets through. Nests (innermost wins).
class LogCapture {
 public:
  explicit LogCapture(LogLevel level);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::vector<std::string>& lines() const { return lines_; }
  void add(LogLevel level, const std::string& message);
  LogLevel level() const { return level_; }

 private:
  LogLevel level_;
  std::vector<std::string> lines_;
  LogCapture* outer_;
};

// True when a message at `level` goes anywhere: the sink (global level) or this thread's capture.
bool log_wanted(LogLevel level);

}  // namespace kiln::detail

#define KILN_LOG(level, expr)                                  \
  do {                                                         \
    if (::kiln::detail::log_wanted(level)) {                   \
      std::ostringstream kiln_log_os_;                         \
      kiln_log_os_ << expr;                                    \
      ::kiln::log(level, kiln_log_os_.str());                  \
    }                                                          \
  } while (0)
#define KILN_DEBUG(expr) KILN_LOG(::kiln::LogLevel::Debug, expr)
#define KILN_INFO(expr) KILN_LOG(::kiln::LogLevel::Info, expr)
#define KILN_WARN(expr) KILN_LOG(::kiln::LogLevel::Warning, expr)
