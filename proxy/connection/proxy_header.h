// The PROXY protocol header (codec/proxy_protocol.h) in terms of socket addresses: what the
// ProxyProtocol connection layer makes of an announced address, and what send_proxy_protocol
// writes first on an upstream connection (tcp and http routes).
#pragma once

#include <optional>
#include <string>

#include "codec/proxy_protocol.h"
#include "transport/address.h"

namespace monolake::proxy::connection {

transport::SocketAddress to_socket_address(const codec::ProxyAddress& address);
// Nothing for a Unix or an unset address.
std::optional<codec::ProxyAddress> to_proxy_address(const transport::SocketAddress& address);

// The header (version 1 or 2) announcing `client`, which connected to `local`.
std::string proxy_header_for(int version, const transport::SocketAddress& client,
                             const transport::SocketAddress& local);

}  // namespace monolake::proxy::connection
