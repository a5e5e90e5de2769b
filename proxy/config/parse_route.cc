#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config::internal {

// False when the route is unusable (its errors are reported).
bool Parser::parse_route(const toml::table& table, const std::string& path, ProxyType proxy_type,
                         RouteConfig& out) {
  size_t errors_before = errors_.size();
  TableReader r(
      errors_, table, path,
      {"path", "upstreams", "load_balancer", "host", "return", "upstream_tls", "host_rewrite",
       "strip_prefix", "add_prefix", "request_headers", "response_headers", "websocket", "method",
       "filters", "rate_limit", "send_proxy_protocol", "compression", "hash_on"});
  if (const toml::array* filters = r.array("filters")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("filters"), "only http routes have request filters");
    } else {
      parse_filters(*filters, r.path_of("filters"), out.filters);
    }
  }
  if (std::optional<std::string> send = r.string("send_proxy_protocol")) {
    if (proxy_type != ProxyType::kHttp && proxy_type != ProxyType::kTcp) {
      fail(r.path_of("send_proxy_protocol"), "only http and tcp routes send a PROXY header");
    } else if (*send == "v1" || *send == "v2") {
      out.send_proxy_protocol = *send == "v1" ? 1 : 2;
    } else {
      fail(r.path_of("send_proxy_protocol"),
           fmt::format("unknown PROXY protocol version '{}': expected {}", *send,
                       quoted_list({"v1", "v2"})));
    }
  }
  if (r.has("compression")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("compression"), "only http routes compress responses");
    } else if (const toml::table* c = r.table("compression")) {
      out.compression = parse_compression(*c, r.path_of("compression"));
    }
  }
  if (r.has("rate_limit")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("rate_limit"),
           "only http routes limit requests (connection_rate_limit is the server's)");
    } else if (const toml::table* limit = r.table("rate_limit")) {
      out.rate_limit = parse_rate_limit(*limit, r.path_of("rate_limit"));
    }
  }
  if (r.has("method")) {
    if (proxy_type != ProxyType::kThrift) {
      fail(r.path_of("method"), "only thrift routes match on method");
    } else if (const toml::node* node = table.get("method")) {
      parse_methods(*node, r.path_of("method"), out.methods);
    }
  }
  if (proxy_type == ProxyType::kHttp) {
    if (auto ws = r.boolean("websocket")) out.websocket = *ws;
    if (auto host = r.string("host_rewrite")) {
      if (!valid_header_value(*host) || host->empty()) {
        fail(r.path_of("host_rewrite"), "not a valid Host value");
      } else {
        out.host_rewrite = *host;
      }
    }
    for (const char* key : {"strip_prefix", "add_prefix"}) {
      if (auto prefix = r.string(key)) {
        if (prefix->empty() || prefix->front() != '/' ||
            prefix->find_first_of(" ?#") != std::string::npos) {
          fail(r.path_of(key), "a path prefix starts with '/' and has no space, '?' or '#'");
        } else {
          (std::string_view(key) == "strip_prefix" ? out.strip_prefix : out.add_prefix) = *prefix;
        }
      }
    }
    if (const toml::table* t = r.table("request_headers")) {
      parse_header_rewrite(*t, r.path_of("request_headers"), out.request_headers);
    }
    if (const toml::table* t = r.table("response_headers")) {
      parse_header_rewrite(*t, r.path_of("response_headers"), out.response_headers);
    }
  } else {
    for (const char* key : {"host_rewrite", "strip_prefix", "add_prefix", "request_headers",
                            "response_headers", "websocket"}) {
      if (r.has(key)) fail(r.path_of(key), "only http routes rewrite requests");
    }
  }
  if (const toml::table* upstream_tls = r.table("upstream_tls")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("upstream_tls"), "only http routes have upstream_tls");
    } else {
      out.upstream_tls.emplace();
      parse_upstream_tls(*upstream_tls, r.path_of("upstream_tls"), *out.upstream_tls);
    }
  }
  auto route_path = r.string("path", /*required=*/proxy_type == ProxyType::kHttp);
  if (auto host = r.string("host")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("host"), "only http routes match on host");
    } else if (!valid_route_host(*host)) {
      fail(r.path_of("host"), fmt::format("'{}' is not a host name or *.suffix pattern", *host));
    } else {
      out.host = lowercase(*host);
    }
  }
  if (r.has("return")) {
    if (proxy_type != ProxyType::kHttp) {
      fail(r.path_of("return"), "only http routes can answer directly");
      return false;
    }
    if (const toml::table* direct = r.table("return")) {
      DirectResponse parsed;
      if (!parse_direct_response(*direct, r.path_of("return"), parsed)) return false;
      out.direct = std::move(parsed);
    }
    if (r.has("upstreams")) {
      fail(r.path_of("upstreams"), "a route with \"return\" has no upstreams");
      return false;
    }
  }
  if (route_path && proxy_type == ProxyType::kCustom) {
    out.path = *route_path;  // the server kind's own routing key, as written
  } else if (route_path) {
    if (proxy_type == ProxyType::kTcp) {
      fail(r.path_of("path"), "a tcp route has no path (tcp servers forward every connection)");
    } else if (auto normalised = normalise_route_path(*route_path); !normalised) {
      fail(r.path_of("path"), normalised.error().message());
    } else {
      out.path = std::move(*normalised);
    }
  }
  if (auto lb = r.string("load_balancer")) {
    if (auto parsed = parse_balancer(*lb)) {
      out.load_balancer = *parsed;
    } else {
      fail(r.path_of("load_balancer"), parsed.error().message());
    }
  }
  if (const toml::table* hash_on = r.table("hash_on")) {
    out.hash_on = parse_hash_on(*hash_on, r.path_of("hash_on"), proxy_type);
  }
  const bool hashing = hashes_keys(out.load_balancer);
  if (hashing && !r.has("hash_on") && proxy_type != ProxyType::kCustom) {
    fail(r.path_of("load_balancer"),
         fmt::format("\"{}\" hashes a request key: give hash_on (header, cookie, source_ip or "
                     "path)",
                     balancer_name(out.load_balancer)));
  } else if (!hashing && r.has("hash_on")) {
    fail(r.path_of("hash_on"),
         "hash_on is the key of a hashing balancer: set load_balancer = \"ring_hash\" or "
         "\"maglev\"");
  }
  if (out.direct) return errors_.size() == errors_before;
  const toml::array* upstreams = r.array("upstreams", /*required=*/true);
  if (!upstreams) return false;
  std::string upstreams_path = r.path_of("upstreams");
  if (upstreams->empty()) {
    fail(upstreams_path, "empty upstream list: a route needs at least one upstream");
    return false;
  }
  for (size_t i = 0; i < upstreams->size(); ++i) {
    const toml::node& node = *upstreams->get(i);
    std::string upstream_path = element(upstreams_path, i);
    const toml::table* upstream = node.as_table();
    if (!upstream) {
      fail(upstream_path, wrong_type(toml::node_type::table, node));
      continue;
    }
    Upstream parsed;
    if (parse_upstream(*upstream, upstream_path, proxy_type, parsed)) {
      out.upstreams.push_back(std::move(parsed));
    }
  }
  // https:// endpoints imply upstream TLS; one route speaks one scheme to all its upstreams.
  size_t https = 0;
  for (const Upstream& u : out.upstreams) {
    https += u.endpoint.kind == Endpoint::Kind::kUri && u.endpoint.uri.scheme == "https";
  }
  if (https > 0 && https != out.upstreams.size()) {
    fail(upstreams_path, "mixes https:// and other upstreams: one route, one scheme");
  } else if (https > 0 && !out.upstream_tls) {
    out.upstream_tls.emplace();
  }
  if (out.upstream_tls && out.upstream_tls->verify && out.upstream_tls->sni.empty() && https == 0) {
    fail(r.path_of("upstream_tls"),
         "verify is on but there is no name to verify: give \"sni\" (or use https:// endpoints)");
  }
  return errors_.size() == errors_before && !out.upstreams.empty();
}

