// The HTTP reverse proxy as a service chain: a server with `proxy_type = "http"` hands every
// request to
//
//   AccessLog -> RouteTable -> { HttpForward (one per proxied route) | DirectAnswer }
//
// HttpForward picks an upstream with the route's balancer, takes an idle pooled connection to it
// (or connects, with the connect timeout), forwards the request without hop-by-hop fields and
// with X-Forwarded-For / X-Forwarded-Proto / X-Request-Id, and returns the upstream's response
// whose body streams from the upstream connection (back to the pool when read to the end).
// Connect failure or reset before a response: 502; response timeout: 504. A connect failure is
// retried on another upstream for idempotent methods.
//
// A chain is per worker. Each request takes the worker's current chain (the server connection
// asks the slot at every request), so a reload reaches keep-alive connections at their next
// request. The factory carries over the upstream connection pool (keyed by upstream address)
// and each route's UpstreamSet when its upstreams are unchanged.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "http/exchange.h"
#include "http/h1/client.h"
#include "http/h2/client.h"
#include "http/h2/options.h"
#include "proxy/config/config.h"
#include "proxy/http/router.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/service.h"
#include "proxy/upstream/balancer.h"
#include "runtime/notify.h"
#include "tls/tls.h"

namespace monolake::proxy::http {

using HttpService = Service<monolake::http::Request, monolake::http::Response>;

// Idle upstream connections of one worker, by upstream address. Not thread-safe (per worker).
class ConnectionPool {
 public:
  struct Options {
    size_t max_idle_per_upstream = 64;
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
    uint64_t max_requests_per_connection = 10000;
  };
  explicit ConnectionPool(Options options) : options_(options) {}

  // An idle connection to `address` that still looks alive, or nullptr.
  std::unique_ptr<monolake::http::h1::ClientConnection> take(const std::string& address);
  // Keeps `connection` for reuse (if there is room and it has served few enough requests).
  void give(const std::string& address,
            std::unique_ptr<monolake::http::h1::ClientConnection> connection);
  size_t idle_count() const;

  // HTTP/2 upstream connections, shared by many requests at once: one with a free stream to
  // `key`, or nullptr. Connections idle past the idle timeout are shut down here.
  std::shared_ptr<monolake::http::h2::ClientConnection> take_h2(const std::string& key);
  void add_h2(const std::string& key, std::shared_ptr<monolake::http::h2::ClientConnection> c);
  // While one request connects to `key`, the others wait for its connection rather than each
  // opening their own (begin_h2_connect() returns false when one is already under way).
  bool begin_h2_connect(const std::string& key);
  void end_h2_connect(const std::string& key);  // wakes the waiters (connected or not)
  // Waits (at most `limit`) for the connect under way to `key` to end.
  Task<void> wait_h2_connect(const std::string& key, std::chrono::nanoseconds limit);
  // Whether `key` answered ALPN with h2 (upstream_http_version = "auto" over TLS).
  bool speaks_h2(const std::string& key) const { return h2_capable_.count(key) > 0; }
  void forget_h2(const std::string& key) { h2_capable_.erase(key); }

  // Keeps `gauge` equal to the number of idle connections (for /stats).
  void set_gauge(std::shared_ptr<metrics::HttpServerStats> stats) { stats_ = std::move(stats); }
  const Options& options() const { return options_; }
  // Applies a reloaded limit to a carried-over pool (extra idle connections go at their next
  // give() or sweep).
  void set_max_idle_per_upstream(size_t n) { options_.max_idle_per_upstream = n; }

 private:
  struct Idle {
    std::unique_ptr<monolake::http::h1::ClientConnection> connection;
    runtime::TimePoint since;
  };
  Options options_;
  void update_gauge();
  void sweep(runtime::TimePoint now);
  // Over the cap, idle connections may stay up to a second after a burst, this many times it.
  static constexpr size_t kBurstFactor = 4;
  std::map<std::string, std::vector<Idle>> idle_;
  struct Multiplexed {
    std::shared_ptr<monolake::http::h2::ClientConnection> connection;
    runtime::TimePoint last_used;
  };
  std::map<std::string, std::vector<Multiplexed>> h2_;
  std::map<std::string, std::vector<runtime::Notify*>> h2_connecting_;
  std::set<std::string> h2_capable_;
  std::shared_ptr<metrics::HttpServerStats> stats_;
  size_t idle_total_ = 0;
  runtime::TimePoint last_sweep_{};
};

struct ForwardOptions {
  // TLS towards the upstreams (nullptr: plain), and the name each upstream is asked for and
  // verified against (by upstream index).
  std::shared_ptr<const tls::ClientContext> tls;
  std::vector<std::string> server_names;
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::nanoseconds response_timeout = std::chrono::seconds(60);  // head and body reads
  monolake::http::h1::Limits limits;
  // The route's rewrites (see config::RouteConfig) and the server's trusted proxies.
  std::string host_rewrite;
  std::string strip_prefix;
  std::string add_prefix;
  config::HeaderRewrite request_headers;
  config::HeaderRewrite response_headers;
  std::vector<config::Cidr> trusted_proxies;
  bool websocket = false;  // tunnel `Upgrade: websocket` requests
  // A tunnel with no byte moving either way for this long is closed (tcp_idle_timeout_sec).
  std::optional<std::chrono::nanoseconds> tunnel_idle_timeout;
  config::UpstreamHttpVersion version = config::UpstreamHttpVersion::kHttp11;
  monolake::http::h2::Options h2;
};

// The HTTP/2 limits of a server (its [http2] table and timeouts), for both directions.
monolake::http::h2::Options h2_options(const config::ServerConfig& server);

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

class DirectAnswer final : public HttpService {
 public:
  explicit DirectAnswer(config::DirectResponse response) : response_(std::move(response)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;

 private:
  config::DirectResponse response_;
};

class RouteTable final : public HttpService {
 public:
  RouteTable(Router router, std::vector<std::shared_ptr<HttpService>> routes,
             std::shared_ptr<ConnectionPool> pool)
      : router_(std::move(router)), routes_(std::move(routes)), pool_(std::move(pool)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;
  const std::vector<std::shared_ptr<HttpService>>& routes() const { return routes_; }
  const std::shared_ptr<ConnectionPool>& pool() const { return pool_; }

 private:
  Router router_;
  std::vector<std::shared_ptr<HttpService>> routes_;
  std::shared_ptr<ConnectionPool> pool_;
};

// One info-level line per request when its response has been sent:
//   http server=NAME client=ADDR method=GET target=/x status=200 bytes=N upstream=ADDR|-
//   duration_ms=N request_id=ID [error=...]
// Also counts every response for /stats (status class, duration).
class AccessLog final : public Layer<monolake::http::Request, monolake::http::Response> {
 public:
  AccessLog(std::string server_name, std::shared_ptr<Inner> inner,
            std::shared_ptr<metrics::HttpServerStats> stats)
      : Layer(std::move(inner)), server_name_(std::move(server_name)), stats_(std::move(stats)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;
  const std::shared_ptr<metrics::HttpServerStats>& stats() const { return stats_; }

 private:
  std::string server_name_;
  std::shared_ptr<metrics::HttpServerStats> stats_;
};

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

// Fields a proxy never forwards (RFC 9110 7.6.1), plus those a Connection field names.
void remove_hop_by_hop(monolake::http::HeaderMap& headers);

}  // namespace monolake::proxy::http
