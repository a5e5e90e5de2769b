// HttpForward: the end of a proxied route. It picks an upstream with the route's balancer, takes
// an idle pooled connection to it (or connects, with the connect timeout), forwards the request
// without hop-by-hop fields and with X-Forwarded-For / X-Forwarded-Proto / X-Request-Id, and
// returns the upstream's response whose body streams from the upstream connection (back to the
// pool when read to the end). Connect failure or reset before a response: 502; response
// timeout: 504. A connect failure is retried on another upstream for idempotent methods.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/h1/codec.h"
#include "http/h2/options.h"
#include "proxy/http/http_service.h"
#include "proxy/http/layer_params.h"
#include "proxy/http/pool.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/stack.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/hash_on.h"
#include "tls/tls.h"

namespace monolake::proxy::http {

struct ForwardOptions {
  // TLS towards the upstreams (nullptr: plain), and the name each upstream is asked for and
  // verified against (by upstream index).
  std::shared_ptr<const tls::ClientContext> tls;
  std::vector<std::string> server_names;
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds response_timeout = std::chrono::seconds(60);  // head and body reads
  monolake::http::h1::Limits limits;
  // The route's rewrites (the route keys of docs/config.md) and the server's trusted proxies.
  std::string host_rewrite;
  std::string strip_prefix;
  std::string add_prefix;
  HeaderRewrite request_headers;
  HeaderRewrite response_headers;
  std::vector<Cidr> trusted_proxies;
  bool websocket = false;  // tunnel `Upgrade: websocket` requests
  // A tunnel with no byte moving either way for this long is closed (tcp_idle_timeout_sec).
  std::optional<std::chrono::nanoseconds> tunnel_idle_timeout;
  UpstreamHttpVersion version = UpstreamHttpVersion::kHttp11;
  monolake::http::h2::Options h2;
  // send_proxy_protocol: 1 or 2 writes a PROXY header announcing the client first on each
  // upstream connection, which then serves only that client connection (its pool lives in the
  // client connection: ConnectionInfo::slots); 0: none. HTTP/1.1 only.
  int send_proxy_protocol = 0;
  // The request key of a ring_hash or maglev balancer (the route's hash_on); none: no key.
  std::optional<HashOn> hash_on;
};

class HttpForward final : public HttpService {
 public:
  HttpForward(std::shared_ptr<UpstreamSet> upstreams, std::shared_ptr<ConnectionPool> pool,
              ForwardOptions options, std::shared_ptr<metrics::HttpServerStats> stats = nullptr)
      : upstreams_(std::move(upstreams)),
        pool_(std::move(pool)),
        options_(options),
        stats_(std::move(stats)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;
  const std::shared_ptr<UpstreamSet>& upstreams() const { return upstreams_; }

 private:
  // The pool idle connections for `request` are taken from and given to: the worker's, or with
  // send_proxy_protocol the client connection's own (nullptr: none, never pooled).
  std::shared_ptr<ConnectionPool> pool_for(const monolake::http::Request& request) const;
  // send_proxy_protocol: writes the header announcing the request's client connection.
  Task<Result<void>> announce_client(transport::Stream& upstream,
                                     const monolake::http::Request& request) const;
  // The pool key of upstream `index` (address text, and the TLS name), made once.
  const std::string& pool_key(size_t index);
  // Whether this request goes over HTTP/2 to upstream `key` (h2, or auto with ALPN h2 seen).
  bool use_h2(const std::string& key) const;
  // The request over an HTTP/2 connection to upstream `index`.
  Task<Result<monolake::http::Response>> forward_h2(monolake::http::Request& request, size_t index,
                                                    const std::string& key, bool te_trailers);
  // A new HTTP/2 connection to upstream `index` (TLS with ALPN h2 when the route has TLS).
  Task<Result<std::shared_ptr<monolake::http::h2::ClientConnection>>> connect_h2(
      size_t index, const std::string& key);

  std::shared_ptr<UpstreamSet> upstreams_;
  std::vector<std::string> keys_;
  std::shared_ptr<ConnectionPool> pool_;
  ForwardOptions options_;
  std::shared_ptr<metrics::HttpServerStats> stats_;
};

// The upstream pool of an HTTP server on this worker, shared by its routes and carried over
// a reload (idle connections stay usable); `max_idle_per_upstream` applies to it from now on.
std::shared_ptr<ConnectionPool> http_connection_pool(const Build& build,
                                                     size_t max_idle_per_upstream);

// Takes over the previous generation's UpstreamSet (balancer position, back-off, requests in
// flight) while the route's upstreams and balancer are unchanged.
class ForwardFactory final : public FactoryLayer<HttpForward> {
 public:
  struct Params {
    std::string server_name;  // whose counters
    std::vector<Upstream> upstreams;
    Balancer balancer = Balancer::kRoundRobin;
    size_t max_idle_per_upstream = 64;
    ForwardOptions options;
  };
  explicit ForwardFactory(Params params) : params_(std::move(params)) {}
  Result<std::shared_ptr<HttpForward>> make_via_ref(const HttpForward* previous,
                                                    std::shared_ptr<HttpService> inner,
                                                    const Build& build) const override;

 private:
  Params params_;
};

}  // namespace monolake::proxy::http
