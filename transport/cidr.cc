#include "transport/cidr.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace monolake::transport {

namespace {

// The address's IP bytes and family, with an IPv4-mapped IPv6 address taken as IPv4.
struct IpBytes {
  int family = 0;
  const unsigned char* bytes = nullptr;
};

IpBytes ip_of(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    return {AF_INET, reinterpret_cast<const unsigned char*>(
                         &reinterpret_cast<const sockaddr_in*>(address.data())->sin_addr)};
  }
  if (address.family() == AF_INET6) {
    const unsigned char* b =
        reinterpret_cast<const sockaddr_in6*>(address.data())->sin6_addr.s6_addr;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, sizeof kMapped) == 0) return {AF_INET, b + 12};
    return {AF_INET6, b};
  }
  return {};
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string ip(text.substr(0, slash));
  const bool v6 = ip.find(':') != std::string::npos;
  Result<SocketAddress> address = SocketAddress::parse(v6 ? "[" + ip + "]:0" : ip + ":0");
  if (!address || (address->family() != AF_INET && address->family() != AF_INET6)) {
    return std::nullopt;
  }
  Cidr cidr;
  cidr.network = *address;
  cidr.prefix = v6 ? 128 : 32;
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    int n = -1;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size() || n < 0 ||
        n > cidr.prefix) {
      return std::nullopt;
    }
    cidr.prefix = n;
  }
  return cidr;
}

bool Cidr::contains(const SocketAddress& address) const {
  const IpBytes a = ip_of(address);
  const IpBytes b = ip_of(network);
  if (a.family == 0 || a.family != b.family) return false;
  int bits = prefix;
  if (network.family() == AF_INET6 && b.family == AF_INET) bits -= 96;  // a mapped block
  for (int byte = 0; bits > 0; ++byte, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a.bytes[byte] & mask) != (b.bytes[byte] & mask)) return false;
  }
  return true;
}

std::string Cidr::to_string() const { return network.ip_text() + "/" + std::to_string(prefix); }

bool any_contains(const std::vector<Cidr>& list, const SocketAddress& address) {
  for (const Cidr& cidr : list) {
    if (cidr.contains(address)) return true;
  }
  return false;
}

}  // namespace monolake::transport
