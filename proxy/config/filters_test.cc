// Filters and user server kinds in the configuration: checked against registered schemas with
// the same "FILE: KEY.PATH: reason" errors as every built-in key.
#include <gtest/gtest.h>

#include "proxy/config/config.h"

namespace monolake::proxy::config {
namespace {

Catalog catalog() {
  Catalog c;
  ParamSchema api_key;
  api_key.string_list("keys").required();
  api_key.string("header").default_value("x-api-key");
  api_key.integer("status").default_value(401).range(400, 599);
  api_key.boolean("log").default_value(false);
  api_key.string_map("add");
  c.add_filter("api_key", api_key);
  c.add_filter("tag", ParamSchema());
  ParamSchema line;
  line.integer("max_line").default_value(1024).range(16, 65536);
  c.add_server_kind("line", line);
  ParamSchema limit;
  limit.integer("max").default_value(16).range(1, 1000);
  c.add_connection_filter("client_limit", limit);
  return c;
}

Result<Config> parse(std::string_view text) {
  const Catalog c = catalog();
  return parse_config(text, "f.toml", "/etc", &c);
}

std::string error_of(std::string_view text) {
  Result<Config> config = parse(text);
  if (config) {
    ADD_FAILURE() << "parsed, expected an error:\n" << text;
    return {};
  }
  return config.error().message();
}

constexpr const char* kServer = R"(
[servers.web]
listener = { type = "socket", value = "127.0.0.1:8080" }
)";
constexpr const char* kRoute = R"(
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)";

