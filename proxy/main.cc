// monolake: the proxy binary.
//
//   monolake -c FILE            serve FILE's configuration in the foreground
//   monolake --check -c FILE    validate FILE (and open its certificate and key files)
//   monolake                    serve the embedded default configuration
//
// Signals (see docs/operations.md): SIGHUP re-reads the config file; SIGINT/SIGTERM stop
// accepting and let open connections finish (up to [runtime] drain_timeout_sec), then exit 0;
// a second SIGINT/SIGTERM during the drain exits at once with status 1.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "base/log.h"
#include "proxy/admin/admin.h"
#include "proxy/binary_upgrade/control.h"
#include "proxy/config/config.h"
#include "proxy/server/server.h"
#include "runtime/options.h"

namespace {

using monolake::Result;
namespace config = monolake::proxy::config;
namespace server = monolake::proxy::server;

constexpr const char* kVersion = "0.1.0";

// Served when no -c is given: an HTTP listener on 127.0.0.1:8080 answering from a built-in
// route, so something answers at once.
constexpr const char* kDefaultConfig = R"toml(
[runtime]
worker_threads = 1

[servers.demo]
name = "demo"
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8080" }

[[servers.demo.routes]]
path = "/{*rest}"
return = { status = 200, body = "Hello from monolake. Proxy something: see docs/config.md\n", headers = { content-type = "text/plain" } }

[[servers.demo.routes]]
path = "/"
return = { status = 200, body = "Hello from monolake. Proxy something: see docs/config.md\n", headers = { content-type = "text/plain" } }
)toml";

struct Options {
  std::string config_file;
  bool check = false;
  bool version = false;
  bool upgrade = false;
  std::string log_level = "info";
};

Result<config::Config> load(const Options& options) {
  if (!options.config_file.empty()) return config::load_config_file(options.config_file);
  char cwd[4096];
  const std::string base = ::getcwd(cwd, sizeof cwd) ? cwd : "";
  return config::parse_config(kDefaultConfig, "(embedded default config)", base);
}

int check(const Options& options) {
  Result<config::Config> loaded = load(options);
  if (loaded) {
    if (auto files = config::check_files(*loaded); !files) loaded = std::move(files).error();
  }
  if (loaded) {
    if (auto supported = server::check_supported(*loaded); !supported) {
      loaded = std::move(supported).error();
    }
  }
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message().c_str());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}

void print_banner(const server::Proxy& proxy, bool embedded) {
  std::printf("monolake %s: %zu worker(s) on %s\n", kVersion, proxy.workers(),
              std::string(monolake::runtime::backend_kind_name(proxy.backend())).c_str());
  for (const config::ServerConfig& s : proxy.config().servers) {
    std::string upstreams;
    for (const config::RouteConfig& route : s.routes) {
      if (route.direct) {
        if (!upstreams.empty()) upstreams += ", ";
        upstreams += route.path + ": direct " + std::to_string(route.direct->status);
      }
      for (const config::Upstream& u : route.upstreams) {
        if (!upstreams.empty()) upstreams += ", ";
        if (s.proxy_type == config::ProxyType::kHttp) upstreams += route.path + ": ";
        upstreams += u.endpoint.kind == config::Endpoint::Kind::kUri
                         ? u.endpoint.uri.text
                         : u.endpoint.address.to_string();
      }
    }
    std::printf("listening: server %s (%s%s) on %s -> %s\n", s.name.c_str(), s.kind.c_str(),
                s.tls ? "+tls" : "", s.listener.address.to_string().c_str(), upstreams.c_str());
  }
  if (embedded) {
    std::printf(
        "embedded default config; try:\n"
        "  curl -i http://127.0.0.1:8080/\n"
        "Ctrl-C stops. Your own configuration: monolake -c FILE (docs/config.md).\n");
  }
  std::fflush(stdout);
}

// Points the access log where [log] says. On failure the previous target stays.
Result<void> apply_log_config(const config::Config& config) {
  using Target = monolake::AccessLogTarget;
  const auto& log = config.log;
  const Target target = log.access_log == config::LogConfig::AccessLog::kOff    ? Target::kOff
                        : log.access_log == config::LogConfig::AccessLog::kFile ? Target::kFile
                                                                                : Target::kStderr;
  std::string error;
  if (!monolake::set_access_log(target, log.access_log_path, &error)) {
    return monolake::Error(monolake::ErrorCode::kIo, config.source + ": log.access_log: " + error);
  }
  return monolake::ok();
}

// SIGHUP and POST /reload both come here, one at a time.
std::mutex g_control_mutex;

