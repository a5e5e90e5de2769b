#include "proxy/connection/edge_filters.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "proxy/connection/proxy_header.h"
#include "runtime/runtime.h"

namespace monolake::proxy::connection {

namespace {

using namespace std::chrono_literals;

class AccessList final : public ConnectionFilter {
 public:
  explicit AccessList(std::shared_ptr<const AccessListParams> params)
      : params_(std::move(params)) {}
  runtime::Task<Result<void>> before_tls(transport::Stream&, IoBuffer&,
                                         ConnectionContext& context) override {
    if (admitted(*params_, context.client)) co_return ok();
    co_return Error(ErrorCode::kInvalidArgument,
                    "client " + context.client.ip_text() + " is not allowed by allow/deny");
  }

 private:
  std::shared_ptr<const AccessListParams> params_;
};

// One bucket per worker, kept over a reload (a reload is no way to refill the burst).
class ConnectionRateLimit final : public ConnectionFilter {
 public:
  ConnectionRateLimit(TokenRate rate, std::shared_ptr<TokenBucket> bucket)
      : rate_(rate), bucket_(std::move(bucket)) {}
  runtime::Task<Result<void>> before_tls(transport::Stream&, IoBuffer&,
                                         ConnectionContext&) override {
    if (bucket_->try_take(rate_, runtime::Runtime::current()->now())) co_return ok();
    co_return Error(ErrorCode::kLimitExceeded, "over connection_rate_limit");
  }
  const std::shared_ptr<TokenBucket>& bucket() const { return bucket_; }

 private:
  TokenRate rate_;
  std::shared_ptr<TokenBucket> bucket_;
};

class ConnectionRateLimitFactory final : public ConnectionFilterFactoryOf<ConnectionRateLimit> {
 public:
  explicit ConnectionRateLimitFactory(TokenRate worker_rate) : rate_(worker_rate) {}
  Result<std::shared_ptr<ConnectionRateLimit>> make_via_ref(const ConnectionRateLimit* previous,
                                                            const Build&) const override {
    auto bucket = previous
                      ? previous->bucket()
                      : std::make_shared<TokenBucket>(rate_, runtime::Runtime::current()->now());
    return std::make_shared<ConnectionRateLimit>(rate_, std::move(bucket));
  }

 private:
  TokenRate rate_;
};

class ProxyProtocol final : public ConnectionFilter {
 public:
  explicit ProxyProtocol(std::shared_ptr<const ProxyProtocolParams> params)
      : params_(std::move(params)) {}

  runtime::Task<Result<void>> before_tls(transport::Stream& socket, IoBuffer& read_ahead,
                                         ConnectionContext& context) override {
    if (!params_->from.empty() && !transport::any_contains(params_->from, context.peer)) {
      co_return ok();  // not one of the balancers: its bytes are the protocol's
    }
    const runtime::TimePoint deadline = runtime::Runtime::current()->now() + params_->timeout;
    while (true) {
      Result<std::optional<codec::ProxyHeader>> parsed =
          codec::parse_proxy_header(read_ahead.view(), params_->versions);
      if (!parsed) co_return std::move(parsed).error();
      if (parsed->has_value()) {
        const codec::ProxyHeader& header = **parsed;
        if (header.source) context.client = to_socket_address(*header.source);
        read_ahead.consume(header.length);
        co_return ok();
      }
      const auto left = deadline - runtime::Runtime::current()->now();
      if (left <= 0ns) co_return Error(ErrorCode::kTimeout, "PROXY header: not complete in time");
      // (Not a co_await inside a conditional expression: with GCC 12 that crashed here, in free().)
      Result<size_t> n = co_await read_more(socket, read_ahead, left);
      if (!n && n.error().code() == ErrorCode::kTimeout) {
        co_return Error(ErrorCode::kTimeout, "PROXY header: not complete in time");
      }
      if (!n) co_return std::move(n).error();
      if (*n == 0) {
        co_return Error(ErrorCode::kClosed, "PROXY header: the connection ended before it did");
      }
    }
  }

 private:
  std::shared_ptr<const ProxyProtocolParams> params_;
};

// A factory whose filters share one immutable parameter set.
template <class F, class P>
class SharedParamsFactory final : public ConnectionFilterFactoryOf<F> {
 public:
  explicit SharedParamsFactory(P params) : params_(std::make_shared<const P>(std::move(params))) {}
  Result<std::shared_ptr<F>> make_via_ref(const F*, const Build&) const override {
    return std::make_shared<F>(params_);
  }

 private:
  std::shared_ptr<const P> params_;
};

}  // namespace

bool admitted(const AccessListParams& params, const transport::SocketAddress& client) {
  if (client.is_unix()) return true;
  if (transport::any_contains(params.deny, client)) return false;
  return params.allow.empty() || transport::any_contains(params.allow, client);
}

std::shared_ptr<const ConnectionFilterFactory> access_list_factory(AccessListParams params) {
  return std::make_shared<SharedParamsFactory<AccessList, AccessListParams>>(std::move(params));
}

std::shared_ptr<const ConnectionFilterFactory> connection_rate_limit_factory(TokenRate rate,
                                                                             size_t workers) {
  return std::make_shared<ConnectionRateLimitFactory>(worker_share(rate, workers));
}

std::shared_ptr<const ConnectionFilterFactory> proxy_protocol_factory(ProxyProtocolParams params) {
  return std::make_shared<SharedParamsFactory<ProxyProtocol, ProxyProtocolParams>>(
      std::move(params));
}

}  // namespace monolake::proxy::connection
