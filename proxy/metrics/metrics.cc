#include "proxy/metrics/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "base/log.h"

namespace monolake::proxy::metrics {

namespace {
void observe_latency(std::array<Counter, kLatencyBuckets.size() + 1>& latency, Counter& sum_us,
                     std::chrono::nanoseconds took) {
  const double seconds = std::chrono::duration<double>(took).count();
  size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
  latency[bucket].add();
  sum_us.add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
}
}  // namespace

void HttpServerStats::observe(int status, std::chrono::nanoseconds took) {
  const int cls = status / 100;
  responses[(cls >= 1 && cls <= 5) ? cls : 0].add();
  observe_latency(latency, latency_sum_us, took);
}

void ThriftServerStats::observe(size_t outcome, std::chrono::nanoseconds took) {
  calls[outcome < calls.size() ? outcome : 0].add();
  observe_latency(latency, latency_sum_us, took);
}

Registry& Registry::global() {
  static Registry* registry = new Registry();  // never destroyed: workers may outlive main()
  return *registry;
}

template <class T>
static std::shared_ptr<T> add_to(std::mutex& mutex, std::vector<std::weak_ptr<T>>& list,
                                 const std::string& server) {
  auto stats = std::make_shared<T>();
  stats->server = server;
  std::lock_guard<std::mutex> lock(mutex);
  list.erase(std::remove_if(list.begin(), list.end(), [](const auto& w) { return w.expired(); }),
             list.end());
  list.push_back(stats);
  return stats;
}

std::shared_ptr<HttpServerStats> Registry::http(const std::string& server) {
  return add_to(mutex_, http_, server);
}

std::shared_ptr<L4ServerStats> Registry::l4(const std::string& server) {
  return add_to(mutex_, l4_, server);
}

std::shared_ptr<ThriftServerStats> Registry::thrift(const std::string& server) {
  return add_to(mutex_, thrift_, server);
}

namespace {
// Label values escaped per the exposition format.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::shared_ptr<UserMetric> Registry::user(
    const std::string& name, const std::string& help,
    const std::vector<std::pair<std::string, std::string>>& labels, UserMetric::Kind kind) {
  return labelled(name, help, labels, kind, /*own=*/false);
}

std::shared_ptr<UserMetric> Registry::own(
    const std::string& name, const std::string& help,
    const std::vector<std::pair<std::string, std::string>>& labels, UserMetric::Kind kind) {
  return labelled(name, help, labels, kind, /*own=*/true);
}

std::shared_ptr<UserMetric> Registry::labelled(
    const std::string& name, const std::string& help,
    const std::vector<std::pair<std::string, std::string>>& labels, UserMetric::Kind kind,
    bool own) {
  auto metric = std::make_shared<UserMetric>();
  metric->name = name;
  metric->help = help;
  metric->kind = kind;
  for (const auto& [key, value] : labels) {
    if (!metric->labels.empty()) metric->labels += ",";
    metric->labels += key + "=\"" + label(value) + "\"";
  }
  bool labels_ok = true;
  for (const auto& [key, value] : labels) labels_ok = labels_ok && valid_metric_name(key);
  if (!valid_metric_name(name) || !labels_ok || (name.rfind("monolake_", 0) == 0) != own) {
    // Counted but never listed: one bad name must not break every scrape of /stats.
    ML_LOG(kWarn,
           "metrics: '{}' is not a metric name of a layer's own (letters, digits, _ and :, "
           "not starting monolake_); it will not appear in /stats",
           name);
    return metric;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  user_.push_back(metric);
  return metric;
}

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    const bool alpha =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':';
    if (!alpha && !(i > 0 && ch >= '0' && ch <= '9')) return false;
  }
  return true;
}

namespace {

// A duration histogram per server (Prometheus buckets are cumulative); `sums` maps a server
// name to something with `latency` (per bucket, the last +Inf) and `sum_us`.
template <class Sums>
void append_histogram(std::string& out, const char* name, const char* help, const Sums& sums) {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (const auto& [server, s] : sums) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < s.latency.size(); ++i) {
      cumulative += s.latency[i];
      const std::string le =
          i < kLatencyBuckets.size() ? fmt::format("{}", kLatencyBuckets[i]) : std::string("+Inf");
      out += fmt::format("{}_bucket{{server=\"{}\",le=\"{}\"}} {}\n", name, label(server), le,
                         cumulative);
    }
    out += fmt::format("{}_sum{{server=\"{}\"}} {}\n", name, label(server),
                       static_cast<double>(s.sum_us) / 1e6);
    out += fmt::format("{}_count{{server=\"{}\"}} {}\n", name, label(server), cumulative);
  }
}
}  // namespace

