// One worker's upstream connections: idle HTTP/1.1 connections by upstream, and shared HTTP/2
// connections. Not thread-safe (per worker); carried over a reload.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "http/h1/client.h"
#include "http/h2/client.h"
#include "proxy/metrics/metrics.h"
#include "runtime/notify.h"
#include "runtime/task.h"
#include "runtime/time.h"

namespace monolake::proxy::http {

using runtime::Task;

// Idle upstream connections of one worker, by upstream address. Not thread-safe (per worker).
class ConnectionPool {
 public:
  struct Options {
    size_t max_idle_per_upstream = 64;
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
    uint64_t max_requests_per_connection = 10000;
  };
  explicit ConnectionPool(Options options) : options_(options) {}

  // An idle connection to `address`, or nullptr. With `probe`, one that still looks alive
  // (a non-blocking MSG_PEEK per candidate: a syscall per request). Without it the most
  // recently used one, unchecked: for requests that are sent again on a fresh connection when
  // a reused one turns out closed (idempotent, no body), which is what the probe would have
  // caught, minus its race with a FIN in flight.
  std::unique_ptr<monolake::http::h1::ClientConnection> take(const std::string& address,
                                                             bool probe = true);
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

}  // namespace monolake::proxy::http
