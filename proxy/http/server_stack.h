// The request stack of an HTTP server (`proxy_type = "http"`), declared in one place:
//
//   access_log -> routes -> per route: { forward (HttpForward) | return (DirectAnswer) }
//
// Built per worker from the previous generation of each layer (proxy/service/stack.h): the
// server's counters and upstream connection pool while it keeps its name, each route's
// UpstreamSet while that route (by host and path) keeps its upstreams and balancer. Each
// request takes the worker's current chain (the server connection asks the slot at every
// request), so a reload reaches keep-alive connections at their next request.
#pragma once

#include <memory>
#include <vector>

#include "http/h2/options.h"
#include "proxy/config/config.h"
#include "proxy/http/route_table.h"
#include "tls/tls.h"

namespace monolake::proxy::http {

// The HTTP/2 limits of a server (its [http2] table and timeouts), for both directions.
monolake::http::h2::Options h2_options(const config::ServerConfig& server);

// The stack of `server`. `upstream_tls[i]`: route i's TLS client context (nullptr: plain),
// built on the control thread (it reads CA files). Made on the control thread; shared by every
// worker.
HttpStack http_server_stack(
    const config::ServerConfig& server,
    const std::vector<std::shared_ptr<const tls::ClientContext>>& upstream_tls);

}  // namespace monolake::proxy::http
