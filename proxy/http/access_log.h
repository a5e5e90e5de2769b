#pragma once

#include <memory>
#include <string>

#include "proxy/http/http_service.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/stack.h"

namespace monolake::proxy::http {

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

// The counters of HTTP server `server_name` on this worker, shared by the layers of the server's
// chain and carried over a reload while the server keeps its name (totals do not reset).
std::shared_ptr<metrics::HttpServerStats> http_server_stats(const Build& build,
                                                            const std::string& server_name);

class AccessLogFactory final : public FactoryLayer<AccessLog> {
 public:
  explicit AccessLogFactory(std::string server_name) : server_name_(std::move(server_name)) {}
  Result<std::shared_ptr<AccessLog>> make_via_ref(const AccessLog* previous,
                                                  std::shared_ptr<HttpService> inner,
                                                  const Build& build) const override;

 private:
  std::string server_name_;
};

}  // namespace monolake::proxy::http
