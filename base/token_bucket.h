// TokenBucket: admits events at a sustained rate with bursts up to a capacity (rate limits of
// requests and of accepted connections). A bucket holds tokens, refilled continuously at
// `per_sec` up to `burst`; each admitted event takes one. It starts full.
//
// The rate is passed in at each call, not stored, so a table of many buckets under one limit
// keeps only 16 bytes per bucket, and a reload that changes the limit keeps the buckets (their
// tokens are clamped to the new burst at their next use). The caller supplies the time (a
// worker's loop clock), so the bucket reads no clock and is not thread-safe: one per thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>

namespace monolake {

struct TokenRate {
  double per_sec = 1;  // > 0
  double burst = 1;    // >= 1: a bucket below one token's capacity would admit nothing
};

// One worker's share of a process-wide rate: per_sec / workers, burst / workers (at least 1).
inline TokenRate worker_share(const TokenRate& rate, size_t workers) {
  const double n = static_cast<double>(workers == 0 ? 1 : workers);
  return TokenRate{rate.per_sec / n, std::max(1.0, rate.burst / n)};
}

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(const TokenRate& rate, Clock::time_point now) : tokens_(rate.burst), updated_(now) {}

  // Takes a token if one is there at `now`; false when the event is over the rate.
  bool try_take(const TokenRate& rate, Clock::time_point now) {
    refill(rate, now);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

  // How long from the last try_take() until a token is there (zero if one is).
  std::chrono::nanoseconds time_to_token(const TokenRate& rate) const {
    if (tokens_ >= 1) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(
        static_cast<int64_t>(std::ceil((1 - tokens_) / rate.per_sec * 1e9)));
  }

  // Whether the bucket is full at `now`: it then says nothing that a new bucket would not.
  bool full(const TokenRate& rate, Clock::time_point now) const {
    return tokens_ + elapsed_seconds(now) * rate.per_sec >= rate.burst;
  }

 private:
  double elapsed_seconds(Clock::time_point now) const {
    return now > updated_ ? std::chrono::duration<double>(now - updated_).count() : 0.0;
  }
  void refill(const TokenRate& rate, Clock::time_point now) {
    tokens_ = std::min(rate.burst, tokens_ + elapsed_seconds(now) * rate.per_sec);
    if (now > updated_) updated_ = now;
  }

  double tokens_;
  Clock::time_point updated_;
};

}  // namespace monolake
