#include "proxy/config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace monolake::proxy::config {
namespace {

using namespace std::chrono_literals;

constexpr const char* kFile = "test.toml";

Result<Config> parse(std::string_view text, const std::string& base_dir = "/etc/monolake") {
  return parse_config(text, kFile, base_dir);
}

// The error message of a configuration that must not parse.
std::string error_of(std::string_view text) {
  Result<Config> config = parse(text);
  if (config) {
    ADD_FAILURE() << "parsed, expected an error:\n" << text;
    return {};
  }
  EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
  return config.error().message();
}

// Asserts one line of `message` reads "test.toml: KEY_PATH: ..." and contains `reason`.
void expect_line(const std::string& message, std::string_view key_path, std::string_view reason) {
  std::string prefix = std::string(kFile) + ": " + std::string(key_path) + ": ";
  size_t at = message.find(prefix);
  ASSERT_NE(at, std::string::npos) << "no line for " << key_path << " in:\n" << message;
  size_t end = message.find('\n', at);
  std::string line = message.substr(at, end == std::string::npos ? end : end - at);
  EXPECT_NE(line.find(reason), std::string::npos) << "line: " << line << "\nwant: " << reason;
}

size_t line_count(const std::string& message) {
  size_t lines = message.empty() ? 0 : 1;
  for (char c : message) lines += c == '\n';
  return lines;
}

constexpr const char* kMinimal = R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)";

