#include "base/log.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

namespace monolake {

namespace detail {
std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_access_log_on{true};
}  // namespace detail

namespace {
// The access log's descriptor. A file target keeps one descriptor number for its whole life:
// a reopen dup2()s the new file onto it, so writers never see a closed or reused number.
std::mutex g_access_mutex;
std::atomic<int> g_access_fd{STDERR_FILENO};
AccessLogTarget g_access_target = AccessLogTarget::kStderr;
std::string g_access_path;

int open_append(const std::string& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 && error) *error = "cannot open " + path + ": " + std::strerror(errno);
  return fd;
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc;
  gmtime_r(&secs, &utc);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", stamp, millis);
}
}  // namespace

bool set_access_log(AccessLogTarget target, const std::string& path, std::string* error) {
  std::lock_guard<std::mutex> lock(g_access_mutex);
  if (target == AccessLogTarget::kFile) {
    if (g_access_target == AccessLogTarget::kFile && path == g_access_path) return true;
    const int fd = open_append(path, error);
    if (fd < 0) return false;
    if (g_access_target == AccessLogTarget::kFile) {
      ::dup2(fd, g_access_fd.load());  // same number, new file
      ::close(fd);
    } else {
      g_access_fd.store(fd);
    }
    g_access_path = path;
  } else if (g_access_target == AccessLogTarget::kFile) {
    // Leaving a file: point its number at stderr rather than closing it under a writer.
    ::dup2(STDERR_FILENO, g_access_fd.load());
  }
  if (target == AccessLogTarget::kStderr && g_access_target != AccessLogTarget::kFile) {
    g_access_fd.store(STDERR_FILENO);
  }
  g_access_target = target;
  detail::g_access_log_on.store(target != AccessLogTarget::kOff);
  return true;
}

bool reopen_access_log(std::string* error) {
  std::lock_guard<std::mutex> lock(g_access_mutex);
  if (g_access_target != AccessLogTarget::kFile) return true;
  const int fd = open_append(g_access_path, error);
  if (fd < 0) return false;
  ::dup2(fd, g_access_fd.load());
  ::close(fd);
  return true;
}

void write_access_line(std::string_view message) {
  std::string line = timestamp();
  line.push_back(' ');
  line.append(message);
  line.push_back('\n');
  ssize_t ignored = ::write(g_access_fd.load(std::memory_order_relaxed), line.data(), line.size());
  (void)ignored;
}

void set_log_level(LogLevel level) {
  detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel log_level() { return static_cast<LogLevel>(detail::g_log_level.load()); }

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "error") return LogLevel::kError;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "info") return LogLevel::kInfo;
  if (name == "debug") return LogLevel::kDebug;
  return std::nullopt;
}

static const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kDebug:
      return "DEBUG";
  }
  return "?";
}

void write_log_line(LogLevel level, std::string_view message) {
  std::string line = timestamp();
  line.push_back(' ');
  line.append(level_name(level));
  line.push_back(' ');
  line.append(message);
  line.push_back('\n');
  // One write per line so lines from several threads do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace monolake
