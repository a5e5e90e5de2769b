#include "proxy/http/forward.h"

#include <algorithm>

#include "base/log.h"
#include "proxy/connection/proxy_header.h"
#include "proxy/http/access_log.h"
#include "proxy/http/hash_key.h"
#include "proxy/http/upstream_request.h"
#include "runtime/runtime.h"
#include "transport/byte_stream.h"
#include "transport/copy.h"
#include "transport/stream.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

using mh::h1::ClientConnection;

namespace {

// A WebSocket opening handshake (RFC 6455 4.1): GET with Connection: upgrade and Upgrade:
// websocket, no body.
bool websocket_upgrade(const mh::Request& request) {
  return request.head.method == "GET" && !request.body &&
         request.head.version == mh::Version::kHttp11 &&
         request.head.headers.has_token("connection", "upgrade") &&
         request.head.headers.has_token("upgrade", "websocket");
}

// After the upstream's 101: bytes both ways between the client and the upstream, starting with
// what either side sent past its head.
Task<void> tunnel(transport::ByteStream& client, IoBuffer client_pending,
                  std::shared_ptr<transport::ByteStream> upstream, IoBuffer upstream_pending,
                  std::optional<std::chrono::nanoseconds> idle_timeout) {
  if (!upstream_pending.empty()) {
    auto [sent, rest] = co_await client.write_all(std::move(upstream_pending));
    if (!sent) co_return;
  }
  if (!client_pending.empty()) {
    auto [sent, rest] = co_await upstream->write_all(std::move(client_pending));
    if (!sent) co_return;
  }
  (void)co_await transport::copy_bidirectional(client, *upstream, {.idle_timeout = idle_timeout});
}

}  // namespace

namespace {

// Ends the upstream's in-flight count (least_request) when the response body is done with.
class BalancedBody final : public mh::Body {
 public:
  BalancedBody(std::unique_ptr<mh::Body> inner, std::shared_ptr<UpstreamSet> set, size_t index)
      : inner_(std::move(inner)), set_(std::move(set)), index_(index) {}
  ~BalancedBody() override { set_->end(index_); }
  Task<Result<IoBuffer>> read() override { return inner_->read(); }
  std::optional<uint64_t> length() const override { return inner_->length(); }
  const mh::HeaderMap* trailers() const override { return inner_->trailers(); }

 private:
  std::unique_ptr<mh::Body> inner_;
  std::shared_ptr<UpstreamSet> set_;
  size_t index_;
};

// Ends a pool's "connecting" state however the connecting task ends (cancelled included).
struct ConnectingGuard {
  ConnectionPool* pool;
  const std::string& key;
  ~ConnectingGuard() { pool->end_h2_connect(key); }
};

}  // namespace

bool HttpForward::use_h2(const std::string& key) const {
  switch (options_.version) {
    case UpstreamHttpVersion::kHttp2:
      return true;
    case UpstreamHttpVersion::kAuto:
      return options_.tls && pool_->speaks_h2(key);
    case UpstreamHttpVersion::kHttp11:
      return false;
  }
  return false;
}

