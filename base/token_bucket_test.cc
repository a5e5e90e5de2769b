#include "base/token_bucket.h"

#include <gtest/gtest.h>

namespace monolake {
namespace {

using std::chrono::milliseconds;
const TokenBucket::Clock::time_point kStart{std::chrono::seconds(1000)};

TEST(TokenBucket, StartsFullAndAdmitsTheBurst) {
  const TokenRate rate{10, 3};
  TokenBucket bucket(rate, kStart);
  EXPECT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_FALSE(bucket.try_take(rate, kStart));
}

TEST(TokenBucket, RefillsAtTheRateAndSaysWhenTheNextTokenComes) {
  const TokenRate rate{10, 1};  // one token every 100 ms
  TokenBucket bucket(rate, kStart);
  ASSERT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_FALSE(bucket.try_take(rate, kStart + milliseconds(40)));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(bucket.time_to_token(rate)).count(), 60);
  EXPECT_TRUE(bucket.try_take(rate, kStart + milliseconds(100)));
  EXPECT_FALSE(bucket.try_take(rate, kStart + milliseconds(150)));
}

TEST(TokenBucket, NeverHoldsMoreThanTheBurst) {
  const TokenRate rate{100, 2};
  TokenBucket bucket(rate, kStart);
  const auto later = kStart + std::chrono::seconds(60);  // a minute idle: still only 2 tokens
  EXPECT_TRUE(bucket.try_take(rate, later));
  EXPECT_TRUE(bucket.try_take(rate, later));
  EXPECT_FALSE(bucket.try_take(rate, later));
}

TEST(TokenBucket, AdmitsTheRateOverALongRun) {
  const TokenRate rate{50, 5};
  TokenBucket bucket(rate, kStart);
  int admitted = 0;
  // An event every millisecond for 10 s: the burst, then 50 a second.
  for (int ms = 0; ms < 10000; ++ms) admitted += bucket.try_take(rate, kStart + milliseconds(ms));
  EXPECT_GE(admitted, 5 + 499);
  EXPECT_LE(admitted, 5 + 500);
}

TEST(TokenBucket, ALowerBurstAfterAReloadClampsTheTokens) {
  const TokenRate before{1, 100};
  TokenBucket bucket(before, kStart);
  const TokenRate after{1, 2};
  EXPECT_TRUE(bucket.try_take(after, kStart));
  EXPECT_TRUE(bucket.try_take(after, kStart));
  EXPECT_FALSE(bucket.try_take(after, kStart));
}

TEST(TokenBucket, AClockThatStepsBackTakesNothingAndGivesNothing) {
  const TokenRate rate{10, 1};
  TokenBucket bucket(rate, kStart);
  ASSERT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_FALSE(bucket.try_take(rate, kStart - milliseconds(500)));
  EXPECT_TRUE(bucket.try_take(rate, kStart + milliseconds(100)));
}

TEST(TokenBucket, FullMeansNothingToRemember) {
  const TokenRate rate{10, 1};
  TokenBucket bucket(rate, kStart);
  EXPECT_TRUE(bucket.full(rate, kStart));
  ASSERT_TRUE(bucket.try_take(rate, kStart));
  EXPECT_FALSE(bucket.full(rate, kStart + milliseconds(50)));
  EXPECT_TRUE(bucket.full(rate, kStart + milliseconds(100)));
}

}  // namespace
}  // namespace monolake
