#include "proxy/framework/registry.h"

#include <gtest/gtest.h>

namespace monolake::proxy::framework {
namespace {

Result<std::shared_ptr<const HttpLayerFactory>> no_filter(const FilterParams&) {
  return Error(ErrorCode::kUnsupported, "not built in this test");
}
Result<std::shared_ptr<const ConnectionLayerFactory>> no_kind(const ServerKindParams&) {
  return Error(ErrorCode::kUnsupported, "not built in this test");
}

TEST(Registry, RegisteredNamesReachTheCatalogWithTheirSchemas) {
  Registry registry;
  ParamSchema schema;
  schema.string("header").default_value("x-api-key");
  ASSERT_TRUE(registry.add_http_filter("api_key", schema, no_filter));
  ASSERT_TRUE(registry.add_server_kind("line", ParamSchema(), no_kind));
  ASSERT_NE(registry.catalog().filter("api_key"), nullptr);
  EXPECT_NE(registry.catalog().filter("api_key")->find("header"), nullptr);
  EXPECT_NE(registry.catalog().server_kind("line"), nullptr);
  EXPECT_NE(registry.http_filter("api_key"), nullptr);
  EXPECT_EQ(registry.http_filter("line"), nullptr);
  EXPECT_NE(registry.server_kind("line"), nullptr);
}

TEST(Registry, ConnectionFiltersHaveNamesOfTheirOwn) {
  Registry registry;
  ASSERT_TRUE(registry.add_http_filter("limit", ParamSchema(), no_filter));
  const ConnectionFilterMaker no_connection_filter = [](const ConnectionFilterParams&)
      -> Result<std::shared_ptr<const connection::ConnectionFilterFactory>> { return nullptr; };
  // The same name as a request filter is allowed: the two lists are apart.
  ASSERT_TRUE(registry.add_connection_filter("limit", ParamSchema(), no_connection_filter));
  EXPECT_NE(registry.connection_filter("limit"), nullptr);
  EXPECT_NE(registry.catalog().connection_filter("limit"), nullptr);
  EXPECT_EQ(registry.connection_filter("api_key"), nullptr);
  auto again = registry.add_connection_filter("limit", ParamSchema(), no_connection_filter);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), "connection filter 'limit' is registered already");
  EXPECT_FALSE(registry.add_connection_filter("Bad", ParamSchema(), no_connection_filter));
  EXPECT_FALSE(registry.add_connection_filter("none", ParamSchema(), nullptr));
}

TEST(Registry, RefusesBadNamesDuplicatesBuiltinKindsAndBadSchemas) {
  Registry registry;
  ASSERT_TRUE(registry.add_http_filter("tag", ParamSchema(), no_filter));
  auto again = registry.add_http_filter("tag", ParamSchema(), no_filter);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), "filter 'tag' is registered already");
  auto upper = registry.add_http_filter("Tag", ParamSchema(), no_filter);
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message().find("lower-case"), std::string::npos);
  auto builtin = registry.add_server_kind("http", ParamSchema(), no_kind);
  ASSERT_FALSE(builtin);
  EXPECT_EQ(builtin.error().message(), "server kind 'http' is built in; choose another name");
  ParamSchema bad;
  bad.integer("n").default_value("x");
  auto schema = registry.add_http_filter("n", bad, no_filter);
  ASSERT_FALSE(schema);
  EXPECT_EQ(schema.error().message(),
            "filter 'n': its schema: key 'n': the default is not an integer");
  EXPECT_FALSE(registry.add_http_filter("empty", ParamSchema(), nullptr));
  EXPECT_EQ(registry.catalog().filter("n"), nullptr);  // nothing half-registered
}

}  // namespace
}  // namespace monolake::proxy::framework
