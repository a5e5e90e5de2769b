#include "proxy/framework/app.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "base/log.h"
#include "proxy/admin/admin.h"
#include "proxy/binary_upgrade/control.h"
#include "proxy/config/config.h"
#include "proxy/framework/control_loop.h"
#include "proxy/server/server.h"
#include "runtime/notify.h"
#include "runtime/options.h"
#include "runtime/time.h"

namespace monolake::proxy::framework {

namespace {

using namespace std::chrono_literals;
namespace server = monolake::proxy::server;

struct Options {
  std::string config_file;
  bool check = false;
  bool version = false;
  bool upgrade = false;
  std::string log_level = "info";
};

// Everything the control loop's tasks share. Touched only on the loop's thread.
struct App {
  const Options& options;
  const AppInfo& info;
  std::shared_ptr<const Registry> registry;
  std::unique_ptr<server::Proxy> proxy;
  runtime::Notify stop;  // a first SIGINT/SIGTERM
  int stop_signal = 0;
  bool draining = false;
};

Result<config::Config> load(const Options& options, const AppInfo& info, const Registry& registry) {
  if (!options.config_file.empty()) {
    return config::load_config_file(options.config_file, &registry.catalog());
  }
  char cwd[4096];
  const std::string base = ::getcwd(cwd, sizeof cwd) ? cwd : "";
  return config::parse_config(info.default_config, "(embedded default config)", base,
                              &registry.catalog());
}

int check(const Options& options, const AppInfo& info, const Registry& registry) {
  Result<config::Config> loaded = load(options, info, registry);
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

void print_banner(const App& app) {
  const server::Proxy& proxy = *app.proxy;
  std::printf("%s %s: %zu worker(s) on %s\n", app.info.name.c_str(), app.info.version.c_str(),
              proxy.workers(), std::string(runtime::backend_kind_name(proxy.backend())).c_str());
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
  if (app.options.config_file.empty() && !app.info.default_config_hint.empty()) {
    std::printf("%s", app.info.default_config_hint.c_str());
  }
  std::fflush(stdout);
}

// Points the access log where [log] says. On failure the previous target stays.
Result<void> apply_log_config(const config::Config& config) {
  using Target = AccessLogTarget;
  const auto& log = config.log;
  const Target target = log.access_log == config::LogConfig::AccessLog::kOff    ? Target::kOff
                        : log.access_log == config::LogConfig::AccessLog::kFile ? Target::kFile
                                                                                : Target::kStderr;
  std::string error;
  if (!set_access_log(target, log.access_log_path, &error)) {
    return Error(ErrorCode::kIo, config.source + ": log.access_log: " + error);
  }
  return ok();
}

// SIGHUP and POST /reload both come here, on the control loop, one at a time.
Result<void> reload(App& app, const char* why) {
  if (app.options.config_file.empty()) {
    ML_LOG(kWarn, "{}: running the embedded config; nothing to re-read", why);
    return Error(ErrorCode::kInvalidArgument, "running the embedded config: no file to re-read");
  }
  if (app.draining) {
    ML_LOG(kWarn, "{} while draining: ignored", why);
    return Error(ErrorCode::kUnsupported, "shutting down: the configuration is no longer changed");
  }
  server::Proxy& proxy = *app.proxy;
  ML_LOG(kInfo, "{}: reloading {}", why, app.options.config_file);
  Result<config::Config> loaded =
      config::load_config_file(app.options.config_file, &app.registry->catalog());
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
  ML_LOG(kInfo, "reload: {} applied", app.options.config_file);
  return ok();
}

// Re-resolves upstream host names every [runtime] dns_refresh_sec (read anew each round, so a
// reload that changes it takes effect).
runtime::Task<void> refresh_names(App& app) {
  auto next = runtime::Runtime::current()->now() + app.proxy->config().runtime.dns_refresh;
  while (true) {
    if (!co_await runtime::sleep(1s)) co_return;
    const auto refresh = app.proxy->config().runtime.dns_refresh;
    const auto now = runtime::Runtime::current()->now();
    if (app.draining || refresh.count() == 0 || !app.proxy->uses_names() || now < next) continue;
    next = now + refresh;
    if (auto refreshed = app.proxy->refresh_names(); !refreshed) {
      ML_LOG(kWarn, "dns refresh failed; the addresses in use stay: {}",
             refreshed.error().message());
    }
  }
}

// Waits for the first SIGINT/SIGTERM, then stops accepting and waits for open connections, up
// to the drain timeout. Returns the exit status.
runtime::Task<int> serve_until_stopped(App& app) {
  if (!co_await app.stop.wait()) co_return 1;
  app.draining = true;
  server::Proxy& proxy = *app.proxy;
  const auto timeout = proxy.config().runtime.drain_timeout;
  ML_LOG(kInfo, "{}: draining {} connection(s), up to {} s", strsignal(app.stop_signal),
         proxy.open_connections(), timeout.count());
  proxy.stop_accepting();
  const auto deadline = runtime::Runtime::current()->now() + timeout;
  while (proxy.open_connections() > 0 && runtime::Runtime::current()->now() < deadline) {
    if (!co_await runtime::sleep(50ms)) break;
  }
  const size_t left = proxy.open_connections();
  if (left > 0) ML_LOG(kWarn, "drain timeout: closing {} connection(s)", left);
  co_return 0;
}

void on_stop_signal(App& app, int sig) {
  if (app.stop_signal != 0) {
    ML_LOG(kWarn, "{} again: exiting now with {} connection(s) open", strsignal(sig),
           app.proxy->open_connections());
    std::fflush(stderr);
    std::_Exit(1);
  }
  app.stop_signal = sig;
  app.stop.notify();
}

int serve(const Options& options, const AppInfo& info, std::shared_ptr<const Registry> registry) {
  // Before any thread exists: every thread inherits the signal mask, and the control loop reads
  // the signals from a signalfd.
  Result<std::unique_ptr<ControlLoop>> made_loop =
      ControlLoop::create({SIGINT, SIGTERM, SIGHUP, SIGUSR1});
  if (!made_loop) {
    std::fprintf(stderr, "%s: cannot start: control loop: %s\n", info.name.c_str(),
                 made_loop.error().to_string().c_str());
    return 1;
  }
  ControlLoop& loop = **made_loop;
  ::signal(SIGPIPE, SIG_IGN);

  Result<config::Config> loaded = load(options, info, *registry);
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
  server::Handover inherited;
  if (options.upgrade) {
    if (!control_path) {
      std::fprintf(stderr,
                   "%s: --upgrade needs [runtime] control_socket in %s (the running process hands "
                   "its sockets over there)\n",
                   info.name.c_str(), loaded->source.c_str());
      return 1;
    }
    auto handover = binary_upgrade::request_handover(*control_path, &upgrade_connection);
    if (!handover) {
      std::fprintf(stderr, "%s: --upgrade: %s\n", info.name.c_str(),
                   handover.error().message().c_str());
      return 1;
    }
    inherited = std::move(*handover);
  }
  // On any failure before "ready" the connection closes and the old process keeps serving.
  auto started = server::Proxy::start(std::move(*loaded), std::move(inherited), registry);
  if (!started) {
    std::fprintf(stderr, "%s: cannot start:\n%s\n", info.name.c_str(),
                 started.error().message().c_str());
    return 1;
  }
  App app{options, info, registry, std::move(*started), {}, 0, false};
  std::unique_ptr<binary_upgrade::ControlServer> control;
  if (control_path) {
    binary_upgrade::ControlServer::Hooks control_hooks;
    control_hooks.handover = [&loop, &app] {
      return loop.call<server::Handover>([&app] { return app.proxy->handover(); })
          .value_or(server::Handover{});
    };
    control_hooks.on_ready = [&loop, &app] {
      (void)loop.call<bool>([&app] {
        app.proxy->stop_accepting();
        return true;
      });
      // The acceptors end within a loop turn or two of each worker; bounded all the same.
      for (int i = 0; i < 1000; ++i) {
        if (loop.call<bool>([&app] { return app.proxy->accepting_stopped(); }).value_or(true)) {
          break;
        }
        std::this_thread::sleep_for(2ms);
      }
      // Process-directed, so the control loop's signalfd takes it: the same drain as SIGTERM.
      ::kill(::getpid(), SIGTERM);
    };
    auto started_control =
        binary_upgrade::ControlServer::start(*control_path, options.upgrade, control_hooks);
    if (!started_control) {
      std::fprintf(stderr, "%s: cannot start: %s: runtime.control_socket: %s\n", info.name.c_str(),
                   app.proxy->config().source.c_str(), started_control.error().message().c_str());
      return 1;
    }
    control = std::move(*started_control);
  }
  std::unique_ptr<admin::AdminServer> admin;
  if (app.proxy->config().admin) {
    admin::Hooks hooks;
    hooks.reload = [&loop, &app]() -> Result<void> {
      return loop.call<Result<void>>([&app] { return reload(app, "POST /reload"); })
          .value_or(Error(ErrorCode::kUnsupported, "shutting down"));
    };
    hooks.config_json = [&loop, &app] {
      return loop.call<std::string>([&app] { return admin::config_to_json(app.proxy->config()); })
          .value_or("{}");
    };
    auto started_admin =
        admin::AdminServer::start(*app.proxy->config().admin, hooks, options.upgrade);
    if (!started_admin) {
      std::fprintf(stderr, "%s: cannot start: %s: %s\n", info.name.c_str(),
                   app.proxy->config().source.c_str(), started_admin.error().message().c_str());
      return 1;
    }
    admin = std::move(*started_admin);
  }
  if (upgrade_connection >= 0) {
    // Everything is up: the old process may stop accepting and drain.
    if (auto ready = binary_upgrade::confirm_ready(upgrade_connection); !ready) {
      ML_LOG(kWarn, "{}", ready.error().message());
    } else {
      ML_LOG(kInfo, "upgrade: took over from the previous process");
    }
    app.proxy->release_accepts();
  }
  print_banner(app);
  if (admin) {
    std::printf("admin: http on %s (/ready, /stats, /config, POST /reload)\n",
                admin->address().c_str());
  }
  std::fflush(stdout);

  loop.on_signal(SIGHUP, [&app] { (void)reload(app, "SIGHUP"); });
  loop.on_signal(SIGUSR1, [] {
    std::string error;
    if (!reopen_access_log(&error)) ML_LOG(kError, "SIGUSR1: {}", error);
    ML_LOG(kInfo, "SIGUSR1: access log reopened");
  });
  loop.on_signal(SIGINT, [&app] { on_stop_signal(app, SIGINT); });
  loop.on_signal(SIGTERM, [&app] { on_stop_signal(app, SIGTERM); });
  loop.runtime().spawn(refresh_names(app));
  const int status = loop.run(serve_until_stopped(app));
  control.reset();
  admin.reset();  // before the workers: an admin request must not reach a stopped pool
  app.proxy->stop();
  ML_LOG(kInfo, "stopped");
  return status;
}

}  // namespace

int run(int argc, char** argv, std::shared_ptr<const Registry> registry, AppInfo info) {
  if (!registry) registry = std::make_shared<Registry>();
  Options options;
  CLI::App cli{info.name + ": a layer-7 proxy on io_uring with a thread-per-core runtime"};
  cli.add_option("-c,--config", options.config_file, "TOML configuration file");
  cli.add_flag("--check", options.check,
               "validate the configuration (and open its certificate and key files); print ok "
               "or the errors; bind nothing");
  cli.add_flag("--version", options.version, "print the version");
  cli.add_flag("--upgrade", options.upgrade,
               "binary upgrade: take the listening sockets of the process running with this "
               "configuration (over [runtime] control_socket), then let it drain and exit");
  cli.add_option("--log-level", options.log_level, "error | warn | info | debug (default info)");
  CLI11_PARSE(cli, argc, argv);

  if (options.version) {
    std::printf("%s %s\n", info.name.c_str(), info.version.c_str());
    return 0;
  }
  auto level = parse_log_level(options.log_level);
  if (!level) {
    std::fprintf(stderr, "--log-level: \"%s\" is not one of error, warn, info, debug\n",
                 options.log_level.c_str());
    return 1;
  }
  set_log_level(*level);
  // Under `bazel run` the working directory is the runfiles tree; a relative -c means the
  // directory the user typed the command in.
  if (const char* typed_in = std::getenv("BUILD_WORKING_DIRECTORY");
      typed_in && *typed_in && !options.config_file.empty() && options.config_file[0] != '/') {
    options.config_file = std::string(typed_in) + "/" + options.config_file;
  }
  if (options.config_file.empty() && info.default_config.empty()) {
    std::fprintf(stderr, "%s: give a configuration file: -c FILE\n", info.name.c_str());
    return 1;
  }
  if (options.check) return check(options, info, *registry);
  return serve(options, info, std::move(registry));
}

}  // namespace monolake::proxy::framework
