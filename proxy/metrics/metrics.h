// Counters for /stats, cheap on the data path: each worker writes its own counter objects
// (single writer, relaxed load + store, no locked instruction), and the admin thread sums them
// when scraped. Counter objects register in a process-wide registry and stay listed while a
// chain holds them (a reload carries them over, so totals do not reset).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace monolake::proxy::metrics {

// A counter written by one thread and read by others.
class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Request duration buckets (upper bounds, seconds), Prometheus style; the last is +Inf.
inline constexpr std::array<double, 9> kLatencyBuckets = {0.001, 0.005, 0.01, 0.05, 0.1,
                                                          0.5,   1.0,   5.0,  30.0};

// One HTTP server's counters on one worker.
struct HttpServerStats {
  std::string server;
  std::array<Counter, 6> responses;  // by status class: [1] = 1xx ... [5] = 5xx, [0] other
  Counter upstream_connect_errors;
  std::array<Counter, kLatencyBuckets.size() + 1> latency;  // last: +Inf
  Counter latency_sum_us;
  Counter idle_upstream_connections;  // gauge: the worker's pool
  Counter h2_connections;             // client connections served with HTTP/2
  Counter h2_streams;                 // request streams on them
  Counter h2_abuse_closed;            // HTTP/2 connections ended by a flood limit

  void observe(int status, std::chrono::nanoseconds took);
};

// One tcp server's counters on one worker.
struct L4ServerStats {
  std::string server;
  Counter connections;
  Counter active;
  Counter upstream_connect_errors;
  Counter bytes_to_upstream;
  Counter bytes_to_client;
};

// One thrift server's counters on one worker.
struct ThriftServerStats {
  // Outcome names, in the order of proxy/thrift's Outcome.
  static constexpr std::array<const char*, 5> kOutcomes = {"ok", "oneway", "upstream_error",
                                                           "timeout", "no_route"};
  std::string server;
  std::array<Counter, kOutcomes.size()> calls;  // by outcome
  Counter upstream_connect_errors;
  Counter upstream_errors;       // broken connections, malformed replies, timeouts
  Counter in_flight;             // gauge: calls waiting for their upstream
  Counter upstream_connections;  // gauge: open upstream connections (busy or pooled)
  std::array<Counter, kLatencyBuckets.size() + 1> latency;  // last: +Inf
  Counter latency_sum_us;

  void observe(size_t outcome, std::chrono::nanoseconds took);
};

// A counter or gauge a layer of its own registers (a user filter's "requests refused"): one
// object per worker, summed with the others of the same name and labels in /stats.
struct UserMetric {
  enum class Kind { kCounter, kGauge };
  std::string name;    // [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. "myproxy_api_key_refused_total"
  std::string help;    // one line
  std::string labels;  // already formatted: server="web",route="/api"; or empty
  Kind kind = Kind::kCounter;
  Counter value;
};

class Registry {
 public:
  static Registry& global();
  // A per-worker metric of a layer: listed in /stats as long as someone holds it (a layer
  // keeps it in its service and hands it to its next generation, so totals survive a reload).
  // `labels` are label="value" pairs; values are escaped here. A name that is not a metric name
  // (valid_metric_name), or starts with "monolake_" (the proxy's own), is counted but never
  // listed, with a warning in the log.
  std::shared_ptr<UserMetric> user(const std::string& name, const std::string& help,
                                   const std::vector<std::pair<std::string, std::string>>& labels,
                                   UserMetric::Kind kind = UserMetric::Kind::kCounter);
  // The same for a labelled metric of the proxy's own (its name starts with "monolake_"), such
  // as the framework's count of connections each connection layer closed.
  std::shared_ptr<UserMetric> own(const std::string& name, const std::string& help,
                                  const std::vector<std::pair<std::string, std::string>>& labels,
                                  UserMetric::Kind kind = UserMetric::Kind::kCounter);
  std::shared_ptr<HttpServerStats> http(const std::string& server);
  std::shared_ptr<L4ServerStats> l4(const std::string& server);
  std::shared_ptr<ThriftServerStats> thrift(const std::string& server);
  // Prometheus text exposition of everything alive, summed over workers.
  std::string prometheus_text();

 private:
  std::mutex mutex_;
  std::vector<std::weak_ptr<HttpServerStats>> http_;
  std::vector<std::weak_ptr<L4ServerStats>> l4_;
  std::vector<std::weak_ptr<ThriftServerStats>> thrift_;
  std::shared_ptr<UserMetric> labelled(const std::string& name, const std::string& help,
                                       const std::vector<std::pair<std::string, std::string>>& labels,
                                       UserMetric::Kind kind, bool own);
  std::vector<std::weak_ptr<UserMetric>> user_;
};

// Whether `name` may be a metric name in Prometheus' exposition format.
bool valid_metric_name(const std::string& name);

}  // namespace monolake::proxy::metrics
