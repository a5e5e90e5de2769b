// HashOn: the request key a route's hashing balancer (`load_balancer = "ring_hash" | "maglev"`)
// hashes, from the route's `hash_on` table. Which bytes of a request make the key is the
// server kind's business (http: proxy/http/hash_key.h; tcp and thrift: the client address).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace monolake::proxy {

struct HashOn {
  enum class Source : uint8_t {
    kHeader,    // the first value of the header `name` (lower case)
    kCookie,    // the value of the cookie `name`
    kSourceIp,  // the effective client address, without the port
    kPath,      // the request's path, without the query
  };
  Source source = Source::kSourceIp;
  std::string name;

  bool operator==(const HashOn& other) const {
    return source == other.source && name == other.name;
  }
};

// "header:x-user-id", "cookie:sid", "source_ip", "path": for /config and logs.
std::string hash_on_text(const HashOn& hash_on);

}  // namespace monolake::proxy
