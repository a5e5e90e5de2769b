// custom_protocol: monolake plus a server kind of its own, "resp" (resp_proxy.h), a Redis proxy
// routing commands by name. The command line, configuration, reload, binary upgrade, admin API
// and access log are the framework's.
//
//   bazel run //examples/custom_protocol -- -c examples/custom_protocol/config.toml
#include <cstdio>
#include <memory>

#include "examples/custom_protocol/resp_proxy.h"

int main(int argc, char** argv) {
  auto registry = std::make_shared<monolake::proxy::framework::Registry>();
  if (auto added = registry->add_server_kind("resp", example::resp_schema(), example::make_resp);
      !added) {
    std::fprintf(stderr, "custom_protocol: %s\n", added.error().message().c_str());
    return 1;
  }
  monolake::proxy::framework::AppInfo info;
  info.name = "custom_protocol";
  info.version = "0.1.0";
  return monolake::proxy::framework::run(argc, argv, registry, std::move(info));
}
