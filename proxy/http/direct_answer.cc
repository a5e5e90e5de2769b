#include "proxy/http/direct_answer.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

Task<Result<mh::Response>> DirectAnswer::call(mh::Request request) {
  (void)request;
  mh::Response r;
  r.head.status = response_.status;
  for (const auto& [name, value] : response_.headers) r.head.headers.add(name, value);
  r.body = std::make_unique<mh::StringBody>(response_.body);
  co_return r;
}

Result<std::shared_ptr<DirectAnswer>> DirectAnswerFactory::make_via_ref(
    const DirectAnswer*, std::shared_ptr<HttpService>, const Build&) const {
  return std::make_shared<DirectAnswer>(response_);
}

}  // namespace monolake::proxy::http
