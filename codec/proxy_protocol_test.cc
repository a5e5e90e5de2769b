#include "codec/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

namespace monolake::codec {
namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string text_of(const ProxyAddress& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family, a.address.data(), buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(a.port);
}

ProxyHeader parsed(std::string_view data, ProxyVersions accepted = ProxyVersions::kAny) {
  Result<std::optional<ProxyHeader>> r = parse_proxy_header(data, accepted);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_TRUE(r && r->has_value()) << "incomplete";
  return r && r->has_value() ? **r : ProxyHeader{};
}

bool incomplete(std::string_view data, ProxyVersions accepted = ProxyVersions::kAny) {
  Result<std::optional<ProxyHeader>> r = parse_proxy_header(data, accepted);
  return r && !r->has_value();
}

ErrorCode error_of(std::string_view data, ProxyVersions accepted = ProxyVersions::kAny) {
  Result<std::optional<ProxyHeader>> r = parse_proxy_header(data, accepted);
  EXPECT_FALSE(r.has_value());
  return r ? ErrorCode::kInternal : r.error().code();
}

// A v2 header: version/command byte, family/transport byte, then `body` (addresses, TLVs).
std::string v2(uint8_t version_command, uint8_t family, std::string body) {
  std::string out = kSig;
  out += static_cast<char>(version_command);
  out += static_cast<char>(family);
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  return out + body;
}

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out += static_cast<char>(b);
  return out;
}

TEST(ProxyProtocolV1, Tcp4AndTcp6) {
  const std::string line = "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n";
  ProxyHeader h = parsed(line + "GET / HTTP/1.1\r\n");
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.length, line.size());
  ASSERT_TRUE(h.source && h.destination);
  EXPECT_EQ(text_of(*h.source), "192.0.2.1:51000");
  EXPECT_EQ(text_of(*h.destination), "198.51.100.2:443");

  h = parsed("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", ProxyVersions::kV1);
  ASSERT_TRUE(h.source);
  EXPECT_EQ(h.source->family, AF_INET6);
  EXPECT_EQ(text_of(*h.source), "2001:db8::1:65535");
  EXPECT_EQ(text_of(*h.destination), "::1:0");
}

