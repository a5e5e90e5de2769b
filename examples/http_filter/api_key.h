// An example request filter: an API-key check plus a response header.
//
//   [[servers.web.filters]]
//   name = "api_key"
//   keys = ["secret-1", "secret-2"]   # required
//   header = "x-api-key"              # where the client puts its key (default)
//   stamp = "x-api-key-checked"       # response header naming how many requests this worker
//                                     # let through (default; "" for none)
//
// A request without a known key is answered 401 and goes no further; one with a key goes on
// (without the key: the upstream never sees it) and its response gets `stamp: N`. N is a
// per-worker counter that survives a reload: the factory builds each worker's ApiKeyCheck from
// that worker's previous one (make_via_ref), handing the counters over. The counters also appear
// in /stats as http_filter_api_key_requests_total{server="...",verdict="ok|refused"}, and each
// request's access-log line gets api_key=ok|missing|unknown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/framework/framework.h"

namespace example {

namespace framework = monolake::proxy::framework;
namespace mh = monolake::http;
using monolake::Result;
using monolake::proxy::Build;
using monolake::proxy::FactoryLayer;
using monolake::proxy::Layer;
using monolake::proxy::metrics::UserMetric;

// This filter's own parameters (read from its schema-checked keys).
struct ApiKeyParams {
  std::vector<std::string> keys;
  std::string header = "x-api-key";
  std::string stamp = "x-api-key-checked";
  std::string server_name;
};

// The per-worker state one generation hands to the next.
struct ApiKeyCounters {
  std::shared_ptr<UserMetric> ok;
  std::shared_ptr<UserMetric> refused;
};

class ApiKeyCheck final : public Layer<mh::Request, mh::Response> {
 public:
  ApiKeyCheck(std::shared_ptr<const ApiKeyParams> params, ApiKeyCounters counters,
              std::shared_ptr<Inner> inner)
      : Layer(std::move(inner)), params_(std::move(params)), counters_(std::move(counters)) {}
  monolake::runtime::Task<Result<mh::Response>> call(mh::Request request) override;
  const ApiKeyCounters& counters() const { return counters_; }

 private:
  // Shared with the factory: a chain may outlive its factory (a request in flight over a reload).
  std::shared_ptr<const ApiKeyParams> params_;
  ApiKeyCounters counters_;
};

class ApiKeyFactory final : public FactoryLayer<ApiKeyCheck> {
 public:
  explicit ApiKeyFactory(ApiKeyParams params)
      : params_(std::make_shared<const ApiKeyParams>(std::move(params))) {}
  Result<std::shared_ptr<ApiKeyCheck>> make_via_ref(const ApiKeyCheck* previous,
                                                    std::shared_ptr<Inner> inner,
                                                    const Build& build) const override;

 private:
  std::shared_ptr<const ApiKeyParams> params_;
};

// The schema of the filter's keys, and its maker: what main() registers.
monolake::proxy::ParamSchema api_key_schema();
Result<std::shared_ptr<const framework::HttpLayerFactory>> make_api_key(
    const framework::FilterParams& params);

}  // namespace example
