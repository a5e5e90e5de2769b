#include "codec/proxy_protocol.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace monolake::codec {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr size_t kV2FixedPart = 16;  // signature, version/command, family, length

Error malformed(std::string why) { return Error(ErrorCode::kProtocol, "PROXY header: " + why); }

// Whether `data` could still become `prefix` (all of it seen, or a beginning of it).
bool starts_like(std::string_view data, std::string_view prefix) {
  const size_t n = std::min(data.size(), prefix.size());
  return data.substr(0, n) == prefix.substr(0, n);
}

// --- version 1 --------------------------------------------------------------------------------

// Splits `line` at single spaces; the specification allows exactly one between fields.
bool next_field(std::string_view& line, std::string_view& field) {
  if (line.empty()) return false;
  const size_t space = line.find(' ');
  field = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return !field.empty();
}

bool parse_v1_address(std::string_view text, int family, ProxyAddress& out) {
  if (text.size() > 45) return false;  // longer than any IPv6 text form
  const std::string zero_terminated(text);
  out.family = family;
  return ::inet_pton(family, zero_terminated.c_str(), out.address.data()) == 1;
}

// Decimal 0..65535, no sign, no leading zero.
bool parse_v1_port(std::string_view text, uint16_t& out) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  out = static_cast<uint16_t>(value);
  return true;
}

Result<std::optional<ProxyHeader>> parse_v1(std::string_view data) {
  const size_t end = data.substr(0, kMaxProxyV1Header).find("\r\n");
  if (end == std::string_view::npos) {
    if (data.substr(0, kMaxProxyV1Header).find('\n') != std::string_view::npos) {
      return malformed("v1 line not ended by CRLF");
    }
    if (data.size() >= kMaxProxyV1Header) {
      return Error(ErrorCode::kLimitExceeded, "PROXY header: v1 line longer than 107 bytes");
    }
    return std::optional<ProxyHeader>();
  }
  std::string_view line = data.substr(kV1Prefix.size(), end - kV1Prefix.size());
  // A line break inside the line, even in UNKNOWN's ignored rest, is refused: with it, how the
  // line is read would depend on where the reads split it.
  if (line.find_first_of("\r\n") != std::string_view::npos) {
    return malformed("v1 line not ended by CRLF");
  }
  ProxyHeader header;
  header.version = 1;
  header.length = end + 2;
  std::string_view protocol;
  if (!next_field(line, protocol)) return malformed("v1 line without a protocol");
  if (protocol == "UNKNOWN") return header;  // the rest of the line is to be ignored
  int family = 0;
  if (protocol == "TCP4") {
    family = AF_INET;
  } else if (protocol == "TCP6") {
    family = AF_INET6;
  } else {
    return malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN");
  }
  std::string_view source, destination, source_port, destination_port;
  if (!next_field(line, source) || !next_field(line, destination) ||
      !next_field(line, source_port) || !next_field(line, destination_port) || !line.empty()) {
    return malformed("v1 line is not 'PROXY TCPn SOURCE DESTINATION SPORT DPORT'");
  }
  ProxyAddress from, to;
  if (!parse_v1_address(source, family, from) || !parse_v1_address(destination, family, to)) {
    return malformed("v1 address is not an address of its protocol");
  }
  if (!parse_v1_port(source_port, from.port) || !parse_v1_port(destination_port, to.port)) {
    return malformed("v1 port is not a number from 0 to 65535");
  }
  header.source = from;
  header.destination = to;
  return header;
}

// --- version 2 --------------------------------------------------------------------------------

uint16_t read_u16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

