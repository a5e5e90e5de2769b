// monolake: the stock proxy binary — the framework's run() with no user filters or server
// kinds (a user's own binary is the same few lines with a filled-in registry: see
// docs/framework.md).
//
//   monolake -c FILE            serve FILE's configuration in the foreground
//   monolake --check -c FILE    validate FILE (and open its certificate and key files)
//   monolake                    serve the embedded default configuration
//
// Signals (see docs/operations.md): SIGHUP re-reads the config file; SIGINT/SIGTERM stop
// accepting and let open connections finish (up to [runtime] drain_timeout_sec), then exit 0;
// a second SIGINT/SIGTERM during the drain exits at once with status 1.
#include <memory>

#include "proxy/framework/app.h"

namespace {

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

constexpr const char* kDefaultHint =
    "embedded default config; try:\n"
    "  curl -i http://127.0.0.1:8080/\n"
    "Ctrl-C stops. Your own configuration: monolake -c FILE (docs/config.md).\n";

}  // namespace

int main(int argc, char** argv) {
  namespace framework = monolake::proxy::framework;
  framework::AppInfo info;
  info.default_config = kDefaultConfig;
  info.default_config_hint = kDefaultHint;
  return framework::run(argc, argv, std::make_shared<framework::Registry>(), std::move(info));
}
