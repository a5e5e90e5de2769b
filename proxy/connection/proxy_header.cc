#include "proxy/connection/proxy_header.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace monolake::proxy::connection {

transport::SocketAddress to_socket_address(const codec::ProxyAddress& a) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (a.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(a.port);
    std::memcpy(&in->sin_addr, a.address.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    std::memcpy(&in6->sin6_addr, a.address.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return transport::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
}

std::optional<codec::ProxyAddress> to_proxy_address(const transport::SocketAddress& address) {
  codec::ProxyAddress out;
  if (address.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address.data());
    out.family = AF_INET;
    out.port = ntohs(in->sin_port);
    std::memcpy(out.address.data(), &in->sin_addr, 4);
    return out;
  }
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address.data());
    out.family = AF_INET6;
    out.port = ntohs(in6->sin6_port);
    std::memcpy(out.address.data(), &in6->sin6_addr, 16);
    return out;
  }
  return std::nullopt;
}

std::string proxy_header_for(int version, const transport::SocketAddress& client,
                             const transport::SocketAddress& local) {
  return codec::format_proxy_header(version, to_proxy_address(client), to_proxy_address(local));
}

}  // namespace monolake::proxy::connection
