// Reading the client's cookies (RFC 6265 section 5.4: `Cookie: a=1; b=2`), for layers that key on
// one (a hashing balancer's hash_on = { cookie = "sid" }).
#pragma once

#include <optional>
#include <string_view>

#include "http/message.h"

namespace monolake::http {

// The value of the first cookie called `name` (exact, case-sensitive, as browsers send names) in
// any Cookie field, surrounding double quotes kept; nullopt when there is none. HTTP/2 crumbs
// arrive joined into one field (h2/session.cc), so one loop serves both versions.
std::optional<std::string_view> cookie_value(const HeaderMap& headers, std::string_view name);

}  // namespace monolake::http
