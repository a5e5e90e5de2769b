#include "http/exchange.h"

namespace monolake::http {

Response text_response(int status, std::string body) {
  Response r;
  r.head.status = status;
  if (body.empty() && status >= 400) {
    body = std::to_string(status) + " " + std::string(reason_phrase(status)) + "\n";
  }
  if (!body.empty()) r.head.headers.add("Content-Type", "text/plain; charset=utf-8");
  r.body = std::make_unique<StringBody>(std::move(body));
  return r;
}

}  // namespace monolake::http