TEST(ConfigTest, FullExample) {
  Result<Config> config = parse(R"(
[runtime]
runtime_type = "io_uring"
worker_threads = 4
entries = 4096
sqpoll_idle = 200
cpu_affinity = true
max_open_files = 65536
user = "monolake"
control_socket = "run/control.sock"
drain_timeout_sec = 10

[admin]
listen = "127.0.0.1:9901"

[servers.api]
name = "api.example.com"
proxy_type = "http"
listener = { type = "socket", value = "[::1]:8443" }
tls = { chain = "certs/api.pem", key = "/etc/keys/api.key", stack = "gnutls" }
timeout = { server_keepalive_timeout_sec = 0, server_read_header_timeout_sec = 5, server_read_body_timeout_sec = 6, upstream_connect_timeout_sec = 2, upstream_read_timeout_sec = 7, server_message_timeout_sec = 8 }
max_connections = 500

[[servers.api.routes]]
path = "/users/{id}"
load_balancer = "weighted_random"
upstreams = [
  { endpoint = { type = "socket", value = "10.0.0.1:80" }, weight = 3 },
  { endpoint = { type = "unix", value = "/run/users.sock" } },
  { endpoint = { type = "uri", value = "http://users.internal:8443/v1?x=1" }, weight = 2 },
]

[[servers.api.routes]]
path = "/static/{*rest}"
upstreams = [{ endpoint = { type = "uri", value = "http://[::1]" } }]

[servers.db]
proxy_type = "tcp"
listener = { type = "unix", value = "db.sock" }
[[servers.db.routes]]
load_balancer = "least_request"
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.9:5432" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->source, kFile);

  const RuntimeConfig& rt = config->runtime;
  EXPECT_EQ(rt.runtime_type, runtime::BackendKind::kIoUring);
  EXPECT_EQ(rt.worker_threads, 4u);
  EXPECT_EQ(rt.entries, 4096u);
  EXPECT_EQ(rt.sqpoll_idle_ms, 200u);
  EXPECT_TRUE(rt.cpu_affinity);
  EXPECT_EQ(rt.max_open_files, 65536u);
  EXPECT_EQ(rt.user, "monolake");
  EXPECT_EQ(rt.control_socket, "/etc/monolake/run/control.sock");
  EXPECT_EQ(rt.drain_timeout, 10s);

  ASSERT_TRUE(config->admin);
  EXPECT_EQ(config->admin->listen.to_string(), "127.0.0.1:9901");

  ASSERT_EQ(config->servers.size(), 2u);  // ordered by key
  const ServerConfig& api = config->servers[0];
  EXPECT_EQ(api.key, "api");
  EXPECT_EQ(api.name, "api.example.com");
  EXPECT_EQ(api.proxy_type, ProxyType::kHttp);
  EXPECT_EQ(api.listener.kind, ListenerConfig::Kind::kSocket);
  EXPECT_EQ(api.listener.address.to_string(), "[::1]:8443");
  ASSERT_TRUE(api.tls);
  EXPECT_EQ(api.tls->stack, tls::Backend::kGnuTls);
  EXPECT_EQ(api.tls->certificate.chain_file, "/etc/monolake/certs/api.pem");
  EXPECT_EQ(api.tls->certificate.key_file, "/etc/keys/api.key");
  EXPECT_EQ(api.timeout.server_keepalive, 0s);
  EXPECT_EQ(api.timeout.server_read_header, 5s);
  EXPECT_EQ(api.timeout.server_read_body, 6s);
  EXPECT_EQ(api.timeout.upstream_connect, 2s);
  EXPECT_EQ(api.timeout.upstream_read, 7s);
  EXPECT_EQ(api.timeout.server_message, 8s);
  EXPECT_EQ(api.max_connections, 500u);
  ASSERT_EQ(api.routes.size(), 2u);
  const RouteConfig& users = api.routes[0];
  EXPECT_EQ(users.path, "/users/{id}");
  EXPECT_EQ(users.load_balancer, LoadBalancer::kWeightedRandom);
  ASSERT_EQ(users.upstreams.size(), 3u);
  EXPECT_EQ(users.upstreams[0].endpoint.kind, Endpoint::Kind::kSocket);
  EXPECT_EQ(users.upstreams[0].endpoint.address.to_string(), "10.0.0.1:80");
  EXPECT_EQ(users.upstreams[0].weight, 3u);
  EXPECT_EQ(users.upstreams[1].endpoint.kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(users.upstreams[1].endpoint.address.to_string(), "unix:/run/users.sock");
  EXPECT_EQ(users.upstreams[1].weight, 1u);
  const Uri& uri = users.upstreams[2].endpoint.uri;
  EXPECT_EQ(users.upstreams[2].endpoint.kind, Endpoint::Kind::kUri);
  EXPECT_EQ(uri.scheme, "http");
  EXPECT_EQ(uri.host, "users.internal");
  EXPECT_EQ(uri.port, 8443);
  EXPECT_EQ(uri.path, "/v1?x=1");
  EXPECT_EQ(users.upstreams[2].weight, 2u);
  EXPECT_EQ(api.routes[1].path, "/static/{*rest}");
  EXPECT_EQ(api.routes[1].upstreams[0].endpoint.uri.host, "::1");
  EXPECT_EQ(api.routes[1].upstreams[0].endpoint.uri.port, 80);
  EXPECT_EQ(api.routes[1].upstreams[0].endpoint.uri.path, "/");

  const ServerConfig& db = config->servers[1];
  EXPECT_EQ(db.proxy_type, ProxyType::kTcp);
  EXPECT_EQ(db.listener.kind, ListenerConfig::Kind::kUnix);
  EXPECT_EQ(db.listener.address.to_string(), "unix:/etc/monolake/db.sock");
  ASSERT_EQ(db.routes.size(), 1u);
  EXPECT_EQ(db.routes[0].path, "");
  EXPECT_EQ(db.routes[0].load_balancer, LoadBalancer::kLeastRequest);
}

TEST(ConfigTest, Defaults) {
  Result<Config> config = parse(kMinimal);
  ASSERT_TRUE(config) << config.error().message();
  const RuntimeConfig& rt = config->runtime;
  EXPECT_EQ(rt.runtime_type, runtime::BackendKind::kAuto);
  EXPECT_EQ(rt.worker_threads, available_cpus());
  EXPECT_GE(rt.worker_threads, 1u);
  EXPECT_EQ(rt.entries, 1024u);
  EXPECT_FALSE(rt.sqpoll_idle_ms);
  EXPECT_FALSE(rt.cpu_affinity);
  EXPECT_FALSE(rt.max_open_files);
  EXPECT_FALSE(rt.user);
  EXPECT_FALSE(rt.control_socket);
  EXPECT_EQ(rt.drain_timeout, 30s);
  EXPECT_FALSE(config->admin);

  ASSERT_EQ(config->servers.size(), 1u);
  const ServerConfig& web = config->servers[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.proxy_type, ProxyType::kHttp);
  EXPECT_FALSE(web.tls);
  EXPECT_EQ(web.timeout.server_keepalive, 75s);
  EXPECT_EQ(web.timeout.server_read_header, 30s);
  EXPECT_EQ(web.timeout.server_read_body, 60s);
  EXPECT_EQ(web.timeout.upstream_connect, 5s);
  EXPECT_EQ(web.timeout.upstream_read, 60s);
  EXPECT_EQ(web.timeout.server_message, 60s);
  EXPECT_EQ(web.max_connections, 10000u);
  ASSERT_EQ(web.routes.size(), 1u);
  EXPECT_EQ(web.routes[0].load_balancer, LoadBalancer::kRoundRobin);
  EXPECT_EQ(web.routes[0].upstreams[0].weight, 1u);

  // A tls table without stack is OpenSSL; a partial timeout table keeps the other defaults.
  config = parse(R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "a.pem", key = "a.key" }
timeout = { upstream_connect_timeout_sec = 1 }
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "http://backend" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->servers[0].tls->stack, tls::Backend::kOpenSsl);
  EXPECT_EQ(config->servers[0].timeout.upstream_connect, 1s);
  EXPECT_EQ(config->servers[0].timeout.server_keepalive, 75s);
}

TEST(ConfigTest, EveryAlias) {
  Result<Config> config = parse(R"(
[runtime]
runtime_type = "legacy"

[servers.a]
listener = { type = "socket", value = "127.0.0.1:8001" }
tls = { chain = "a.pem", key = "a.key", stack = "native_tls" }
[[servers.a.routes]]
path = "/*rest"
load_balancer = "RoundRobin"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9001" } }]
[[servers.a.routes]]
path = "/r"
load_balancer = "Random"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9001" } }]
[[servers.a.routes]]
path = "/files/*p"
load_balancer = "WeightedRandom"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9001" } }]
[[servers.a.routes]]
path = "/f"
load_balancer = "First"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9001" } }]

[servers.t]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:8002" }
[servers.t.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9002" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->runtime.runtime_type, runtime::BackendKind::kEpoll);
  const ServerConfig& a = config->servers[0];
  EXPECT_EQ(a.tls->stack, tls::Backend::kOpenSsl);
  ASSERT_EQ(a.routes.size(), 4u);
  EXPECT_EQ(a.routes[0].path, "/{*rest}");
  EXPECT_EQ(a.routes[0].load_balancer, LoadBalancer::kRoundRobin);
  EXPECT_EQ(a.routes[1].load_balancer, LoadBalancer::kRandom);
  EXPECT_EQ(a.routes[2].path, "/files/{*p}");
  EXPECT_EQ(a.routes[2].load_balancer, LoadBalancer::kWeightedRandom);
  EXPECT_EQ(a.routes[3].load_balancer, LoadBalancer::kFirst);
  const ServerConfig& t = config->servers[1];
  EXPECT_EQ(t.proxy_type, ProxyType::kThrift);
  ASSERT_EQ(t.routes.size(), 1u);
  EXPECT_EQ(t.routes[0].path, "");
  EXPECT_EQ(t.routes[0].upstreams[0].endpoint.address.to_string(), "127.0.0.1:9002");

  // The snake_case spellings and the rest of the runtime names.
  for (auto [name, kind] : {std::pair{"auto", runtime::BackendKind::kAuto},
                            std::pair{"io_uring", runtime::BackendKind::kIoUring},
                            std::pair{"epoll", runtime::BackendKind::kEpoll}}) {
    config = parse(std::string("[runtime]\nruntime_type = \"") + name + "\"\n" + kMinimal);
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ(config->runtime.runtime_type, kind) << name;
  }
  for (auto [name, lb] : {std::pair{"round_robin", LoadBalancer::kRoundRobin},
                          std::pair{"random", LoadBalancer::kRandom},
                          std::pair{"weighted_random", LoadBalancer::kWeightedRandom},
                          std::pair{"first", LoadBalancer::kFirst},
                          std::pair{"least_request", LoadBalancer::kLeastRequest}}) {
    config = parse(std::string(kMinimal) + "load_balancer = \"" + name + "\"\n");
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ(config->servers[0].routes[0].load_balancer, lb) << name;
    EXPECT_EQ(load_balancer_name(lb), name);
  }
}

// Written the way the Rust Monolake's example configurations are.
TEST(ConfigTest, RustMonolakeStyle) {
  Result<Config> config = parse(R"(
[runtime]
runtime_type = "legacy"
worker_threads = 2
entries = 1024


[servers.demo_server]
name = "monolake.rs"
proxy_type = "http"
listener = { type = "socket", value = "0.0.0.0:8080" }

[[servers.demo_server.routes]]
path = '/'
upstreams = [{ endpoint = { type = "uri", value = "https://example.com" } }]

[[servers.demo_server.routes]]
path = '/*p'
upstreams = [
    { endpoint = { type = "uri", value = "http://127.0.0.1:9080" } },
    { endpoint = { type = "uri", value = "http://127.0.0.1:10080" } },
]
load_balancer = "RoundRobin"


[servers.demo_tls]
tls = { chain = "examples/certs/server.crt", key = "examples/certs/server.key", stack = "native_tls" }
name = "monolake.rs"
listener = { type = "socket", value = "0.0.0.0:8081" }

[[servers.demo_tls.routes]]
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:8080" } }]
path = '/'


[servers.demo_uds]
name = "monolake.rs"
listener = { type = "unix", value = "/tmp/monolake-demo.sock" }

[[servers.demo_uds.routes]]
path = '/'
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:9080" } }]


[servers.thrift_server]
name = "thrift_proxy"
proxy_type = "thrift"
listener = { type = "socket", value = "0.0.0.0:8082" }

[servers.thrift_server.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9090" } }]
load_balancer = "RoundRobin"
)",
                                "/opt/monolake");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->runtime.runtime_type, runtime::BackendKind::kEpoll);
  EXPECT_EQ(config->runtime.worker_threads, 2u);
  ASSERT_EQ(config->servers.size(), 4u);
  const ServerConfig& demo = config->servers[0];
  EXPECT_EQ(demo.key, "demo_server");
  EXPECT_EQ(demo.name, "monolake.rs");
  EXPECT_EQ(demo.listener.address.to_string(), "0.0.0.0:8080");
  ASSERT_EQ(demo.routes.size(), 2u);
  EXPECT_EQ(demo.routes[0].upstreams[0].endpoint.uri.host, "example.com");
  EXPECT_EQ(demo.routes[0].upstreams[0].endpoint.uri.port, 443);
  EXPECT_EQ(demo.routes[1].path, "/{*p}");
  EXPECT_EQ(demo.routes[1].upstreams.size(), 2u);
  const ServerConfig& tls = config->servers[1];
  EXPECT_EQ(tls.tls->certificate.chain_file, "/opt/monolake/examples/certs/server.crt");
  EXPECT_EQ(config->servers[2].listener.kind, ListenerConfig::Kind::kUnix);
  const ServerConfig& thrift = config->servers[3];
  EXPECT_EQ(thrift.proxy_type, ProxyType::kThrift);
  ASSERT_EQ(thrift.routes.size(), 1u);
  EXPECT_EQ(thrift.routes[0].upstreams[0].endpoint.address.port(), 9090);
}

TEST(ConfigErrorTest, UnknownKey) {
  std::string message =
      error_of(std::string("[runtime]\nworkers = 2\n") + kMinimal + "retries = 3\n");
  expect_line(message, "runtime.workers", "unknown key");
  expect_line(message, "servers.web.routes[0].retries", "unknown key");
  EXPECT_EQ(line_count(message), 2u) << message;
  // Unknown top-level tables and keys inside inline tables too.
  message = error_of(std::string("[logging]\nlevel = \"info\"\n") + R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080", backlog = 10 }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000", tls = true } }]
)");
  expect_line(message, "logging", "unknown key");
  expect_line(message, "servers.web.listener.backlog", "unknown key");
  expect_line(message, "servers.web.routes[0].upstreams[0].endpoint.tls", "unknown key");
}

