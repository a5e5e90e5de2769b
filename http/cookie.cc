#include "http/cookie.h"

namespace monolake::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> find_in(std::string_view field, std::string_view name) {
  while (!field.empty()) {
    const size_t end = field.find(';');
    const std::string_view pair = trim(field.substr(0, end));
    field = end == std::string_view::npos ? std::string_view() : field.substr(end + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;  // not a cookie-pair: ignored, as browsers do
    if (trim(pair.substr(0, eq)) == name) return trim(pair.substr(eq + 1));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> cookie_value(const HeaderMap& headers, std::string_view name) {
  for (const std::string_view field : headers.get_all("cookie")) {
    if (std::optional<std::string_view> value = find_in(field, name)) return value;
  }
  return std::nullopt;
}

}  // namespace monolake::http
