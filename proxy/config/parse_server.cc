#include <fmt/format.h>

#include "proxy/config/internal/parser.h"

namespace monolake::proxy::config::internal {

void Parser::parse_http2(const toml::table& table, const std::string& path, Http2Config& out) {
  TableReader r(errors_, table, path,
                {"enabled", "max_concurrent_streams", "initial_stream_window", "connection_window",
                 "max_header_list_size", "max_continuations", "max_resets_burst",
                 "max_resets_per_sec", "max_control_frames_per_sec", "max_consecutive_empty_frames",
                 "max_priority_frames_per_stream"});
  if (auto b = r.boolean("enabled")) out.enabled = *b;
  // HTTP/2 window sizes may not exceed 2^31-1 (RFC 9113 6.9.1); the others are counts.
  const int64_t kMaxWindow = (int64_t{1} << 31) - 1;
  auto read = [&](std::string_view key, int64_t min, int64_t max, uint32_t& field) {
    if (auto n = r.integer(key, min, max)) field = static_cast<uint32_t>(*n);
  };
  read("max_concurrent_streams", 1, kMaxInt32, out.max_concurrent_streams);
  read("initial_stream_window", 1024, kMaxWindow, out.initial_stream_window);
  read("connection_window", 65535, kMaxWindow, out.connection_window);
  read("max_header_list_size", 1024, kMaxInt32, out.max_header_list_size);
  read("max_continuations", 0, 1024, out.max_continuations);
  read("max_resets_burst", 1, kMaxInt32, out.max_resets_burst);
  read("max_resets_per_sec", 1, kMaxInt32, out.max_resets_per_sec);
  read("max_control_frames_per_sec", 1, kMaxInt32, out.max_control_frames_per_sec);
  read("max_consecutive_empty_frames", 0, kMaxInt32, out.max_consecutive_empty_frames);
  read("max_priority_frames_per_stream", 1, kMaxInt32, out.max_priority_frames_per_stream);
}

namespace {

// The keys every server table may have; http, tcp and thrift servers also have theirs.
const std::vector<std::string_view> kCommonServerKeys = {"name",
                                                         "proxy_type",
                                                         "listener",
                                                         "tls",
                                                         "timeout",
                                                         "max_connections",
                                                         "routes",
                                                         "route",
                                                         "allow",
                                                         "deny",
                                                         "proxy_protocol",
                                                         "proxy_protocol_from",
                                                         "connection_rate_limit"};
// What only http, tcp and thrift servers have (each kind checks its own below).
const std::vector<std::string_view> kBuiltinOnlyServerKeys = {
    "trusted_proxies", "max_request_body_bytes", "upstream_http_version",
    "http2",           "max_calls_in_flight",    "upstream_max_idle_connections",
    "filters",         "connection_filters",     "tcp_splice",
    "compression"};

}  // namespace

// `key`: a list of "ADDRESS" or "ADDRESS/BITS" strings (IPv4 or IPv6).
void Parser::parse_cidr_list(TableReader& r, std::string_view key, std::vector<Cidr>& out) {
  const toml::array* list = r.array(key);
  if (!list) return;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto* text = list->get(i)->as_string();
    std::string item_path = element(r.path_of(key), i);
    if (!text) {
      errors_.add(item_path, wrong_type(toml::node_type::string, *list->get(i)));
    } else if (auto cidr = transport::Cidr::parse(text->get())) {
      out.push_back(*cidr);
    } else {
      errors_.add(item_path, "'" + text->get() + "' is not an IP address or CIDR block");
    }
  }
}

