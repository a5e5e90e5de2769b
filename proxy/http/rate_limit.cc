#include "proxy/http/rate_limit.h"

#include <algorithm>

#include "http/exchange.h"
#include "runtime/runtime.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

TokenBucket& BucketTable::bucket(std::string_view key, const TokenRate& rate,
                                 TokenBucket::Clock::time_point now) {
  if (auto it = index_.find(key); it != index_.end()) {
    recent_.splice(recent_.begin(), recent_, it->second);  // the node stays where it is
    return it->second->bucket;
  }
  if (index_.size() >= max_keys_) forget_oldest();
  recent_.push_front(Entry{std::string(key), TokenBucket(rate, now)});
  index_.emplace(recent_.front().key, recent_.begin());
  return recent_.front().bucket;
}

void BucketTable::set_max_keys(size_t max_keys) {
  max_keys_ = max_keys == 0 ? 1 : max_keys;
  while (index_.size() > max_keys_) forget_oldest();
}

void BucketTable::forget_oldest() {
  index_.erase(recent_.back().key);
  recent_.pop_back();
}

RateLimit::RateLimit(RateLimitParams params, TokenRate rate, std::shared_ptr<RateLimitState> state,
                     std::shared_ptr<Inner> inner)
    : Layer(std::move(inner)), params_(std::move(params)), rate_(rate), state_(std::move(state)) {}

TokenBucket& RateLimit::bucket_of(const mh::Request& request, TokenBucket::Clock::time_point now) {
  std::string_view key;
  switch (params_.key) {
    case RateLimitParams::Key::kSourceIp:
      key = mh::client_ip(request);
      break;
    case RateLimitParams::Key::kRoute:
      break;
    case RateLimitParams::Key::kHeader:
      if (std::optional<std::string_view> value = request.head.headers.get(params_.header)) {
        key = *value;
      }
      break;
  }
  return state_->table.bucket(key, rate_, now);
}

Task<Result<mh::Response>> RateLimit::call(mh::Request request) {
  const TokenBucket::Clock::time_point now = runtime::Runtime::current()->now();
  TokenBucket& bucket = bucket_of(request, now);
  if (bucket.try_take(rate_, now)) co_return co_await inner_->call(std::move(request));
  state_->limited->value.add();
  // Whole seconds (RFC 9110 10.2.3), rounded up so that a client that waits is admitted.
  const int64_t wait_ns = bucket.time_to_token(rate_).count();
  const int64_t retry_after = std::max<int64_t>(1, (wait_ns + 999'999'999) / 1'000'000'000);
  if (request.context) request.context->error = "rate limited";
  mh::Response response = mh::text_response(429);
  response.head.headers.set("Retry-After", std::to_string(retry_after));
  co_return response;
}

RateLimitFactory::RateLimitFactory(RateLimitParams params, size_t workers, std::string server,
                                   std::string route)
    : params_(std::move(params)),
      rate_(worker_rate(params_, workers)),
      server_(std::move(server)),
      route_(std::move(route)) {}

TokenRate RateLimitFactory::worker_rate(const RateLimitParams& params, size_t workers) {
  return worker_share(TokenRate{params.requests_per_sec, params.burst}, workers);
}

Result<std::shared_ptr<RateLimit>> RateLimitFactory::make_via_ref(
    const RateLimit* previous, std::shared_ptr<HttpService> inner, const Build&) const {
  std::shared_ptr<RateLimitState> state;
  if (previous && previous->params().key == params_.key &&
      previous->params().header == params_.header) {
    state = previous->state();
    state->table.set_max_keys(params_.max_keys);
  } else {
    state = std::make_shared<RateLimitState>(params_.max_keys);
    state->limited = previous ? previous->state()->limited : nullptr;
  }
  if (!state->limited) {
    state->limited = metrics::Registry::global().own(
        "monolake_rate_limited_total", "Requests a route's rate_limit answered with 429",
        {{"server", server_}, {"route", route_}});
  }
  return std::make_shared<RateLimit>(params_, rate_, std::move(state), std::move(inner));
}

}  // namespace monolake::proxy::http
