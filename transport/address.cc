#include "transport/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

#include "base/log.h"

namespace monolake::transport {

namespace {

Result<uint16_t> parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("bad port in address '{}'", whole));
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<SocketAddress> SocketAddress::parse(std::string_view text) {
  if (text.substr(0, 5) == "unix:") return unix_path(text.substr(5));
  if (!text.empty() && text.front() == '/') return unix_path(text);
  SocketAddress out;
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("bad address '{}': expected [v6-address]:port", text));
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    auto port = parse_port(port_text, text);
    if (!port) return std::move(port).error();
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(*port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
      return Error(ErrorCode::kInvalidArgument, fmt::format("bad IPv6 address in '{}'", text));
    }
    out.len_ = sizeof(sockaddr_in6);
    return out;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Error(
        ErrorCode::kInvalidArgument,
        fmt::format("bad address '{}': expected ip:port, [ipv6]:port or unix:/path", text));
  }
  host = std::string(text.substr(0, colon));
  auto port = parse_port(text.substr(colon + 1), text);
  if (!port) return std::move(port).error();
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(*port);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("bad address '{}': '{}' is not a numeric IP address", text, host));
  }
  out.len_ = sizeof(sockaddr_in);
  return out;
}

Result<SocketAddress> SocketAddress::unix_path(std::string_view path) {
  SocketAddress out;
  auto* sun = reinterpret_cast<sockaddr_un*>(&out.storage_);
  if (path.empty() || path.size() >= sizeof(sun->sun_path)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("bad unix socket path '{}': empty or longer than {} bytes", path,
                             sizeof(sun->sun_path) - 1));
  }
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  out.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* addr, socklen_t len) {
  SocketAddress out;
  if (len > sizeof out.storage_) len = sizeof out.storage_;
  std::memcpy(&out.storage_, addr, len);
  out.len_ = len;
  return out;
}

Result<SocketAddress> SocketAddress::local_of(int fd) {
  SocketAddress out;
  out.len_ = sizeof out.storage_;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage_), &out.len_) != 0) {
    return Error::from_errno(errno, "getsockname");
  }
  return out;
}

Result<SocketAddress> SocketAddress::peer_of(int fd) {
  SocketAddress out;
  out.len_ = sizeof out.storage_;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage_), &out.len_) != 0) {
    return Error::from_errno(errno, "getpeername");
  }
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

SocketAddress SocketAddress::with_port(uint16_t port) const {
  SocketAddress out = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(port);
  if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(port);
  }
  return out;
}

std::string SocketAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
      return fmt::format("{}:{}", buf, port());
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
                sizeof buf);
      return fmt::format("[{}]:{}", buf, port());
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
      const size_t max =
          len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
      return "unix:" + std::string(sun->sun_path, strnlen(sun->sun_path, max));
    }
    default:
      return "(none)";
  }
}

std::string SocketAddress::ip_text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
      return buf;
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
                sizeof buf);
      return buf;
    case AF_UNIX:
      return "unix";
    default:
      return "(none)";
  }
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  return len_ == other.len_ && std::memcmp(&storage_, &other.storage_, len_) == 0;
}

std::string SocketAddress::unix_file_path() const {
  if (!is_unix()) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  const size_t max =
      len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
  if (max == 0 || un->sun_path[0] == '\0') return {};
  return std::string(un->sun_path, ::strnlen(un->sun_path, max));
}

}  // namespace monolake::transport
