// The registry of a proxy binary: the request filters and server kinds its configuration may
// name besides the built-ins. A user binary fills one in from its main() — explicitly, never
// from static initializers (the linker drops those from static libraries) — and hands it to
// framework::run() (app.h) or server::Proxy::start().
//
//   framework::Registry registry;
//   ParamSchema schema;
//   schema.string_list("keys").required();
//   registry.add_http_filter("api_key", schema, [](const framework::FilterParams& p)
//       -> Result<std::shared_ptr<const framework::HttpLayerFactory>> {
//     return std::make_shared<ApiKeyFactory>(p.params.string_list("keys"));
//   });
//
// Configuration then lists it: [[servers.web.filters]] name = "api_key", keys = [...]. Its keys
// are checked against the schema when the file is loaded (unknown keys, wrong types, missing
// required keys are "FILE: KEY.PATH: reason" errors), so a maker reads values that are there.
// Makers run on the control thread at every load and reload; the factory they return is
// shared by every worker and builds each worker's service from that worker's previous
// generation of the same layer (proxy/service/stack.h: FactoryLayer::make_via_ref), which is
// how per-worker state survives a reload.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "http/exchange.h"
#include "proxy/connection/filter.h"
#include "proxy/l4/connection.h"
#include "proxy/params/params.h"
#include "proxy/service/stack.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/hash_on.h"

namespace monolake::proxy::framework {

// A layer of an HTTP server's request stack.
using HttpLayerFactory = LayerFactory<monolake::http::Request, monolake::http::Response>;
// A layer of a connection stack (user server kinds; tcp servers).
using ConnectionLayerFactory = LayerFactory<l4::Connection, l4::Outcome>;

// What a filter's maker gets: its own keys, and where it sits.
struct FilterParams {
  const Params& params;
  const std::string& server_name;  // the server's `name`
  const std::string& route;        // "HOST PATH" of the route for a route filter; "" otherwise
};
using HttpFilterMaker =
    std::function<Result<std::shared_ptr<const HttpLayerFactory>>(const FilterParams&)>;

// What a server kind's maker gets: its own keys, its routes and the server's timeouts.
struct ServerKindParams {
  struct Route {
    std::string path;  // the kind's routing key, as written ("" when the route gives none)
    std::vector<Upstream> upstreams;
    Balancer balancer = Balancer::kRoundRobin;
    // ring_hash / maglev: hash_on.source_ip given, or nothing (the kind hashes a key of its
    // own). Pass the key's stable_hash to connect_upstream or UpstreamSet::pick.
    // (A default member initializer, so brace-initialised Routes of users' code that stop at
    // `upstreams` or `balancer` stay free of -Wmissing-field-initializers.)
    std::optional<HashOn> hash_on = std::nullopt;
  };
  const Params& params;
  const std::string& server_name;
  std::vector<Route> routes;
  std::chrono::nanoseconds connect_timeout{std::chrono::seconds(5)};
  std::chrono::nanoseconds idle_timeout{std::chrono::seconds(600)};  // 0: none
};
// The innermost layer of the kind's connection stack: access_log -> [tls] -> this layer. It
// serves a whole accepted connection (plaintext once TLS is done) and returns its Outcome.
using ServerKindMaker =
    std::function<Result<std::shared_ptr<const ConnectionLayerFactory>>(const ServerKindParams&)>;

// What a connection filter's maker gets: its own keys and the server it serves.
struct ConnectionFilterParams {
  const Params& params;
  const std::string& server_name;
};
// A connection layer (proxy/connection/filter.h): runs on every accepted connection of the
// servers that list it in [[servers.X.connection_filters]], before TLS and after it.
using ConnectionFilterMaker =
    std::function<Result<std::shared_ptr<const connection::ConnectionFilterFactory>>(
        const ConnectionFilterParams&)>;

class Registry {
 public:
  // Names are [a-z0-9_-]+. A filter name may be registered once; a server kind may not be
  // named "http", "tcp" or "thrift". The schema must pass ParamSchema::check().
  Result<void> add_http_filter(std::string name, ParamSchema schema, HttpFilterMaker make);
  Result<void> add_server_kind(std::string name, ParamSchema schema, ServerKindMaker make);
  // Connection filters have names of their own (one may share a request filter's name).
  Result<void> add_connection_filter(std::string name, ParamSchema schema,
                                     ConnectionFilterMaker make);

  // What the configuration parser checks files against.
  const Catalog& catalog() const { return catalog_; }
  const HttpFilterMaker* http_filter(std::string_view name) const;
  const ServerKindMaker* server_kind(std::string_view name) const;
  const ConnectionFilterMaker* connection_filter(std::string_view name) const;

 private:
  Catalog catalog_;
  std::map<std::string, HttpFilterMaker, std::less<>> http_filters_;
  std::map<std::string, ServerKindMaker, std::less<>> server_kinds_;
  std::map<std::string, ConnectionFilterMaker, std::less<>> connection_filters_;
};

}  // namespace monolake::proxy::framework
