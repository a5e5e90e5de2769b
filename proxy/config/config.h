// The proxy's TOML configuration, parsed and validated into plain structs. The format is the
// Rust Monolake's (cloudwego/monolake): its configurations load unchanged, with its spellings
// ("legacy", "native_tls", "RoundRobin", `[servers.x.route]`, `/*rest`) accepted as aliases.
//
//   Result<Config> config = proxy::config::load_config_file("/etc/monolake/monolake.toml");
//   if (!config) { fprintf(stderr, "%s\n", config.error().message().c_str()); exit(2); }
//
// Every problem of a file is reported at once: the error message has one line per problem,
// "FILE: KEY.PATH: reason" (a TOML syntax error: "FILE:LINE:COL: reason"). Unknown keys and
// wrong types are errors, never ignored. Nothing here throws. See docs/config.md for every key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/token_bucket.h"
#include "codec/proxy_protocol.h"
#include "proxy/http/layer_params.h"
#include "proxy/params/params.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/hash_on.h"
#include "runtime/options.h"
#include "tls/tls.h"
#include "transport/address.h"

namespace monolake::proxy::config {

// [runtime]. The MONOLAKE_RUNTIME variable's override of runtime_type is applied by the binary.
struct RuntimeConfig {
  runtime::BackendKind runtime_type = runtime::BackendKind::kAuto;
  size_t worker_threads = 1;               // default: the number of CPUs this process may run on
  unsigned entries = 1024;                 // io_uring queue depth
  std::optional<unsigned> sqpoll_idle_ms;  // absent: SQPOLL off
  bool cpu_affinity = false;
  std::optional<uint64_t> max_open_files;
  std::optional<std::string> user;
  std::optional<std::string> control_socket;  // absolute (resolved against the file's directory)
  std::chrono::seconds drain_timeout{30};
  // How often host names of `uri` upstreams are resolved again (0: only at load/reload).
  std::chrono::seconds dns_refresh{30};
};

// kCustom: a server kind a user binary registered (ServerConfig::kind names it).
enum class ProxyType { kHttp, kTcp, kThrift, kCustom };
std::string_view proxy_type_name(ProxyType type);  // "custom" for kCustom

// One entry of `[[servers.X.filters]]`, of a route's `filters` (request layers) or of
// `[[servers.X.connection_filters]]` (connection layers): a layer by its registered name, with
// its own keys checked against its schema (proxy/params).
struct FilterConfig {
  std::string name;
  // Its identity across reloads: `id` when the file gives one, else "" (then the name and its
  // occurrence among filters of that name: "api_key", "api_key#2").
  std::string id;
  Params params;  // every key but name and id, with the schema's defaults
};

// listener = { type = "socket" | "unix", value = ... }.
struct ListenerConfig {
  enum class Kind { kSocket, kUnix };
  Kind kind = Kind::kSocket;
  transport::SocketAddress address;  // unix paths resolved against the file's directory
};

// tls = { chain, key, stack, sni = [{ names, chain, key }], client_ca, min_version }.
struct TlsConfig {
  tls::Backend stack = tls::Backend::kOpenSsl;
  tls::Certificate certificate;  // chain_file and key_file resolved against the file's directory
  std::vector<tls::Certificate> sni;  // more certificates, chosen by the client's SNI
  std::string client_ca_file;         // non-empty: clients must present a certificate from it
  tls::Version min_version = tls::Version::kTls12;
};

// upstream_tls = { stack, ca, verify, sni } on an http route (https:// upstreams imply it).
struct UpstreamTlsConfig {
  tls::Backend stack = tls::Backend::kOpenSsl;
  std::string ca_file;  // empty: the system store
  bool verify = true;   // chain and name
  std::string sni;      // empty: the uri's host
};

struct TimeoutConfig {
  std::chrono::seconds server_keepalive{75};  // 0: no keep-alive
  std::chrono::seconds server_read_header{30};
  std::chrono::seconds server_read_body{60};
  std::chrono::seconds upstream_connect{5};
  std::chrono::seconds upstream_read{60};
  std::chrono::seconds server_message{60};
  // tcp servers: a connection with no byte moving either way for this long is closed (0: never).
  // Not a Monolake key (its L4 proxy has no idle timeout).
  std::chrono::seconds tcp_idle{600};
  // http: longest a single write to a client may take (not a Monolake key).
  std::chrono::seconds server_write{60};
};

// http://host[:port][/path]; https://... The host is kept as written (names are resolved later).
struct Uri {
  std::string scheme;  // "http" | "https"
  std::string host;    // a name, an IPv4 literal, or an IPv6 literal without brackets
  uint16_t port = 0;   // explicit, else 80 / 443
  std::string path;    // "/" when absent; query included
  std::string text;    // as written
};

struct Endpoint {
  enum class Kind { kSocket, kUnix, kUri };
  Kind kind = Kind::kSocket;
  transport::SocketAddress address;  // kSocket, kUnix
  Uri uri;                           // kUri
};

struct Upstream {
  Endpoint endpoint;
  uint32_t weight = 1;
};

// The value types shared with the HTTP layers (proxy/http/layer_params.h).
using DirectResponse = http::DirectResponse;
using HeaderRewrite = http::HeaderRewrite;
using RateLimitParams = http::RateLimitParams;
using CompressionParams = http::CompressionParams;
using Cidr = http::Cidr;
using UpstreamHttpVersion = http::UpstreamHttpVersion;

// The balancers of proxy/upstream (one definition, one parser for the names and aliases).
using LoadBalancer = Balancer;
inline std::string_view load_balancer_name(LoadBalancer lb) { return balancer_name(lb); }

struct RouteConfig {
  // http: the Host this route serves: exact ("api.example.com") or "*.example.com" (any
  // subdomain); empty = any host. Compared without the port, case-insensitively.
  std::string host;
  // http: answer with this instead of proxying (then `upstreams` is empty).
  std::optional<DirectResponse> direct;
  // matchit syntax ("/", "/u/{id}", "/static/{*rest}"); "/*rest" is normalised to "/{*rest}".
  // Empty for tcp routes (and thrift routes that give none).
  std::string path;
  std::vector<Upstream> upstreams;  // at least one, unless `direct`
  // http: TLS towards the upstreams (set for https:// endpoints, or by `upstream_tls`).
  std::optional<UpstreamTlsConfig> upstream_tls;
  // http rewrites towards the upstream: Host, a path prefix swapped, fields added or removed
  // (and fields of the response).
  bool websocket = false;    // http: tunnel WebSocket upgrades (101, then bytes both ways)
  std::string host_rewrite;  // empty: the client's Host is kept
  std::string strip_prefix;  // removed from the front of the path when present
  std::string add_prefix;    // put in front of the path (after strip_prefix)
  HeaderRewrite request_headers;
  HeaderRewrite response_headers;
  LoadBalancer load_balancer = LoadBalancer::kRoundRobin;
  // The request key of a hashing load_balancer (ring_hash, maglev); set exactly when it is one
  // (a custom server kind may leave it out and hash a key of its own).
  std::optional<HashOn> hash_on;
  // thrift: the method names this route serves (`method = "name"` or a list); empty: any.
  std::vector<std::string> methods;
  // http, tcp: the PROXY protocol version (1 or 2) whose header is written first on every
  // upstream connection, announcing the client; http upstream connections then serve one client
  // connection each.
  std::optional<int> send_proxy_protocol;
  // http: responses compressed for clients that accept it (overrides the server's).
  std::optional<CompressionParams> compression;
  // http: requests over this rate (per key) are answered 429 before the route's filters.
  std::optional<RateLimitParams> rate_limit;
  // http: request layers of this route, in order, after routing and before forward/return.
  std::vector<FilterConfig> filters;
};

// [servers.NAME.http2]: HTTP/2 towards clients (ALPN h2 on TLS listeners, prior knowledge on
// plain ones) and its limits; the same limits apply to HTTP/2 upstream connections.
struct Http2Config {
  bool enabled = true;
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window = 64 * 1024;
  uint32_t connection_window = 1024 * 1024;
  uint32_t max_header_list_size = 64 * 1024;
  uint32_t max_continuations = 8;
  uint32_t max_resets_burst = 1000;
  uint32_t max_resets_per_sec = 33;
  uint32_t max_control_frames_per_sec = 1000;
  uint32_t max_consecutive_empty_frames = 10;
  uint32_t max_priority_frames_per_stream = 100;
};

struct ServerConfig {
  std::string key;   // the table key: [servers.<key>]
  std::string name;  // default: key
  ProxyType proxy_type = ProxyType::kHttp;
  // proxy_type as written: "http", "tcp", "thrift" or a registered server kind's name.
  std::string kind = "http";
  // kCustom: the server kind's own keys (top-level keys of the server table), per its schema.
  Params kind_params;
  ListenerConfig listener;
  std::optional<TlsConfig> tls;
  TimeoutConfig timeout;
  size_t max_connections = 10000;
  // http: the largest request body accepted (declared or received); larger: 413.
  uint64_t max_request_body_bytes = 1ull << 30;
  // http: clients whose X-Forwarded-For is believed (appended to); others' is replaced.
  std::vector<Cidr> trusted_proxies;
  // Any server: clients refused at accept (deny wins; a non-empty allow admits only its
  // blocks), checked again on the address a PROXY protocol header announces.
  std::vector<Cidr> allow;
  std::vector<Cidr> deny;
  // Any server: the PROXY protocol header versions required first on every connection (unset:
  // off), from the peers in proxy_protocol_from (empty: all peers).
  std::optional<codec::ProxyVersions> proxy_protocol;
  std::vector<Cidr> proxy_protocol_from;
  // Any server: connections accepted per second (split over the workers), with bursts; those
  // over it are closed at accept, after allow/deny and before a byte is read.
  std::optional<TokenRate> connection_rate_limit;
  // thrift: calls of one client connection in flight at once (read, not yet answered); at the
  // limit the connection is not read until one is answered.
  size_t max_calls_in_flight = 100;
  // tcp without tls: bytes move socket to socket with splice(2) through a pipe, not copied
  // through user space (transport/splice.h).
  bool tcp_splice = true;
  // At least one; a tcp server has exactly one. A thrift server's routes are tried in order
  // by method name.
  std::vector<RouteConfig> routes;
  UpstreamHttpVersion upstream_http_version = UpstreamHttpVersion::kAuto;
  // http: idle HTTP/1.1 connections kept per upstream and worker (0: none kept).
  size_t upstream_max_idle_connections = 64;
  Http2Config http2;
  // http: responses of every route compressed for clients that accept it.
  std::optional<CompressionParams> compression;
  // http: request layers before routing, in order (after the access log).
  std::vector<FilterConfig> filters;
  // Any kind: connection layers (proxy/connection/filter.h), in order, on every accepted
  // connection before TLS and after it.
  std::vector<FilterConfig> connection_filters;
};

// [admin] (reserved: parsed and validated, nothing serves it yet).
struct AdminConfig {
  transport::SocketAddress listen;
  bool allow_remote = false;  // a TCP listen address that is not loopback needs this
};

// [log]: where access lines go. Applied at start and by every reload.
struct LogConfig {
  enum class AccessLog { kStderr, kFile, kOff };
  AccessLog access_log = AccessLog::kStderr;
  std::string access_log_path;  // kFile; resolved against the file's directory
};

struct Config {
  std::string source;  // the file name errors are reported under
  std::string base_dir;
  RuntimeConfig runtime;
  LogConfig log;
  std::vector<ServerConfig> servers;  // ordered by key
  std::optional<AdminConfig> admin;
};

// Reads and parses `path`; relative paths inside resolve against the file's directory.
// `catalog`: the filters and server kinds the file may name besides the built-ins (nullptr:
// none).
Result<Config> load_config_file(const std::string& path, const Catalog* catalog = nullptr);

// Parses `text`. Errors name `file_name_for_errors`; relative paths inside (certificates, keys,
// unix socket paths, control_socket) resolve against `base_dir` (left relative if it is empty).
Result<Config> parse_config(std::string_view text, const std::string& file_name_for_errors,
                            const std::string& base_dir, const Catalog* catalog = nullptr);

// For `--check`: opens every certificate and key file the configuration names. All failures are
// reported, one line each, naming the key and the file.
Result<void> check_files(const Config& config);

// The number of CPUs this process may run on (at least 1): the default of worker_threads.
size_t available_cpus();

}  // namespace monolake::proxy::config
