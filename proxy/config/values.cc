#include "proxy/config/internal/values.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace monolake::proxy::config::internal {

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A host name ("api.example.com", "localhost") or "*.suffix"; no port, no brackets.
bool valid_route_host(std::string_view host) {
  if (host.substr(0, 2) == "*.") host.remove_prefix(2);
  if (host.empty() || host.size() > 253) return false;
  for (unsigned char c : host) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return host.front() != '.' && host.back() != '.';
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && !std::strchr("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

// "10.0.0.0/8", "::1/128", or a bare address (all its bits).
std::optional<Cidr> parse_cidr(std::string_view text) {
  const size_t slash = text.find('/');
  std::string ip(text.substr(0, slash));
  const bool v6 = ip.find(':') != std::string::npos;
  auto address = transport::SocketAddress::parse(v6 ? "[" + ip + "]:0" : ip + ":0");
  if (!address) return std::nullopt;
  Cidr cidr;
  cidr.network = *address;
  cidr.prefix = v6 ? 128 : 32;
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    int n = -1;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (ec != std::errc() || end != bits.data() + bits.size() || n < 0 || n > cidr.prefix) {
      return std::nullopt;
    }
    cidr.prefix = n;
  }
  return cidr;
}

std::string quoted_list(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += fmt::format("\"{}\"", name);
  }
  return out;
}

// Resolves a relative path against the configuration file's directory.
std::string resolve(const std::string& base_dir, std::string_view path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return std::string(path);
  return (std::filesystem::path(base_dir) / std::filesystem::path(path))
      .lexically_normal()
      .string();
}

}  // namespace monolake::proxy::config::internal
