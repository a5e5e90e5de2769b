#include "proxy/upstream/balancer.h"

#include <gtest/gtest.h>

#include <map>

namespace monolake::proxy {
namespace {

using namespace std::chrono_literals;

std::vector<Upstream> three(uint32_t w0 = 1, uint32_t w1 = 1, uint32_t w2 = 1) {
  return {{*transport::SocketAddress::parse("127.0.0.1:1001"), w0},
          {*transport::SocketAddress::parse("127.0.0.1:1002"), w1},
          {*transport::SocketAddress::parse("127.0.0.1:1003"), w2}};
}

const runtime::TimePoint kNow = runtime::Clock::now();

std::map<size_t, int> histogram(UpstreamSet& set, int picks, runtime::TimePoint now = kNow) {
  std::map<size_t, int> h;
  for (int i = 0; i < picks; ++i) ++h[set.pick(now)];
  return h;
}

TEST(BalancerTest, ParsesNamesAndMonolakeAliases) {
  EXPECT_EQ(*parse_balancer("round_robin"), Balancer::kRoundRobin);
  EXPECT_EQ(*parse_balancer("RoundRobin"), Balancer::kRoundRobin);
  EXPECT_EQ(*parse_balancer("Random"), Balancer::kRandom);
  EXPECT_EQ(*parse_balancer("WeightedRandom"), Balancer::kWeightedRandom);
  EXPECT_EQ(*parse_balancer("First"), Balancer::kFirst);
  EXPECT_EQ(*parse_balancer("least_request"), Balancer::kLeastRequest);
  Result<Balancer> bad = parse_balancer("fastest");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("'fastest'"), std::string::npos);
  EXPECT_NE(bad.error().message().find("round_robin"), std::string::npos);
}

TEST(BalancerTest, RoundRobinCycles) {
  UpstreamSet set(three(), Balancer::kRoundRobin);
  std::vector<size_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(set.pick(kNow));
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(BalancerTest, FirstPrefersTheFirstHealthy) {
  UpstreamSet set(three(), Balancer::kFirst);
  EXPECT_EQ(set.pick(kNow), 0u);
  set.report_failure(0, kNow);
  EXPECT_EQ(set.pick(kNow), 1u);
  set.report_success(0);
  EXPECT_EQ(set.pick(kNow), 0u);
}

TEST(BalancerTest, RandomSpreadsEvenly) {
  UpstreamSet set(three(), Balancer::kRandom, UpstreamSet::kDefaultBackoff, 42);
  auto h = histogram(set, 30000);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(h[i], 10000, 800) << i;
}

TEST(BalancerTest, WeightedRandomFollowsWeights) {
  UpstreamSet set(three(1, 2, 7), Balancer::kWeightedRandom, UpstreamSet::kDefaultBackoff, 7);
  auto h = histogram(set, 50000);
  EXPECT_NEAR(h[0], 5000, 700);
  EXPECT_NEAR(h[1], 10000, 900);
  EXPECT_NEAR(h[2], 35000, 1200);
}

TEST(BalancerTest, LeastRequestPicksTheIdlest) {
  UpstreamSet set(three(), Balancer::kLeastRequest);
  set.begin(0);
  set.begin(0);
  set.begin(1);
  EXPECT_EQ(set.pick(kNow), 2u);
  set.begin(2);
  set.begin(2);
  EXPECT_EQ(set.pick(kNow), 1u);
  set.end(0);
  set.end(0);
  EXPECT_EQ(set.pick(kNow), 0u);
}

TEST(BalancerTest, FailedUpstreamIsSkippedForTheBackoff) {
  for (Balancer b : {Balancer::kRoundRobin, Balancer::kRandom, Balancer::kWeightedRandom,
                     Balancer::kFirst, Balancer::kLeastRequest}) {
    SCOPED_TRACE(std::string(balancer_name(b)));
    UpstreamSet set(three(), b, 1s, 3);
    set.report_failure(1, kNow);
    EXPECT_TRUE(set.backing_off(1, kNow));
    auto during = histogram(set, 300, kNow + 500ms);
    EXPECT_EQ(during.count(1), 0u);
    // After the back-off it is used again.
    EXPECT_FALSE(set.backing_off(1, kNow + 1s));
    auto after = histogram(set, 300, kNow + 1s);
    if (b != Balancer::kFirst) {
      EXPECT_GT(after[1], 0);
    }
  }
}

TEST(BalancerTest, BackoffGrowsAndIsCapped) {
  UpstreamSet set(three(), Balancer::kRoundRobin, 1s);
  set.report_failure(0, kNow);
  EXPECT_TRUE(set.backing_off(0, kNow + 999ms));
  EXPECT_FALSE(set.backing_off(0, kNow + 1s));
  set.report_failure(0, kNow);
  EXPECT_TRUE(set.backing_off(0, kNow + 1999ms));
  for (int i = 0; i < 10; ++i) set.report_failure(0, kNow);
  EXPECT_TRUE(set.backing_off(0, kNow + 7999ms));
  EXPECT_FALSE(set.backing_off(0, kNow + 8s));  // capped at 8x
  set.report_success(0);
  EXPECT_FALSE(set.backing_off(0, kNow));
}

TEST(BalancerTest, AllBackingOffStillPicksTheSoonest) {
  UpstreamSet set(three(), Balancer::kRoundRobin, 1s);
  set.report_failure(0, kNow + 300ms);
  set.report_failure(1, kNow + 100ms);
  set.report_failure(2, kNow + 200ms);
  EXPECT_EQ(set.pick(kNow + 150ms), 1u);
}

TEST(BalancerTest, SameAsComparesUpstreamsAndBalancer) {
  UpstreamSet set(three(), Balancer::kRoundRobin);
  EXPECT_TRUE(set.same_as(three(), Balancer::kRoundRobin));
  EXPECT_FALSE(set.same_as(three(), Balancer::kRandom));
  EXPECT_FALSE(set.same_as(three(1, 2, 1), Balancer::kRoundRobin));
  auto two = three();
  two.pop_back();
  EXPECT_FALSE(set.same_as(two, Balancer::kRoundRobin));
}

class HashingBalancerTest : public ::testing::TestWithParam<Balancer> {};
INSTANTIATE_TEST_SUITE_P(RingAndMaglev, HashingBalancerTest,
                         ::testing::Values(Balancer::kRingHash, Balancer::kMaglev),
                         [](const auto& info) { return std::string(balancer_name(info.param)); });

TEST_P(HashingBalancerTest, AKeyStaysOnItsUpstreamInEverySet) {
  // Two sets stand for two workers (or two instances): they must agree on every key.
  UpstreamSet worker_a(three(), GetParam());
  UpstreamSet worker_b(three(), GetParam());
  std::map<size_t, int> used;
  for (int k = 0; k < 300; ++k) {
    const uint64_t key = stable_hash("key-" + std::to_string(k));
    const size_t picked = worker_a.pick(kNow, key);
    EXPECT_EQ(worker_a.pick(kNow, key), picked);
    EXPECT_EQ(worker_b.pick(kNow, key), picked);
    ++used[picked];
  }
  EXPECT_EQ(used.size(), 3u);
}

TEST_P(HashingBalancerTest, ABackedOffUpstreamsKeysMoveAndComeBack) {
  UpstreamSet set(three(), GetParam(), 1s);
  uint64_t key = 0;
  for (int k = 0; set.pick(kNow, key) != 1; ++k) key = stable_hash("k" + std::to_string(k));
  set.report_failure(1, kNow);
  const size_t elsewhere = set.pick(kNow, key);
  EXPECT_NE(elsewhere, 1u);
  EXPECT_EQ(set.pick(kNow, key), elsewhere);  // and stays there while 1 backs off
  EXPECT_EQ(set.pick(kNow + 2s, key), 1u);    // back once its back-off is over
}

TEST_P(HashingBalancerTest, RequestsWithoutAKeyGoRoundRobin) {
  UpstreamSet set(three(), GetParam());
  std::vector<size_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(set.pick(kNow));
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(BalancerTest, ParsesTheHashingBalancers) {
  EXPECT_EQ(*parse_balancer("ring_hash"), Balancer::kRingHash);
  EXPECT_EQ(*parse_balancer("maglev"), Balancer::kMaglev);
  EXPECT_TRUE(hashes_keys(Balancer::kMaglev));
  EXPECT_FALSE(hashes_keys(Balancer::kRoundRobin));
}

}  // namespace
}  // namespace monolake::proxy
