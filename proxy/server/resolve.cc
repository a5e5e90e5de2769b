#include "proxy/server/internal/resolve.h"

#include <fmt/format.h>
#include <netdb.h>

#include "proxy/server/internal/errors.h"
#include "transport/address.h"

namespace monolake::proxy::server::internal {

// http upstreams given as `uri` get their address here, on the control thread: an IP literal
// as is, a host name through the system resolver (once per load; never on a worker).
Result<void> resolve_uri_endpoints(const config::Config& config, config::ServerConfig& server,
                                   std::string* fingerprint) {
  for (size_t r = 0; r < server.routes.size(); ++r) {
    for (size_t u = 0; u < server.routes[r].upstreams.size(); ++u) {
      config::Endpoint& endpoint = server.routes[r].upstreams[u].endpoint;
      if (endpoint.kind != config::Endpoint::Kind::kUri) continue;
      const std::string key =
          fmt::format("{}.routes[{}].upstreams[{}].endpoint", server_path(server), r, u);
      const config::Uri& uri = endpoint.uri;
      if (uri.scheme != "http" && uri.scheme != "https") {
        return config_error(config, key, "\"" + uri.scheme + "\" upstreams are not supported");
      }
      const bool v6 = uri.host.find(':') != std::string::npos;
      auto literal = transport::SocketAddress::parse((v6 ? "[" + uri.host + "]" : uri.host) + ":" +
                                                     std::to_string(uri.port));
      if (literal) {
        endpoint.address = *literal;
        continue;
      }
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      const int rc =
          ::getaddrinfo(uri.host.c_str(), std::to_string(uri.port).c_str(), &hints, &found);
      if (rc != 0 || !found) {
        return config_error(config, key,
                            "cannot resolve \"" + uri.host + "\": " + gai_strerror(rc));
      }
      endpoint.address = transport::SocketAddress::from_sockaddr(found->ai_addr, found->ai_addrlen);
      ::freeaddrinfo(found);
      if (fingerprint) {
        *fingerprint +=
            uri.host + ":" + std::to_string(uri.port) + "=" + endpoint.address.to_string() + " ";
      }
    }
  }
  return ok();
}

}  // namespace monolake::proxy::server::internal