Task<Result<std::shared_ptr<mh::h2::ClientConnection>>> HttpForward::connect_h2(
    size_t index, const std::string& key) {
  runtime::Runtime* rt = runtime::Runtime::current();
  const transport::SocketAddress& address = upstreams_->at(index).address;
  Result<transport::Stream> stream =
      co_await transport::Stream::connect(address, {.timeout = options_.connect_timeout});
  if (!stream) {
    upstreams_->report_failure(index, rt->now());
    if (stats_) stats_->upstream_connect_errors.add();
    ML_LOG(kWarn, "http: upstream {} failed: {}", key, stream.error().to_string());
    co_return Error(stream.error().code(), "connect " + key + ": " + stream.error().to_string());
  }
  std::unique_ptr<transport::ByteStream> bytes;
  std::string scheme = "http";
  if (options_.tls) {
    Result<tls::TlsStream> secured =
        co_await options_.tls->connect(std::move(*stream), options_.server_names.at(index));
    if (!secured) {
      upstreams_->report_failure(index, rt->now());
      co_return Error(secured.error().code(), "TLS to " + key + ": " + secured.error().to_string());
    }
    if (secured->alpn() != "h2") {
      if (options_.version == UpstreamHttpVersion::kAuto) {
        // It spoke HTTP/2 before and no longer does: the next requests go HTTP/1.1.
        pool_->forget_h2(key);
      } else {
        upstreams_->report_failure(index, rt->now());
      }
      co_return Error(ErrorCode::kProtocol, "upstream " + key + " did not choose h2 in ALPN");
    }
    bytes = std::make_unique<transport::ByteStreamOf<tls::TlsStream>>(std::move(*secured));
    scheme = "https";
  } else {
    bytes = std::make_unique<transport::ByteStreamOf<transport::Stream>>(std::move(*stream));
  }
  upstreams_->report_success(index);
  auto started = mh::h2::ClientConnection::start(std::move(bytes), options_.h2, scheme, key);
  if (!started) co_return started.error();
  pool_->add_h2(key, *started);
  co_return std::move(*started);
}

Task<Result<mh::Response>> HttpForward::forward_h2(mh::Request& request, size_t index,
                                                   const std::string& key, bool te_trailers) {
  const bool has_body = request.body != nullptr;
  // An HTTP/1.1 client's body reads from its connection, which the h1 server reuses once this
  // request is answered: it must be sent (or cancelled) before the response goes back. An
  // HTTP/2 client's body is its own stream: it may go on while the response streams (gRPC).
  const auto mode = request.head.version == mh::Version::kHttp2
                        ? mh::h2::ClientConnection::BodyMode::kConcurrent
                        : mh::h2::ClientConnection::BodyMode::kSentBeforeReturn;
  bool refused_retry_left = !has_body;  // an unprocessed stream may be sent again
  while (true) {
    std::shared_ptr<mh::h2::ClientConnection> conn = pool_->take_h2(key);
    for (int round = 0; !conn && round < 2; ++round) {
      if (pool_->begin_h2_connect(key)) {
        const ConnectingGuard guard{pool_.get(), key};
        Result<std::shared_ptr<mh::h2::ClientConnection>> made = co_await connect_h2(index, key);
        if (!made) co_return made.error();  // the caller tries another upstream
        conn = std::move(*made);
      } else {
        // The connect under way may take its connect timeout and a TLS handshake.
        co_await pool_->wait_h2_connect(key, 3 * options_.connect_timeout);
        conn = pool_->take_h2(key);
      }
    }
    if (!conn) co_return Error(ErrorCode::kTimeout, "connect " + key + ": no connection in time");
    upstreams_->begin(index);
    mh::RequestHead head;
    if (refused_retry_left) {
      head = request.head;  // kept for a retry
    } else {
      head = std::move(request.head);
    }
    // gRPC servers insist on `te: trailers` (the only TE value HTTP/2 allows); set on this copy
    // only, so a later HTTP/1.1 attempt does not carry it.
    if (te_trailers) head.headers.set("te", "trailers");
    Result<mh::Response> response = co_await conn->request(std::move(head), std::move(request.body),
                                                           options_.response_timeout, mode);
    if (!response) {
      upstreams_->end(index);
      const Error& e = response.error();
      const bool unprocessed =
          e.code() == ErrorCode::kConnectionRefused || e.code() == ErrorCode::kLimitExceeded;
      if (unprocessed && refused_retry_left) {
        refused_retry_left = false;
        continue;
      }
      if (e.code() == ErrorCode::kTimeout) {
        co_return error_response(request, 504, "upstream " + key + ": " + e.to_string());
      }
      co_return error_response(request, 502, "upstream " + key + ": " + e.to_string());
    }
    remove_hop_by_hop(response->head.headers);
    if (!options_.response_headers.empty()) {
      apply_header_rewrite(options_.response_headers, response->head.headers);
    }
    if (response->body) {
      response->body = std::make_unique<BalancedBody>(std::move(response->body), upstreams_, index);
    } else {
      upstreams_->end(index);
    }
    co_return response;
  }
}