TEST(ProxyProtocolV1, UnknownKeepsTheConnectionsAddresses) {
  ProxyHeader h = parsed("PROXY UNKNOWN\r\n");
  EXPECT_EQ(h.length, 15u);
  EXPECT_FALSE(h.source.has_value());
  h = parsed("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
  EXPECT_FALSE(h.source.has_value());
}

TEST(ProxyProtocolV1, EveryPrefixIsIncomplete) {
  const std::string line = "PROXY TCP4 10.1.2.3 10.0.0.1 1234 80\r\n";
  for (size_t n = 0; n < line.size(); ++n) {
    EXPECT_TRUE(incomplete(line.substr(0, n))) << n;
    EXPECT_TRUE(incomplete(line.substr(0, n), ProxyVersions::kV1)) << n;
  }
}

TEST(ProxyProtocolV1, MalformedLinesAreRefused) {
  for (const char* bad : {
           "PROXY TCP4 10.1.2.3 10.0.0.1 1234 80\n",      // LF without CR
           "PROXY TCP5 10.1.2.3 10.0.0.1 1234 80\r\n",    // protocol
           "PROXY TCP4 10.1.2.3 10.0.0.1 1234\r\n",       // a field missing
           "PROXY TCP4 10.1.2.3 10.0.0.1 1234 80 9\r\n",  // one too many
           "PROXY TCP4  10.1.2.3 10.0.0.1 1234 80\r\n",   // two spaces
           "PROXY TCP4 10.1.2.300 10.0.0.1 1234 80\r\n",  // address
           "PROXY TCP4 ::1 10.0.0.1 1234 80\r\n",         // IPv6 under TCP4
           "PROXY TCP6 10.1.2.3 ::1 1234 80\r\n",         // IPv4 under TCP6
           "PROXY TCP4 10.1.2.3 10.0.0.1 65536 80\r\n",   // port range
           "PROXY TCP4 10.1.2.3 10.0.0.1 080 80\r\n",     // leading zero
           "PROXY TCP4 10.1.2.3 10.0.0.1 -1 80\r\n",      // sign
           "PROXY \r\n",                                  // nothing
           "GET / HTTP/1.1\r\n",                          // no header at all
       }) {
    EXPECT_EQ(error_of(bad), ErrorCode::kProtocol) << bad;
  }
}

TEST(ProxyProtocolV1, LongerThanTheSpecificationsLimit) {
  const std::string longest = "PROXY UNKNOWN " + std::string(kMaxProxyV1Header - 16, 'x') + "\r\n";
  ASSERT_EQ(longest.size(), kMaxProxyV1Header);
  EXPECT_EQ(parsed(longest).length, kMaxProxyV1Header);
  const std::string too_long = "PROXY UNKNOWN " + std::string(200, 'x');
  EXPECT_EQ(error_of(too_long), ErrorCode::kLimitExceeded);
}

TEST(ProxyProtocolV2, Tcp4WithTlvsAndTcp6) {
  std::string body = bytes({192, 0, 2, 1, 198, 51, 100, 2, 0xc7, 0x38, 0x01, 0xbb});
  body += bytes({0x04, 0x00, 0x02, 'h', '2'});  // a TLV (NOOP), skipped
  const std::string header = v2(0x21, 0x11, body);
  ProxyHeader h = parsed(header + "\x16\x03\x01", ProxyVersions::kV2);
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.length, header.size());
  ASSERT_TRUE(h.source);
  EXPECT_EQ(text_of(*h.source), "192.0.2.1:51000");
  EXPECT_EQ(text_of(*h.destination), "198.51.100.2:443");

  std::string six(32, '\0');
  six[15] = 1;                  // ::1
  six[16] = 0x20, six[17] = 1;  // 2001::
  six += bytes({0x12, 0x34, 0x00, 0x50});
  h = parsed(v2(0x21, 0x21, six));
  ASSERT_TRUE(h.source);
  EXPECT_EQ(text_of(*h.source), "::1:4660");
  EXPECT_EQ(text_of(*h.destination), "2001:::80");
}

TEST(ProxyProtocolV2, LocalUnspecUdpAndUnixCarryNoAddress) {
  EXPECT_FALSE(parsed(v2(0x20, 0x00, "")).source.has_value());  // LOCAL: a health check
  EXPECT_FALSE(parsed(v2(0x20, 0x11, std::string(12, '\1'))).source.has_value());
  EXPECT_FALSE(parsed(v2(0x21, 0x00, "")).source.has_value());                      // UNSPEC
  EXPECT_FALSE(parsed(v2(0x21, 0x12, std::string(12, '\1'))).source.has_value());   // UDP
  EXPECT_FALSE(parsed(v2(0x21, 0x31, std::string(216, '\0'))).source.has_value());  // Unix
}

TEST(ProxyProtocolV2, EveryPrefixIsIncomplete) {
  const std::string header = v2(0x21, 0x11, std::string(12, '\7'));
  for (size_t n = 0; n < header.size(); ++n) EXPECT_TRUE(incomplete(header.substr(0, n))) << n;
}

TEST(ProxyProtocolV2, MalformedAndOversizedHeadersAreRefused) {
  EXPECT_EQ(error_of(v2(0x11, 0x11, std::string(12, '\0'))), ErrorCode::kProtocol);  // version 1
  EXPECT_EQ(error_of(v2(0x22, 0x11, std::string(12, '\0'))), ErrorCode::kProtocol);  // command 2
  EXPECT_EQ(error_of(v2(0x21, 0x11, std::string(11, '\0'))), ErrorCode::kProtocol);  // short
  EXPECT_EQ(error_of(v2(0x21, 0x21, std::string(35, '\0'))), ErrorCode::kProtocol);  // short
  std::string bad_sig = v2(0x21, 0x11, std::string(12, '\0'));
  bad_sig[6] = 'x';
  EXPECT_EQ(error_of(bad_sig), ErrorCode::kProtocol);
  // The length says more than the limit: refused from the fixed part, before the rest arrives.
  const std::string huge = v2(0x21, 0x11, std::string(kMaxProxyV2Header, '\0'));
  EXPECT_EQ(error_of(huge.substr(0, 16)), ErrorCode::kLimitExceeded);
}

