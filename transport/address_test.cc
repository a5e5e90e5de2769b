#include "transport/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace monolake::transport {
namespace {

// The address or a test failure with the parse error.
SocketAddress must_parse(std::string_view text) {
  Result<SocketAddress> r = SocketAddress::parse(text);
  EXPECT_TRUE(r.has_value()) << text << ": " << (r ? "" : r.error().to_string());
  return r ? *r : SocketAddress();
}

// The parse error's message, or a test failure if it parsed.
std::string parse_error(std::string_view text) {
  Result<SocketAddress> r = SocketAddress::parse(text);
  EXPECT_FALSE(r.has_value()) << text << " parsed as " << (r ? r->to_string() : "");
  if (r) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().to_string();
  return r.error().message();
}

TEST(SocketAddressTest, DefaultIsInvalid) {
  SocketAddress a;
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.to_string(), "(none)");
}

TEST(SocketAddressTest, ParsesIpv4) {
  SocketAddress a = must_parse("127.0.0.1:8080");
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_FALSE(a.is_unix());
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
  EXPECT_EQ(a.port(), 8080);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a.data());
  EXPECT_EQ(sin->sin_family, AF_INET);
  EXPECT_EQ(ntohs(sin->sin_port), 8080);
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
}

TEST(SocketAddressTest, ParsesPortBounds) {
  EXPECT_EQ(must_parse("0.0.0.0:0").port(), 0);
  EXPECT_EQ(must_parse("10.1.2.3:65535").port(), 65535);
  EXPECT_EQ(must_parse("10.1.2.3:65535").to_string(), "10.1.2.3:65535");
}

TEST(SocketAddressTest, ParsesIpv6) {
  SocketAddress a = must_parse("[::1]:443");
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_FALSE(a.is_unix());
  EXPECT_EQ(a.size(), sizeof(sockaddr_in6));
  EXPECT_EQ(a.port(), 443);
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a.data());
  EXPECT_EQ(ntohs(sin6->sin6_port), 443);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
  EXPECT_EQ(a.to_string(), "[::1]:443");

  // A full-length address comes back in its canonical (compressed) form.
  EXPECT_EQ(must_parse("[2001:db8:0:0:0:0:0:1]:80").to_string(), "[2001:db8::1]:80");
  EXPECT_EQ(must_parse("[::ffff:127.0.0.1]:1").to_string(), "[::ffff:127.0.0.1]:1");
}

TEST(SocketAddressTest, ParsesUnixWithPrefix) {
  SocketAddress a = must_parse("unix:/tmp/x.sock");
  ASSERT_TRUE(a.valid());
  EXPECT_TRUE(a.is_unix());
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(a.port(), 0);
  const auto* sun = reinterpret_cast<const sockaddr_un*>(a.data());
  EXPECT_STREQ(sun->sun_path, "/tmp/x.sock");
  EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + sizeof("/tmp/x.sock"));
  EXPECT_EQ(a.to_string(), "unix:/tmp/x.sock");
}

TEST(SocketAddressTest, ParsesBareAbsolutePathAsUnix) {
  SocketAddress a = must_parse("/tmp/x.sock");
  ASSERT_TRUE(a.valid());
  EXPECT_TRUE(a.is_unix());
  EXPECT_EQ(a.to_string(), "unix:/tmp/x.sock");
  EXPECT_EQ(a, must_parse("unix:/tmp/x.sock"));
  auto direct = SocketAddress::unix_path("/tmp/x.sock");
  ASSERT_TRUE(direct.has_value());
  EXPECT_EQ(*direct, a);
}

TEST(SocketAddressTest, HostNameIsNotResolved) {
  const std::string message = parse_error("localhost:80");
  EXPECT_NE(message.find("not a numeric IP address"), std::string::npos) << message;
  EXPECT_NE(message.find("localhost"), std::string::npos) << message;
}

TEST(SocketAddressTest, MissingPortIsAnError) {
  const std::string message = parse_error("1.2.3.4");
  EXPECT_NE(message.find("1.2.3.4"), std::string::npos) << message;
  EXPECT_NE(message.find("expected ip:port"), std::string::npos) << message;
}

TEST(SocketAddressTest, BadPortIsAnError) {
  for (const char* text : {"1.2.3.4:99999", "1.2.3.4:65536", "1.2.3.4:", "1.2.3.4:-1",
                           "1.2.3.4:80x", "1.2.3.4: 80", "[::1]:99999", "[::1]:"}) {
    const std::string message = parse_error(text);
    EXPECT_NE(message.find("bad port"), std::string::npos) << text << ": " << message;
    EXPECT_NE(message.find(text), std::string::npos) << text << ": " << message;
  }
}

