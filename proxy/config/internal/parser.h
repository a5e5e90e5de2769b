// The configuration parser: one Parser walks the TOML document section by section, collecting
// every error (FILE: KEY.PATH: reason) instead of stopping at the first. Its sections are
// defined in parse_root.cc ([runtime], [log], [admin], the server list), parse_server.cc (a
// server, its listener, timeouts, [http2]), parse_tls.cc and parse_route.cc (routes,
// upstreams, endpoints, rewrites). Private to //proxy/config.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/config/internal/table_reader.h"
#include "proxy/config/internal/values.h"

namespace monolake::proxy::config::internal {

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxSeconds = 365LL * 24 * 3600;  // a year: anything longer is a typo

class Parser {
 public:
  Parser(Errors& errors, const std::string& base_dir, const Catalog& catalog)
      : errors_(errors), base_dir_(base_dir), catalog_(catalog) {}
  void parse_root(const toml::table& root, Config& config);

 private:
  void parse_runtime(const toml::table& table, RuntimeConfig& out);

  void parse_log(const toml::table& table, LogConfig& out);

  void parse_admin(const toml::table& table, AdminConfig& out);

  void parse_http2(const toml::table& table, const std::string& path, Http2Config& out);

  void parse_server(const toml::table& table, const std::string& path, ServerConfig& out);

  void parse_listener(const toml::table& table, const std::string& path, ListenerConfig& out);

  std::optional<transport::SocketAddress> parse_ip_address(const std::string& value,
                                                           const std::string& path,
                                                           std::string_view what);

  std::optional<transport::SocketAddress> parse_unix_address(const std::string& value,
                                                             const std::string& path);

  std::optional<tls::Backend> parse_stack(TableReader& r);
  void parse_cidr_list(TableReader& r, std::string_view key, std::vector<Cidr>& out);

  void parse_upstream_tls(const toml::table& table, const std::string& path,
                          UpstreamTlsConfig& out);

  void parse_sni(const toml::array& array, const std::string& path, TlsConfig& out);

  void parse_tls(const toml::table& table, const std::string& path, TlsConfig& out);

  void parse_timeout(const toml::table& table, const std::string& path, TimeoutConfig& out);

  // False when the route is unusable (its errors are reported).
  bool parse_route(const toml::table& table, const std::string& path, ProxyType proxy_type,
                   RouteConfig& out);

  // False (reported) when the route's send_proxy_protocol cannot work on this server.
  bool check_send_proxy_protocol(const ServerConfig& server, const RouteConfig& route,
                                 const std::string& route_path);

  // A server's or a route's compression table; nothing when it has errors (reported).
  std::optional<CompressionParams> parse_compression(const toml::table& table,
                                                     const std::string& path);

  // A route's hash_on table (exactly one of header, cookie, source_ip, path); nothing when it
  // has errors (reported). Servers other than http hash only the client's address.
  std::optional<HashOn> parse_hash_on(const toml::table& table, const std::string& path,
                                      ProxyType proxy_type);

  // A route's rate_limit table; nothing when it has errors (reported).
  std::optional<RateLimitParams> parse_rate_limit(const toml::table& table,
                                                  const std::string& path);

  // method = "name" | ["a", "b"]: Thrift method names (non-empty, no spaces).
  void parse_methods(const toml::node& node, const std::string& path,
                     std::vector<std::string>& out);

  void parse_header_rewrite(const toml::table& table, const std::string& path, HeaderRewrite& out);

  bool parse_direct_response(const toml::table& table, const std::string& path,
                             DirectResponse& out);

  bool parse_upstream(const toml::table& table, const std::string& path, ProxyType proxy_type,
                      Upstream& out);

  bool parse_endpoint(const toml::table& table, const std::string& path, ProxyType proxy_type,
                      Endpoint& out);

  void check_listener_conflicts(const std::vector<ServerConfig>& servers);

  // [[...filters]]: each entry a table with `name` (registered in the catalog), optional `id`,
  // and that filter's own keys. `connection`: connection layers, else request layers.
  void parse_filters(const toml::array& list, const std::string& path,
                     std::vector<FilterConfig>& out, bool connection = false);

  // The keys of `table` that `schema` declares, into `out` (defaults filled in). Keys neither in
  // the schema nor in `other_keys` are reported unknown (unless the caller reports them).
  void parse_params(const toml::table& table, const std::string& path, const ParamSchema& schema,
                    const std::vector<std::string_view>& other_keys, Params& out,
                    bool report_unknown = true);

  void fail(std::string_view path, std::string_view reason) { errors_.add(path, reason); }

  // matchit route syntax: "/", "/a/b", "/u/{id}", "/files/{*rest}" (catch-all: last segment
  // only). "{{" and "}}" are literal braces. Monolake's older "/*rest" becomes "/{*rest}".
  static Result<std::string> normalise_route_path(std::string_view path);

  static Result<Uri> parse_uri(std::string_view text);

  Errors& errors_;
  const std::string& base_dir_;
  const Catalog& catalog_;
};

}  // namespace monolake::proxy::config::internal