Task<Result<mh::Response>> HttpForward::call(mh::Request request) {
  // The key as the client sent it, before the route's rewrites touch path or headers. A retry
  // after a failed connect hashes to the same place; that upstream now backs off, so the ring
  // (or maglev's rehash) moves on to another.
  const std::optional<uint64_t> key_hash =
      options_.hash_on ? request_key_hash(*options_.hash_on, request) : std::nullopt;
  const bool upgrade = options_.websocket && websocket_upgrade(request);
  const bool te_trailers = request.head.headers.has_token("te", "trailers");
  prepare_upstream_head(options_, request);
  if (upgrade) {
    request.head.headers.set("Connection", "Upgrade");
    request.head.headers.set("Upgrade", "websocket");
  }
  rewrite_path(options_, request.head.target);
  if (!options_.host_rewrite.empty()) request.head.headers.set("Host", options_.host_rewrite);
  if (!options_.request_headers.empty()) {
    apply_header_rewrite(options_.request_headers, request.head.headers);
  }
  const bool host_missing = !request.head.headers.has("host");
  runtime::Runtime* rt = runtime::Runtime::current();
  const bool retryable = mh::is_idempotent(request.head.method) && !request.body;
  const size_t attempts = retryable ? std::min<size_t>(upstreams_->size(), 3) : 1;
  std::string last_error = "no upstream";
  for (size_t attempt = 0; attempt < attempts; ++attempt) {
    const size_t index = upstreams_->pick(rt->now(), key_hash);
    const transport::SocketAddress& address = upstreams_->at(index).address;
    const std::string& server_name = options_.tls ? options_.server_names.at(index) : std::string();
    const std::string& key = pool_key(index);
    if (request.context) request.context->upstream = key;
    if (host_missing) request.head.headers.set("Host", upstream_authority(address, server_name));
    if (!upgrade && use_h2(key)) {
      Result<mh::Response> answered = co_await forward_h2(request, index, key, te_trailers);
      if (answered) co_return answered;
      last_error = answered.error().to_string();
      continue;  // could not connect: the next upstream, if retryable
    }

    const std::shared_ptr<ConnectionPool> pool = pool_for(request);
    bool stale_retry_left = true;  // one retry when a pooled connection turns out dead
    while (true) {
      // An upgraded connection is never pooled and never reused: take a fresh one. A request
      // that can be sent again skips the liveness probe (a syscall) on its first try: a dead
      // connection costs it one failed attempt, and the retry connects anew. (Not a probed
      // pooled one: a connection the upstream closed a moment ago passes the probe until its
      // FIN arrives, and the retry would fail the same way, a 502.)
      const bool stale_retry = retryable && !stale_retry_left;
      const bool probe = !retryable;
      std::unique_ptr<ClientConnection> conn =
          upgrade || stale_retry || !pool ? nullptr : pool->take(key, probe);
      const bool reused = conn != nullptr;
      if (!conn) {
        Result<transport::Stream> stream =
            co_await transport::Stream::connect(address, {.timeout = options_.connect_timeout});
        if (!stream) {
          upstreams_->report_failure(index, rt->now());
          if (stats_) stats_->upstream_connect_errors.add();
          last_error = "connect " + key + ": " + stream.error().to_string();
          ML_LOG(kWarn, "http: upstream {} failed: {}", key, stream.error().to_string());
          break;  // next attempt (another upstream), if retryable
        }
        if (options_.send_proxy_protocol) {
          // Before TLS, as the upstream's PROXY protocol listener expects it.
          Result<void> announced = co_await announce_client(*stream, request);
          if (!announced) {
            upstreams_->report_failure(index, rt->now());  // so a retry goes elsewhere
            last_error = "send PROXY header to " + key + ": " + announced.error().to_string();
            break;
          }
        }
        std::unique_ptr<transport::ByteStream> bytes;
        if (options_.tls) {
          Result<tls::TlsStream> secured =
              co_await options_.tls->connect(std::move(*stream), server_name);
          if (!secured) {
            upstreams_->report_failure(index, rt->now());
            last_error = "TLS to " + key + ": " + secured.error().to_string();
            ML_LOG(kWarn, "http: upstream {} TLS failed: {}", key, secured.error().to_string());
            break;
          }
          if (!upgrade && secured->alpn() == "h2") {
            // upstream_http_version = "auto": the upstream chose HTTP/2.
            upstreams_->report_success(index);
            auto started = mh::h2::ClientConnection::start(
                std::make_unique<transport::ByteStreamOf<tls::TlsStream>>(std::move(*secured)),
                options_.h2, "https", key);
            if (!started) co_return error_response(request, 502, started.error().to_string());
            pool_->add_h2(key, *started);
            co_return co_await forward_h2(request, index, key, te_trailers);
          }
          bytes = std::make_unique<transport::ByteStreamOf<tls::TlsStream>>(std::move(*secured));
        } else {
          bytes = std::make_unique<transport::ByteStreamOf<transport::Stream>>(std::move(*stream));
        }
        upstreams_->report_success(index);
        conn = std::make_unique<ClientConnection>(std::move(bytes), options_.limits);
      }
      Result<void> written = co_await conn->write_request(request.head, request.body.get());
      if (!written) {
        const Error& e = written.error();
        if (reused && stale_retry_left && retryable && stale_connection_error(e)) {
          stale_retry_left = false;
          continue;
        }
        if (e.code() == ErrorCode::kProtocol) {
          co_return error_response(request, 400, "request body: " + e.to_string());
        }
        if (e.code() == ErrorCode::kTimeout) {
          co_return error_response(request, 408, "request body: " + e.to_string());
        }
        co_return error_response(request, 502, "send to " + key + ": " + e.to_string());
      }
      Result<mh::ResponseHead> head =
          co_await conn->read_response(request.head.method, options_.response_timeout);
      if (!head) {
        const Error& e = head.error();
        // Only idempotent requests are sent again (RFC 9110 9.2.2): the upstream may have acted
        // on this one before its connection closed.
        if (reused && stale_retry_left && retryable && !conn->response_started() &&
            stale_connection_error(e)) {
          stale_retry_left = false;
          continue;
        }
        if (e.code() == ErrorCode::kTimeout) {
          co_return error_response(request, 504, "upstream " + key + ": " + e.to_string());
        }
        co_return error_response(request, 502, "upstream " + key + ": " + e.to_string());
      }
      mh::Response response;
      response.head = std::move(*head);
      if (upgrade && response.head.status == 101) {
        // The upstream switched: hand both connections to the tunnel.
        IoBuffer upstream_pending;
        std::shared_ptr<transport::ByteStream> upstream(conn->release(upstream_pending));
        auto pending = std::make_shared<IoBuffer>(std::move(upstream_pending));
        // Not a coroutine itself: it returns the tunnel's task, which owns copies of both.
        const auto idle = options_.tunnel_idle_timeout;
        response.upgrade = [upstream, pending, idle](transport::ByteStream& client,
                                                     IoBuffer client_pending) {
          return tunnel(client, std::move(client_pending), upstream, std::move(*pending), idle);
        };
        co_return response;
      }
      remove_hop_by_hop(response.head.headers);
      if (!options_.response_headers.empty()) {
        apply_header_rewrite(options_.response_headers, response.head.headers);
      }
      upstreams_->begin(index);
      std::weak_ptr<ConnectionPool> weak_pool = pool;
      std::shared_ptr<UpstreamSet> set = upstreams_;
      response.body = ClientConnection::take_body(
          std::move(conn), options_.response_timeout,
          [weak_pool, key, set, index](std::unique_ptr<ClientConnection> c, bool reusable) {
            set->end(index);
            if (!reusable) return;
            if (auto p = weak_pool.lock()) p->give(key, std::move(c));
          });
      co_return response;
    }
  }
  co_return error_response(request, 502, last_error);
}

