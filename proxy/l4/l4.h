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
// A chain is per worker and used only on that worker's thread. An L4 connection keeps the
// chain it started with (it holds the shared_ptr), so a reload never cuts it. The factory
// builds the chain from the previous one: the UpstreamSet (round-robin position, back-off
// state, requests in flight) carries over when the route's upstreams are unchanged.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/service.h"
#include "proxy/upstream/balancer.h"
#include "runtime/timer.h"
#include "tls/tls.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::proxy::l4 {

// An accepted client connection on its way down the chain.
struct Connection {
  transport::Stream stream;           // the accepted socket (moved into `tls` by TlsTerminate)
  std::optional<tls::TlsStream> tls;  // set once the TLS handshake is done
  transport::SocketAddress peer;
};

// How a connection went; every service returns one (errors included), so the access log can
// say where it stopped.
struct Outcome {
  std::string upstream;      // the upstream connected to (or last tried); empty if none
  uint64_t to_upstream = 0;  // bytes client -> upstream
  uint64_t to_client = 0;    // bytes upstream -> client
  // Where it failed: "tls" (handshake), "connect" (no upstream reachable), "copy" (reset,
  // idle timeout... after the upstream was reached). Empty when it ended normally.
  std::string failed_stage;
  std::optional<Error> error;
};

using L4Service = Service<Connection, Outcome>;

inline constexpr int kMaxConnectAttempts = 3;

class TcpForward final : public L4Service {
 public:
  struct Options {
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
    std::optional<std::chrono::nanoseconds> idle_timeout;  // absent: none
  };
  TcpForward(std::shared_ptr<UpstreamSet> upstreams, Options options)
      : upstreams_(std::move(upstreams)), options_(options) {}

  Task<Result<Outcome>> call(Connection connection) override;
  const std::shared_ptr<UpstreamSet>& upstreams() const { return upstreams_; }

 private:
  Task<Result<transport::Stream>> connect_upstream(Outcome& outcome);

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

// Builds the chain of one tcp server for one worker. `tls_context` is the listener's TLS
// context (nullptr: plain TCP), built once per configuration and shared by the workers.
class L4Factory final : public Factory<L4Service> {
 public:
  L4Factory(config::ServerConfig server, std::shared_ptr<const tls::ServerContext> tls_context)
      : server_(std::move(server)), tls_context_(std::move(tls_context)) {}
  Result<std::shared_ptr<L4Service>> make_from(
      const std::shared_ptr<L4Service>& previous) const override;

 private:
  config::ServerConfig server_;
  std::shared_ptr<const tls::ServerContext> tls_context_;
};

// The route's upstreams as proxy/upstream wants them (tcp endpoints are socket or unix).
std::vector<Upstream> upstreams_of(const config::RouteConfig& route);

}  // namespace monolake::proxy::l4