TEST(FiltersConfig, ServerAndRouteFiltersInOrderWithDefaultsFilledIn) {
  Result<Config> config = parse(std::string(kServer) + R"(
[[servers.web.filters]]
name = "api_key"
keys = ["k1", "k2"]
add = { x-a = "1", x-b = "2" }
[[servers.web.filters]]
name = "tag"
id = "outer-tag"
[[servers.web.routes]]
path = "/"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
filters = [{ name = "tag" }, { name = "api_key", keys = ["r"], status = 403 }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& web = config->servers.at(0);
  ASSERT_EQ(web.filters.size(), 2u);
  EXPECT_EQ(web.filters[0].name, "api_key");
  EXPECT_EQ(web.filters[0].id, "");
  EXPECT_EQ(web.filters[0].params.string_list("keys"), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(web.filters[0].params.string("header"), "x-api-key");  // default
  EXPECT_EQ(web.filters[0].params.integer("status"), 401);
  EXPECT_FALSE(web.filters[0].params.boolean("log"));
  ASSERT_EQ(web.filters[0].params.string_map("add").size(), 2u);
  EXPECT_EQ(web.filters[0].params.string_map("add")[1].first, "x-b");
  EXPECT_EQ(web.filters[1].id, "outer-tag");
  const RouteConfig& route = web.routes.at(0);
  ASSERT_EQ(route.filters.size(), 2u);
  EXPECT_EQ(route.filters[0].name, "tag");
  EXPECT_EQ(route.filters[1].params.integer("status"), 403);
}

TEST(FiltersConfig, EveryProblemNamesItsKeyPath) {
  const std::string message = error_of(std::string(kServer) + R"(
[[servers.web.filters]]
name = "api_key"
status = 200
header = 5
colour = "red"
[[servers.web.filters]]
name = "nope"
[[servers.web.filters]]
id = "x"
[[servers.web.filters]]
name = "tag"
id = "a/b"
[[servers.web.filters]]
name = "api_key"
keys = ["ok", 7]
)" + kRoute);
  EXPECT_NE(message.find("f.toml: servers.web.filters[0].keys: missing (required)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.filters[0].status: must be at least 400, got 200"),
            std::string::npos)
      << message;
  EXPECT_NE(
      message.find("f.toml: servers.web.filters[0].header: expected a string, got an integer"),
      std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.filters[0].colour: unknown key (expected one of: "
                         "name, id, keys, header, status, log, add)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.filters[1].name: unknown filter 'nope' (expected "
                         "one of: api_key, tag)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.filters[2].name: missing"), std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.filters[3].id: an id is non-empty"),
            std::string::npos)
      << message;
  EXPECT_NE(
      message.find("f.toml: servers.web.filters[4].keys[1]: expected a string, got an integer"),
      std::string::npos)
      << message;
}

TEST(FiltersConfig, NoCatalogMeansNoFilterIsKnown) {
  Result<Config> config = parse_config(std::string(kServer) + R"(
filters = [{ name = "api_key", keys = ["k"] }]
)" + kRoute,
                                       "f.toml", "/etc");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message().find("unknown filter 'api_key' (none are registered)"),
            std::string::npos)
      << config.error().message();
}

TEST(FiltersConfig, OnlyHttpServersAndRoutesHaveFilters) {
  const std::string message = error_of(R"(
[servers.t]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:8080" }
filters = [{ name = "tag" }]
[[servers.t.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
filters = [{ name = "tag" }]
)");
  EXPECT_NE(message.find("f.toml: servers.t.filters: only http servers have request filters"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.t.routes[0].filters: only http routes have request "
                         "filters"),
            std::string::npos)
      << message;
}

TEST(ConnectionFiltersConfig, AnyServerKindListsThemWithTheirOwnNames) {
  Result<Config> config = parse(R"(
[servers.t]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:8080" }
[[servers.t.connection_filters]]
name = "client_limit"
[[servers.t.connection_filters]]
name = "client_limit"
id = "strict"
max = 2
[[servers.t.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:9000" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& t = config->servers[0];
  ASSERT_EQ(t.connection_filters.size(), 2u);
  EXPECT_EQ(t.connection_filters[0].params.integer("max"), 16);  // default
  EXPECT_EQ(t.connection_filters[1].id, "strict");
  EXPECT_EQ(t.connection_filters[1].params.integer("max"), 2);
}

TEST(ConnectionFiltersConfig, ProblemsNameTheirKeyPath) {
  const std::string message = error_of(std::string(kServer) + R"(
connection_filters = [{ name = "api_key" }, { name = "client_limit", max = 0 }, { max = 1 },
                      { name = "client_limit", colour = "red" }]
)" + kRoute);
  // A request filter's name is not a connection filter's.
  EXPECT_NE(message.find("f.toml: servers.web.connection_filters[0].name: unknown connection "
                         "filter 'api_key' (expected one of: client_limit)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.connection_filters[1].max: must be at least 1, "
                         "got 0"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.connection_filters[2].name: missing (required: "
                         "the connection filter's registered name)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.web.connection_filters[3].colour: unknown key"),
            std::string::npos)
      << message;
}

TEST(FiltersConfig, DuplicateExplicitIdsAreRefused) {
  const std::string message = error_of(std::string(kServer) + R"(
filters = [{ name = "tag", id = "t" }, { name = "tag", id = "t" }]
)" + kRoute);
  EXPECT_NE(message.find("f.toml: servers.web.filters[1].id: duplicate id 't' (also "
                         "servers.web.filters[0])"),
            std::string::npos)
      << message;
}

TEST(ServerKindConfig, RegisteredKindTakesCommonKeysAndItsOwn) {
  Result<Config> config = parse(R"(
[servers.lines]
proxy_type = "line"
listener = { type = "socket", value = "127.0.0.1:7000" }
max_line = 100
[[servers.lines.routes]]
path = "GET"
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:7001" } }]
[[servers.lines.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:7002" } }]
)");
  ASSERT_TRUE(config) << config.error().message();
  const ServerConfig& s = config->servers.at(0);
  EXPECT_EQ(s.proxy_type, ProxyType::kCustom);
  EXPECT_EQ(s.kind, "line");
  EXPECT_EQ(s.kind_params.integer("max_line"), 100);
  ASSERT_EQ(s.routes.size(), 2u);
  EXPECT_EQ(s.routes[0].path, "GET");  // the kind's own routing key, as written
  EXPECT_EQ(s.routes[1].path, "");
}

TEST(ServerKindConfig, KindKeysAreCheckedAndHttpKeysAreUnknown) {
  const std::string message = error_of(R"(
[servers.lines]
proxy_type = "line"
listener = { type = "socket", value = "127.0.0.1:7000" }
max_line = 1
trusted_proxies = ["10.0.0.0/8"]
[[servers.lines.routes]]
upstreams = [{ endpoint = { type = "uri", value = "http://a:1" } }]
)");
  EXPECT_NE(message.find("f.toml: servers.lines.max_line: must be at least 16, got 1"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("f.toml: servers.lines.trusted_proxies: unknown key"), std::string::npos)
      << message;
  EXPECT_NE(message.find("servers.lines.routes[0].upstreams[0].endpoint.type: a custom server's "
                         "upstream is a \"socket\" or \"unix\" endpoint"),
            std::string::npos)
      << message;
}

TEST(ServerKindConfig, UnknownKindListsTheRegisteredOnes) {
  const std::string message = error_of(R"(
[servers.x]
proxy_type = "redis"
listener = { type = "socket", value = "127.0.0.1:7000" }
[[servers.x.routes]]
upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:7001" } }]
)");
  EXPECT_NE(message.find("f.toml: servers.x.proxy_type: unknown proxy type 'redis': expected one "
                         "of \"http\", \"tcp\", \"thrift\", \"line\""),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace monolake::proxy::config
