// The key an HTTP request is hashed on by its route's ring_hash or maglev balancer (the route's
// hash_on): a header's first value, a cookie, the effective client address, or the path.
#pragma once

#include <cstdint>
#include <optional>

#include "http/exchange.h"
#include "proxy/upstream/hash_on.h"

namespace monolake::proxy::http {

// stable_hash of the request's key; nullopt when the request has none (no such header or
// cookie), and it is then balanced round robin.
std::optional<uint64_t> request_key_hash(const HashOn& hash_on,
                                         const monolake::http::Request& request);

}  // namespace monolake::proxy::http
