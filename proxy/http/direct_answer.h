// DirectAnswer: a route that answers by itself (`return = { status, body, headers }`).
#pragma once

#include "proxy/http/layer_params.h"
#include "proxy/http/http_service.h"
#include "proxy/service/stack.h"

namespace monolake::proxy::http {

class DirectAnswer final : public HttpService {
 public:
  explicit DirectAnswer(DirectResponse response) : response_(std::move(response)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;

 private:
  DirectResponse response_;
};

// Stateless: nothing to take over.
class DirectAnswerFactory final : public FactoryLayer<DirectAnswer> {
 public:
  explicit DirectAnswerFactory(DirectResponse response) : response_(std::move(response)) {}
  Result<std::shared_ptr<DirectAnswer>> make_via_ref(const DirectAnswer* previous,
                                                     std::shared_ptr<HttpService> inner,
                                                     const Build& build) const override;

 private:
  DirectResponse response_;
};

}  // namespace monolake::proxy::http
