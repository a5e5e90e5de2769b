#include "proxy/http/server_stack.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "proxy/http/access_log.h"
#include "proxy/http/forward.h"
#include "runtime/runtime.h"

namespace monolake::proxy::http {
namespace {

config::RouteConfig route(const std::string& path, const std::string& upstream) {
  config::RouteConfig r;
  r.path = path;
  config::Upstream u;
  u.endpoint.address = transport::SocketAddress::parse(upstream).value();
  r.upstreams.push_back(u);
  return r;
}

config::ServerConfig server(std::vector<config::RouteConfig> routes,
                            const std::string& name = "web") {
  config::ServerConfig s;
  s.key = name;
  s.name = name;
  s.routes = std::move(routes);
  return s;
}

struct Built {
  std::shared_ptr<HttpService> chain;
  std::unique_ptr<Generation> generation = std::make_unique<Generation>();
};

Built build(const config::ServerConfig& s, const Built* previous = nullptr) {
  Built out;
  HttpStack stack = http_server_stack(s, {}).value();
  auto chain = stack.make(
      Build(previous ? previous->generation.get() : nullptr, *out.generation, "servers." + s.key));
  EXPECT_TRUE(chain.has_value()) << chain.error().to_string();
  if (chain) out.chain = *chain;
  return out;
}

std::shared_ptr<HttpForward> forward_of(const Built& b, const std::string& path) {
  return b.generation->find<HttpForward>("servers.web/routes/route[ " + path + "]/forward");
}

class ServerStackTest : public ::testing::Test {
 protected:
  // Layers are built on a worker's thread, which has a runtime: build them on one here too.
  std::unique_ptr<runtime::Runtime> rt_ = std::move(*runtime::Runtime::create({}));
};

TEST_F(ServerStackTest, EveryLayerHasItsIdentity) {
  Built b = build(server({route("/a", "127.0.0.1:1"), route("/b", "127.0.0.1:2")}));
  ASSERT_NE(b.chain, nullptr);
  EXPECT_NE(b.generation->find<AccessLog>("servers.web/access_log"), nullptr);
  EXPECT_NE(b.generation->find<RouteTable>("servers.web/routes"), nullptr);
  EXPECT_NE(forward_of(b, "/a"), nullptr);
  EXPECT_NE(forward_of(b, "/b"), nullptr);
}

// A route inserted before another does not hand that route's upstream state to the new one:
// state follows the route's identity (host and path), not its position.
TEST_F(ServerStackTest, ARouteKeepsItsStateWhenRoutesAreInsertedAroundIt) {
  Built first = build(server({route("/a", "127.0.0.1:1")}));
  const std::shared_ptr<UpstreamSet> a_set = forward_of(first, "/a")->upstreams();
  Built second = build(server({route("/new", "127.0.0.1:1"), route("/a", "127.0.0.1:1")}), &first);
  EXPECT_EQ(forward_of(second, "/a")->upstreams(), a_set);
  EXPECT_NE(forward_of(second, "/new")->upstreams(), a_set);
  // Changed upstreams: a fresh set.
  Built third = build(server({route("/a", "127.0.0.1:3")}), &second);
  EXPECT_NE(forward_of(third, "/a")->upstreams(), a_set);
}

// Two routes with one host and path (the first one matches) are still two layers with
// identities of their own, so such a configuration builds as it did before stacks.
TEST_F(ServerStackTest, RoutesWithTheSameHostAndPathKeepIdentitiesOfTheirOwn) {
  Built b = build(server({route("/a", "127.0.0.1:1"), route("/a", "127.0.0.1:2")}));
  ASSERT_NE(b.chain, nullptr);
  EXPECT_NE(forward_of(b, "/a"), nullptr);
  EXPECT_NE(b.generation->find<HttpForward>("servers.web/routes/route[ /a]#2/forward"), nullptr);
}

TEST_F(ServerStackTest, CountersAndPoolCarryOverWhileTheServerKeepsItsName) {
  Built first = build(server({route("/a", "127.0.0.1:1")}));
  Built second = build(server({route("/a", "127.0.0.1:1"), route("/b", "127.0.0.1:2")}), &first);
  // What each generation holds, read as the next build would.
  Generation after_first, after_second, renamed;
  const Build from_first(first.generation.get(), after_first, "servers.web");
  const Build from_second(second.generation.get(), after_second, "servers.web");
  EXPECT_EQ(http_server_stats(from_first, "web"), http_server_stats(from_second, "web"));
  EXPECT_EQ(http_connection_pool(from_first, 64), http_connection_pool(from_second, 64));
  // A renamed server counts afresh.
  EXPECT_NE(http_server_stats(Build(second.generation.get(), renamed, "servers.web"), "web2"),
            http_server_stats(from_second, "web"));
}

}  // namespace
}  // namespace monolake::proxy::http
