// Addresses of `uri` upstreams, resolved on the control thread (never on a worker).
// Private to //proxy/server.
#pragma once

#include <string>

#include "base/result.h"
#include "proxy/config/config.h"

namespace monolake::proxy::server::internal {

// Sets the address of every `uri` upstream of `server`: an IP literal as is, a host name through
// the system resolver (the first address). Appends "host:port=address " to `fingerprint` for
// each name, so a later call tells whether any answer changed.
Result<void> resolve_uri_endpoints(const config::Config& config, config::ServerConfig& server,
                                   std::string* fingerprint);

}  // namespace monolake::proxy::server::internal