void Parser::parse_server(const toml::table& table, const std::string& path, ServerConfig& out) {
  // A registered server kind has the common keys and its own (checked against its schema).
  const ParamSchema* kind_schema = nullptr;
  if (const toml::node* type = table.get("proxy_type"); type && type->as_string()) {
    kind_schema = catalog_.server_kind(type->as_string()->get());
  }
  std::vector<std::string_view> allowed = kCommonServerKeys;
  allowed.insert(allowed.end(), kBuiltinOnlyServerKeys.begin(), kBuiltinOnlyServerKeys.end());
  if (kind_schema) {
    allowed = kCommonServerKeys;
    for (const ParamSpec& spec : kind_schema->specs()) allowed.push_back(spec.key);
    parse_params(table, path, *kind_schema, kCommonServerKeys, out.kind_params,
                 /*report_unknown=*/false);  // TableReader reports them
  }
  TableReader r(errors_, table, path, allowed);
  if (auto n = r.integer("upstream_max_idle_connections", 0, 1000000)) {
    out.upstream_max_idle_connections = static_cast<size_t>(*n);
  }
  if (auto n = r.integer("max_calls_in_flight", 1, 1000000)) {
    out.max_calls_in_flight = static_cast<size_t>(*n);
  }
  if (auto version = r.string("upstream_http_version")) {
    if (*version == "http11") {
      out.upstream_http_version = UpstreamHttpVersion::kHttp11;
    } else if (*version == "http2") {
      out.upstream_http_version = UpstreamHttpVersion::kHttp2;
    } else if (*version == "auto") {
      out.upstream_http_version = UpstreamHttpVersion::kAuto;
    } else {
      errors_.add(r.path_of("upstream_http_version"),
                  fmt::format("unknown HTTP version '{}': expected one of {}", *version,
                              quoted_list({"http11", "http2", "auto"})));
    }
  }
  if (const toml::table* http2 = r.table("http2")) {
    parse_http2(*http2, r.path_of("http2"), out.http2);
  }
  if (auto n = r.integer("max_request_body_bytes", 0, std::numeric_limits<int64_t>::max())) {
    out.max_request_body_bytes = static_cast<uint64_t>(*n);
  }
  parse_cidr_list(r, "trusted_proxies", out.trusted_proxies);
  parse_cidr_list(r, "allow", out.allow);
  parse_cidr_list(r, "deny", out.deny);
  parse_cidr_list(r, "proxy_protocol_from", out.proxy_protocol_from);
  if (auto mode = r.string("proxy_protocol")) {
    if (*mode == "off") {
      out.proxy_protocol.reset();
    } else if (*mode == "v1") {
      out.proxy_protocol = codec::ProxyVersions::kV1;
    } else if (*mode == "v2") {
      out.proxy_protocol = codec::ProxyVersions::kV2;
    } else if (*mode == "any") {
      out.proxy_protocol = codec::ProxyVersions::kAny;
    } else {
      errors_.add(r.path_of("proxy_protocol"),
                  fmt::format("unknown PROXY protocol mode '{}': expected one of {}", *mode,
                              quoted_list({"off", "v1", "v2", "any"})));
    }
  }
  if (const toml::table* limit = r.table("connection_rate_limit")) {
    TableReader l(errors_, *limit, r.path_of("connection_rate_limit"), {"per_sec", "burst"});
    std::optional<double> per_sec = l.number("per_sec", 0.001, 1e9);
    if (!l.has("per_sec")) l.missing("per_sec");
    std::optional<double> burst = l.number("burst", 1, 1e9);
    if (per_sec)
      out.connection_rate_limit = TokenRate{*per_sec, burst ? *burst : std::max(1.0, *per_sec)};
  }
  if (r.has("proxy_protocol_from") && !out.proxy_protocol) {
    errors_.add(r.path_of("proxy_protocol_from"),
                "needs proxy_protocol = \"v1\", \"v2\" or \"any\"");
  }
  out.name = out.key;
  if (auto name = r.string("name")) {
    if (name->empty()) {
      errors_.add(r.path_of("name"), "must not be empty");
    } else {
      out.name = *name;
    }
  }
  if (auto type = r.string("proxy_type")) {
    out.kind = *type;
    if (kind_schema) {
      out.proxy_type = ProxyType::kCustom;
    } else if (*type == "http") {
      out.proxy_type = ProxyType::kHttp;
    } else if (*type == "tcp") {
      out.proxy_type = ProxyType::kTcp;
    } else if (*type == "thrift") {
      out.proxy_type = ProxyType::kThrift;
    } else {
      std::vector<std::string> kinds = {"http", "tcp", "thrift"};
      for (const std::string& name : catalog_.server_kind_names()) kinds.push_back(name);
      std::string expected;
      for (const std::string& name : kinds)
        expected += (expected.empty() ? "" : ", ") + ("\"" + name + "\"");
      errors_.add(r.path_of("proxy_type"),
                  fmt::format("unknown proxy type '{}': expected one of {}", *type, expected));
    }
  }
  if (const toml::table* listener = r.table("listener", /*required=*/true)) {
    parse_listener(*listener, r.path_of("listener"), out.listener);
  }
  if (const toml::table* tls = r.table("tls")) {
    out.tls.emplace();
    parse_tls(*tls, r.path_of("tls"), *out.tls);
  }
  if (const toml::table* timeout = r.table("timeout")) {
    parse_timeout(*timeout, r.path_of("timeout"), out.timeout);
  }
  if (auto n = r.integer("max_connections", 1, kMaxInt32)) {
    out.max_connections = static_cast<size_t>(*n);
  }

  if (const toml::array* filters = r.array("filters")) {
    if (out.proxy_type != ProxyType::kHttp) {
      errors_.add(r.path_of("filters"), "only http servers have request filters");
    } else {
      parse_filters(*filters, r.path_of("filters"), out.filters);
    }
  }
  if (const toml::table* c = r.table("compression")) {
    if (out.proxy_type != ProxyType::kHttp) {
      errors_.add(r.path_of("compression"), "only http servers compress responses");
    } else {
      out.compression = parse_compression(*c, r.path_of("compression"));
    }
  }
  if (const toml::array* filters = r.array("connection_filters")) {
    parse_filters(*filters, r.path_of("connection_filters"), out.connection_filters,
                  /*connection=*/true);
  }

  if (auto splice = r.boolean("tcp_splice")) out.tcp_splice = *splice;
  if (r.has("tcp_splice") && out.proxy_type != ProxyType::kTcp) {
    errors_.add(r.path_of("tcp_splice"), "only tcp servers have tcp_splice");
  }

  if (r.has("max_calls_in_flight") && out.proxy_type != ProxyType::kThrift) {
    errors_.add(r.path_of("max_calls_in_flight"), "only thrift servers have max_calls_in_flight");
  }

  // Routes: [[servers.x.routes]] (an array of tables) or Monolake's [servers.x.route].
  bool has_routes = r.has("routes");
  bool has_route = r.has("route");
  if (has_routes && has_route) {
    errors_.add(r.path_of("route"), "give either \"routes\" or \"route\", not both");
  } else if (!has_routes && !has_route) {
    errors_.add(r.path_of("routes"),
                "no routes (add a [[" + r.path_of("routes") + "]] table with upstreams)");
  } else if (has_route) {
    if (const toml::table* route = r.table("route")) {
      RouteConfig parsed;
      if (parse_route(*route, r.path_of("route"), out.proxy_type, parsed) &&
          check_send_proxy_protocol(out, parsed, r.path_of("route"))) {
        out.routes.push_back(std::move(parsed));
      }
    }
  } else if (const toml::array* routes = r.array("routes")) {
    std::string routes_path = r.path_of("routes");
    if (routes->empty()) errors_.add(routes_path, "no routes (the list is empty)");
    std::map<std::string, size_t> seen;  // path -> index
    for (size_t i = 0; i < routes->size(); ++i) {
      const toml::node& node = *routes->get(i);
      std::string route_path = element(routes_path, i);
      const toml::table* route = node.as_table();
      if (!route) {
        errors_.add(route_path, wrong_type(toml::node_type::table, node));
        continue;
      }
      RouteConfig parsed;
      if (!parse_route(*route, route_path, out.proxy_type, parsed) ||
          !check_send_proxy_protocol(out, parsed, route_path)) {
        continue;
      }
      if (out.proxy_type == ProxyType::kHttp) {
        auto [it, inserted] = seen.emplace(parsed.host + " " + parsed.path, i);
        if (!inserted) {
          errors_.add(child(route_path, "path"),
                      fmt::format("duplicate route path '{}'{} (also {})", parsed.path,
                                  parsed.host.empty() ? "" : " for host " + parsed.host,
                                  element(routes_path, it->second)));
          continue;
        }
      }
      out.routes.push_back(std::move(parsed));
    }
    if (out.proxy_type == ProxyType::kTcp && routes->size() > 1) {
      errors_.add(routes_path, fmt::format("a {} server has exactly one route, got {}",
                                           proxy_type_name(out.proxy_type), routes->size()));
    }
  }
}

