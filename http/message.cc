#include "http/message.h"

#include <algorithm>
#include <cstring>

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

void HeaderMap::Bytes::grow(size_t capacity, std::string_view tail) {
  capacity = std::max({capacity, capacity_ * 2, size_t{128}});
  std::unique_ptr<char[]> grown(new char[capacity]);
  if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
  if (!tail.empty()) std::memcpy(grown.get() + size_, tail.data(), tail.size());
  data_ = std::move(grown);
  capacity_ = capacity;
}

void HeaderMap::Bytes::assign(const Bytes& other) {
  size_ = 0;
  reserve(other.size_);
  if (other.size_ > 0) std::memcpy(data_.get(), other.data_.get(), other.size_);
  size_ = other.size_;
}

uint32_t HeaderMap::append(std::string_view text) {
  const auto at = static_cast<uint32_t>(bytes_.size());
  bytes_.append(text);
  return at;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  // `value` may be a view of these very bytes (a field copied within the map), which the
  // first append may move: keep its offset and look it up again after.
  const char* base = bytes_.data();
  const bool value_inside =
      !value.empty() && value.data() >= base && value.data() < base + bytes_.size();
  const size_t value_offset = value_inside ? static_cast<size_t>(value.data() - base) : 0;
  const uint32_t name_at = append(name);
  if (value_inside) value = std::string_view(bytes_.data() + value_offset, value.size());
  const uint32_t value_at = append(value);
  slots_.push_back(Slot{name_at, static_cast<uint32_t>(name.size()), value_at,
                        static_cast<uint32_t>(value.size())});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  auto it = std::find_if(slots_.begin(), slots_.end(),
                         [&](const Slot& f) { return iequals(name_of(f), name); });
  if (it == slots_.end()) {
    add(name, value);
    return;
  }
  if (value.size() <= it->value_size) {  // fits where the old value was
    if (!value.empty()) std::memmove(bytes_.data() + it->value_at, value.data(), value.size());
    dead_ += it->value_size - value.size();
  } else {
    dead_ += it->value_size;
    // `value` may be a view of these very bytes: append() may reallocate them, so the slot's
    // offset is written after.
    const uint32_t value_at = append(value);
    it->value_at = value_at;
  }
  it->value_size = static_cast<uint32_t>(value.size());
  // Drop the later duplicates.
  auto later = std::remove_if(it + 1, slots_.end(), [&](const Slot& f) {
    if (!iequals(name_of(f), name)) return false;
    dead_ += f.name_size + f.value_size;
    return true;
  });
  slots_.erase(later, slots_.end());
  maybe_compact();
}

size_t HeaderMap::remove(std::string_view name) {
  // Most removals find nothing (hop-by-hop fields a request did not have): look first.
  if (count(name) == 0) return 0;
  const size_t before = slots_.size();
  remove_if([&](const Field& f) { return iequals(f.name, name); });
  return before - slots_.size();
}

void HeaderMap::maybe_compact() {
  if (slots_.empty()) {
    bytes_.clear();
    dead_ = 0;
    return;
  }
  if (dead_ < 1024 || dead_ < bytes_.size() - dead_) return;
  Bytes live;
  live.reserve(bytes_.size() - dead_);
  for (Slot& slot : slots_) {
    const auto name_at = static_cast<uint32_t>(live.size());
    live.append(std::string_view(bytes_.data() + slot.name_at, slot.name_size));
    const auto value_at = static_cast<uint32_t>(live.size());
    live.append(std::string_view(bytes_.data() + slot.value_at, slot.value_size));
    slot.name_at = name_at;
    slot.value_at = value_at;
  }
  bytes_ = std::move(live);
  dead_ = 0;
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const Field f : fields()) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::vector<std::string_view> HeaderMap::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Field f : fields()) {
    if (iequals(f.name, name)) out.push_back(f.value);
  }
  return out;
}

size_t HeaderMap::count(std::string_view name) const {
  size_t n = 0;
  for (const Slot& slot : slots_) n += iequals(name_of(slot), name) ? 1 : 0;
  return n;
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
