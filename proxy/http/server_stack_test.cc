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

Built build(const config::ServerConfig& s, const Built* previous = nullptr,
            const FilterLayerMaker& filters = nullptr) {
  Built out;
  HttpStack stack = http_server_stack(s, {}, filters).value();
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

// A filter of the kind users write: counts requests per worker (carried to its next
// generation), adds a response header saying how many it has seen and which route the request
// matched (read from the request's context, written by the route table inside it).
class Tag final : public Layer<monolake::http::Request, monolake::http::Response> {
 public:
  Tag(std::string value, std::shared_ptr<uint64_t> seen, std::shared_ptr<HttpService> inner)
      : Layer(std::move(inner)), value_(std::move(value)), seen_(std::move(seen)) {}
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override {
    ++*seen_;
    monolake::http::RequestContext* context = request.context;
    Result<monolake::http::Response> response = co_await inner_->call(std::move(request));
    if (response) {
      response->head.headers.set("x-tag", value_ + " " + std::to_string(*seen_) + " " +
                                              (context ? context->route : "no-context"));
    }
    co_return response;
  }
  const std::shared_ptr<uint64_t>& seen() const { return seen_; }

 private:
  std::string value_;
  std::shared_ptr<uint64_t> seen_;
};

class TagFactory final : public FactoryLayer<Tag> {
 public:
  explicit TagFactory(std::string value) : value_(std::move(value)) {}
  Result<std::shared_ptr<Tag>> make_via_ref(const Tag* previous, std::shared_ptr<HttpService> inner,
                                            const Build&) const override {
    auto seen = previous ? previous->seen() : std::make_shared<uint64_t>(0);
    return std::make_shared<Tag>(value_, std::move(seen), std::move(inner));
  }

 private:
  std::string value_;
};

config::FilterConfig tag_filter(const std::string& value, const std::string& id = "") {
  config::FilterConfig f;
  f.name = "tag";
  f.id = id;
  f.params.set("value", value);
  return f;
}

FilterLayerMaker tag_maker() {
  return [](const config::FilterConfig& f, const std::string&,
            const std::string&) -> Result<std::shared_ptr<const HttpStack::Layer>> {
    return std::make_shared<TagFactory>(f.params.string("value"));
  };
}

config::RouteConfig direct(const std::string& path) {
  config::RouteConfig r;
  r.path = path;
  r.direct = config::DirectResponse{};
  return r;
}

std::string tag_of(runtime::Runtime& rt, const Built& b, const std::string& target) {
  monolake::http::Request request;
  request.head.method = "GET";
  request.head.target = target;
  request.head.headers.set("Host", "example.com");
  monolake::http::ConnectionInfo connection;
  request.connection = &connection;
  auto response = rt.block_on(b.chain->call(std::move(request)));
  if (!response) return "error: " + response.error().to_string();
  return std::string(response->head.headers.get("x-tag").value_or("none"));
}

TEST_F(ServerStackTest, FiltersRunInOrderWithIdentitiesOfTheirOwnAndKeepStateOverABuild) {
  config::ServerConfig s = server({direct("/a")});
  s.filters = {tag_filter("server")};
  s.routes[0].filters = {tag_filter("route", "r1")};
  Built first = build(s, nullptr, tag_maker());
  ASSERT_NE(first.chain, nullptr);
  EXPECT_NE(first.generation->find<Tag>("servers.web/filter:tag"), nullptr);
  EXPECT_NE(first.generation->find<Tag>("servers.web/routes/route[ /a]/filter[r1]"), nullptr);
  // The server filter is outside the route table, so it sets its header last: it wins.
  EXPECT_EQ(tag_of(*rt_, first, "/a"), "server 1  /a");
  EXPECT_EQ(tag_of(*rt_, first, "/a"), "server 2  /a");
  // A second build (a reload) that adds a route: both filters keep their identities, so their
  // counts go on; the new route's requests pass the same server filter.
  config::ServerConfig more = s;
  more.routes.push_back(direct("/b"));
  Built second = build(more, &first, tag_maker());
  EXPECT_EQ(tag_of(*rt_, second, "/a"), "server 3  /a");
  EXPECT_EQ(tag_of(*rt_, second, "/b"), "server 4  /b");
  EXPECT_EQ(second.generation->find<Tag>("servers.web/routes/route[ /a]/filter[r1]")->seen(),
            first.generation->find<Tag>("servers.web/routes/route[ /a]/filter[r1]")->seen());
}

TEST_F(ServerStackTest, AFilterThatCannotBeMadeFailsTheStack) {
  config::ServerConfig s = server({direct("/a")});
  s.filters = {tag_filter("x")};
  FilterLayerMaker failing =
      [](const config::FilterConfig&, const std::string&,
         const std::string& key_path) -> Result<std::shared_ptr<const HttpStack::Layer>> {
    return Error(ErrorCode::kInvalidArgument, key_path + ": no");
  };
  Result<HttpStack> stack = http_server_stack(s, {}, failing);
  ASSERT_FALSE(stack);
  EXPECT_EQ(stack.error().message(), "servers.web.filters[0]: no");
}

}  // namespace
}  // namespace monolake::proxy::http
