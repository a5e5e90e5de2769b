#include "proxy/http/router.h"

#include <gtest/gtest.h>

namespace monolake::proxy::http {
namespace {

std::optional<size_t> route(const Router& r, std::string_view host, std::string_view path) {
  return r.find(host, path);
}

TEST(PathPatternTest, StaticParamAndCatchAll) {
  auto root = PathPattern::parse("/").value();
  EXPECT_TRUE(root.match("/"));
  EXPECT_FALSE(root.match("/a"));
  auto user = PathPattern::parse("/u/{id}").value();
  EXPECT_TRUE(user.match("/u/42"));
  EXPECT_FALSE(user.match("/u/"));      // a parameter is never empty
  EXPECT_FALSE(user.match("/u/42/x"));  // one segment only
  EXPECT_FALSE(user.match("/u"));
  auto img = PathPattern::parse("/img/{name}.png").value();
  EXPECT_TRUE(img.match("/img/cat.png"));
  EXPECT_FALSE(img.match("/img/.png"));
  EXPECT_FALSE(img.match("/img/cat.gif"));
  auto rest = PathPattern::parse("/static/{*rest}").value();
  EXPECT_TRUE(rest.match("/static/a"));
  EXPECT_TRUE(rest.match("/static/a/b/c"));
  EXPECT_FALSE(rest.match("/static/"));
  EXPECT_FALSE(rest.match("/static"));
  auto all = PathPattern::parse("/{*rest}").value();
  EXPECT_TRUE(all.match("/x"));
  EXPECT_FALSE(all.match("/"));
  auto trailing = PathPattern::parse("/a/").value();
  EXPECT_TRUE(trailing.match("/a/"));
  EXPECT_FALSE(trailing.match("/a"));
}

TEST(PathPatternTest, BadPatterns) {
  EXPECT_FALSE(PathPattern::parse(""));
  EXPECT_FALSE(PathPattern::parse("a"));
  EXPECT_FALSE(PathPattern::parse("/{*rest}/x"));
  EXPECT_FALSE(PathPattern::parse("/{id"));
}

TEST(RouterTest, MostSpecificPathWins) {
  Router r;
  ASSERT_TRUE(r.add("", "/{*rest}"));
  ASSERT_TRUE(r.add("", "/u/{id}"));
  ASSERT_TRUE(r.add("", "/u/me"));
  ASSERT_TRUE(r.add("", "/"));
  EXPECT_EQ(route(r, "h", "/u/me"), 2u);
  EXPECT_EQ(route(r, "h", "/u/7"), 1u);
  EXPECT_EQ(route(r, "h", "/x/y"), 0u);
  EXPECT_EQ(route(r, "h", "/"), 3u);
}

TEST(RouterTest, HostsExactThenWildcardThenAny) {
  Router r;
  ASSERT_TRUE(r.add("", "/{*rest}"));
  ASSERT_TRUE(r.add("*.example.com", "/{*rest}"));
  ASSERT_TRUE(r.add("*.api.example.com", "/{*rest}"));
  ASSERT_TRUE(r.add("www.example.com", "/{*rest}"));
  EXPECT_EQ(route(r, "www.example.com", "/a"), 3u);
  EXPECT_EQ(route(r, "WWW.Example.COM:8080", "/a"), 3u);
  EXPECT_EQ(route(r, "v1.api.example.com", "/a"), 2u);  // the longer suffix
  EXPECT_EQ(route(r, "x.example.com", "/a"), 1u);
  EXPECT_EQ(route(r, "example.com", "/a"), 0u);  // "*.example.com" needs a subdomain
  EXPECT_EQ(route(r, "other.org", "/a"), 0u);
  // A host group without a matching path falls back to the next group.
  Router s;
  ASSERT_TRUE(s.add("a.test", "/only"));
  ASSERT_TRUE(s.add("", "/{*rest}"));
  EXPECT_EQ(route(s, "a.test", "/only"), 0u);
  EXPECT_EQ(route(s, "a.test", "/other"), 1u);
  Router none;
  ASSERT_TRUE(none.add("a.test", "/"));
  EXPECT_FALSE(route(none, "b.test", "/"));
}

}  // namespace
}  // namespace monolake::proxy::http
