// Content negotiation for response compression (RFC 9110 12.5.3): which coding a client's
// Accept-Encoding admits, among those a route offers.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "http/compression/encoder.h"

namespace monolake::http::compression {

// The coding to answer with: the one of `offered` with the highest q-value above 0 (a coding
// not listed takes the q-value of "*", if any), ties going to the earlier in `offered`; nothing
// when none is acceptable (the response goes as it is: identity is always acceptable here).
// Tokens are case-insensitive. A malformed member ("gzip;q=2", "br;q=x", "zst d") is ignored
// rather than refused: a bad Accept-Encoding costs the client compression, not its response.
std::optional<Coding> negotiate(std::string_view accept_encoding,
                                const std::vector<Coding>& offered);

}  // namespace monolake::http::compression
