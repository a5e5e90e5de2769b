// The PROXY protocol header (HAProxy's specification, versions 1 and 2): what a load balancer in
// front writes at the start of a TCP connection to tell the real client's address. This parses
// the header from the first bytes of a connection; no I/O, no allocation. The connection layer
// that reads it is proxy/connection/proxy_protocol.h.
//
//   v1: "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n"      (text, at most 107 bytes)
//       "PROXY UNKNOWN ...\r\n"                                   (no address: use the socket's)
//   v2: 12-byte signature, version/command, family, length, addresses, TLVs (binary).
//       Command LOCAL (a balancer's own health check) carries no address.
//
// Only the source (client) and destination addresses are returned; v2 TLVs are skipped.
// format_proxy_header() writes the header a proxy sends to its upstreams.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace monolake::codec {

// Which versions a listener accepts.
enum class ProxyVersions { kV1, kV2, kAny };

// A v2 header (with its TLVs) longer than this is refused: balancers send tens of bytes, and
// the header is held in memory before the connection is served.
inline constexpr size_t kMaxProxyV2Header = 1024;
// The longest v1 line the specification allows, CRLF included.
inline constexpr size_t kMaxProxyV1Header = 107;

struct ProxyAddress {
  int family = 0;                     // AF_INET or AF_INET6
  std::array<uint8_t, 16> address{};  // network order; the first 4 bytes for AF_INET
  uint16_t port = 0;                  // host order
};

struct ProxyHeader {
  int version = 0;    // 1 or 2
  size_t length = 0;  // bytes the header takes at the front of the stream
  // The announced connection, absent for v2 LOCAL, v1 UNKNOWN and v2 families other than TCP
  // over IPv4/IPv6 (UNSPEC, UDP, Unix): the connection's own addresses stand.
  std::optional<ProxyAddress> source;
  std::optional<ProxyAddress> destination;
};

// Parses a header at the front of `data`. Returns the header, std::nullopt when `data` is a
// valid but incomplete beginning of one (read more and call again), or an error (kProtocol: not
// a header of an accepted version, malformed; kLimitExceeded: longer than the limits above).
Result<std::optional<ProxyHeader>> parse_proxy_header(std::string_view data,
                                                      ProxyVersions accepted);

// The header a proxy writes first on its connection to an upstream (send_proxy_protocol):
// version 1 or 2, announcing `source` (the client) and `destination` (the address the client
// connected to). Without both addresses, or with addresses of two families that cannot be
// reconciled, it announces no address: v1 "PROXY UNKNOWN", v2 PROXY with family UNSPEC (the
// receiver uses the connection's own addresses). An IPv4 address beside an IPv6 one is written
// as IPv4-mapped IPv6, so one header carries both.
std::string format_proxy_header(int version, const std::optional<ProxyAddress>& source,
                                const std::optional<ProxyAddress>& destination);

}  // namespace monolake::codec
