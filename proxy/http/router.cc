#include "proxy/http/router.h"

#include <cctype>

namespace monolake::proxy::http {

namespace {

std::vector<std::string_view> split_segments(std::string_view path) {
  // "/a/b" -> {"a", "b"}; "/" -> {""}; "/a/" -> {"a", ""}.
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool iequal_char(char a, char b) {
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

}  // namespace

Result<PathPattern> PathPattern::parse(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    return Error(ErrorCode::kInvalidArgument, "a path pattern starts with '/'");
  }
  PathPattern p;
  p.text_ = std::string(pattern);
  std::vector<std::string_view> parts = split_segments(pattern);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    Segment s;
    const size_t open = part.find('{');
    if (open == std::string_view::npos || part.substr(open, 2) == "{{") {
      s.prefix = std::string(part);
    } else {
      const size_t close = part.find('}', open);
      if (close == std::string_view::npos) {
        return Error(ErrorCode::kInvalidArgument, "unclosed '{' in " + p.text_);
      }
      if (part.substr(open + 1, 1) == "*") {
        if (i + 1 != parts.size() || open != 0 || close + 1 != part.size()) {
          return Error(ErrorCode::kInvalidArgument,
                       "a catch-all must be the whole last segment in " + p.text_);
        }
        s.kind = Segment::Kind::kCatchAll;
      } else {
        s.kind = Segment::Kind::kParam;
        s.prefix = std::string(part.substr(0, open));
        s.suffix = std::string(part.substr(close + 1));
      }
    }
    p.segments_.push_back(std::move(s));
  }
  return p;
}

std::optional<std::vector<uint8_t>> PathPattern::match(std::string_view path) const {
  // Walks the path's segments in place (no split): this runs for every request.
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::vector<uint8_t> rank;
  rank.reserve(segments_.size());
  bool more = true;  // a segment (possibly empty) is left in `path`
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (s.kind == Segment::Kind::kCatchAll) {
      // The rest of the path, at least one byte (matchit: "/static/{*rest}" does not match
      // "/static/").
      if (!more || path.empty()) return std::nullopt;
      rank.push_back(0);
      return rank;
    }
    if (!more) return std::nullopt;
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (slash == std::string_view::npos) {
      more = false;
    } else {
      path.remove_prefix(slash + 1);
    }
    if (s.kind == Segment::Kind::kStatic) {
      if (part != s.prefix) return std::nullopt;
      rank.push_back(2);
    } else {
      if (part.size() <= s.prefix.size() + s.suffix.size()) return std::nullopt;  // non-empty
      if (part.substr(0, s.prefix.size()) != s.prefix) return std::nullopt;
      if (part.substr(part.size() - s.suffix.size()) != s.suffix) return std::nullopt;
      rank.push_back(1);
    }
  }
  if (more) return std::nullopt;  // the path has more segments than the pattern
  return rank;
}

std::optional<HostRank> match_host(std::string_view route_host, std::string_view request_host) {
  if (route_host.empty()) return HostRank{1, 0};
  // Drop the port ("example.com:8080", "[::1]:8080").
  if (!request_host.empty() && request_host.front() == '[') {
    request_host = request_host.substr(0, request_host.find(']') + 1);
  } else {
    request_host = request_host.substr(0, request_host.rfind(':'));
  }
  if (!request_host.empty() && request_host.back() == '.') request_host.remove_suffix(1);
  auto iequals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!iequal_char(a[i], b[i])) return false;
    }
    return true;
  };
  if (route_host.substr(0, 2) == "*.") {
    std::string_view suffix = route_host.substr(1);  // ".example.com"
    if (request_host.size() > suffix.size() &&
        iequals(request_host.substr(request_host.size() - suffix.size()), suffix)) {
      return HostRank{2, suffix.size()};
    }
    return std::nullopt;
  }
  if (iequals(route_host, request_host)) return HostRank{3, 0};
  return std::nullopt;
}

Result<void> Router::add(std::string host, std::string_view path_pattern) {
  Result<PathPattern> pattern = PathPattern::parse(path_pattern);
  if (!pattern) return std::move(pattern).error();
  routes_.push_back(Route{std::move(host), std::move(*pattern)});
  return ok();
}

std::optional<size_t> Router::find(std::string_view host, std::string_view path) const {
  std::optional<size_t> best;
  HostRank best_host;
  std::vector<uint8_t> best_rank;
  for (size_t i = 0; i < routes_.size(); ++i) {
    std::optional<HostRank> h = match_host(routes_[i].host, host);
    if (!h) continue;
    if (best && *h < best_host) continue;
    std::optional<std::vector<uint8_t>> rank = routes_[i].pattern.match(path);
    if (!rank) continue;
    if (!best || best_host < *h || (best_host == *h && best_rank < *rank)) {
      best = i;
      best_host = *h;
      best_rank = std::move(*rank);
    }
  }
  return best;
}

}  // namespace monolake::proxy::http