// An HTTP/2 upstream connection carries many clients' requests, so no one client's address can
// be announced on it.
bool Parser::check_send_proxy_protocol(const ServerConfig& server, const RouteConfig& route,
                                       const std::string& route_path) {
  if (!route.send_proxy_protocol || server.upstream_http_version != UpstreamHttpVersion::kHttp2) {
    return true;
  }
  errors_.add(child(route_path, "send_proxy_protocol"),
              "HTTP/2 upstream connections are shared by clients, so they cannot announce one: "
              "with send_proxy_protocol, upstream_http_version is \"http11\" or \"auto\" "
              "(HTTP/1.1 to this route's upstreams)");
  return false;
}

void Parser::parse_listener(const toml::table& table, const std::string& path,
                            ListenerConfig& out) {
  TableReader r(errors_, table, path, {"type", "value"});
  auto type = r.string("type", /*required=*/true);
  auto value = r.string("value", /*required=*/true);
  if (type && *type != "socket" && *type != "unix") {
    errors_.add(r.path_of("type"), fmt::format("unknown listener type '{}': expected {}", *type,
                                               quoted_list({"socket", "unix"})));
    return;
  }
  if (!type || !value) return;
  if (*type == "socket") {
    out.kind = ListenerConfig::Kind::kSocket;
    auto address = parse_ip_address(*value, r.path_of("value"), "listener");
    if (address) out.address = *address;
  } else {
    out.kind = ListenerConfig::Kind::kUnix;
    auto address = parse_unix_address(*value, r.path_of("value"));
    if (address) out.address = *address;
  }
}