namespace {

// The pool of one client connection's upstream connections (send_proxy_protocol), in its slots.
struct ClientOwnedPool {
  std::shared_ptr<ConnectionPool> pool;
};
// A client connection's own pool keeps a few idle connections per upstream: enough for the
// concurrent streams of one HTTP/2 client in the common case, few enough that many clients do
// not pile up idle upstream connections.
constexpr size_t kClientOwnedIdlePerUpstream = 8;

}  // namespace

std::shared_ptr<ConnectionPool> HttpForward::pool_for(const mh::Request& request) const {
  if (!options_.send_proxy_protocol) return pool_;
  if (!request.connection) return nullptr;
  TypedSlots& slots = request.connection->slots;
  if (ClientOwnedPool* owned = slots.get<ClientOwnedPool>()) return owned->pool;
  ConnectionPool::Options options = pool_->options();
  options.max_idle_per_upstream =
      std::min(options.max_idle_per_upstream, kClientOwnedIdlePerUpstream);
  return slots.set(ClientOwnedPool{std::make_shared<ConnectionPool>(options)}).pool;
}

Task<Result<void>> HttpForward::announce_client(transport::Stream& upstream,
                                                const mh::Request& request) const {
  transport::SocketAddress client, local;
  if (request.connection) {
    client = request.connection->peer;
    local = request.connection->local;
  }
  auto [written, unused] = co_await upstream.write_all(
      IoBuffer::copy_of(connection::proxy_header_for(options_.send_proxy_protocol, client, local)));
  if (!written) co_return std::move(written).error();
  co_return ok();
}

