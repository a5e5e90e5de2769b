#include "proxy/http/hash_key.h"

#include "http/cookie.h"
#include "http/exchange.h"
#include "proxy/upstream/consistent_hash.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

std::optional<uint64_t> request_key_hash(const HashOn& hash_on, const mh::Request& request) {
  std::optional<std::string_view> key;
  switch (hash_on.source) {
    case HashOn::Source::kHeader:
      key = request.head.headers.get(hash_on.name);
      break;
    case HashOn::Source::kCookie:
      key = mh::cookie_value(request.head.headers, hash_on.name);
      break;
    case HashOn::Source::kSourceIp:
      key = mh::client_ip(request);
      break;
    case HashOn::Source::kPath:
      key = request.head.path();
      break;
  }
  if (!key) return std::nullopt;
  return stable_hash(*key);
}

}  // namespace monolake::proxy::http