std::optional<transport::SocketAddress> Parser::parse_ip_address(const std::string& value,
                                                                 const std::string& path,
                                                                 std::string_view what) {
  if (value.rfind("unix:", 0) == 0 || (!value.empty() && value.front() == '/')) {
    errors_.add(path, fmt::format("'{}' is a path: a \"socket\" {} takes ip:port (use type = "
                                  "\"unix\" for a Unix socket)",
                                  value, what));
    return std::nullopt;
  }
  auto address = transport::SocketAddress::parse(value);
  if (!address) {
    errors_.add(path, address.error().message());
    return std::nullopt;
  }
  return *address;
}

std::optional<transport::SocketAddress> Parser::parse_unix_address(const std::string& value,
                                                                   const std::string& path) {
  std::string text = value.rfind("unix:", 0) == 0 ? value.substr(5) : value;
  if (text.empty()) {
    errors_.add(path, "empty Unix socket path");
    return std::nullopt;
  }
  auto address = transport::SocketAddress::unix_path(resolve(base_dir_, text));
  if (!address) {
    errors_.add(path, address.error().message());
    return std::nullopt;
  }
  return *address;
}

void Parser::parse_timeout(const toml::table& table, const std::string& path, TimeoutConfig& out) {
  TableReader r(
      errors_, table, path,
      {"server_keepalive_timeout_sec", "server_read_header_timeout_sec",
       "server_read_body_timeout_sec", "upstream_connect_timeout_sec", "upstream_read_timeout_sec",
       "server_message_timeout_sec", "tcp_idle_timeout_sec", "server_write_timeout_sec"});
  auto read = [&](std::string_view key, int64_t min, std::chrono::seconds& into) {
    if (auto n = r.integer(key, min, kMaxSeconds)) into = std::chrono::seconds(*n);
  };
  read("server_keepalive_timeout_sec", 0, out.server_keepalive);
  read("server_read_header_timeout_sec", 1, out.server_read_header);
  read("server_read_body_timeout_sec", 1, out.server_read_body);
  read("upstream_connect_timeout_sec", 1, out.upstream_connect);
  read("upstream_read_timeout_sec", 1, out.upstream_read);
  read("server_message_timeout_sec", 1, out.server_message);
  read("tcp_idle_timeout_sec", 0, out.tcp_idle);
  read("server_write_timeout_sec", 1, out.server_write);
}

}  // namespace monolake::proxy::config::internal