TEST(ConfigErrorTest, WrongType) {
  std::string message =
      error_of(std::string("[runtime]\nworker_threads = \"4\"\ncpu_affinity = 1\n") + kMinimal);
  expect_line(message, "runtime.worker_threads", "expected an integer, got a string");
  expect_line(message, "runtime.cpu_affinity", "expected a boolean, got an integer");
  message = error_of(R"(
[servers.web]
listener = "127.0.0.1:8080"
max_connections = 1.5
[[servers.web.routes]]
path = 7
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" }, weight = "heavy" }]
)");
  expect_line(message, "servers.web.listener", "expected a table, got a string");
  expect_line(message, "servers.web.max_connections", "expected an integer, got a float");
  expect_line(message, "servers.web.routes[0].path", "expected a string, got an integer");
  expect_line(message, "servers.web.routes[0].upstreams[0].weight",
              "expected an integer, got a string");
}

TEST(ConfigErrorTest, OutOfRange) {
  std::string message =
      error_of(std::string("[runtime]\nworker_threads = 0\nentries = 100000\n") + kMinimal);
  expect_line(message, "runtime.worker_threads", "must be at least 1, got 0");
  expect_line(message, "runtime.entries", "must be at most 32768");
  message = error_of(std::string(kMinimal) + "upstreams = []\n");  // redefinition: syntax error
  EXPECT_NE(message.find("test.toml:"), std::string::npos);
}

TEST(ConfigErrorTest, EmptyUpstreamList) {
  std::string message = error_of(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = []
)");
  expect_line(message, "servers.web.routes[0].upstreams", "empty upstream list");
}