TEST(SocketAddressTest, BadIpv6FormIsAnError) {
  std::string message = parse_error("[::1]80");
  EXPECT_NE(message.find("[::1]80"), std::string::npos) << message;
  EXPECT_NE(message.find("expected [v6-address]:port"), std::string::npos) << message;

  EXPECT_NE(parse_error("[::1").find("expected [v6-address]:port"), std::string::npos);
  EXPECT_NE(parse_error("[::1]").find("expected [v6-address]:port"), std::string::npos);
  message = parse_error("[::zz]:80");
  EXPECT_NE(message.find("bad IPv6 address"), std::string::npos) << message;
  // An IPv4 address in brackets is not an IPv6 address.
  EXPECT_NE(parse_error("[127.0.0.1]:80").find("bad IPv6 address"), std::string::npos);
  // Bare IPv6 (no brackets) is not accepted as IPv4 either.
  EXPECT_NE(parse_error("::1:80").find("not a numeric IP address"), std::string::npos);
}

TEST(SocketAddressTest, EmptyUnixPathIsAnError) {
  const std::string message = parse_error("unix:");
  EXPECT_NE(message.find("bad unix socket path"), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
}

TEST(SocketAddressTest, EmptyTextIsAnError) {
  EXPECT_NE(parse_error("").find("expected ip:port"), std::string::npos);
}

TEST(SocketAddressTest, UnixPathLengthLimit) {
  constexpr size_t kMax = sizeof(sockaddr_un::sun_path) - 1;  // room for the terminating NUL
  const std::string longest = "/" + std::string(kMax - 1, 'a');
  ASSERT_EQ(longest.size(), kMax);
  SocketAddress a = must_parse("unix:" + longest);
  EXPECT_EQ(a.to_string(), "unix:" + longest);
  EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + kMax + 1);

  const std::string too_long = longest + "b";
  const std::string message = parse_error("unix:" + too_long);
  EXPECT_NE(message.find("bad unix socket path"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(kMax) + " bytes"), std::string::npos) << message;
  // The same limit for a bare path.
  EXPECT_NE(parse_error(too_long).find("bad unix socket path"), std::string::npos);
  auto direct = SocketAddress::unix_path(too_long);
  ASSERT_FALSE(direct.has_value());
  EXPECT_EQ(direct.error().code(), ErrorCode::kInvalidArgument);
}

TEST(SocketAddressTest, ToStringRoundTrips) {
  for (const char* text : {"127.0.0.1:8080", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:443",
                           "[::]:0", "[fe80::1:2]:9", "unix:/tmp/x.sock", "unix:relative.sock"}) {
    SocketAddress a = must_parse(text);
    EXPECT_EQ(a.to_string(), text);
    SocketAddress b = must_parse(a.to_string());
    EXPECT_EQ(a, b) << text;
  }
}

TEST(SocketAddressTest, PortAndWithPort) {
  SocketAddress v4 = must_parse("127.0.0.1:80");
  SocketAddress v4b = v4.with_port(8443);
  EXPECT_EQ(v4b.port(), 8443);
  EXPECT_EQ(v4b.to_string(), "127.0.0.1:8443");
  EXPECT_EQ(v4.port(), 80);  // the original is unchanged
  EXPECT_EQ(v4b.with_port(80), v4);

  SocketAddress v6 = must_parse("[::1]:80");
  EXPECT_EQ(v6.with_port(0).to_string(), "[::1]:0");
  EXPECT_EQ(v6.with_port(65535).port(), 65535);
  EXPECT_EQ(v6.with_port(0).with_port(80), v6);

  // Unix addresses have no port; with_port leaves them as they are.
  SocketAddress u = must_parse("unix:/tmp/x.sock");
  EXPECT_EQ(u.port(), 0);
  EXPECT_EQ(u.with_port(1234), u);
}

TEST(SocketAddressTest, Equality) {
  EXPECT_EQ(must_parse("127.0.0.1:80"), must_parse("127.0.0.1:80"));
  EXPECT_FALSE(must_parse("127.0.0.1:80") == must_parse("127.0.0.1:81"));
  EXPECT_FALSE(must_parse("127.0.0.1:80") == must_parse("127.0.0.2:80"));
  EXPECT_FALSE(must_parse("127.0.0.1:80") == must_parse("[::1]:80"));
  EXPECT_FALSE(must_parse("[::ffff:127.0.0.1]:80") == must_parse("127.0.0.1:80"));
  EXPECT_EQ(must_parse("[::1]:80"), must_parse("[0:0:0:0:0:0:0:1]:80"));
  EXPECT_FALSE(must_parse("unix:/a") == must_parse("unix:/b"));
  EXPECT_FALSE(must_parse("unix:/a") == must_parse("unix:/ab"));
  EXPECT_EQ(SocketAddress(), SocketAddress());
  EXPECT_FALSE(SocketAddress() == must_parse("127.0.0.1:80"));
}

