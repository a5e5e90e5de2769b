#include "proxy/http/layer_params.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace monolake::proxy::http {

bool Cidr::contains(const transport::SocketAddress& address) const {
  if (address.family() != network.family()) return false;
  const unsigned char* a = nullptr;
  const unsigned char* b = nullptr;
  if (address.family() == AF_INET) {
    a = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr);
    b = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(network.data())->sin_addr);
  } else if (address.family() == AF_INET6) {
    a = reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr.s6_addr;
    b = reinterpret_cast<const sockaddr_in6*>(network.data())->sin6_addr.s6_addr;
  } else {
    return false;
  }
  int bits = prefix;
  for (int byte = 0; bits > 0; ++byte, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a[byte] & mask) != (b[byte] & mask)) return false;
  }
  return true;
}

}  // namespace monolake::proxy::http
