// Builds a worker's ServiceSet: every server's chain from its stack, each layer taking over its
// own previous generation (scope "servers.KEY"). Made on the control thread, run on each worker
// by the two-phase update. Private to //proxy/server.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "proxy/server/server.h"
#include "proxy/service/service.h"

namespace monolake::proxy::server::internal {

template <class T>
Result<void> assign(Result<T> made, T& to) {
  if (!made) return std::move(made).error();
  to = std::move(*made);
  return ok();
}

// Builds each server's chain from the previous generation of its layers (scope "servers.KEY").
class ServiceSetFactory final : public Factory<ServiceSet> {
 public:
  struct Server {
    std::string name;  // for the counters kept beside the chain
    std::optional<l4::L4Stack> l4;
    std::optional<http::HttpStack> http;
    std::optional<thrift::ThriftStack> thrift;
    http::ConnectionOptions http_connection;
    thrift::ConnectionOptions thrift_connection;
    connection::ConnectionStack connection_filters;
    bool tls = false;
    bool announces_clients = false;  // a route has send_proxy_protocol
  };
  std::map<std::string, Server> servers;

  // One server's connection layers and protocol chain on this worker.
  static Result<void> build_chains(const Server& server, const Build& build, ServerEntry& entry) {
    if (!server.connection_filters.empty()) {
      Result<void> built =
          assign(server.connection_filters.make(build, server.name), entry.connection_filters);
      if (!built) return built;
    }
    if (server.l4) return assign(server.l4->make(build), entry.l4);
    if (server.thrift) return assign(server.thrift->make(build), entry.thrift);
    entry.http_stats = http::http_server_stats(build, server.name);
    return assign(server.http->make(build), entry.http);
  }

  Result<std::shared_ptr<ServiceSet>> make_from(
      const std::shared_ptr<ServiceSet>& previous) const override {
    auto set = std::make_shared<ServiceSet>();
    const Generation* before = previous ? &previous->generation : nullptr;
    for (const auto& [key, server] : servers) {
      const Build build(before, set->generation, "servers." + key);
      ServerEntry entry;
      entry.name = server.name;
      entry.http_connection = server.http_connection;
      entry.thrift_connection = server.thrift_connection;
      entry.tls = server.tls;
      entry.announces_clients = server.announces_clients;
      Result<void> built = build_chains(server, build, entry);
      if (!built) {
        const Error& e = built.error();
        return Error(e.code(),
                     e.message().rfind("servers.", 0) == 0 ? e.message()
                                                           : "servers." + key + ": " + e.message(),
                     e.sys_errno());
      }
      set->servers.emplace(key, std::move(entry));
    }
    return set;
  }
};

}  // namespace monolake::proxy::server::internal