const std::string& HttpForward::pool_key(size_t index) {
  if (keys_.empty()) {
    // Pooled connections are told apart by address and, with TLS, by the name they verified.
    for (size_t i = 0; i < upstreams_->size(); ++i) {
      const std::string address = upstreams_->at(i).address.to_string();
      // With TLS the key names the client context too: a connection made under one
      // verification policy (CA, verify) is never handed to a route with another.
      keys_.push_back(options_.tls ? fmt::format("tls:{}:{}@{}",
                                                 static_cast<const void*>(options_.tls.get()),
                                                 options_.server_names.at(i), address)
                                   : address);
      // Connections that announced a client are told apart from those that did not.
      if (options_.send_proxy_protocol)
        keys_.back() += "|proxy-v" + std::to_string(options_.send_proxy_protocol);
    }
  }
  return keys_[index];
}

std::shared_ptr<ConnectionPool> http_connection_pool(const Build& build,
                                                     size_t max_idle_per_upstream) {
  std::shared_ptr<ConnectionPool> pool = build.shared<ConnectionPool>(
      "upstream_pool", [] { return std::make_shared<ConnectionPool>(ConnectionPool::Options{}); });
  pool->set_max_idle_per_upstream(max_idle_per_upstream);
  return pool;
}

Result<std::shared_ptr<HttpForward>> ForwardFactory::make_via_ref(const HttpForward* previous,
                                                                  std::shared_ptr<HttpService>,
                                                                  const Build& build) const {
  if (params_.upstreams.empty()) {
    return Error(ErrorCode::kInvalidArgument, build.scope() + ": no upstreams");
  }
  std::shared_ptr<UpstreamSet> set = UpstreamSet::carry_over(
      previous ? previous->upstreams() : nullptr, params_.upstreams, params_.balancer);
  std::shared_ptr<metrics::HttpServerStats> stats = http_server_stats(build, params_.server_name);
  std::shared_ptr<ConnectionPool> pool = http_connection_pool(build, params_.max_idle_per_upstream);
  pool->set_gauge(stats);
  return std::make_shared<HttpForward>(std::move(set), std::move(pool), params_.options,
                                       std::move(stats));
}

}  // namespace monolake::proxy::http
