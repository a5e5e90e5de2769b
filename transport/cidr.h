// A CIDR block of IP addresses ("10.0.0.0/8", "2001:db8::/32", or one address: all its bits),
// for the configuration's address lists (trusted_proxies, allow, deny, proxy_protocol_from).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/address.h"

namespace monolake::transport {

struct Cidr {
  SocketAddress network;  // port 0
  int prefix = 0;         // bits that must match: 0..32 (IPv4), 0..128 (IPv6)

  // nullopt for anything else than an IPv4 or IPv6 literal with an optional /BITS.
  static std::optional<Cidr> parse(std::string_view text);
  // Whether `address` (its IP; the port is ignored) is in the block. An IPv4-mapped IPv6
  // address (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client) is matched
  // as the IPv4 address it carries.
  bool contains(const SocketAddress& address) const;
  std::string to_string() const;
};

// Whether any block of `list` contains `address`.
bool any_contains(const std::vector<Cidr>& list, const SocketAddress& address);

}  // namespace monolake::transport
