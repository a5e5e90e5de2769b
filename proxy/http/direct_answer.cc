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

}  // namespace monolake::proxy::http