Result<void> reload(server::Proxy& proxy, const Options& options, const char* why) {
  std::lock_guard<std::mutex> lock(g_control_mutex);
  if (options.config_file.empty()) {
    ML_LOG(kWarn, "{}: running the embedded config; nothing to re-read", why);
    return monolake::Error(monolake::ErrorCode::kInvalidArgument,
                           "running the embedded config: no file to re-read");
  }
  ML_LOG(kInfo, "{}: reloading {}", why, options.config_file);
  Result<config::Config> loaded = config::load_config_file(options.config_file);
  if (loaded) {
    const bool admin_changed =
        loaded->admin.has_value() != proxy.config().admin.has_value() ||
        (loaded->admin && !(loaded->admin->listen == proxy.config().admin->listen));
    if (auto applied = proxy.reload(std::move(*loaded)); !applied) {
      loaded = std::move(applied).error();
    } else if (admin_changed) {
      ML_LOG(kWarn, "reload: [admin] changes need a restart; ignored");
    }
  }
  if (loaded) {
    if (auto log = apply_log_config(proxy.config()); !log) {
      ML_LOG(kError, "reload: {} (the access log stays where it was)", log.error().message());
    }
  }
  if (!loaded) {
    ML_LOG(kError, "reload failed; the running configuration stays in force:\n{}",
           loaded.error().message());
    return std::move(loaded).error();
  }
  ML_LOG(kInfo, "reload: {} applied", options.config_file);
  return monolake::ok();
}

// Stops accepting and waits for open connections, up to the drain timeout. A second
// SIGINT/SIGTERM exits at once.
// Stops accepting and waits for open connections, up to the drain timeout; the caller then
// stops the admin API and the workers. A second SIGINT/SIGTERM exits at once.
int drain(server::Proxy& proxy, const sigset_t& signals, int first_signal) {
  std::chrono::seconds timeout;
  {
    // From here on reloads (POST /reload, DNS refresh) are refused and the listeners stay put.
    std::lock_guard<std::mutex> lock(g_control_mutex);
    timeout = proxy.config().runtime.drain_timeout;
    ML_LOG(kInfo, "{}: draining {} connection(s), up to {} s", strsignal(first_signal),
           proxy.open_connections(), timeout.count());
    proxy.stop_accepting();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (proxy.open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    timespec tick{0, 50 * 1000 * 1000};
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      ML_LOG(kWarn, "{} again: exiting now with {} connection(s) open", strsignal(sig),
             proxy.open_connections());
      std::fflush(stderr);
      std::_Exit(1);
    }
    if (sig == SIGHUP) ML_LOG(kWarn, "SIGHUP while draining: ignored");
    if (sig == SIGUSR1) (void)monolake::reopen_access_log(nullptr);
  }
  const size_t left = proxy.open_connections();
  if (left > 0) ML_LOG(kWarn, "drain timeout: closing {} connection(s)", left);
  return 0;
}

