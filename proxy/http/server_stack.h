// The request stack of an HTTP server (`proxy_type = "http"`), declared in one place:
//
//   access_log -> [compression] -> server filters -> routes
//     -> per route: [rate_limit] -> [compression] -> route filters
//                   -> { forward (HttpForward) | return (DirectAnswer) }
//
// Filters are the layers `[[servers.X.filters]]` and a route's `filters` name (registered by
// the binary: proxy/framework/registry.h), in the file's order. Their identities are
// "filter:NAME" (then "filter:NAME#2"...) or "filter[ID]" with an explicit `id`, so they never
// take the identity of a built-in layer. The route's rewrites (host_rewrite, strip_prefix,
// add_prefix, request_headers, response_headers) are applied by `forward` itself, innermost,
// after X-Forwarded-* are set, which is why a filter sees the request as the client sent it.
//
// Built per worker from the previous generation of each layer (proxy/service/stack.h): the
// server's counters and upstream connection pool while it keeps its name, each route's
// UpstreamSet while that route (by host and path) keeps its upstreams and balancer. Each
// request takes the worker's current chain (the server connection asks the slot at every
// request), so a reload reaches keep-alive connections at their next request.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/h2/options.h"
#include "proxy/config/config.h"
#include "proxy/http/route_table.h"
#include "tls/tls.h"

namespace monolake::proxy::http {

// The HTTP/2 limits of a server (its [http2] table and timeouts), for both directions.
monolake::http::h2::Options h2_options(const config::ServerConfig& server);

// Makes the layer of one filter. `route` is "" for a server filter, else the route's
// "HOST PATH"; `key_path` is where the filter is in the file ("servers.web.filters[0]"), for
// errors.
using FilterLayerMaker = std::function<Result<std::shared_ptr<const HttpStack::Layer>>(
    const config::FilterConfig& filter, const std::string& route, const std::string& key_path)>;

// The stack of `server`. `upstream_tls[i]`: route i's TLS client context (nullptr: plain),
// built on the control thread (it reads CA files). `filters` makes the layers of the filters the
// server and its routes list (unused when there are none). Made on the control thread; shared
// by every worker. `workers`: the process's worker count (a route's rate_limit is split over
// them). Fails when a filter cannot be made.
Result<HttpStack> http_server_stack(
    const config::ServerConfig& server,
    const std::vector<std::shared_ptr<const tls::ClientContext>>& upstream_tls,
    const FilterLayerMaker& filters = nullptr, size_t workers = 1);

}  // namespace monolake::proxy::http