TEST(ProxyProtocol, AcceptedVersions) {
  const std::string one = "PROXY TCP4 10.1.2.3 10.0.0.1 1234 80\r\n";
  const std::string two = v2(0x21, 0x11, std::string(12, '\7'));
  EXPECT_EQ(error_of(one, ProxyVersions::kV2), ErrorCode::kProtocol);
  EXPECT_EQ(error_of(two, ProxyVersions::kV1), ErrorCode::kProtocol);
  EXPECT_EQ(parsed(one, ProxyVersions::kV1).version, 1);
  EXPECT_EQ(parsed(two, ProxyVersions::kV2).version, 2);
  EXPECT_EQ(parsed(one).version, 1);
  EXPECT_EQ(parsed(two).version, 2);
  // A TLS ClientHello or an HTTP request where a header must be: refused at the first byte.
  EXPECT_EQ(error_of("\x16"), ErrorCode::kProtocol);
  EXPECT_EQ(error_of("G"), ErrorCode::kProtocol);
}

ProxyAddress address(const char* text, uint16_t port) {
  ProxyAddress a;
  a.family = std::string_view(text).find(':') != std::string_view::npos ? AF_INET6 : AF_INET;
  ::inet_pton(a.family, text, a.address.data());
  a.port = port;
  return a;
}

TEST(ProxyProtocolFormat, WhatIsWrittenParsesBackInBothVersions) {
  const ProxyAddress v4c = address("192.0.2.1", 51000), v4d = address("198.51.100.2", 443);
  const ProxyAddress v6c = address("2001:db8::1", 40000), v6d = address("2001:db8::2", 8443);
  EXPECT_EQ(format_proxy_header(1, v4c, v4d), "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n");
  EXPECT_EQ(format_proxy_header(1, v6c, v6d), "PROXY TCP6 2001:db8::1 2001:db8::2 40000 8443\r\n");
  for (int version : {1, 2}) {
    for (const auto& [client, local] : {std::pair{v4c, v4d}, std::pair{v6c, v6d}}) {
      const std::string header = format_proxy_header(version, client, local);
      ProxyHeader h = parsed(header);
      EXPECT_EQ(h.version, version);
      EXPECT_EQ(h.length, header.size());
      ASSERT_TRUE(h.source && h.destination);
      EXPECT_EQ(text_of(*h.source), text_of(client));
      EXPECT_EQ(text_of(*h.destination), text_of(local));
    }
  }
  EXPECT_EQ(format_proxy_header(2, v4c, v4d).size(), 16u + 12u);
  EXPECT_EQ(format_proxy_header(2, v6c, v6d).size(), 16u + 36u);
}

TEST(ProxyProtocolFormat, AnIpv4ClientOnAnIpv6ListenerIsMapped) {
  ProxyHeader h = parsed(format_proxy_header(1, address("192.0.2.1", 5000), address("::1", 80)));
  ASSERT_TRUE(h.source);
  EXPECT_EQ(text_of(*h.source), "::ffff:192.0.2.1:5000");
}

TEST(ProxyProtocolFormat, NoAddressMeansUnknownOrUnspec) {
  EXPECT_EQ(format_proxy_header(1, std::nullopt, address("192.0.2.1", 80)), "PROXY UNKNOWN\r\n");
  const std::string v2_unspec = format_proxy_header(2, std::nullopt, std::nullopt);
  EXPECT_EQ(v2_unspec, kSig + std::string("\x21\x00\x00\x00", 4));
  ProxyHeader h = parsed(v2_unspec);
  EXPECT_FALSE(h.source.has_value());
  EXPECT_EQ(h.length, 16u);
}

}  // namespace
}  // namespace monolake::codec
