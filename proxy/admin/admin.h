// The HTTP admin API on `[admin] listen`, served by its own thread and runtime (never by a
// worker: a reload it triggers waits for every worker).
//
//   POST /reload   re-read the config file: 200 {"ok": true} or 409 {"ok": false, "error": "..."}
//   GET  /config   the configuration in force, as JSON
//   GET  /stats    Prometheus text (proxy/metrics)
//   GET  /ready    200 "ready" once every listener is bound and the workers serve
//
// A Unix-socket admin listener is created with mode 0600; a TCP one must be loopback unless
// `allow_remote = true` (checked by the configuration).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "proxy/config/config.h"
#include "runtime/worker_pool.h"
#include "transport/stream.h"

namespace monolake::proxy::admin {

struct Hooks {
  // Runs a reload; called on the admin thread (the caller serialises it with SIGHUP reloads).
  std::function<Result<void>()> reload;
  // The configuration in force, as JSON.
  std::function<std::string()> config_json;
};

class AdminServer {
 public:
  // Binds (errors name the address) and starts serving.
  // `replace` (the new process of a binary upgrade): a Unix socket path still served by the old
  // process is taken over; a TCP address is shared with it (SO_REUSEPORT) until it exits.
  static Result<std::unique_ptr<AdminServer>> start(const config::AdminConfig& config, Hooks hooks,
                                                    bool replace = false);
  ~AdminServer();
  const std::string& address() const { return address_; }

 private:
  AdminServer() = default;
  Hooks hooks_;
  std::string address_;
  transport::UnixSocketFile unix_file_;
  std::unique_ptr<runtime::WorkerPool> thread_;
};

// The configuration as JSON (what GET /config shows; certificate paths, no key material).
std::string config_to_json(const config::Config& config);

}  // namespace monolake::proxy::admin
