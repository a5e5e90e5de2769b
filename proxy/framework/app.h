// The whole proxy binary as a library call: a user's main() registers its filters and server
// kinds and hands over; the stock `monolake` binary is such a main with an empty registry.
//
//   int main(int argc, char** argv) {
//     auto registry = std::make_shared<monolake::proxy::framework::Registry>();
//     (void)registry->add_http_filter("api_key", schema, make_api_key);
//     return monolake::proxy::framework::run(argc, argv, registry, {.name = "myproxy"});
//   }
//
// run() gives the binary monolake's command line (-c FILE, --check, --version, --upgrade,
// --log-level), loads the configuration against the registry (user filters' keys checked like
// built-in ones), starts the workers and listeners, the admin API and the upgrade control
// socket as configured, and then runs the control loop (control_loop.h): SIGHUP and
// POST /reload re-read the file and apply it two-phase, one change at a time; DNS names are
// refreshed; SIGUSR1 reopens the access log; SIGINT/SIGTERM drain and exit (a second one exits at
// once). See docs/operations.md. Returns the process's exit status.
#pragma once

#include <memory>
#include <string>

#include "proxy/framework/registry.h"

namespace monolake::proxy::framework {

struct AppInfo {
  std::string name = "monolake";  // in --help, --version and the start-up banner
  std::string version = "0.1.0";
  // Served when no -c is given ("": -c is required). Parsed like a file named
  // "(embedded default config)" in the working directory.
  std::string default_config;
  // Printed after the banner when the default configuration is served.
  std::string default_config_hint;
};

int run(int argc, char** argv, std::shared_ptr<const Registry> registry, AppInfo info);

}  // namespace monolake::proxy::framework