TEST(SocketAddressTest, FromSockaddr) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(5555);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SocketAddress a = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  EXPECT_EQ(a.to_string(), "127.0.0.1:5555");
  EXPECT_EQ(a, must_parse("127.0.0.1:5555"));

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(6666);
  sin6.sin6_addr = in6addr_loopback;
  SocketAddress b = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
  EXPECT_EQ(b.to_string(), "[::1]:6666");
  EXPECT_EQ(b, must_parse("[::1]:6666"));

  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strcpy(sun.sun_path, "/tmp/y.sock");
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + sizeof("/tmp/y.sock"));
  SocketAddress c = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sun), len);
  EXPECT_EQ(c.to_string(), "unix:/tmp/y.sock");
  EXPECT_EQ(c, must_parse("unix:/tmp/y.sock"));

  // A length larger than sockaddr_storage is clamped, not overrun.
  struct {
    sockaddr_storage storage;
    char extra[64];
  } big{};
  std::memcpy(&big.storage, &sin, sizeof sin);
  SocketAddress d = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&big), sizeof big);
  EXPECT_EQ(d.size(), sizeof(sockaddr_storage));
  EXPECT_EQ(d.port(), 5555);
}

TEST(SocketAddressTest, UnnamedUnixAddress) {
  // getpeername() of an unbound Unix client gives just the family.
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  SocketAddress a =
      SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sun), sizeof(sa_family_t));
  EXPECT_TRUE(a.valid());
  EXPECT_TRUE(a.is_unix());
  EXPECT_EQ(a.to_string(), "unix:");
}

TEST(SocketAddressTest, LocalOfBoundSocket) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  SocketAddress want = must_parse("127.0.0.1:0");
  ASSERT_EQ(::bind(fd, want.data(), want.size()), 0) << std::strerror(errno);
  Result<SocketAddress> local = SocketAddress::local_of(fd);
  ASSERT_TRUE(local.has_value()) << local.error().to_string();
  EXPECT_EQ(local->family(), AF_INET);
  EXPECT_NE(local->port(), 0);
  EXPECT_EQ(*local, want.with_port(local->port()));
  EXPECT_EQ(local->to_string(), "127.0.0.1:" + std::to_string(local->port()));

  // Not connected: no peer.
  Result<SocketAddress> peer = SocketAddress::peer_of(fd);
  ASSERT_FALSE(peer.has_value());
  EXPECT_EQ(peer.error().sys_errno(), ENOTCONN);
  EXPECT_NE(peer.error().message().find("getpeername"), std::string::npos);
  ::close(fd);
}

TEST(SocketAddressTest, LocalAndPeerOfConnectedUnixPair) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Result<SocketAddress> local = SocketAddress::local_of(fds[0]);
  Result<SocketAddress> peer = SocketAddress::peer_of(fds[0]);
  ASSERT_TRUE(local.has_value());
  ASSERT_TRUE(peer.has_value());
  EXPECT_TRUE(local->is_unix());
  EXPECT_EQ(local->to_string(), "unix:");
  EXPECT_EQ(peer->to_string(), "unix:");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(SocketAddressTest, LocalOfBadFd) {
  Result<SocketAddress> r = SocketAddress::local_of(-1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().sys_errno(), EBADF);
  EXPECT_NE(r.error().message().find("getsockname"), std::string::npos);
}

}  // namespace
TEST(SocketAddressTest, UnixFilePath) {
  EXPECT_EQ(must_parse("unix:/tmp/x.sock").unix_file_path(), "/tmp/x.sock");
  EXPECT_EQ(must_parse("127.0.0.1:80").unix_file_path(), "");
  EXPECT_EQ(SocketAddress().unix_file_path(), "");
}

TEST(SocketAddressTest, IpTextHasNoPortOrBrackets) {
  EXPECT_EQ(must_parse("192.0.2.1:80").ip_text(), "192.0.2.1");
  EXPECT_EQ(must_parse("[2001:db8::1]:443").ip_text(), "2001:db8::1");
  EXPECT_EQ(SocketAddress::unix_path("/tmp/s").value().ip_text(), "unix");
  EXPECT_EQ(SocketAddress().ip_text(), "(none)");
}

}  // namespace monolake::transport
