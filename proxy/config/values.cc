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
