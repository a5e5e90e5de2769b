#include "http/message.h"

#include <algorithm>

namespace monolake::http {

std::string_view version_name(Version version) {
  switch (version) {
    case Version::kHttp10:
      return "HTTP/1.0";
    case Version::kHttp11:
      return "HTTP/1.1";
    case Version::kHttp2:
      return "HTTP/2";
  }
  return "HTTP/1.1";
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  fields_.push_back(Stored{std::string(name), std::string(value)});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  auto it = std::find_if(fields_.begin(), fields_.end(),
                         [&](const Stored& f) { return iequals(f.name, name); });
  if (it == fields_.end()) {
    add(name, value);
    return;
  }
  it->value.assign(value);
  // Drop the later duplicates.
  fields_.erase(
      std::remove_if(it + 1, fields_.end(), [&](const Stored& f) { return iequals(f.name, name); }),
      fields_.end());
}

size_t HeaderMap::remove(std::string_view name) {
  const size_t before = fields_.size();
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                               [&](const Stored& f) { return iequals(f.name, name); }),
                fields_.end());
  return before - fields_.size();
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const Stored& f : fields_) {
    if (iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> HeaderMap::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Stored& f : fields_) {
    if (iequals(f.name, name)) out.push_back(f.value);
  }
  return out;
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(),
                                           [&](const Stored& f) { return iequals(f.name, name); }));
}

bool HeaderMap::has_token(std::string_view name, std::string_view token) const {
  bool found = false;
  for_each_token(name, [&](std::string_view t) { found = found || iequals(t, token); });
  return found;
}

std::string_view RequestHead::path_and_query() const {
  std::string_view t = target;
  if (t.empty() || t.front() == '/' || t == "*") return t;
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  const size_t scheme_end = t.find("://");
  if (scheme_end == std::string_view::npos) return t;
  const size_t path_start = t.find_first_of("/?", scheme_end + 3);
  if (path_start == std::string_view::npos) return "/";
  if (t[path_start] == '?') return t.substr(path_start);  // "http://h?q": path is empty
  return t.substr(path_start);
}

std::string_view RequestHead::path() const {
  std::string_view pq = path_and_query();
  const size_t q = pq.find('?');
  return q == std::string_view::npos ? pq : pq.substr(0, q);
}

std::string_view RequestHead::authority() const {
  std::string_view t = target;
  if (!t.empty() && t.front() != '/' && t != "*") {
    const size_t scheme_end = t.find("://");
    if (scheme_end != std::string_view::npos) {
      std::string_view rest = t.substr(scheme_end + 3);
      return rest.substr(0, rest.find_first_of("/?"));
    }
  }
  return headers.get("host").value_or(std::string_view());
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace monolake::http