std::string Registry::prometheus_text() {
  struct HttpSum {
    std::array<uint64_t, 6> responses{};
    uint64_t connect_errors = 0;
    std::array<uint64_t, kLatencyBuckets.size() + 1> latency{};
    uint64_t sum_us = 0;
    uint64_t idle = 0;
    uint64_t h2_connections = 0, h2_streams = 0, h2_abuse = 0;
  };
  struct L4Sum {
    uint64_t connections = 0, active = 0, connect_errors = 0, up = 0, down = 0;
  };
  struct ThriftSum {
    std::array<uint64_t, ThriftServerStats::kOutcomes.size()> calls{};
    uint64_t connect_errors = 0, errors = 0, in_flight = 0, connections = 0;
    std::array<uint64_t, kLatencyBuckets.size() + 1> latency{};
    uint64_t sum_us = 0;
  };
  std::map<std::string, HttpSum> http;
  std::map<std::string, L4Sum> l4;
  std::map<std::string, ThriftSum> thrift;
  struct UserSum {
    std::string help;
    UserMetric::Kind kind = UserMetric::Kind::kCounter;
    std::map<std::string, uint64_t> values;  // by labels
  };
  std::map<std::string, UserSum> user;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& weak : http_) {
      auto s = weak.lock();
      if (!s) continue;
      HttpSum& sum = http[s->server];
      for (size_t i = 0; i < sum.responses.size(); ++i) sum.responses[i] += s->responses[i].get();
      sum.connect_errors += s->upstream_connect_errors.get();
      for (size_t i = 0; i < sum.latency.size(); ++i) sum.latency[i] += s->latency[i].get();
      sum.sum_us += s->latency_sum_us.get();
      sum.idle += s->idle_upstream_connections.get();
      sum.h2_connections += s->h2_connections.get();
      sum.h2_streams += s->h2_streams.get();
      sum.h2_abuse += s->h2_abuse_closed.get();
    }
    for (const auto& weak : l4_) {
      auto s = weak.lock();
      if (!s) continue;
      L4Sum& sum = l4[s->server];
      sum.connections += s->connections.get();
      sum.active += s->active.get();
      sum.connect_errors += s->upstream_connect_errors.get();
      sum.up += s->bytes_to_upstream.get();
      sum.down += s->bytes_to_client.get();
    }
    for (auto it = user_.begin(); it != user_.end();) {
      auto m = it->lock();
      if (!m) {
        it = user_.erase(it);  // its layer is gone: drop the entry
        continue;
      }
      UserSum& sum = user[m->name];
      if (sum.help.empty()) {
        sum.help = m->help;
        sum.kind = m->kind;
      }
      sum.values[m->labels] += m->value.get();
      ++it;
    }
    for (const auto& weak : thrift_) {
      auto s = weak.lock();
      if (!s) continue;
      ThriftSum& sum = thrift[s->server];
      for (size_t i = 0; i < sum.calls.size(); ++i) sum.calls[i] += s->calls[i].get();
      sum.connect_errors += s->upstream_connect_errors.get();
      sum.errors += s->upstream_errors.get();
      sum.in_flight += s->in_flight.get();
      sum.connections += s->upstream_connections.get();
      for (size_t i = 0; i < sum.latency.size(); ++i) sum.latency[i] += s->latency[i].get();
      sum.sum_us += s->latency_sum_us.get();
    }
  }
  std::string out;
  out += "# HELP monolake_http_responses_total HTTP responses sent, by status class.\n";
  out += "# TYPE monolake_http_responses_total counter\n";
  static const char* kClass[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const auto& [server, s] : http) {
    for (size_t i = 0; i < s.responses.size(); ++i) {
      out += fmt::format("monolake_http_responses_total{{server=\"{}\",class=\"{}\"}} {}\n",
                         label(server), kClass[i], s.responses[i]);
    }
  }
  out += "# HELP monolake_http_upstream_connect_errors_total Failed upstream connects.\n";
  out += "# TYPE monolake_http_upstream_connect_errors_total counter\n";
  for (const auto& [server, s] : http) {
    out += fmt::format("monolake_http_upstream_connect_errors_total{{server=\"{}\"}} {}\n",
                       label(server), s.connect_errors);
  }
  out += "# HELP monolake_http_upstream_idle_connections Pooled idle upstream connections.\n";
  out += "# TYPE monolake_http_upstream_idle_connections gauge\n";
  for (const auto& [server, s] : http) {
    out += fmt::format("monolake_http_upstream_idle_connections{{server=\"{}\"}} {}\n",
                       label(server), s.idle);
  }
  const std::pair<const char*, uint64_t HttpSum::*> h2_counters[] = {
      {"monolake_http2_connections_total", &HttpSum::h2_connections},
      {"monolake_http2_streams_total", &HttpSum::h2_streams},
      {"monolake_http2_abuse_closed_total", &HttpSum::h2_abuse}};
  const char* h2_help[] = {"Client connections served with HTTP/2.",
                           "Request streams on HTTP/2 client connections.",
                           "HTTP/2 client connections ended by a flood limit."};
  for (size_t c = 0; c < 3; ++c) {
    const auto& [name, field] = h2_counters[c];
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, h2_help[c], name);
    for (const auto& [server, s] : http) {
      out += fmt::format("{}{{server=\"{}\"}} {}\n", name, label(server), s.*field);
    }
  }
  append_histogram(out, "monolake_http_request_duration_seconds",
                   "Time from request head to response end.", http);
  out += "# HELP monolake_l4_connections_total Client connections accepted by tcp servers.\n";
  out += "# TYPE monolake_l4_connections_total counter\n";
  for (const auto& [server, s] : l4) {
    out += fmt::format("monolake_l4_connections_total{{server=\"{}\"}} {}\n", label(server),
                       s.connections);
  }
  out += "# TYPE monolake_l4_active_connections gauge\n";
  for (const auto& [server, s] : l4) {
    out += fmt::format("monolake_l4_active_connections{{server=\"{}\"}} {}\n", label(server),
                       s.active);
  }
  out += "# TYPE monolake_l4_upstream_connect_errors_total counter\n";
  for (const auto& [server, s] : l4) {
    out += fmt::format("monolake_l4_upstream_connect_errors_total{{server=\"{}\"}} {}\n",
                       label(server), s.connect_errors);
  }
  out += "# TYPE monolake_l4_bytes_total counter\n";
  for (const auto& [server, s] : l4) {
    out += fmt::format("monolake_l4_bytes_total{{server=\"{}\",direction=\"to_upstream\"}} {}\n",
                       label(server), s.up);
    out += fmt::format("monolake_l4_bytes_total{{server=\"{}\",direction=\"to_client\"}} {}\n",
                       label(server), s.down);
  }
  out += "# HELP monolake_thrift_calls_total Thrift calls answered, by outcome.\n";
  out += "# TYPE monolake_thrift_calls_total counter\n";
  for (const auto& [server, s] : thrift) {
    for (size_t i = 0; i < s.calls.size(); ++i) {
      out += fmt::format("monolake_thrift_calls_total{{server=\"{}\",outcome=\"{}\"}} {}\n",
                         label(server), ThriftServerStats::kOutcomes[i], s.calls[i]);
    }
  }
  out += "# HELP monolake_thrift_upstream_connect_errors_total Failed upstream connects.\n";
  out += "# TYPE monolake_thrift_upstream_connect_errors_total counter\n";
  for (const auto& [server, s] : thrift) {
    out += fmt::format("monolake_thrift_upstream_connect_errors_total{{server=\"{}\"}} {}\n",
                       label(server), s.connect_errors);
  }
  out +=
      "# HELP monolake_thrift_upstream_errors_total Calls failed by a broken upstream "
      "connection, a malformed reply or a timeout.\n";
  out += "# TYPE monolake_thrift_upstream_errors_total counter\n";
  for (const auto& [server, s] : thrift) {
    out += fmt::format("monolake_thrift_upstream_errors_total{{server=\"{}\"}} {}\n", label(server),
                       s.errors);
  }
  out += "# HELP monolake_thrift_calls_in_flight Calls waiting for their upstream.\n";
  out += "# TYPE monolake_thrift_calls_in_flight gauge\n";
  for (const auto& [server, s] : thrift) {
    out += fmt::format("monolake_thrift_calls_in_flight{{server=\"{}\"}} {}\n", label(server),
                       s.in_flight);
  }
  out += "# HELP monolake_thrift_upstream_connections Open upstream connections.\n";
  out += "# TYPE monolake_thrift_upstream_connections gauge\n";
  for (const auto& [server, s] : thrift) {
    out += fmt::format("monolake_thrift_upstream_connections{{server=\"{}\"}} {}\n", label(server),
                       s.connections);
  }
  append_histogram(out, "monolake_thrift_call_duration_seconds",
                   "Time from call read to reply ready.", thrift);
  for (const auto& [name, sum] : user) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, sum.help, name,
                       sum.kind == UserMetric::Kind::kGauge ? "gauge" : "counter");
    for (const auto& [labels, value] : sum.values) {
      out += labels.empty() ? fmt::format("{} {}\n", name, value)
                            : fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  return out;
}

}  // namespace monolake::proxy::metrics
