#include "examples/http_filter/api_key.h"

#include <gtest/gtest.h>

#include "runtime/runtime.h"

namespace example {
namespace {

using monolake::proxy::Generation;

// The upstream side: answers 200 and says whether it saw the key header.
class Echo final : public monolake::proxy::Service<mh::Request, mh::Response> {
 public:
  monolake::runtime::Task<Result<mh::Response>> call(mh::Request request) override {
    co_return mh::text_response(200, request.head.headers.has("x-api-key") ? "saw key" : "clean");
  }
};

class ApiKeyTest : public ::testing::Test {
 protected:
  std::shared_ptr<framework::HttpLayerFactory::ServiceType> build(const Generation* previous,
                                                                  Generation& next) {
    monolake::proxy::Params p;
    p.set("keys", std::vector<std::string>{"k1", "k2"});
    p.set("header", std::string("x-api-key"));
    p.set("stamp", std::string("x-count"));
    const std::string server = "web", route;
    auto factory = make_api_key(framework::FilterParams{p, server, route});
    EXPECT_TRUE(factory) << factory.error().to_string();
    auto chain = (*factory)->make(std::make_shared<Echo>(), Build(previous, next, "filter"));
    EXPECT_TRUE(chain) << chain.error().to_string();
    return *chain;
  }

  std::pair<int, std::string> get(framework::HttpLayerFactory::ServiceType& chain,
                                  const char* key) {
    mh::Request request;
    request.head.method = "GET";
    request.head.target = "/";
    if (key) request.head.headers.set("x-api-key", key);
    mh::RequestContext context;
    request.context = &context;
    auto response = rt_->block_on(chain.call(std::move(request)));
    if (!response) return {0, response.error().to_string()};
    log_ = context.log_fields.empty() ? "" : context.log_fields[0].second;
    return {response->head.status,
            std::string(response->head.headers.get("x-count").value_or("-"))};
  }

  std::unique_ptr<monolake::runtime::Runtime> rt_ =
      std::move(*monolake::runtime::Runtime::create({}));
  std::string log_;
};

TEST_F(ApiKeyTest, RefusesMissingAndUnknownKeysAndStripsGoodOnes) {
  Generation g;
  auto chain = build(nullptr, g);
  EXPECT_EQ(get(*chain, nullptr), (std::pair<int, std::string>{401, "-"}));
  EXPECT_EQ(log_, "missing");
  EXPECT_EQ(get(*chain, "nope"), (std::pair<int, std::string>{401, "-"}));
  EXPECT_EQ(log_, "unknown");
  EXPECT_EQ(get(*chain, "k2"), (std::pair<int, std::string>{200, "1"}));
  EXPECT_EQ(log_, "ok");
}

TEST_F(ApiKeyTest, TheCountGoesOnInTheNextGeneration) {
  Generation first;
  auto one = build(nullptr, first);
  (void)get(*one, "k1");
  (void)get(*one, "k1");
  Generation second;
  auto two = build(&first, second);
  EXPECT_EQ(get(*two, "k1").second, "3");
  Generation fresh;
  auto three = build(nullptr, fresh);  // no previous generation: a new count
  EXPECT_EQ(get(*three, "k1").second, "1");
}

TEST(ApiKeyParamsTest, AnEmptyKeyListIsRefused) {
  monolake::proxy::Params p;
  p.set("keys", std::vector<std::string>{});
  p.set("header", std::string("x-api-key"));
  const std::string server = "web", route;
  auto made = make_api_key(framework::FilterParams{p, server, route});
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().message(), "keys: an empty list would refuse every request");
}

}  // namespace
}  // namespace example
