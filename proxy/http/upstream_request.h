// How a client's request becomes the upstream's: hop-by-hop fields removed, X-Forwarded-*, the
// route's path and header rewrites. Used by HttpForward; no I/O.
#pragma once

#include <string>

#include "base/error.h"
#include "http/exchange.h"
#include "proxy/http/layer_params.h"
#include "proxy/http/forward.h"
#include "transport/address.h"

namespace monolake::proxy::http {

// Fields a proxy never forwards (RFC 9110 7.6.1), plus those a Connection field names.
void remove_hop_by_hop(monolake::http::HeaderMap& headers);

// The route's path rewrite: strip_prefix (on a segment boundary), then add_prefix.
void rewrite_path(const ForwardOptions& options, std::string& target);
void apply_header_rewrite(const HeaderRewrite& rewrite, monolake::http::HeaderMap& headers);
// Turns the client's request head into the upstream's: origin-form target, no hop-by-hop or
// framing fields (the writer frames from the body), X-Forwarded-*, X-Request-Id.
void prepare_upstream_head(const ForwardOptions& options, monolake::http::Request& request);
// The Host of a request that came without one (HTTP/1.0).
std::string upstream_authority(const transport::SocketAddress& address,
                               const std::string& server_name);
// A local answer with `status`; `why` goes to the access log.
monolake::http::Response error_response(monolake::http::Request& request, int status,
                                        const std::string& why);
// An error that a pooled connection closed by the upstream meanwhile gives.
bool stale_connection_error(const Error& e);

}  // namespace monolake::proxy::http
