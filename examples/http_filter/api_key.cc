#include "examples/http_filter/api_key.h"

#include <algorithm>

namespace example {

namespace {

// 401 with a small body, as the proxy's own error answers look.
mh::Response refuse(const char* why) {
  mh::Response response = mh::text_response(401, std::string("401 Unauthorized: ") + why + "\n");
  response.head.headers.set("www-authenticate", "ApiKey");
  return response;
}

}  // namespace

monolake::runtime::Task<Result<mh::Response>> ApiKeyCheck::call(mh::Request request) {
  const std::optional<std::string_view> key = request.head.headers.get(params_->header);
  const char* verdict =
      !key ? "missing"
      : std::find(params_->keys.begin(), params_->keys.end(), *key) == params_->keys.end()
          ? "unknown"
          : "ok";
  if (request.context) request.context->log_fields.emplace_back("api_key", verdict);
  if (std::string_view(verdict) != "ok") {
    counters_.refused->value.add();
    co_return refuse(verdict);
  }
  counters_.ok->value.add();
  request.head.headers.remove(params_->header);  // the key is for the proxy, not the upstream
  Result<mh::Response> response = co_await inner_->call(std::move(request));
  if (response && !params_->stamp.empty()) {
    response->head.headers.set(params_->stamp, std::to_string(counters_.ok->value.get()));
  }
  co_return response;
}

Result<std::shared_ptr<ApiKeyCheck>> ApiKeyFactory::make_via_ref(const ApiKeyCheck* previous,
                                                                 std::shared_ptr<Inner> inner,
                                                                 const Build&) const {
  if (!inner) return monolake::Error(monolake::ErrorCode::kInvalidArgument, "nothing to guard");
  ApiKeyCounters counters;
  if (previous) {
    counters = previous->counters();  // this worker's counts go on
  } else {
    auto& metrics = monolake::proxy::metrics::Registry::global();
    const char* help = "Requests the api_key filter let through or refused, per verdict.";
    counters.ok = metrics.user("http_filter_api_key_requests_total", help,
                               {{"server", params_->server_name}, {"verdict", "ok"}});
    counters.refused = metrics.user("http_filter_api_key_requests_total", help,
                                    {{"server", params_->server_name}, {"verdict", "refused"}});
  }
  return std::make_shared<ApiKeyCheck>(params_, std::move(counters), std::move(inner));
}

monolake::proxy::ParamSchema api_key_schema() {
  monolake::proxy::ParamSchema schema;
  schema.string_list("keys").required().doc("the API keys accepted");
  schema.string("header").default_value("x-api-key").doc("the request header with the key");
  schema.string("stamp")
      .default_value("x-api-key-checked")
      .doc("response header with this worker's count of accepted requests (\"\": none)");
  return schema;
}

Result<std::shared_ptr<const framework::HttpLayerFactory>> make_api_key(
    const framework::FilterParams& p) {
  ApiKeyParams params;
  params.keys = p.params.string_list("keys");
  params.header = p.params.string("header");
  params.stamp = p.params.string("stamp");
  params.server_name = p.server_name;
  if (params.keys.empty()) {
    return monolake::Error(monolake::ErrorCode::kInvalidArgument,
                           "keys: an empty list would refuse every request");
  }
  if (params.header.empty()) {
    return monolake::Error(monolake::ErrorCode::kInvalidArgument, "header: must not be empty");
  }
  return std::make_shared<ApiKeyFactory>(std::move(params));
}

}  // namespace example