Result<std::optional<ProxyHeader>> parse_v2(std::string_view data) {
  if (data.size() < kV2FixedPart) return std::optional<ProxyHeader>();
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned version = bytes[12] >> 4;
  const unsigned command = bytes[12] & 0x0f;
  const unsigned family = bytes[13] >> 4;
  const unsigned transport = bytes[13] & 0x0f;
  const size_t length = kV2FixedPart + read_u16(bytes + 14);
  if (version != 2) return malformed("v2 signature with a version other than 2");
  if (command > 1) return malformed("v2 command is neither LOCAL nor PROXY");
  if (length > kMaxProxyV2Header) {
    return Error(ErrorCode::kLimitExceeded, "PROXY header: v2 header of " + std::to_string(length) +
                                                " bytes (limit " +
                                                std::to_string(kMaxProxyV2Header) + ")");
  }
  if (data.size() < length) return std::optional<ProxyHeader>();
  ProxyHeader header;
  header.version = 2;
  header.length = length;
  // LOCAL, and families and transports other than TCP over IPv4 or IPv6 (UNSPEC, UDP, Unix),
  // carry no address this proxy uses: the connection's own stand, as the specification asks.
  if (command == 0 || transport != 1 || (family != 1 && family != 2)) return header;
  const size_t address_bytes = family == 1 ? 4 : 16;
  const size_t needed = 2 * address_bytes + 4;
  if (length - kV2FixedPart < needed) return malformed("v2 header too short for its addresses");
  const unsigned char* p = bytes + kV2FixedPart;
  ProxyAddress from, to;
  from.family = to.family = family == 1 ? AF_INET : AF_INET6;
  std::memcpy(from.address.data(), p, address_bytes);
  std::memcpy(to.address.data(), p + address_bytes, address_bytes);
  from.port = read_u16(p + 2 * address_bytes);
  to.port = read_u16(p + 2 * address_bytes + 2);
  header.source = from;
  header.destination = to;
  return header;  // TLVs, if any, are skipped with the rest of `length`
}

}  // namespace

Result<std::optional<ProxyHeader>> parse_proxy_header(std::string_view data,
                                                      ProxyVersions accepted) {
  if (data.empty()) return std::optional<ProxyHeader>();
  const bool v1_ok = accepted != ProxyVersions::kV2;
  const bool v2_ok = accepted != ProxyVersions::kV1;
  if (v1_ok && starts_like(data, kV1Prefix)) {
    if (data.size() < kV1Prefix.size()) return std::optional<ProxyHeader>();
    return parse_v1(data);
  }
  if (v2_ok && starts_like(data, kV2Signature)) {
    if (data.size() < kV2Signature.size()) return std::optional<ProxyHeader>();
    return parse_v2(data);
  }
  switch (accepted) {
    case ProxyVersions::kV1:
      return malformed("the connection does not start with a v1 header ('PROXY ')");
    case ProxyVersions::kV2:
      return malformed("the connection does not start with the v2 signature");
    case ProxyVersions::kAny:
      break;
  }
  return malformed("the connection does not start with a v1 or v2 header");
}

namespace {

// `a` as IPv4-mapped IPv6 (::ffff:a.b.c.d) when it is IPv4.
ProxyAddress as_ipv6(const ProxyAddress& a) {
  if (a.family == AF_INET6) return a;
  ProxyAddress mapped;
  mapped.family = AF_INET6;
  mapped.port = a.port;
  mapped.address[10] = mapped.address[11] = 0xff;
  std::memcpy(mapped.address.data() + 12, a.address.data(), 4);
  return mapped;
}

std::string v1_address(const ProxyAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family, a.address.data(), text, sizeof(text));
  return text;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

std::string format_proxy_header(int version, const std::optional<ProxyAddress>& source,
                                const std::optional<ProxyAddress>& destination) {
  std::optional<ProxyAddress> from = source, to = destination;
  const auto known = [](const std::optional<ProxyAddress>& a) {
    return a && (a->family == AF_INET || a->family == AF_INET6);
  };
  if (!known(from) || !known(to)) from.reset(), to.reset();
  if (from && from->family != to->family) from = as_ipv6(*from), to = as_ipv6(*to);
  if (version == 1) {
    if (!from) return "PROXY UNKNOWN\r\n";
    return std::string(kV1Prefix) + (from->family == AF_INET ? "TCP4 " : "TCP6 ") +
           v1_address(*from) + " " + v1_address(*to) + " " + std::to_string(from->port) + " " +
           std::to_string(to->port) + "\r\n";
  }
  std::string out(kV2Signature);
  out.push_back(0x21);  // version 2, command PROXY
  if (!from) {
    out.push_back(0x00);  // UNSPEC
    put_u16(out, 0);
    return out;
  }
  const size_t address_bytes = from->family == AF_INET ? 4 : 16;
  out.push_back(from->family == AF_INET ? 0x11 : 0x21);  // TCP over IPv4 / IPv6
  put_u16(out, static_cast<uint16_t>(2 * address_bytes + 4));
  out.append(reinterpret_cast<const char*>(from->address.data()), address_bytes);
  out.append(reinterpret_cast<const char*>(to->address.data()), address_bytes);
  put_u16(out, from->port);
  put_u16(out, to->port);
  return out;
}

}  // namespace monolake::codec
