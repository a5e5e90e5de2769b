// DirectAnswer: a route that answers by itself (`return = { status, body, headers }`).
#pragma once

#include "proxy/config/config.h"
#include "proxy/http/http_service.h"

namespace monolake::proxy::http {

class DirectAnswer final : public HttpService {
 public:
  explicit DirectAnswer(config::DirectResponse response) : response_(std::move(response)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;

 private:
  config::DirectResponse response_;
};

}  // namespace monolake::proxy::http
