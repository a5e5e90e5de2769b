#include "proxy/http/rate_limit.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "proxy/http/server_stack.h"
#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::proxy::http {
namespace {

namespace mh = monolake::http;
using std::chrono::milliseconds;

const TokenBucket::Clock::time_point kStart{std::chrono::seconds(1000)};

TEST(BucketTable, KeepsAtMostMaxKeysAndForgetsTheLeastRecentlyUsed) {
  const TokenRate rate{1, 1};
  BucketTable table(2);
  ASSERT_TRUE(table.bucket("a", rate, kStart).try_take(rate, kStart));
  ASSERT_TRUE(table.bucket("b", rate, kStart).try_take(rate, kStart));
  EXPECT_FALSE(table.bucket("a", rate, kStart).try_take(rate, kStart));  // a: used, now recent
  ASSERT_TRUE(table.bucket("c", rate, kStart).try_take(rate, kStart));   // b is forgotten
  EXPECT_EQ(table.size(), 2u);
  EXPECT_FALSE(table.bucket("a", rate, kStart).try_take(rate, kStart));  // a was remembered
  EXPECT_TRUE(table.bucket("b", rate, kStart).try_take(rate, kStart));   // b starts full again
  EXPECT_EQ(table.size(), 2u);
}

TEST(BucketTable, ASmallerBoundForgetsAtOnce) {
  const TokenRate rate{1, 1};
  BucketTable table(10);
  for (const char* key : {"a", "b", "c", "d"}) table.bucket(key, rate, kStart);
  table.set_max_keys(2);
  EXPECT_EQ(table.size(), 2u);
}

TEST(RateLimitFactory, SplitsTheRateOverTheWorkersAndNeverBelowOneRequest) {
  RateLimitParams params;
  params.requests_per_sec = 100;
  params.burst = 10;
  TokenRate one = RateLimitFactory::worker_rate(params, 1);
  EXPECT_DOUBLE_EQ(one.per_sec, 100);
  EXPECT_DOUBLE_EQ(one.burst, 10);
  TokenRate four = RateLimitFactory::worker_rate(params, 4);
  EXPECT_DOUBLE_EQ(four.per_sec, 25);
  EXPECT_DOUBLE_EQ(four.burst, 2.5);
  params.burst = 2;
  EXPECT_DOUBLE_EQ(RateLimitFactory::worker_rate(params, 4).burst, 1);
}

class RateLimitTest : public ::testing::Test {
 protected:
  // A server with one route answering 200 by itself, behind `limit`.
  void build(const RateLimitParams& limit) {
    config::ServerConfig s;
    s.key = s.name = "web";
    config::RouteConfig r;
    r.path = "/";
    r.direct = config::DirectResponse{};
    r.rate_limit = limit;
    s.routes.push_back(r);
    HttpStack stack = http_server_stack(s, {}).value();
    auto next = std::make_unique<Generation>();
    auto chain = stack.make(Build(generation_.get(), *next, "servers.web"));
    ASSERT_TRUE(chain.has_value()) << chain.error().to_string();
    chain_ = *chain;
    generation_ = std::move(next);
  }

  // The status of a request from `client`, with `header` set to `value` when given.
  int status(const std::string& client, const std::string& header = "",
             const std::string& value = "", std::string* retry_after = nullptr) {
    mh::Request request;
    request.head.method = "GET";
    request.head.target = "/";
    request.head.headers.set("Host", "example.com");
    if (!header.empty()) request.head.headers.set(header, value);
    mh::ConnectionInfo connection;
    connection.client_ip = client;
    request.connection = &connection;
    auto response = rt_->block_on(chain_->call(std::move(request)));
    if (!response) return -1;
    if (retry_after)
      *retry_after = std::string(response->head.headers.get("retry-after").value_or(""));
    return response->head.status;
  }

  std::unique_ptr<runtime::Runtime> rt_ = std::move(*runtime::Runtime::create({}));
  std::unique_ptr<Generation> generation_;
  std::shared_ptr<HttpService> chain_;
};

runtime::Task<void> pause(milliseconds d) { (void)co_await runtime::sleep(d); }

RateLimitParams limit(double per_sec, double burst, RateLimitParams::Key key) {
  RateLimitParams p;
  p.requests_per_sec = per_sec;
  p.burst = burst;
  p.key = key;
  return p;
}

TEST_F(RateLimitTest, OverTheBurstIs429WithRetryAfterPerClient) {
  build(limit(0.5, 2, RateLimitParams::Key::kSourceIp));  // a token every 2 s
  EXPECT_EQ(status("10.0.0.1"), 200);
  EXPECT_EQ(status("10.0.0.1"), 200);
  std::string retry_after;
  EXPECT_EQ(status("10.0.0.1", "", "", &retry_after), 429);
  EXPECT_EQ(retry_after, "2");
  EXPECT_EQ(status("10.0.0.2"), 200);  // another client has its own bucket
}

TEST_F(RateLimitTest, TheRouteKeySharesOneBucketAndTokensComeBackWithTime) {
  build(limit(10, 1, RateLimitParams::Key::kRoute));  // a token every 100 ms
  EXPECT_EQ(status("10.0.0.1"), 200);
  EXPECT_EQ(status("10.0.0.2"), 429);
  rt_->block_on(pause(milliseconds(250)));
  EXPECT_EQ(status("10.0.0.2"), 200);
}

TEST_F(RateLimitTest, AHeaderKeyCountsEachValueAndRequestsWithoutItTogether) {
  RateLimitParams p = limit(0.1, 1, RateLimitParams::Key::kHeader);
  p.header = "x-api-key";
  build(p);
  EXPECT_EQ(status("10.0.0.1", "X-Api-Key", "alice"), 200);
  EXPECT_EQ(status("10.0.0.1", "X-Api-Key", "alice"), 429);
  EXPECT_EQ(status("10.0.0.1", "X-Api-Key", "bob"), 200);
  EXPECT_EQ(status("10.0.0.1"), 200);
  EXPECT_EQ(status("10.0.0.2"), 429);  // no header: the same bucket as the request before
}

TEST_F(RateLimitTest, AReloadKeepsTheBucketsUnlessTheKeyChanges) {
  build(limit(0.1, 1, RateLimitParams::Key::kSourceIp));
  EXPECT_EQ(status("10.0.0.1"), 200);
  build(limit(0.1, 1, RateLimitParams::Key::kSourceIp));
  EXPECT_EQ(status("10.0.0.1"), 429);  // a reload is no way to refill a bucket
  RateLimitParams by_header = limit(0.1, 1, RateLimitParams::Key::kHeader);
  by_header.header = "x-api-key";
  build(by_header);
  EXPECT_EQ(status("10.0.0.1", "x-api-key", "k"), 200);
}

}  // namespace
}  // namespace monolake::proxy::http