TEST(ConfigErrorTest, BadAddress) {
  std::string message = error_of(R"(
[admin]
listen = "localhost:99"
[servers.web]
listener = { type = "socket", value = "127.0.0.1:99999" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "backend:80" } },
             { endpoint = { type = "socket", value = "/run/x.sock" } },
             { endpoint = { type = "uri", value = "ftp://example.com" } },
             { endpoint = { type = "uri", value = "http://:80/" } }]
)");
  expect_line(message, "admin.listen", "localhost:99");
  expect_line(message, "servers.web.listener.value", "127.0.0.1:99999");
  expect_line(message, "servers.web.routes[0].upstreams[0].endpoint.value", "backend:80");
  expect_line(message, "servers.web.routes[0].upstreams[1].endpoint.value", "use type = \"unix\"");
  expect_line(message, "servers.web.routes[0].upstreams[2].endpoint.value",
              "expected http:// or https://");
  expect_line(message, "servers.web.routes[0].upstreams[3].endpoint.value", "no host");
  EXPECT_EQ(line_count(message), 6u) << message;
}

TEST(ConfigErrorTest, Rustls) {
  std::string message = error_of(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "a.pem", key = "a.key", stack = "rustls" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
  expect_line(message, "servers.web.tls.stack",
              "rustls is not available here: use \"openssl\" or \"gnutls\"");
  message = error_of(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "a.pem", stack = "boringssl" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
  expect_line(message, "servers.web.tls.stack", "expected \"openssl\" or \"gnutls\"");
  expect_line(message, "servers.web.tls.key", "missing");
}

TEST(ConfigErrorTest, PathOnTcpRoute) {
  std::string message = error_of(R"(
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:5432" }
[[servers.db.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:15432" } }]
)");
  expect_line(message, "servers.db.routes[0].path", "a tcp route has no path");
}

TEST(ConfigTest, ProxyProtocolAndAccessListsOnAnyServer) {
  const std::string tcp = R"(
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
proxy_protocol = "v2"
proxy_protocol_from = ["10.0.0.0/8", "::1"]
allow = ["192.0.2.0/24", "2001:db8::/32"]
deny = ["192.0.2.7"]
[[servers.db.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)";
  Result<Config> config = parse(tcp);
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& s = config->servers[0];
  ASSERT_TRUE(s.proxy_protocol.has_value());
  EXPECT_EQ(*s.proxy_protocol, codec::ProxyVersions::kV2);
  ASSERT_EQ(s.proxy_protocol_from.size(), 2u);
  EXPECT_EQ(s.proxy_protocol_from[0].to_string(), "10.0.0.0/8");
  ASSERT_EQ(s.allow.size(), 2u);
  ASSERT_EQ(s.deny.size(), 1u);
  EXPECT_EQ(s.deny[0].to_string(), "192.0.2.7/32");

  Result<Config> defaults = parse(kMinimal);
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_FALSE(defaults->servers[0].proxy_protocol.has_value());
  EXPECT_TRUE(defaults->servers[0].allow.empty() && defaults->servers[0].deny.empty());

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8081" }
proxy_protocol = "v3"
allow = ["10.0.0.0/33"]
deny = ["example.com", 5]
[[servers.other.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.third]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8082" }
proxy_protocol_from = ["10.0.0.0/8"]
[[servers.third.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  expect_line(message, "servers.other.proxy_protocol", "unknown PROXY protocol mode 'v3'");
  expect_line(message, "servers.other.allow[0]", "'10.0.0.0/33' is not an IP address or CIDR");
  expect_line(message, "servers.other.deny[0]", "'example.com' is not an IP address or CIDR");
  expect_line(message, "servers.other.deny[1]", "");
  expect_line(message, "servers.third.proxy_protocol_from", "needs proxy_protocol");
}

TEST(ConfigTest, RateLimitsOnHttpRoutesAndConnectionRateLimitsOnAnyServer) {
  Result<Config> config = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
connection_rate_limit = { per_sec = 200 }
[[servers.web.routes]]
path = "/api"
rate_limit = { requests_per_sec = 100, burst = 200, key = "header:X-Api-Key", max_keys = 5000 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[[servers.web.routes]]
path = "/slow"
rate_limit = { requests_per_sec = 0.5 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
connection_rate_limit = { per_sec = 10, burst = 50 }
[[servers.db.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& web = config->servers[1];
  ASSERT_EQ(web.key, "web");
  ASSERT_TRUE(web.connection_rate_limit.has_value());
  EXPECT_DOUBLE_EQ(web.connection_rate_limit->per_sec, 200);
  EXPECT_DOUBLE_EQ(web.connection_rate_limit->burst, 200);  // default: one second's worth
  const RateLimitParams& api = web.routes[0].rate_limit.value();
  EXPECT_DOUBLE_EQ(api.requests_per_sec, 100);
  EXPECT_DOUBLE_EQ(api.burst, 200);
  EXPECT_EQ(api.key, RateLimitParams::Key::kHeader);
  EXPECT_EQ(api.header, "x-api-key");
  EXPECT_EQ(api.max_keys, 5000u);
  const RateLimitParams& slow = web.routes[1].rate_limit.value();
  EXPECT_DOUBLE_EQ(slow.requests_per_sec, 0.5);
  EXPECT_DOUBLE_EQ(slow.burst, 1);  // never below one request
  EXPECT_EQ(slow.key, RateLimitParams::Key::kSourceIp);
  EXPECT_EQ(slow.max_keys, 100000u);
  EXPECT_DOUBLE_EQ(config->servers[0].connection_rate_limit->burst, 50);

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
listener = { type = "socket", value = "127.0.0.1:8081" }
connection_rate_limit = { burst = 0, per_sec = "fast" }
[[servers.other.routes]]
path = "/a"
rate_limit = { burst = 10, key = "cookie:x" }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[[servers.other.routes]]
path = "/b"
rate_limit = { requests_per_sec = -1, key = "header:bad name", max_keys = 0 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
[[servers.db.routes]]
rate_limit = { requests_per_sec = 1 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  expect_line(message, "servers.other.connection_rate_limit.per_sec", "expected a number");
  expect_line(message, "servers.other.connection_rate_limit.burst", "must be between 1 and");
  expect_line(message, "servers.other.routes[0].rate_limit.requests_per_sec", "missing");
  expect_line(message, "servers.other.routes[0].rate_limit.key", "unknown key 'cookie:x'");
  expect_line(message, "servers.other.routes[1].rate_limit.requests_per_sec", "must be between");
  expect_line(message, "servers.other.routes[1].rate_limit.key", "unknown key 'header:bad name'");
  expect_line(message, "servers.other.routes[1].rate_limit.max_keys", "must be at least 1");
  expect_line(message, "servers.db.routes[0].rate_limit", "only http routes limit requests");
}

TEST(ConfigTest, HashingBalancersTakeTheirKeyFromHashOn) {
  Result<Config> config = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/u"
load_balancer = "ring_hash"
hash_on = { header = "X-User-Id" }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[[servers.web.routes]]
path = "/c"
load_balancer = "maglev"
hash_on = { cookie = "sid" }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[[servers.web.routes]]
path = "/p"
load_balancer = "maglev"
hash_on = { path = true }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
[[servers.db.routes]]
load_balancer = "ring_hash"
hash_on = { source_ip = true }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& web = config->servers[1];
  ASSERT_EQ(web.key, "web");
  EXPECT_EQ(web.routes[0].load_balancer, LoadBalancer::kRingHash);
  EXPECT_EQ(web.routes[0].hash_on, (HashOn{HashOn::Source::kHeader, "x-user-id"}));
  EXPECT_EQ(web.routes[1].load_balancer, LoadBalancer::kMaglev);
  EXPECT_EQ(web.routes[1].hash_on, (HashOn{HashOn::Source::kCookie, "sid"}));
  EXPECT_EQ(web.routes[2].hash_on, (HashOn{HashOn::Source::kPath, ""}));
  EXPECT_EQ(config->servers[0].routes[0].hash_on, (HashOn{HashOn::Source::kSourceIp, ""}));

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
listener = { type = "socket", value = "127.0.0.1:8081" }
[[servers.other.routes]]
path = "/a"
load_balancer = "ring_hash"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[[servers.other.routes]]
path = "/b"
hash_on = { source_ip = true }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[[servers.other.routes]]
path = "/c"
load_balancer = "maglev"
hash_on = { header = "x-a", path = true }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[[servers.other.routes]]
path = "/d"
load_balancer = "maglev"
hash_on = { header = "bad name", source_ip = false, query = "q" }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
[[servers.db.routes]]
load_balancer = "maglev"
hash_on = { header = "x-user" }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  expect_line(message, "servers.other.routes[0].load_balancer", "give hash_on");
  expect_line(message, "servers.other.routes[1].hash_on", "set load_balancer = \"ring_hash\"");
  expect_line(message, "servers.other.routes[2].hash_on", "exactly one of header, cookie");
  expect_line(message, "servers.other.routes[3].hash_on.header", "not a valid header name");
  expect_line(message, "servers.other.routes[3].hash_on.source_ip", "only true means something");
  expect_line(message, "servers.other.routes[3].hash_on.query", "unknown key");
  expect_line(message, "servers.db.routes[0].hash_on", "only http routes hash a header");
}

TEST(ConfigTest, SendProxyProtocolOnHttpAndTcpRoutes) {
  Result<Config> config = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
send_proxy_protocol = "v2"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
[servers.db.route]
send_proxy_protocol = "v1"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->servers[0].routes[0].send_proxy_protocol, 1);
  EXPECT_EQ(config->servers[1].routes[0].send_proxy_protocol, 2);
  EXPECT_FALSE(parse(kMinimal)->servers[0].routes[0].send_proxy_protocol.has_value());

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
listener = { type = "socket", value = "127.0.0.1:8081" }
[[servers.other.routes]]
path = "/"
send_proxy_protocol = "v3"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.h2]
listener = { type = "socket", value = "127.0.0.1:8082" }
upstream_http_version = "http2"
[[servers.h2.routes]]
path = "/"
send_proxy_protocol = "v1"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:8083" }
[[servers.rpc.routes]]
send_proxy_protocol = "v1"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  expect_line(message, "servers.other.routes[0].send_proxy_protocol",
              "unknown PROXY protocol version 'v3'");
  expect_line(message, "servers.h2.routes[0].send_proxy_protocol",
              "HTTP/2 upstream connections are shared");
  expect_line(message, "servers.rpc.routes[0].send_proxy_protocol",
              "only http and tcp routes send a PROXY header");
}

TEST(ConfigTest, CompressionOnHttpServersAndRoutes) {
  Result<Config> config = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
compression = {}
[[servers.web.routes]]
path = "/"
compression = { algorithms = ["gzip", "zstd"], min_length = 0, types = ["Text/HTML", "font/*"], gzip_level = 9, brotli_quality = 11, zstd_level = 19 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const CompressionParams& server = config->servers[0].compression.value();
  ASSERT_EQ(server.algorithms.size(), 3u);  // the defaults: br, zstd, gzip
  EXPECT_EQ(server.algorithms[0], monolake::http::compression::Coding::kBrotli);
  EXPECT_EQ(server.min_length, 1024u);
  EXPECT_EQ(server.types.size(), 4u);
  EXPECT_EQ(server.levels.brotli, 4);
  const CompressionParams& route = config->servers[0].routes[0].compression.value();
  ASSERT_EQ(route.algorithms.size(), 2u);
  EXPECT_EQ(route.algorithms[0], monolake::http::compression::Coding::kGzip);
  EXPECT_EQ(route.min_length, 0u);
  EXPECT_EQ(route.types, (std::vector<std::string>{"text/html", "font/*"}));
  EXPECT_EQ(route.levels.gzip, 9);
  EXPECT_EQ(route.levels.zstd, 19);

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
listener = { type = "socket", value = "127.0.0.1:8081" }
compression = { algorithms = ["br", "deflate", "br"], gzip_level = 10, types = ["text", "a/b c"] }
[[servers.other.routes]]
path = "/"
compression = { algorithms = [], level = 3 }
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
compression = {}
[servers.db.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)");
  expect_line(message, "servers.other.compression.algorithms[1]", "expected one of");
  expect_line(message, "servers.other.compression.algorithms[2]", "listed twice");
  expect_line(message, "servers.other.compression.gzip_level", "must be at most 9");
  expect_line(message, "servers.other.compression.types[0]", "expected a media type");
  expect_line(message, "servers.other.compression.types[1]", "expected a media type");
  expect_line(message, "servers.other.routes[0].compression.algorithms", "compresses nothing");
  expect_line(message, "servers.other.routes[0].compression.level", "unknown key");
  expect_line(message, "servers.db.compression", "only http servers compress responses");
}

TEST(ConfigTest, TcpSpliceDefaultsOnAndBelongsToTcpServers) {
  const std::string tcp = R"(
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:15432" }
[[servers.db.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:5432" } }]
)";
  Result<Config> defaults = parse(tcp);
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_TRUE(defaults->servers[0].tcp_splice);
  std::string with_off = tcp;
  with_off.insert(with_off.find("[[servers.db.routes]]"), "tcp_splice = false\n");
  Result<Config> copied = parse(with_off);
  ASSERT_TRUE(copied) << copied.error().message();
  EXPECT_FALSE(copied->servers[0].tcp_splice);

  std::string message = error_of(std::string(kMinimal) + R"(
[servers.other]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8081" }
tcp_splice = true
[[servers.other.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  expect_line(message, "servers.other.tcp_splice", "only tcp servers have tcp_splice");
}

TEST(ConfigTest, ThriftRoutesByMethod) {
  Result<Config> config = parse(R"(
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
max_calls_in_flight = 7
[[servers.rpc.routes]]
method = "add"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9091" } }]
[[servers.rpc.routes]]
method = ["echo", "note"]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9092" } }]
[[servers.rpc.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& rpc = config->servers[0];
  EXPECT_EQ(rpc.max_calls_in_flight, 7u);
  ASSERT_EQ(rpc.routes.size(), 3u);
  EXPECT_EQ(rpc.routes[0].methods, std::vector<std::string>{"add"});
  EXPECT_EQ(rpc.routes[1].methods, (std::vector<std::string>{"echo", "note"}));
  EXPECT_TRUE(rpc.routes[2].methods.empty());
  Result<Config> defaults = parse(R"(
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
[servers.rpc.route]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9091" } }]
)");
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_EQ(defaults->servers[0].max_calls_in_flight, 100u);
}

TEST(ConfigTest, Http2KeysAndDefaults) {
  Result<Config> config = parse(R"(
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8080" }
upstream_http_version = "http2"
upstream_max_idle_connections = 0
[servers.web.http2]
enabled = false
max_concurrent_streams = 7
initial_stream_window = 1024
connection_window = 65535
max_header_list_size = 2048
max_continuations = 0
max_resets_burst = 5
max_resets_per_sec = 1
max_control_frames_per_sec = 9
max_consecutive_empty_frames = 0
max_priority_frames_per_stream = 3
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& web = config->servers[0];
  EXPECT_EQ(web.upstream_http_version, UpstreamHttpVersion::kHttp2);
  EXPECT_EQ(web.upstream_max_idle_connections, 0u);
  EXPECT_FALSE(web.http2.enabled);
  EXPECT_EQ(web.http2.max_concurrent_streams, 7u);
  EXPECT_EQ(web.http2.initial_stream_window, 1024u);
  EXPECT_EQ(web.http2.connection_window, 65535u);
  EXPECT_EQ(web.http2.max_header_list_size, 2048u);
  EXPECT_EQ(web.http2.max_continuations, 0u);
  EXPECT_EQ(web.http2.max_resets_burst, 5u);
  EXPECT_EQ(web.http2.max_resets_per_sec, 1u);
  EXPECT_EQ(web.http2.max_control_frames_per_sec, 9u);
  EXPECT_EQ(web.http2.max_consecutive_empty_frames, 0u);
  EXPECT_EQ(web.http2.max_priority_frames_per_stream, 3u);

  Result<Config> defaults = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  ASSERT_TRUE(defaults) << defaults.error().message();
  const ServerConfig& d = defaults->servers[0];
  EXPECT_EQ(d.upstream_http_version, UpstreamHttpVersion::kAuto);
  EXPECT_EQ(d.upstream_max_idle_connections, 64u);
  EXPECT_TRUE(d.http2.enabled);
  EXPECT_EQ(d.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(d.http2.initial_stream_window, 65536u);
  EXPECT_EQ(d.http2.connection_window, 1048576u);
}

TEST(ConfigErrorTest, BadHttp2Keys) {
  std::string message = error_of(R"(
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8080" }
upstream_http_version = "h3"
[servers.web.http2]
initial_stream_window = 2147483648
max_concurrent_streams = 0
bogus = 1
enabled = "yes"
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  expect_line(message, "servers.web.upstream_http_version", "unknown HTTP version 'h3'");
  expect_line(message, "servers.web.http2.initial_stream_window", "must be at most 2147483647");
  expect_line(message, "servers.web.http2.max_concurrent_streams", "must be at least 1");
  expect_line(message, "servers.web.http2.bogus", "unknown key");
  expect_line(message, "servers.web.http2.enabled", "");
}

TEST(ConfigErrorTest, BadMethodRoutes) {
  std::string message = error_of(R"(
[servers.rpc]
proxy_type = "thrift"
listener = { type = "socket", value = "127.0.0.1:9090" }
max_calls_in_flight = 0
[[servers.rpc.routes]]
method = []
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9091" } }]
[[servers.rpc.routes]]
method = ["ok", "two words", 3]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9092" } }]
[servers.web]
proxy_type = "http"
listener = { type = "socket", value = "127.0.0.1:8080" }
max_calls_in_flight = 5
[[servers.web.routes]]
path = "/"
method = "GET"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9093" } }]
)");
  expect_line(message, "servers.rpc.max_calls_in_flight", "");
  expect_line(message, "servers.rpc.routes[0].method", "an empty method list matches nothing");
  expect_line(message, "servers.rpc.routes[1].method[1]", "'two words' is not a method name");
  expect_line(message, "servers.rpc.routes[1].method[2]", "");
  expect_line(message, "servers.web.max_calls_in_flight", "only thrift servers");
  expect_line(message, "servers.web.routes[0].method", "only thrift routes match on method");
}

TEST(ConfigErrorTest, BadLoadBalancer) {
  std::string message = error_of(std::string(kMinimal) + "load_balancer = \"fastest\"\n");
  expect_line(message, "servers.web.routes[0].load_balancer", "unknown load balancer 'fastest'");
  EXPECT_NE(message.find("least_request"), std::string::npos);
}

TEST(ConfigErrorTest, BadRoutePaths) {
  for (const char* path :
       {"users", "/a/{", "/a/}", "/a/{}", "/a/{*rest}/b", "/a/*rest/b", "/a/{x}{y}"}) {
    std::string message = error_of(std::string(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.web.routes]]
path = ')") + path + R"('
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
    expect_line(message, "servers.web.routes[0].path", "bad route path");
  }
}

TEST(ConfigErrorTest, SeveralErrorsReportedTogether) {
  std::string message = error_of(R"(
[runtime]
runtime_type = "kqueue"
entries = -1

[servers.a]
proxy_type = "udp"
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.a.routes]]
path = "/"
upstreams = []

[servers.b]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.b.routes]]
path = "/"
upstreams = [{ endpoint = { type = "pipe", value = "x" } }]

[servers."c.d"]
[[servers."c.d".routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:1" } }]
)");
  expect_line(message, "runtime.runtime_type", "unknown runtime type 'kqueue'");
  expect_line(message, "runtime.entries", "must be at least 1");
  expect_line(message, "servers.a.proxy_type", "unknown proxy type 'udp'");
  expect_line(message, "servers.a.routes[0].upstreams", "empty upstream list");
  expect_line(message, "servers.b.routes[0].upstreams[0].endpoint.type",
              "unknown endpoint type 'pipe'");
  expect_line(message, "servers.b.listener", "already the listener of servers.a");
  expect_line(message, "servers.\"c.d\".listener", "missing");
  EXPECT_EQ(line_count(message), 7u) << message;
}

TEST(ConfigErrorTest, NoServersAndNoRoutes) {
  expect_line(error_of("[runtime]\nworker_threads = 1\n"), "servers", "no servers");
  expect_line(error_of("servers = {}\n"), "servers", "no servers");
  std::string message = error_of(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
)");
  expect_line(message, "servers.web.routes", "no routes");
  message = error_of(R"(
[servers.db]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.db.routes]]
upstreams = [{ endpoint = { type = "uri", value = "http://a" } }]
[[servers.db.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:1" } }]
)");
  expect_line(message, "servers.db.routes", "exactly one route");
  expect_line(message, "servers.db.routes[0].upstreams[0].endpoint.type", "not a \"uri\"");
}

TEST(ConfigErrorTest, SyntaxErrorNamesFileLineAndColumn) {
  Result<Config> config = parse("[runtime]\nworker_threads = = 2\n");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message().rfind("test.toml:2:", 0), 0u) << config.error().message();
}

TEST(ConfigTest, RelativePathsResolveAgainstBaseDir) {
  Result<Config> config = parse(R"(
[runtime]
control_socket = "../run/ctl.sock"
[admin]
listen = "unix:admin.sock"
[servers.web]
listener = { type = "unix", value = "sockets/web.sock" }
tls = { chain = "certs/web.pem", key = "./keys/web.key" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "unix", value = "up.sock" } }]
)",
                                "/srv/monolake/conf");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->runtime.control_socket, "/srv/monolake/run/ctl.sock");
  EXPECT_EQ(config->admin->listen.to_string(), "unix:/srv/monolake/conf/admin.sock");
  const ServerConfig& web = config->servers[0];
  EXPECT_EQ(web.listener.address.to_string(), "unix:/srv/monolake/conf/sockets/web.sock");
  EXPECT_EQ(web.tls->certificate.chain_file, "/srv/monolake/conf/certs/web.pem");
  EXPECT_EQ(web.tls->certificate.key_file, "/srv/monolake/conf/keys/web.key");
  EXPECT_EQ(web.routes[0].upstreams[0].endpoint.address.to_string(),
            "unix:/srv/monolake/conf/up.sock");
}

std::string temp_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

TEST(ConfigTest, LoadConfigFileResolvesAgainstItsDirectory) {
  std::string dir = temp_dir();
  write_file(dir + "/cert.pem", "not really a certificate\n");
  write_file(dir + "/key.pem", "not really a key\n");
  std::string file = dir + "/monolake.toml";
  write_file(file, R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "cert.pem", key = "key.pem" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
  Result<Config> config = load_config_file(file);
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->source, file);
  EXPECT_EQ(config->servers[0].tls->certificate.chain_file, dir + "/cert.pem");
  EXPECT_TRUE(check_files(*config)) << check_files(*config).error().message();

  Result<Config> missing = load_config_file(dir + "/absent.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find(dir + "/absent.toml"), std::string::npos);

  write_file(file, "[servers]\n");
  config = load_config_file(file);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message(),
            file + ": servers: no servers (add a [servers.<name>] table)");
}

TEST(ConfigTest, CheckFilesNamesAMissingCertificate) {
  Result<Config> config = parse(R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "missing-cert.pem", key = "missing-key.pem" }
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)",
                                "/nonexistent/dir");
  ASSERT_TRUE(config) << config.error().message();
  Result<void> checked = check_files(*config);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), ErrorCode::kNotFound);
  const std::string& message = checked.error().message();
  expect_line(message, "servers.web.tls.chain", "/nonexistent/dir/missing-cert.pem");
  expect_line(message, "servers.web.tls.key", "/nonexistent/dir/missing-key.pem");
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

}  // namespace
TEST(ConfigTest, HttpsUpstreamsAndListenerTls) {
  const char* text = R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "a.pem", key = "a.key", sni = [{ names = ["b.test", "*.b.test"], chain = "b.pem", key = "b.key" }], client_ca = "ca.pem", min_version = "1.3" }
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "https://api.example:8443" } }]
[[servers.s.routes]]
path = "/x"
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:443" } }]
upstream_tls = { stack = "gnutls", ca = "up-ca.pem", sni = "internal.example" }
)";
  Result<Config> config = parse_config(text, "t.toml", "/etc/ml");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& s = config->servers[0];
  ASSERT_TRUE(s.tls);
  ASSERT_EQ(s.tls->sni.size(), 1u);
  EXPECT_EQ(s.tls->sni[0].names, (std::vector<std::string>{"b.test", "*.b.test"}));
  EXPECT_EQ(s.tls->sni[0].chain_file, "/etc/ml/b.pem");
  EXPECT_EQ(s.tls->client_ca_file, "/etc/ml/ca.pem");
  EXPECT_EQ(s.tls->min_version, tls::Version::kTls13);
  ASSERT_TRUE(s.routes[0].upstream_tls);  // implied by https://
  EXPECT_TRUE(s.routes[0].upstream_tls->verify);
  ASSERT_TRUE(s.routes[1].upstream_tls);
  EXPECT_EQ(s.routes[1].upstream_tls->stack, tls::Backend::kGnuTls);
  EXPECT_EQ(s.routes[1].upstream_tls->ca_file, "/etc/ml/up-ca.pem");
  EXPECT_EQ(s.routes[1].upstream_tls->sni, "internal.example");
}

TEST(ConfigTest, UpstreamTlsMistakes) {
  const char* text = R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8443" }
tls = { chain = "a.pem", key = "a.key", sni = [{ names = [], chain = "b.pem", key = "b.key" }], min_version = "1.1" }
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "https://a.example" } }, { endpoint = { type = "socket", value = "10.0.0.1:80" } }]
[[servers.s.routes]]
path = "/x"
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:443" } }]
upstream_tls = { verify = true }
)";
  Result<Config> config = parse_config(text, "t.toml", "");
  ASSERT_FALSE(config);
  const std::string& m = config.error().message();
  EXPECT_NE(m.find("t.toml: servers.s.tls.sni[0].names: empty"), std::string::npos) << m;
  EXPECT_NE(m.find("t.toml: servers.s.tls.min_version: "), std::string::npos) << m;
  EXPECT_NE(m.find("t.toml: servers.s.routes[0].upstreams: mixes https://"), std::string::npos)
      << m;
  EXPECT_NE(m.find("t.toml: servers.s.routes[1].upstream_tls: verify is on"), std::string::npos)
      << m;
}

TEST(ConfigTest, HostAndDirectRoutes) {
  const char* text = R"(
[log]
access_log = "logs/access.log"
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.s.routes]]
host = "API.example.com"
path = "/"
return = { status = 204, headers = { x-a = "1" } }
[[servers.s.routes]]
host = "*.example.com"
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:80" } }]
[[servers.s.routes]]
path = "/health"
return = { body = "ok" }
)";
  Result<Config> config = parse_config(text, "t.toml", "/srv");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->log.access_log, LogConfig::AccessLog::kFile);
  EXPECT_EQ(config->log.access_log_path, "/srv/logs/access.log");
  const auto& routes = config->servers[0].routes;
  EXPECT_EQ(routes[0].host, "api.example.com");
  ASSERT_TRUE(routes[0].direct);
  EXPECT_EQ(routes[0].direct->status, 204);
  EXPECT_EQ(routes[0].direct->headers.size(), 1u);
  EXPECT_EQ(routes[1].host, "*.example.com");
  EXPECT_FALSE(routes[1].direct);
  ASSERT_TRUE(routes[2].direct);
  EXPECT_EQ(routes[2].direct->status, 200);
  EXPECT_EQ(routes[2].direct->body, "ok");
  // Same path on different hosts is fine; a direct route with upstreams is not.
  Result<Config> bad = parse_config(R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.s.routes]]
