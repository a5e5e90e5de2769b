// The L4 (TCP) proxy as a service chain: a server with `proxy_type = "tcp"` hands every
// accepted connection to
//
//   AccessLog -> [TlsTerminate] -> TcpForward
//
// TcpForward picks an upstream with the route's load balancer, connects with the connect
// timeout (an upstream that refuses or times out is reported to the UpstreamSet and skipped for
// a back-off period; the next one is tried, at most kMaxConnectAttempts in all), then copies
// bytes both ways with half-close and the idle timeout. TlsTerminate runs the TLS handshake
// first, so the copy reads and writes plaintext. AccessLog writes one line per connection.
//
// The stack is declared in l4_server_stack(): access_log -> [tls] -> forward. A chain is per
// worker and used only on that worker's thread. An L4 connection keeps the chain it started
// with (it holds the shared_ptr), so a reload never cuts it. Each layer is built from its own
// previous generation (proxy/service/stack.h): the UpstreamSet (round-robin position, back-off
// state, requests in flight) carries over when the route's upstreams are unchanged, the
// counters while the server keeps its name.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "proxy/config/config.h"
#include "proxy/l4/connection.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/stack.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/connect.h"
#include "runtime/timer.h"
#include "tls/tls.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::proxy::l4 {

// TcpForward connects as proxy/upstream/connect.h does (kMaxConnectAttempts).

class TcpForward final : public L4Service {
 public:
  struct Options {
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
    std::optional<std::chrono::nanoseconds> idle_timeout;  // absent: none
    // Plain TCP on both sides: splice(2) instead of copying (TLS connections always copy).
    bool zero_copy = true;
    // send_proxy_protocol: 1 or 2 writes a PROXY header announcing the client first on the
    // upstream connection; 0: none.
    int send_proxy_protocol = 0;
    // ring_hash / maglev: the key is the effective client's address (hash_on.source_ip).
    bool hash_source_ip = false;
  };
  TcpForward(std::shared_ptr<UpstreamSet> upstreams, Options options)
      : upstreams_(std::move(upstreams)), options_(options) {}

  Task<Result<Outcome>> call(Connection connection) override;
  const std::shared_ptr<UpstreamSet>& upstreams() const { return upstreams_; }

 private:
  std::shared_ptr<UpstreamSet> upstreams_;
  Options options_;
};

class TlsTerminate final : public Layer<Connection, Outcome> {
 public:
  TlsTerminate(std::shared_ptr<const tls::ServerContext> context, std::shared_ptr<Inner> inner)
      : Layer(std::move(inner)), context_(std::move(context)) {}
  Task<Result<Outcome>> call(Connection connection) override;

 private:
  std::shared_ptr<const tls::ServerContext> context_;
};

// Writes one info-level line per connection:
//   l4 server=NAME client=ADDR upstream=ADDR|- to_upstream=N to_client=N duration_ms=N end=WHY
// where WHY is "closed", or "STAGE: ERROR" ("connect: connection_refused: ...").
// Also counts connections, bytes and failed connects for /stats.
class AccessLog final : public Layer<Connection, Outcome> {
 public:
  AccessLog(std::string server_name, std::shared_ptr<Inner> inner,
            std::shared_ptr<metrics::L4ServerStats> stats = nullptr)
      : Layer(std::move(inner)), server_name_(std::move(server_name)), stats_(std::move(stats)) {}
  Task<Result<Outcome>> call(Connection connection) override;
  const std::shared_ptr<metrics::L4ServerStats>& stats() const { return stats_; }

 private:
  std::string server_name_;
  std::shared_ptr<metrics::L4ServerStats> stats_;
};

using L4Stack = Stack<Connection, Outcome>;

// The counters of tcp server `server_name` on this worker, carried over while it keeps its name.
std::shared_ptr<metrics::L4ServerStats> l4_server_stats(const Build& build,
                                                        const std::string& server_name);

class AccessLogFactory final : public FactoryLayer<AccessLog> {
 public:
  explicit AccessLogFactory(std::string server_name) : server_name_(std::move(server_name)) {}
  Result<std::shared_ptr<AccessLog>> make_via_ref(const AccessLog* previous,
                                                  std::shared_ptr<L4Service> inner,
                                                  const Build& build) const override;

 private:
  std::string server_name_;
};

// `context`: the listener's TLS context, built once per configuration and shared by the workers.
class TlsTerminateFactory final : public FactoryLayer<TlsTerminate> {
 public:
  explicit TlsTerminateFactory(std::shared_ptr<const tls::ServerContext> context)
      : context_(std::move(context)) {}
  Result<std::shared_ptr<TlsTerminate>> make_via_ref(const TlsTerminate* previous,
                                                     std::shared_ptr<L4Service> inner,
                                                     const Build& build) const override;

 private:
  std::shared_ptr<const tls::ServerContext> context_;
};

class TcpForwardFactory final : public FactoryLayer<TcpForward> {
 public:
  struct Params {
    std::vector<Upstream> upstreams;
    Balancer balancer = Balancer::kRoundRobin;
    TcpForward::Options options;
  };
  explicit TcpForwardFactory(Params params) : params_(std::move(params)) {}
  Result<std::shared_ptr<TcpForward>> make_via_ref(const TcpForward* previous,
                                                   std::shared_ptr<L4Service> inner,
                                                   const Build& build) const override;

 private:
  Params params_;
};

// A connection stack ending in `handler` (named `handler_name`): access_log -> [tls] -> handler.
// `tls_context`: the listener's TLS context (nullptr: plain). Tcp servers end in "forward";
// user server kinds in their own layer.
L4Stack connection_stack(const std::string& server_name,
                         std::shared_ptr<const tls::ServerContext> tls_context,
                         const std::string& handler_name,
                         std::shared_ptr<const L4Stack::Layer> handler);

// The stack of one tcp server: access_log -> [tls] -> forward. `tls_context`: the listener's
// TLS context (nullptr: plain TCP). Fails unless the server has exactly one route.
Result<L4Stack> l4_server_stack(const config::ServerConfig& server,
                                std::shared_ptr<const tls::ServerContext> tls_context);

// The route's upstreams as proxy/upstream wants them (tcp endpoints are socket or unix).
std::vector<Upstream> upstreams_of(const config::RouteConfig& route);

}  // namespace monolake::proxy::l4