int serve(const Options& options) {
  // Before any thread exists: every thread inherits the mask, and the main thread takes the
  // signals synchronously with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Result<config::Config> loaded = load(options);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message().c_str());
    return 1;
  }
  if (auto log = apply_log_config(*loaded); !log) {
    std::fprintf(stderr, "%s\n", log.error().message().c_str());
    return 1;
  }
  const std::optional<std::string> control_path = loaded->runtime.control_socket;
  int upgrade_connection = -1;
  monolake::proxy::server::Handover inherited;
  if (options.upgrade) {
    if (!control_path) {
      std::fprintf(stderr,
                   "monolake: --upgrade needs [runtime] control_socket in %s (the running "
                   "process hands its sockets over there)\n",
                   loaded->source.c_str());
      return 1;
    }
    auto handover =
        monolake::proxy::binary_upgrade::request_handover(*control_path, &upgrade_connection);
    if (!handover) {
      std::fprintf(stderr, "monolake: --upgrade: %s\n", handover.error().message().c_str());
      return 1;
    }
    inherited = std::move(*handover);
  }
  // On any failure before "ready" the connection closes and the old process keeps serving.
  auto started = server::Proxy::start(std::move(*loaded), std::move(inherited));
  if (!started) {
    std::fprintf(stderr, "monolake: cannot start:\n%s\n", started.error().message().c_str());
    return 1;
  }
  server::Proxy& proxy = **started;
  std::unique_ptr<monolake::proxy::binary_upgrade::ControlServer> control;
  if (control_path) {
    monolake::proxy::binary_upgrade::ControlServer::Hooks control_hooks;
    control_hooks.handover = [&proxy] {
      std::lock_guard<std::mutex> lock(g_control_mutex);
      return proxy.handover();
    };
    // Process-directed, so the main thread's sigtimedwait takes it: the same drain as SIGTERM.
    control_hooks.on_ready = [] { ::kill(::getpid(), SIGTERM); };
    auto started_control = monolake::proxy::binary_upgrade::ControlServer::start(
        *control_path, options.upgrade, std::move(control_hooks));
    if (!started_control) {
      std::fprintf(stderr, "monolake: cannot start: %s: runtime.control_socket: %s\n",
                   proxy.config().source.c_str(), started_control.error().message().c_str());
      return 1;
    }
    control = std::move(*started_control);
  }
  std::unique_ptr<monolake::proxy::admin::AdminServer> admin;
  if (proxy.config().admin) {
    monolake::proxy::admin::Hooks hooks;
    hooks.reload = [&proxy, &options] { return reload(proxy, options, "POST /reload"); };
    hooks.config_json = [&proxy] {
      std::lock_guard<std::mutex> lock(g_control_mutex);
      return monolake::proxy::admin::config_to_json(proxy.config());
    };
    auto started_admin =
        monolake::proxy::admin::AdminServer::start(*proxy.config().admin, hooks, options.upgrade);
    if (!started_admin) {
      std::fprintf(stderr, "monolake: cannot start: %s: %s\n", proxy.config().source.c_str(),
                   started_admin.error().message().c_str());
      return 1;
    }
    admin = std::move(*started_admin);
  }
  if (upgrade_connection >= 0) {
    // Everything is up: the old process may stop accepting and drain.
    if (auto ready = monolake::proxy::binary_upgrade::confirm_ready(upgrade_connection); !ready) {
      ML_LOG(kWarn, "{}", ready.error().message());
    } else {
      ML_LOG(kInfo, "upgrade: took over from the previous process");
    }
  }
  std::unique_lock<std::mutex> banner_lock(g_control_mutex);  // the admin API is up already
  print_banner(proxy, options.config_file.empty());
  if (admin)
    std::printf("admin: http on %s (/ready, /stats, /config, POST /reload)\n",
                admin->address().c_str());
  std::fflush(stdout);
  auto next_refresh = std::chrono::steady_clock::now() + proxy.config().runtime.dns_refresh;
  banner_lock.unlock();
  while (true) {
    // Wake up at least once a second to re-resolve upstream host names when it is time.
    timespec tick{1, 0};
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig < 0) {
      std::lock_guard<std::mutex> lock(g_control_mutex);  // the admin thread may be reloading
      const auto refresh = proxy.config().runtime.dns_refresh;
      if (refresh.count() > 0 && proxy.uses_names() &&
          std::chrono::steady_clock::now() >= next_refresh) {
        next_refresh = std::chrono::steady_clock::now() + refresh;
        if (auto refreshed = proxy.refresh_names(); !refreshed) {
          ML_LOG(kWarn, "dns refresh failed; the addresses in use stay: {}",
                 refreshed.error().message());
        }
      }
      continue;
    }
    if (sig == SIGHUP) {
      (void)reload(proxy, options, "SIGHUP");
      continue;
    }
    if (sig == SIGUSR1) {
      std::string error;
      if (!monolake::reopen_access_log(&error)) ML_LOG(kError, "SIGUSR1: {}", error);
      ML_LOG(kInfo, "SIGUSR1: access log reopened");
      continue;
    }
    const int status = drain(proxy, signals, sig);
    control.reset();
    admin.reset();  // before the workers: an admin request must not reach a stopped pool
    proxy.stop();
    ML_LOG(kInfo, "stopped");
    return status;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"monolake: a layer-7 proxy on io_uring with a thread-per-core runtime"};
  app.add_option("-c,--config", options.config_file, "TOML configuration file");
  app.add_flag("--check", options.check,
               "validate the configuration (and open its certificate and key files); print ok "
               "or the errors; bind nothing");
  app.add_flag("--version", options.version, "print the version");
  app.add_flag("--upgrade", options.upgrade,
               "binary upgrade: take the listening sockets of the monolake running with this "
               "configuration (over [runtime] control_socket), then let it drain and exit");
  app.add_option("--log-level", options.log_level, "error | warn | info | debug (default info)");
  CLI11_PARSE(app, argc, argv);

  if (options.version) {
    std::printf("monolake %s\n", kVersion);
    return 0;
  }
  auto level = monolake::parse_log_level(options.log_level);
  if (!level) {
    std::fprintf(stderr, "--log-level: \"%s\" is not one of error, warn, info, debug\n",
                 options.log_level.c_str());
    return 1;
  }
  monolake::set_log_level(*level);
  if (options.check) return check(options);
  return serve(options);
}
