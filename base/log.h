// Minimal leveled logging to stderr, for the libraries' own diagnostics (which backend was
// chosen and why, accept back-off...). The proxy's access log is separate.
//
//   ML_LOG(kInfo, "runtime: using {} ({})", name, reason);
//
// Formatting uses fmt; a message below the current level costs one comparison.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

namespace monolake {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "error" | "warn" | "info" | "debug".
std::optional<LogLevel> parse_log_level(std::string_view name);
// Writes one line: "2026-11-27T05:13:54.123Z INFO message".
void write_log_line(LogLevel level, std::string_view message);

// The access log: one line per connection or request, apart from the diagnostics above. It
// goes to stderr (the default), to a file (appended; reopen_access_log() for rotation), or
// nowhere. Thread-safe; a line is one write(2), so lines never interleave.
enum class AccessLogTarget { kStderr, kFile, kOff };
// `path` matters for kFile. On failure the previous target stays.
bool set_access_log(AccessLogTarget target, const std::string& path, std::string* error);
// Reopens the file (after logrotate moved it); a no-op for stderr and off.
bool reopen_access_log(std::string* error);
// "2026-11-27T05:13:54.123Z " + message + "\n".
void write_access_line(std::string_view message);

namespace detail {
extern std::atomic<int> g_log_level;
extern std::atomic<bool> g_access_log_on;
}  // namespace detail

inline bool access_log_enabled() { return detail::g_access_log_on.load(std::memory_order_relaxed); }

inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= detail::g_log_level.load(std::memory_order_relaxed);
}

}  // namespace monolake

#define ML_LOG(level, ...)                                                               \
  do {                                                                                   \
    if (::monolake::log_enabled(::monolake::LogLevel::level)) {                          \
      ::monolake::write_log_line(::monolake::LogLevel::level, fmt::format(__VA_ARGS__)); \
    }                                                                                    \
  } while (0)
