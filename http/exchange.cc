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

std::string_view client_ip(const Request& request) {
  if (request.context && !request.context->client_ip.empty()) return request.context->client_ip;
  if (!request.connection || request.connection->client_ip.empty()) return "unknown";
  return request.connection->client_ip;
}

}  // namespace monolake::http
