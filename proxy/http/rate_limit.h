// RateLimit: a route's `rate_limit` layer. Requests over the rate of their key (the client's
// address, the route, or a header's value) are answered 429 Too Many Requests with Retry-After
// (whole seconds until the key's next token) and never reach the route's filters or upstream.
//
// Each worker keeps its own buckets, each filled at requests_per_sec / workers up to
// burst / workers (at least one request): no lock and no shared cache line on the request path.
// Together they admit the configured rate exactly when a key's requests spread evenly over the
// workers (many connections; the kernel spreads connections, not requests). A key whose
// requests all come on one connection is admitted 1/workers of the rate — at most what was
// asked, never more (docs/config.md, rate_limit).
//
// A request without the header of `key = "header:NAME"` counts under the empty key: all such
// requests share one bucket, so leaving the header out is no way around the limit.
//
// Each worker remembers at most max_keys keys (least recently used forgotten first; a forgotten
// key starts again with a full bucket); about 120 bytes a key. The table, and the 429 counter
// (monolake_rate_limited_total{server,route}), pass to the next generation of the same route (a
// changed `key` starts an empty table).
#pragma once

#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/token_bucket.h"
#include "proxy/http/http_service.h"
#include "proxy/http/layer_params.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/stack.h"

namespace monolake::proxy::http {

// Token buckets by key, least recently used first out when more than `max_keys` are held.
class BucketTable {
 public:
  explicit BucketTable(size_t max_keys) : max_keys_(max_keys == 0 ? 1 : max_keys) {}
  BucketTable(const BucketTable&) = delete;
  BucketTable& operator=(const BucketTable&) = delete;

  // The bucket of `key`, made (full at `now`) if the table does not hold it.
  TokenBucket& bucket(std::string_view key, const TokenRate& rate,
                      TokenBucket::Clock::time_point now);

  size_t size() const { return index_.size(); }
  // A smaller bound forgets the least recently used keys at once.
  void set_max_keys(size_t max_keys);

 private:
  struct Entry {
    std::string key;
    TokenBucket bucket;
  };
  void forget_oldest();

  size_t max_keys_;
  std::list<Entry> recent_;  // most recently used first; nodes never move in memory
  // Views into the keys of recent_'s entries.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

// What one worker's RateLimit hands to its next generation.
struct RateLimitState {
  explicit RateLimitState(size_t max_keys) : table(max_keys) {}
  BucketTable table;
  std::shared_ptr<metrics::UserMetric> limited;  // the 429s answered
};

class RateLimit final : public Layer<monolake::http::Request, monolake::http::Response> {
 public:
  RateLimit(RateLimitParams params, TokenRate rate, std::shared_ptr<RateLimitState> state,
            std::shared_ptr<Inner> inner);
  Task<Result<monolake::http::Response>> call(monolake::http::Request request) override;

  const RateLimitParams& params() const { return params_; }
  const std::shared_ptr<RateLimitState>& state() const { return state_; }

 private:
  // The key's bucket (kRoute: the one bucket, under the empty key).
  TokenBucket& bucket_of(const monolake::http::Request& request,
                         TokenBucket::Clock::time_point now);

  RateLimitParams params_;
  TokenRate rate_;  // this worker's share
  std::shared_ptr<RateLimitState> state_;
};

class RateLimitFactory final : public FactoryLayer<RateLimit> {
 public:
  // `workers`: the process's worker count, over which the rate is split. `server` and `route`
  // ("HOST PATH") label the 429 counter.
  RateLimitFactory(RateLimitParams params, size_t workers, std::string server, std::string route);
  Result<std::shared_ptr<RateLimit>> make_via_ref(const RateLimit* previous,
                                                  std::shared_ptr<HttpService> inner,
                                                  const Build& build) const override;

  // One worker's share of `params`.
  static TokenRate worker_rate(const RateLimitParams& params, size_t workers);

 private:
  RateLimitParams params_;
  TokenRate rate_;
  std::string server_;
  std::string route_;
};

}  // namespace monolake::proxy::http
