// Route selection for HTTP servers: host, then path, Monolake's (matchit) way.
//
// Host: routes with an exact host beat "*.suffix" routes (longer suffix first), which beat
// routes without a host; the first of these groups with a path match wins. Path patterns use
// matchit syntax: static segments ("/a"), one parameter per segment ("/u/{id}", also with text
// around it: "/img/{name}.png"), and a catch-all as the whole last segment ("/static/{*rest}").
// Among matching paths the most specific wins, segment by segment: static beats parameter
// beats catch-all (so "/u/me" beats "/u/{id}" for "/u/me"). The query is not matched.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace monolake::proxy::http {

class PathPattern {
 public:
  static Result<PathPattern> parse(std::string_view pattern);
  // The match's specificity (one rank per segment: 2 static, 1 parameter, 0 catch-all), or
  // nullopt if `path` does not match.
  std::optional<std::vector<uint8_t>> match(std::string_view path) const;
  const std::string& text() const { return text_; }

 private:
  struct Segment {
    enum class Kind : uint8_t { kStatic, kParam, kCatchAll };
    Kind kind = Kind::kStatic;
    std::string prefix;  // kStatic: the whole segment; kParam: text before "{...}"
    std::string suffix;  // kParam: text after "{...}"
  };
  std::string text_;
  std::vector<Segment> segments_;
};

// Host matching: "" (any), "example.com" (exact), "*.example.com" (subdomains). Returns the
// match's rank (3 exact, 2 wildcard, 1 any) and, for wildcards, the suffix length as a
// tie-break; nullopt if no match. `request_host` may carry a port; it is ignored.
struct HostRank {
  int group = 0;
  size_t suffix = 0;
  bool operator<(const HostRank& o) const {
    return group != o.group ? group < o.group : suffix < o.suffix;
  }
  bool operator==(const HostRank& o) const { return group == o.group && suffix == o.suffix; }
};
std::optional<HostRank> match_host(std::string_view route_host, std::string_view request_host);

// Picks among routes given as (host, pattern); returns the index of the winner.
class Router {
 public:
  Result<void> add(std::string host, std::string_view path_pattern);
  std::optional<size_t> find(std::string_view host, std::string_view path) const;
  size_t size() const { return routes_.size(); }

 private:
  struct Route {
    std::string host;
    PathPattern pattern;
  };
  std::vector<Route> routes_;
};

}  // namespace monolake::proxy::http
