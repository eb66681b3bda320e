// Internal logging helpers over the public kiln/logging.h API.
#pragma once
#include <sstream>

#include "kiln/logging.h"

#define KILN_LOG(level, expr)                                  \
  do {                                                         \
    if (static_cast<int>(level) >= static_cast<int>(::kiln::log_level())) { \
      std::ostringstream kiln_log_os_;                         \
      kiln_log_os_ << expr;                                    \
      ::kiln::log(level, kiln_log_os_.str());                  \
    }                                                          \
  } while (0)
#define KILN_DEBUG(expr) KILN_LOG(::kiln::LogLevel::Debug, expr)
#define KILN_INFO(expr) KILN_LOG(::kiln::LogLevel::Info, expr)
#define KILN_WARN(expr) KILN_LOG(::kiln::LogLevel::Warning, expr)
