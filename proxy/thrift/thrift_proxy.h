// The Thrift proxy as a service chain: a server with `proxy_type = "thrift"` hands every call
// (one decoded frame, codec/thrift.h) to
//
//   AccessLog -> [MethodRouter] -> ThriftForward (one per route)
//
// MethodRouter (only when some route names methods) picks the first route whose `method` list
// holds the call's method, or the first route that names none; no match is answered with a
// TApplicationException (UNKNOWN_METHOD).
//
// ThriftForward picks an upstream with the route's balancer and sends the frame over an
// upstream connection that is *multiplexed*: the frame's sequence id is rewritten to one unique
// on that connection, the reply is matched by it and given back with the client's own sequence
// id. The calls of one client connection (a Session) share one upstream connection per upstream
// while any of them is waiting on it, so a pipelining client's calls go out pipelined; a
// connection that no call of the session waits on goes back to the worker's pool, for any
// session. So calls of different clients never queue behind each other on one upstream
// connection (a Thrift server usually answers a connection's calls one at a time).
//
// A failed upstream (refused, timed out, closed, a malformed reply) answers the client with a
// TApplicationException in the client's own transport and protocol, never a dropped
// connection. A oneway call is forwarded and not waited on. The stack is declared in
// thrift_server_stack(); each layer is built from its own previous generation
// (proxy/service/stack.h), so upstream connections, counters and each route's balancer state
// are carried over reloads.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/thrift.h"
#include "proxy/config/config.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/stack.h"
#include "proxy/upstream/balancer.h"
#include "runtime/time.h"

namespace monolake::proxy::thrift {

namespace ct = monolake::codec::thrift;

class UpstreamConnection;

// Per client connection: the upstream connections its calls are waiting on, by pool key.
struct Session {
  std::map<std::string, std::shared_ptr<UpstreamConnection>> leased;
};

// A call from a client connection; `client` is for logs. `session` may be null (the call then
// takes an upstream connection of its own).
struct Call {
  ct::Frame frame;
  std::string client;
  std::shared_ptr<Session> session;
};

// How a call ended, for /stats and the access line.
enum class Outcome : uint8_t {
  kOk,             // the upstream's reply (a declared exception included) went back
  kOneway,         // a oneway call was forwarded
  kUpstreamError,  // connect failed, the connection broke, or the reply was malformed
  kTimeout,        // no reply within upstream_read_timeout_sec
  kNoRoute,        // no route for the method
};
std::string_view outcome_name(Outcome outcome);

// The reply to send back (nullopt for a oneway call), and what happened, for the log.
struct Reply {
  std::optional<ct::Frame> frame;
  std::string upstream;
  Outcome outcome = Outcome::kOk;
  std::string error;  // set when the proxy answered with a TApplicationException
};

using ThriftService = Service<Call, Reply>;

// TApplicationException type codes (Thrift's own).
enum class ApplicationError : int32_t {
  kUnknownMethod = 1,
  kInternalError = 6,
  kProtocolError = 7,
};

// A TApplicationException reply to `call`, in its transport and protocol, with its method and
// sequence id.
ct::Frame application_exception(const ct::Frame& call, ApplicationError type,
                                const std::string& message);

// Idle upstream connections of one worker (for every route of a server), by pool key: the
// address and the transport and protocol spoken on it.
class UpstreamPool {
 public:
  static constexpr size_t kMaxIdlePerKey = 64;
  ~UpstreamPool();
  // An idle connection that is still open, or null.
  std::shared_ptr<UpstreamConnection> take(const std::string& key);
  // Keeps `connection` (no call on it) for reuse, or closes it when the key has enough.
  void put(const std::string& key, std::shared_ptr<UpstreamConnection> connection);
  size_t idle_count() const;

 private:
  std::map<std::string, std::vector<std::shared_ptr<UpstreamConnection>>> idle_;
};

class ThriftForward final : public ThriftService {
 public:
  struct Options {
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
    std::chrono::nanoseconds reply_timeout = std::chrono::seconds(60);
    // ring_hash / maglev: the key is the client's address (hash_on.source_ip).
    bool hash_source_ip = false;
  };
  ThriftForward(std::shared_ptr<UpstreamSet> upstreams, std::shared_ptr<UpstreamPool> pool,
                Options options, std::shared_ptr<metrics::ThriftServerStats> stats = nullptr)
      : upstreams_(std::move(upstreams)),
        pool_(std::move(pool)),
        options_(options),
        stats_(std::move(stats)) {}
  Task<Result<Reply>> call(Call call) override;
  const std::shared_ptr<UpstreamSet>& upstreams() const { return upstreams_; }
  const std::shared_ptr<UpstreamPool>& pool() const { return pool_; }