// hash_on = { header = "x-user-id" } | { cookie = "sid" } | { source_ip = true } | { path = true }.
std::optional<HashOn> Parser::parse_hash_on(const toml::table& table, const std::string& path,
                                            ProxyType proxy_type) {
  TableReader r(errors_, table, path, {"header", "cookie", "source_ip", "path"});
  const size_t errors_before = errors_.size();
  std::vector<HashOn> given;
  if (std::optional<std::string> header = r.string("header")) {
    if (!valid_header_name(*header)) {
      fail(r.path_of("header"), "not a valid header name");
    } else {
      given.push_back({HashOn::Source::kHeader, lowercase(*header)});
    }
  }
  if (std::optional<std::string> cookie = r.string("cookie")) {
    // A cookie-name is an RFC 9110 token, the same characters as a header name.
    if (!valid_header_name(*cookie)) {
      fail(r.path_of("cookie"), "not a valid cookie name");
    } else {
      given.push_back({HashOn::Source::kCookie, *cookie});
    }
  }
  for (const auto& [key, source] : {std::pair{"source_ip", HashOn::Source::kSourceIp},
                                    std::pair{"path", HashOn::Source::kPath}}) {
    if (std::optional<bool> on = r.boolean(key)) {
      if (!*on) {
        fail(r.path_of(key), "only true means something here: leave it out otherwise");
      } else {
        given.push_back({source, ""});
      }
    }
  }
  if (errors_.size() != errors_before) return std::nullopt;
  if (given.size() != 1) {
    fail(path, "give exactly one of header, cookie, source_ip or path");
    return std::nullopt;
  }
  if (proxy_type != ProxyType::kHttp && given.front().source != HashOn::Source::kSourceIp) {
    fail(path, "only http routes hash a header, cookie or path: use source_ip = true");
    return std::nullopt;
  }
  return given.front();
}

