// kiln — logging. The library never prints; it calls the sink (stderr by default).
#pragma once
#include <functional>
#include <string>

namespace kiln {

enum class LogLevel { Trace = 0, Debug = 1, Info = 2, Warning = 3, Error = 4, Off = 5 };

using LogSink = std::function<void(LogLevel, const std::string&)>;

// Messages below `level` are dropped. Default: Warning.
void set_log_level(LogLevel level);
LogLevel log_level();
// Replaces the sink; an empty function restores the default (stderr, "kiln [W] message").
void set_log_sink(LogSink sink);
void log(LogLevel level, const std::string& message);
const char* log_level_name(LogLevel level);

}  // namespace kiln
