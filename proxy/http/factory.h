// The HTTP reverse proxy as a service chain: a server with `proxy_type = "http"` hands every
// request to
//
//   AccessLog -> RouteTable -> { HttpForward (one per proxied route) | DirectAnswer }
//
// A chain is per worker. Each request takes the worker's current chain (the server connection
// asks the slot at every request), so a reload reaches keep-alive connections at their next
// request. The factory carries over the upstream connection pool (keyed by upstream address)
// and each route's UpstreamSet when its upstreams are unchanged.
#pragma once

#include <memory>
#include <vector>

#include "http/h2/options.h"
#include "proxy/config/config.h"
#include "proxy/http/http_service.h"
#include "tls/tls.h"

namespace monolake::proxy::http {

// The HTTP/2 limits of a server (its [http2] table and timeouts), for both directions.
monolake::http::h2::Options h2_options(const config::ServerConfig& server);

class HttpFactory final : public Factory<HttpService> {
 public:
  // `upstream_tls[i]`: route i's TLS client context (nullptr: plain), built on the control
  // thread (it reads CA files).
  HttpFactory(config::ServerConfig server,
              std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls)
      : server_(std::move(server)), upstream_tls_(std::move(upstream_tls)) {}
  Result<std::shared_ptr<HttpService>> make_from(
      const std::shared_ptr<HttpService>& previous) const override;

 private:
  config::ServerConfig server_;
  std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls_;
};

}  // namespace monolake::proxy::http