// compression = { algorithms, min_length, types, gzip_level, brotli_quality, zstd_level }.
std::optional<CompressionParams> Parser::parse_compression(const toml::table& table,
                                                           const std::string& path) {
  TableReader r(
      errors_, table, path,
      {"algorithms", "min_length", "types", "gzip_level", "brotli_quality", "zstd_level"});
  const size_t errors_before = errors_.size();
  CompressionParams out;
  if (const toml::array* list = r.array("algorithms")) {
    out.algorithms.clear();
    if (list->empty()) fail(r.path_of("algorithms"), "an empty list compresses nothing");
    for (size_t i = 0; i < list->size(); ++i) {
      const auto* name = list->get(i)->as_string();
      std::optional<monolake::http::compression::Coding> coding =
          name ? monolake::http::compression::coding_named(name->get()) : std::nullopt;
      if (!coding) {
        fail(element(r.path_of("algorithms"), i),
             fmt::format("expected one of {}", quoted_list({"br", "zstd", "gzip"})));
      } else if (std::find(out.algorithms.begin(), out.algorithms.end(), *coding) !=
                 out.algorithms.end()) {
        fail(element(r.path_of("algorithms"), i), "listed twice");
      } else {
        out.algorithms.push_back(*coding);
      }
    }
  }
  if (auto n = r.integer("min_length", 0, std::numeric_limits<int64_t>::max())) {
    out.min_length = static_cast<uint64_t>(*n);
  }
  if (const toml::array* list = r.array("types")) {
    out.types.clear();
    for (size_t i = 0; i < list->size(); ++i) {
      const auto* type = list->get(i)->as_string();
      const std::string text = type ? lowercase(type->get()) : "";
      const size_t slash = text.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
          text.find_first_of(" ;,\t", 0) != std::string::npos ||
          !valid_header_name(text.substr(0, slash)) ||
          (text.substr(slash + 1) != "*" && !valid_header_name(text.substr(slash + 1)))) {
        fail(element(r.path_of("types"), i),
             "expected a media type: \"type/subtype\" or \"type/*\"");
      } else {
        out.types.push_back(text);
      }
    }
  }
  if (auto n = r.integer("gzip_level", 1, 9)) out.levels.gzip = static_cast<int>(*n);
  if (auto n = r.integer("brotli_quality", 0, 11)) out.levels.brotli = static_cast<int>(*n);
  if (auto n = r.integer("zstd_level", 1, 19)) out.levels.zstd = static_cast<int>(*n);
  if (errors_.size() != errors_before) return std::nullopt;
  return out;
}