path = "/"
return = { status = 700 }
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:80" } }]
[[servers.s.routes]]
host = "bad host"
path = "/x"
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:80" } }]
)",
                                    "t.toml", "");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("servers.s.routes[0].return.status"), std::string::npos)
      << bad.error().message();
  EXPECT_NE(bad.error().message().find("servers.s.routes[1].host"), std::string::npos)
      << bad.error().message();
}

TEST(ConfigTest, RewritesAndTrustedProxies) {
  Result<Config> config = parse_config(R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8080" }
trusted_proxies = ["10.0.0.0/8", "::1", "192.168.1.7/32"]
[[servers.s.routes]]
path = "/api/{*rest}"
host_rewrite = "api.internal"
strip_prefix = "/api"
add_prefix = "/v2"
request_headers = { add = { X-A = "1" }, remove = ["x-b"] }
response_headers = { remove = ["server"] }
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:80" } }]
)",
                                       "t.toml", "");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& s = config->servers[0];
  ASSERT_EQ(s.trusted_proxies.size(), 3u);
  auto addr = [](const char* text) { return transport::SocketAddress::parse(text).value(); };
  EXPECT_TRUE(s.trusted_proxies[0].contains(addr("10.200.3.4:1")));
  EXPECT_FALSE(s.trusted_proxies[0].contains(addr("11.0.0.1:1")));
  EXPECT_TRUE(s.trusted_proxies[1].contains(addr("[::1]:5")));
  EXPECT_FALSE(s.trusted_proxies[1].contains(addr("127.0.0.1:5")));
  EXPECT_TRUE(s.trusted_proxies[2].contains(addr("192.168.1.7:9")));
  EXPECT_FALSE(s.trusted_proxies[2].contains(addr("192.168.1.8:9")));
  const RouteConfig& r = s.routes[0];
  EXPECT_EQ(r.host_rewrite, "api.internal");
  EXPECT_EQ(r.strip_prefix, "/api");
  EXPECT_EQ(r.add_prefix, "/v2");
  ASSERT_EQ(r.request_headers.add.size(), 1u);
  EXPECT_EQ(r.request_headers.remove, (std::vector<std::string>{"x-b"}));
  EXPECT_EQ(r.response_headers.remove, (std::vector<std::string>{"server"}));

  Result<Config> bad = parse_config(R"(
[servers.s]
listener = { type = "socket", value = "127.0.0.1:8080" }
trusted_proxies = ["10.0.0.0/33", "nope"]
[[servers.s.routes]]
path = "/"
strip_prefix = "api"
request_headers = { add = { "bad name" = "1" } }
upstreams = [{ endpoint = { type = "socket", value = "10.0.0.1:80" } }]
)",
                                    "t.toml", "");
  ASSERT_FALSE(bad);
  const std::string& m = bad.error().message();
  EXPECT_NE(m.find("servers.s.trusted_proxies[0]"), std::string::npos) << m;
  EXPECT_NE(m.find("servers.s.trusted_proxies[1]"), std::string::npos) << m;
  EXPECT_NE(m.find("servers.s.routes[0].strip_prefix"), std::string::npos) << m;
  EXPECT_NE(m.find("servers.s.routes[0].request_headers.add"), std::string::npos) << m;
}

}  // namespace monolake::proxy::config