 private:
  std::shared_ptr<UpstreamSet> upstreams_;
  std::shared_ptr<UpstreamPool> pool_;
  Options options_;
  std::shared_ptr<metrics::ThriftServerStats> stats_;
};

// Routes by method name: routes[i] serves the methods in methods[i] (empty: any method). The
// first match wins.
class MethodRouter final : public ThriftService {
 public:
  struct Route {
    std::vector<std::string> methods;
    std::shared_ptr<ThriftService> service;
  };
  explicit MethodRouter(std::vector<Route> routes) : routes_(std::move(routes)) {}
  Task<Result<Reply>> call(Call call) override;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// One access line per call:
//   thrift server=NAME client=ADDR method=M seqid=N type=call|oneway upstream=ADDR|-
//   duration_ms=N end=ok|exception: REASON
// and the call's counters (calls by outcome, duration, in flight).
class AccessLog final : public Layer<Call, Reply> {
 public:
  AccessLog(std::string server_name, std::shared_ptr<Inner> inner,
            std::shared_ptr<metrics::ThriftServerStats> stats = nullptr)
      : Layer(std::move(inner)), server_name_(std::move(server_name)), stats_(std::move(stats)) {}
  Task<Result<Reply>> call(Call call) override;
  const std::shared_ptr<metrics::ThriftServerStats>& stats() const { return stats_; }

 private:
  std::string server_name_;
  std::shared_ptr<metrics::ThriftServerStats> stats_;
};

using ThriftStack = Stack<Call, Reply>;

// Per-worker state of thrift server `server_name`, shared by its layers and carried over.
std::shared_ptr<metrics::ThriftServerStats> thrift_server_stats(const Build& build,
                                                                const std::string& server_name);
std::shared_ptr<UpstreamPool> thrift_upstream_pool(const Build& build);

class AccessLogFactory final : public FactoryLayer<AccessLog> {
 public:
  explicit AccessLogFactory(std::string server_name) : server_name_(std::move(server_name)) {}
  Result<std::shared_ptr<AccessLog>> make_via_ref(const AccessLog* previous,
                                                  std::shared_ptr<ThriftService> inner,
                                                  const Build& build) const override;

 private:
  std::string server_name_;
};

// Each route's stack is built in a scope of its own, "route[M1,M2]" ("route[*]" for a route
// that names no method), so a route keeps its state however routes move around it.
class MethodRouterFactory final : public FactoryLayer<MethodRouter> {
 public:
  struct Route {
    std::vector<std::string> methods;
    ThriftStack stack;
  };
  explicit MethodRouterFactory(std::vector<Route> routes) : routes_(std::move(routes)) {}
  Result<std::shared_ptr<MethodRouter>> make_via_ref(const MethodRouter* previous,
                                                     std::shared_ptr<ThriftService> inner,
                                                     const Build& build) const override;
  // The scope name of a route with these methods.
  static std::string route_scope(const std::vector<std::string>& methods);

 private:
  std::vector<Route> routes_;
};

// Takes over the previous UpstreamSet while the route's upstreams and balancer are unchanged.
class ThriftForwardFactory final : public FactoryLayer<ThriftForward> {
 public:
  struct Params {
    std::string server_name;  // whose counters
    std::vector<Upstream> upstreams;
    Balancer balancer = Balancer::kRoundRobin;
    ThriftForward::Options options;
  };
  explicit ThriftForwardFactory(Params params) : params_(std::move(params)) {}
  Result<std::shared_ptr<ThriftForward>> make_via_ref(const ThriftForward* previous,
                                                      std::shared_ptr<ThriftService> inner,
                                                      const Build& build) const override;

 private:
  Params params_;
};

// The stack of one thrift server: access_log -> routes (by method) -> forward, or
// access_log -> forward when no route names a method (the forward keeps the identity it would
// have under the router, so adding method routes later keeps its state).
Result<ThriftStack> thrift_server_stack(const config::ServerConfig& server);

}  // namespace monolake::proxy::thrift