// rate_limit = { requests_per_sec, burst = requests_per_sec, key = "source_ip", max_keys }.
std::optional<RateLimitParams> Parser::parse_rate_limit(const toml::table& table,
                                                        const std::string& path) {
  TableReader r(errors_, table, path, {"requests_per_sec", "burst", "key", "max_keys"});
  const size_t errors_before = errors_.size();
  RateLimitParams out;
  std::optional<double> rate = r.number("requests_per_sec", 0.001, 1e9);
  if (!r.has("requests_per_sec")) r.missing("requests_per_sec");
  if (rate) out.requests_per_sec = *rate;
  out.burst = std::max(1.0, out.requests_per_sec);
  if (std::optional<double> burst = r.number("burst", 1, 1e9)) out.burst = *burst;
  if (auto max_keys = r.integer("max_keys", 1, 100'000'000)) {
    out.max_keys = static_cast<size_t>(*max_keys);
  }
  if (std::optional<std::string> key = r.string("key")) {
    constexpr std::string_view kHeader = "header:";
    if (*key == "source_ip") {
      out.key = RateLimitParams::Key::kSourceIp;
    } else if (*key == "route") {
      out.key = RateLimitParams::Key::kRoute;
    } else if (key->rfind(kHeader, 0) == 0 && valid_header_name(key->substr(kHeader.size()))) {
      out.key = RateLimitParams::Key::kHeader;
      out.header = lowercase(key->substr(kHeader.size()));
    } else {
      fail(r.path_of("key"), fmt::format("unknown key '{}': expected {}", *key,
                                         quoted_list({"source_ip", "route", "header:<name>"})));
    }
  }
  if (errors_.size() != errors_before) return std::nullopt;
  return out;
}

// method = "name" | ["a", "b"]: Thrift method names (non-empty, no spaces).
void Parser::parse_methods(const toml::node& node, const std::string& path,
                           std::vector<std::string>& out) {
  auto add = [&](const toml::node& item, const std::string& item_path) {
    const auto* text = item.as_string();
    if (!text) {
      errors_.add(item_path, wrong_type(toml::node_type::string, item));
    } else if (text->get().empty() || text->get().find_first_of(" \t\r\n") != std::string::npos) {
      errors_.add(item_path, "'" + text->get() + "' is not a method name");
    } else {
      out.push_back(text->get());
    }
  };
  if (const toml::array* list = node.as_array()) {
    if (list->empty()) errors_.add(path, "an empty method list matches nothing");
    for (size_t i = 0; i < list->size(); ++i) add(*list->get(i), element(path, i));
  } else {
    add(node, path);
  }
}

