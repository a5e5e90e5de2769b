// http_filter: monolake with a request filter of its own, "api_key" (api_key.h), and a
// connection filter, "client_limit" (client_limit.h). Everything else — the command line,
// configuration, reload, binary upgrade, admin API — is the framework's.
//
//   bazel run //examples/http_filter -- -c examples/http_filter/config.toml
#include <cstdio>
#include <memory>

#include "examples/http_filter/api_key.h"
#include "examples/http_filter/client_limit.h"

int main(int argc, char** argv) {
  auto registry = std::make_shared<monolake::proxy::framework::Registry>();
  // Registered explicitly, here: static initializers in a library may be dropped by the linker.
  if (auto added =
          registry->add_http_filter("api_key", example::api_key_schema(), example::make_api_key);
      !added) {
    std::fprintf(stderr, "http_filter: %s\n", added.error().message().c_str());
    return 1;
  }
  if (auto added = registry->add_connection_filter("client_limit", example::client_limit_schema(),
                                                   example::make_client_limit);
      !added) {
    std::fprintf(stderr, "http_filter: %s\n", added.error().message().c_str());
    return 1;
  }
  monolake::proxy::framework::AppInfo info;
  info.name = "http_filter";
  info.version = "0.1.0";
  return monolake::proxy::framework::run(argc, argv, registry, std::move(info));
}
