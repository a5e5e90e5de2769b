// SocketAddress: an IPv4, IPv6 or Unix-domain socket address.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace monolake::transport {

class SocketAddress {
 public:
  SocketAddress() = default;

  // "127.0.0.1:8080", "[::1]:8080", or "unix:/path/to.sock". Host names are not resolved here
  // (resolution is the caller's, off the data path): a name is an error that says so.
  static Result<SocketAddress> parse(std::string_view text);
  static Result<SocketAddress> unix_path(std::string_view path);
  static SocketAddress from_sockaddr(const sockaddr* addr, socklen_t len);
  // The local or peer address of a socket.
  static Result<SocketAddress> local_of(int fd);
  static Result<SocketAddress> peer_of(int fd);

  int family() const { return storage_.ss_family; }
  bool is_unix() const { return family() == AF_UNIX; }
  bool valid() const { return len_ != 0; }
  const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const { return len_; }
  // 0 for Unix addresses.
  uint16_t port() const;
  // The same address with another port (IP only).
  SocketAddress with_port(uint16_t port) const;

  // "127.0.0.1:8080", "[::1]:8080", "unix:/path".
  std::string to_string() const;
  // The IP alone, without port or brackets ("192.0.2.1", "::1"); "unix" for a Unix address
  // (one client, whatever the path), "(none)" for an empty one.
  std::string ip_text() const;
  // The file path of a Unix address (empty for IP and abstract addresses).
  std::string unix_file_path() const;

  bool operator==(const SocketAddress& other) const;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

}  // namespace monolake::transport