void Parser::parse_header_rewrite(const toml::table& table, const std::string& path,
                                  HeaderRewrite& out) {
  TableReader r(errors_, table, path, {"add", "remove"});
  if (const toml::table* add = r.table("add")) {
    for (auto&& [key, node] : *add) {
      std::string field_path = child(r.path_of("add"), key.str());
      const auto* value = node.as_string();
      if (!value) {
        errors_.add(field_path, wrong_type(toml::node_type::string, node));
      } else if (!valid_header_name(key.str()) || !valid_header_value(value->get())) {
        errors_.add(field_path, "not a valid header field");
      } else {
        out.add.emplace_back(std::string(key.str()), value->get());
      }
    }
  }
  if (const toml::array* remove = r.array("remove")) {
    for (size_t i = 0; i < remove->size(); ++i) {
      const auto* name = remove->get(i)->as_string();
      if (!name || !valid_header_name(name->get())) {
        errors_.add(element(r.path_of("remove"), i), "expected a header field name");
      } else {
        out.remove.push_back(name->get());
      }
    }
  }
}

bool Parser::parse_direct_response(const toml::table& table, const std::string& path,
                                   DirectResponse& out) {
  TableReader r(errors_, table, path, {"status", "body", "headers"});
  size_t errors_before = errors_.size();
  if (auto status = r.integer("status", 100, 599)) out.status = static_cast<int>(*status);
  if (auto body = r.string("body")) out.body = *body;
  if (const toml::table* headers = r.table("headers")) {
    for (auto&& [key, node] : *headers) {
      std::string header_path = child(r.path_of("headers"), key.str());
      const auto* value = node.as_string();
      if (!value) {
        errors_.add(header_path, wrong_type(toml::node_type::string, node));
      } else if (!valid_header_name(key.str()) || !valid_header_value(value->get())) {
        errors_.add(header_path, "not a valid header field");
      } else {
        out.headers.emplace_back(std::string(key.str()), value->get());
      }
    }
  }
  return errors_.size() == errors_before;
}

bool Parser::parse_upstream(const toml::table& table, const std::string& path, ProxyType proxy_type,
                            Upstream& out) {
  TableReader r(errors_, table, path, {"endpoint", "weight"});
  bool ok = true;
  if (r.has("weight")) {
    if (auto n = r.integer("weight", 1, kMaxInt32)) {
      out.weight = static_cast<uint32_t>(*n);
    } else {
      ok = false;
    }
  }
  const toml::table* endpoint = r.table("endpoint", /*required=*/true);
  if (!endpoint) return false;
  return parse_endpoint(*endpoint, r.path_of("endpoint"), proxy_type, out.endpoint) && ok;
}

bool Parser::parse_endpoint(const toml::table& table, const std::string& path, ProxyType proxy_type,
                            Endpoint& out) {
  TableReader r(errors_, table, path, {"type", "value"});
  auto type = r.string("type", /*required=*/true);
  auto value = r.string("value", /*required=*/true);
  if (!type || !value) return false;
  if (*type == "socket") {
    out.kind = Endpoint::Kind::kSocket;
    auto address = parse_ip_address(*value, r.path_of("value"), "endpoint");
    if (!address) return false;
    if (address->port() == 0) {
      errors_.add(r.path_of("value"), fmt::format("port 0 in upstream address '{}'", *value));
      return false;
    }
    out.address = *address;
    return true;
  }
  if (*type == "unix") {
    out.kind = Endpoint::Kind::kUnix;
    auto address = parse_unix_address(*value, r.path_of("value"));
    if (!address) return false;
    out.address = *address;
    return true;
  }
  if (*type == "uri") {
    if (proxy_type == ProxyType::kTcp || proxy_type == ProxyType::kCustom) {
      errors_.add(r.path_of("type"),
                  fmt::format("a {} upstream is a \"socket\" or \"unix\" endpoint, not a \"uri\"",
                              proxy_type == ProxyType::kTcp ? "tcp" : "custom server's"));
      return false;
    }
    out.kind = Endpoint::Kind::kUri;
    auto uri = parse_uri(*value);
    if (!uri) {
      errors_.add(r.path_of("value"), uri.error().message());
      return false;
    }
    out.uri = std::move(*uri);
    return true;
  }
  errors_.add(r.path_of("type"), fmt::format("unknown endpoint type '{}': expected one of {}",
                                             *type, quoted_list({"socket", "unix", "uri"})));
  return false;
}

// matchit route syntax: "/", "/a/b", "/u/{id}", "/files/{*rest}" (catch-all: last segment
// only). "{{" and "}}" are literal braces. Monolake's older "/*rest" becomes "/{*rest}".
Result<std::string> Parser::normalise_route_path(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("bad route path '{}': {}", path, why));
  };
  if (path.empty() || path.front() != '/') return bad("it must start with '/'");
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    char c = path[i];
    bool segment_start = i > 0 && path[i - 1] == '/';
    if (c == '*' && segment_start) {
      // Older catch-all spelling: the rest of the path must be the name.
      std::string_view name = path.substr(i + 1);
      if (name.empty() || name.find_first_of("/{}*") != std::string_view::npos) {
        return bad("a catch-all '*name' must be the whole last segment");
      }
      out += fmt::format("{{*{}}}", name);
      break;
    }
    if (c == '{' || c == '}') {
      if (i + 1 < path.size() && path[i + 1] == c) {  // escaped literal brace
        out += path.substr(i, 2);
        i += 2;
        continue;
      }
      if (c == '}') return bad("unmatched '}' (write '}}' for a literal brace)");
      size_t close = path.find('}', i);
      if (close == std::string_view::npos) return bad("unclosed '{'");
      std::string_view name = path.substr(i + 1, close - i - 1);
      bool catch_all = !name.empty() && name.front() == '*';
      if (catch_all) name.remove_prefix(1);
      if (name.empty()) return bad("a parameter needs a name: {name} or {*name}");
      if (name.find_first_of("{/*") != std::string_view::npos) {
        return bad(fmt::format("bad parameter name '{}'", name));
      }
      if (catch_all && (!segment_start || close + 1 != path.size())) {
        return bad("a catch-all {*name} must be the whole last segment");
      }
      // One parameter per segment.
      size_t segment_begin = path.rfind('/', i);
      size_t segment_end = path.find('/', close);
      std::string_view segment = path.substr(segment_begin, segment_end - segment_begin);
      size_t params = 0;
      for (size_t j = 0; j < segment.size(); ++j) {
        if (segment[j] == '{' && (j + 1 >= segment.size() || segment[j + 1] != '{')) ++params;
        if (segment[j] == '{' && j + 1 < segment.size() && segment[j + 1] == '{') ++j;
      }
      if (params > 1) return bad("only one parameter per segment");
      out += path.substr(i, close - i + 1);
      i = close + 1;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

Result<Uri> Parser::parse_uri(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("bad uri '{}': {}", text, why));
  };
  Uri uri;
  uri.text = std::string(text);
  std::string_view rest;
  if (text.rfind("http://", 0) == 0) {
    uri.scheme = "http";
    uri.port = 80;
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    uri.scheme = "https";
    uri.port = 443;
    rest = text.substr(8);
  } else {
    return bad("expected http:// or https://");
  }
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 host");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return bad("empty port");
  }
  if (host.empty()) return bad("no host");
  for (char c : host) {
    if (c == ' ' || c == '\t' || c == '/' || c == '[' || c == ']') return bad("bad host");
  }
  if (!port.empty()) {
    uint32_t value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return bad("the port is not a number");
      value = value * 10 + static_cast<uint32_t>(c - '0');
      if (value > 65535) return bad("the port is out of range");
    }
    if (value == 0) return bad("port 0");
    uri.port = static_cast<uint16_t>(value);
  }
  uri.host = std::string(host);
  if (tail.empty() || tail.front() == '#') {
    uri.path = "/";
  } else if (tail.front() == '?') {
    uri.path = "/" + std::string(tail.substr(0, tail.find('#')));
  } else {
    uri.path = std::string(tail.substr(0, tail.find('#')));
  }
  return uri;
}

}  // namespace monolake::proxy::config::internal
