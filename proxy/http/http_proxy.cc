#include "proxy/http/http_proxy.h"

#include <algorithm>
#include <random>

#include "base/log.h"
#include "runtime/runtime.h"
#include "transport/byte_stream.h"
#include "transport/copy.h"
#include "transport/stream.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;
using mh::h1::ClientConnection;

// --- ConnectionPool -----------------------------------------------------------------------

void ConnectionPool::update_gauge() {
  if (!stats_) return;
  const uint64_t shown = stats_->idle_upstream_connections.get();
  if (idle_total_ > shown) stats_->idle_upstream_connections.add(idle_total_ - shown);
  if (idle_total_ < shown) stats_->idle_upstream_connections.sub(shown - idle_total_);
}

std::unique_ptr<ClientConnection> ConnectionPool::take(const std::string& address) {
  auto it = idle_.find(address);
  if (it == idle_.end()) return nullptr;
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  std::vector<Idle>& idle = it->second;
  std::unique_ptr<ClientConnection> found;
  while (!idle.empty() && !found) {
    Idle candidate = std::move(idle.back());  // the most recently used: warmest, least stale
    idle.pop_back();
    --idle_total_;
    if (now - candidate.since > options_.idle_timeout) continue;
    if (!candidate.connection->idle_and_healthy()) continue;
    found = std::move(candidate.connection);
  }
  update_gauge();
  return found;
}

void ConnectionPool::give(const std::string& address,
                          std::unique_ptr<ClientConnection> connection) {
  if (connection->requests() >= options_.max_requests_per_connection) return;
  if (options_.max_idle_per_upstream == 0) return;
  std::vector<Idle>& idle = idle_[address];
  // Responses end in bursts, just before bursts of requests need connections again: closing
  // everything over the cap at once would make the next burst connect anew. So the excess may
  // stay idle up to a second (sweep() trims it), never beyond kBurstFactor times the cap.
  while (idle.size() >= kBurstFactor * options_.max_idle_per_upstream) {
    idle.erase(idle.begin());  // drop the oldest
    --idle_total_;
  }
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  idle.push_back(Idle{std::move(connection), now});
  ++idle_total_;
  sweep(now);
  update_gauge();
}

// Closes idle connections past the idle timeout under every address, at most once a second:
// take() only looks at the address asked for, and an address no route uses any more (after a
// reload or a DNS change) would otherwise keep its connections open for ever.
void ConnectionPool::sweep(runtime::TimePoint now) {
  if (now - last_sweep_ < std::chrono::seconds(1)) return;
  last_sweep_ = now;
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::vector<Idle>& idle = it->second;
    // Oldest first: the expired ones, then those over the cap idle for a second, are in front.
    auto end = idle.begin();
    size_t kept = idle.size();
    while (end != idle.end() && (now - end->since > options_.idle_timeout ||
                                 (kept > options_.max_idle_per_upstream &&
                                  now - end->since >= std::chrono::seconds(1)))) {
      ++end;
      --kept;
    }
    idle_total_ -= static_cast<size_t>(end - idle.begin());
    idle.erase(idle.begin(), end);
    it = idle.empty() ? idle_.erase(it) : std::next(it);
  }
  // HTTP/2 connections of upstreams no request asks for any more (a reload, a DNS change).
  for (auto it = h2_.begin(); it != h2_.end();) {
    std::erase_if(it->second, [&](Multiplexed& m) {
      const bool unused = m.connection->open_streams() == 0;
      if (m.connection->closed() || (unused && now - m.last_used > options_.idle_timeout)) {
        m.connection->shutdown();
        return true;
      }
      return false;
    });
    it = it->second.empty() ? h2_.erase(it) : std::next(it);
  }
}

std::shared_ptr<mh::h2::ClientConnection> ConnectionPool::take_h2(const std::string& key) {
  auto it = h2_.find(key);
  if (it == h2_.end()) return nullptr;
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  std::vector<Multiplexed>& list = it->second;
  std::shared_ptr<mh::h2::ClientConnection> found;
  for (auto c = list.begin(); c != list.end();) {
    const bool unused = c->connection->open_streams() == 0;
    const bool idle_too_long = unused && now - c->last_used > options_.idle_timeout;
    // After GOAWAY (or with its stream ids used up) a connection takes no stream: once its
    // last one ends it is of no more use.
    const bool spent = unused && c->connection->available_streams() == 0;
    if (c->connection->closed() || idle_too_long || spent) {
      c->connection->shutdown();
      c = list.erase(c);
      continue;
    }
    if (!found && c->connection->available_streams() > 0) {
      found = c->connection;
      c->last_used = now;
    }
    ++c;
  }
  if (list.empty()) h2_.erase(it);
  return found;
}

void ConnectionPool::add_h2(const std::string& key,
                            std::shared_ptr<mh::h2::ClientConnection> connection) {
  h2_capable_.insert(key);
  const runtime::TimePoint now = runtime::Runtime::current()->now();
  h2_[key].push_back(Multiplexed{std::move(connection), now});
  sweep(now);
}

bool ConnectionPool::begin_h2_connect(const std::string& key) {
  return h2_connecting_.try_emplace(key).second;
}

void ConnectionPool::end_h2_connect(const std::string& key) {
  auto it = h2_connecting_.find(key);
  if (it == h2_connecting_.end()) return;
  std::vector<runtime::Notify*> waiters = std::move(it->second);
  h2_connecting_.erase(it);
  for (runtime::Notify* waiter : waiters) waiter->notify();
}

Task<void> ConnectionPool::wait_h2_connect(const std::string& key, std::chrono::nanoseconds limit) {
  auto it = h2_connecting_.find(key);
  if (it == h2_connecting_.end()) co_return;
  runtime::Notify done;
  it->second.push_back(&done);
  (void)co_await runtime::with_timeout(runtime::notified(done), limit);
  // Still listed (timed out or cancelled): take ourselves off before `done` goes away.
  if (auto again = h2_connecting_.find(key); again != h2_connecting_.end()) {
    std::erase(again->second, &done);
  }
}

size_t ConnectionPool::idle_count() const {
  size_t n = 0;
  for (const auto& [address, idle] : idle_) n += idle.size();
  return n;
}

// --- request preparation --------------------------------------------------------------------

namespace {
// Hop-by-hop field names (RFC 9110 7.6.1, plus the Proxy-* and Keep-Alive fields), by one
// case-insensitive look per field.
bool always_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return mh::iequals(name, "te");
    case 7:
      return mh::iequals(name, "trailer") || mh::iequals(name, "upgrade");
    case 10:
      return mh::iequals(name, "connection") || mh::iequals(name, "keep-alive");
    case 16:
      return mh::iequals(name, "proxy-connection");
    case 17:
      return mh::iequals(name, "transfer-encoding");
    case 18:
      return mh::iequals(name, "proxy-authenticate");
    case 19:
      return mh::iequals(name, "proxy-authorization");
    default:
      return false;
  }
}
}  // namespace

void remove_hop_by_hop(mh::HeaderMap& headers) {
  // Fields a Connection field names (other than the usual close / keep-alive tokens).
  std::vector<std::string> named;
  headers.for_each_token("connection", [&](std::string_view t) {
    // Never let Connection remove what routing and framing rely on.
    if (!mh::iequals(t, "close") && !mh::iequals(t, "keep-alive") && !mh::iequals(t, "host")) {
      named.emplace_back(t);
    }
  });
  for (const std::string& name : named) headers.remove(name);
  headers.remove_if([](const mh::HeaderMap::Field& f) { return always_hop_by_hop(f.name); });
}

namespace {

std::string new_request_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = random();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = kHex[bits & 0xf];
      bits >>= 4;
    }
  }
  return id;
}

// The client's address without the port, for X-Forwarded-For.
std::string_view client_ip(const mh::ConnectionInfo* info) {
  if (!info || info->client_ip.empty()) return "unknown";
  return info->client_ip;
}

// Turns the client's request head into the upstream's: origin-form target, no hop-by-hop or
// framing fields (the writer frames from the body), X-Forwarded-*, X-Request-Id.
bool trusted(const ForwardOptions& options, const mh::ConnectionInfo* info) {
  if (!info || options.trusted_proxies.empty()) return false;
  for (const config::Cidr& cidr : options.trusted_proxies) {
    if (cidr.contains(info->peer)) return true;
  }
  return false;
}

// The route's path rewrite: strip_prefix (on a segment boundary), then add_prefix.
void rewrite_path(const ForwardOptions& options, std::string& target) {
  if (target.empty() || target.front() != '/') return;
  if (!options.strip_prefix.empty() && target.rfind(options.strip_prefix, 0) == 0) {
    const size_t n = options.strip_prefix.size();
    const bool boundary = target.size() == n || target[n] == '/' || target[n] == '?' ||
                          options.strip_prefix.back() == '/';
    if (boundary) {
      target.erase(0, n);
      if (target.empty() || target.front() != '/') target.insert(0, "/");
    }
  }
  if (!options.add_prefix.empty()) {
    std::string_view prefix = options.add_prefix;
    if (prefix.back() == '/') prefix.remove_suffix(1);
    target.insert(0, prefix);
  }
}

void apply_header_rewrite(const config::HeaderRewrite& rewrite, mh::HeaderMap& headers) {
  for (const std::string& name : rewrite.remove) headers.remove(name);
  for (const auto& [name, value] : rewrite.add) headers.set(name, value);
}

void prepare_upstream_head(const ForwardOptions& options, mh::Request& request) {
  mh::RequestHead& head = request.head;
  if (!head.target.empty() && head.target.front() != '/' && head.target != "*") {
    std::string authority(head.authority());
    head.target = std::string(head.path_and_query());
    if (head.target.empty() || head.target.front() == '?') head.target.insert(0, "/");
    head.headers.set("Host", authority);
  }
  remove_hop_by_hop(head.headers);
  head.headers.remove("content-length");
  // A trusted proxy's X-Forwarded-For is appended to; anyone else's claim is replaced.
  std::optional<std::string_view> forwarded = head.headers.get("x-forwarded-for");
  if (forwarded && !forwarded->empty() && trusted(options, request.connection)) {
    head.headers.set("X-Forwarded-For",
                     std::string(*forwarded) + ", " + std::string(client_ip(request.connection)));
  } else {
    head.headers.set("X-Forwarded-For", client_ip(request.connection));
  }
  head.headers.set("X-Forwarded-Proto",
                   request.connection && request.connection->tls ? "https" : "http");
  std::string id;
  if (auto existing = head.headers.get("x-request-id"); existing && !existing->empty()) {
    id = std::string(*existing);
  } else {
    id = new_request_id();
    head.headers.add("X-Request-Id", id);
  }
  if (request.notes) request.notes->request_id = std::move(id);
  // An HTTP/1.0 client may omit Host; HttpForward::call names the upstream then.
}

// The Host of a request that came without one (HTTP/1.0): the upstream's authority, as nginx's
// proxy_pass sends. An empty Host is refused by many servers (nginx answers 400).
std::string upstream_authority(const transport::SocketAddress& address,
                               const std::string& server_name) {
  if (!server_name.empty()) return server_name;
  if (address.is_unix()) return "localhost";
  return address.to_string();
}

mh::Response error_response(mh::Request& request, int status, const std::string& why) {
  if (request.notes) request.notes->error = why;
  mh::Response r = mh::text_response(status);
  return r;
}

bool stale_connection_error(const Error& e) {
  return e.code() == ErrorCode::kConnectionReset || e.code() == ErrorCode::kClosed ||
         e.code() == ErrorCode::kIo;
}

}  // namespace

// --- HttpForward --------------------------------------------------------------------------

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
    case config::UpstreamHttpVersion::kHttp2:
      return true;
    case config::UpstreamHttpVersion::kAuto:
      return options_.tls && pool_->speaks_h2(key);
    case config::UpstreamHttpVersion::kHttp11:
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
      if (options_.version == config::UpstreamHttpVersion::kAuto) {
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
    const size_t index = upstreams_->pick(rt->now());
    const transport::SocketAddress& address = upstreams_->at(index).address;
    const std::string& server_name = options_.tls ? options_.server_names.at(index) : std::string();
    const std::string& key = pool_key(index);
    if (request.notes) request.notes->upstream = key;
    if (host_missing) request.head.headers.set("Host", upstream_authority(address, server_name));
    if (!upgrade && use_h2(key)) {
      Result<mh::Response> answered = co_await forward_h2(request, index, key, te_trailers);
      if (answered) co_return answered;
      last_error = answered.error().to_string();
      continue;  // could not connect: the next upstream, if retryable
    }

    bool stale_retry_left = true;  // one retry when a pooled connection turns out dead
    while (true) {
      // An upgraded connection is never pooled and never reused: take a fresh one.
      std::unique_ptr<ClientConnection> conn = upgrade ? nullptr : pool_->take(key);
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
      std::weak_ptr<ConnectionPool> pool = pool_;
      std::shared_ptr<UpstreamSet> set = upstreams_;
      response.body = ClientConnection::take_body(
          std::move(conn), options_.response_timeout,
          [pool, key, set, index](std::unique_ptr<ClientConnection> c, bool reusable) {
            set->end(index);
            if (!reusable) return;
            if (auto p = pool.lock()) p->give(key, std::move(c));
          });
      co_return response;
    }
  }
  co_return error_response(request, 502, last_error);
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
    }
  }
  return keys_[index];
}

// --- DirectAnswer, RouteTable ---------------------------------------------------------------

Task<Result<mh::Response>> DirectAnswer::call(mh::Request request) {
  (void)request;
  mh::Response r;
  r.head.status = response_.status;
  for (const auto& [name, value] : response_.headers) r.head.headers.add(name, value);
  r.body = std::make_unique<mh::StringBody>(response_.body);
  co_return r;
}

Task<Result<mh::Response>> RouteTable::call(mh::Request request) {
  std::optional<size_t> route = router_.find(request.head.authority(), request.head.path());
  if (!route) co_return error_response(request, 404, "no route");
  co_return co_await routes_[*route]->call(std::move(request));
}

// --- AccessLog ----------------------------------------------------------------------------

namespace {

// Wraps a response body to count what is sent, and writes the access line when the body ends
// or is dropped (after the response went out, or the client went away).
class LoggedBody final : public mh::Body {
 public:
  struct Line {
    std::string server, client, method, target;
    int status = 0;
    mh::RequestNotes notes;
    runtime::TimePoint start;
  };
  LoggedBody(std::unique_ptr<mh::Body> inner, Line line,
             std::shared_ptr<metrics::HttpServerStats> stats)
      : inner_(std::move(inner)), line_(std::move(line)), stats_(std::move(stats)) {}
  ~LoggedBody() override {
    if (stats_) stats_->observe(line_.status, runtime::Runtime::current()->now() - line_.start);
    write_line();
  }

  Task<Result<IoBuffer>> read() override {
    if (!inner_) co_return IoBuffer();
    Result<IoBuffer> piece = co_await inner_->read();
    if (!piece) {
      if (line_.notes.error.empty())
        line_.notes.error = "response body: " + piece.error().to_string();
      co_return piece;
    }
    bytes_ += piece->size();
    co_return piece;
  }
  std::optional<uint64_t> length() const override {
    return inner_ ? inner_->length() : std::optional<uint64_t>(0);
  }
  const mh::HeaderMap* trailers() const override { return inner_ ? inner_->trailers() : nullptr; }

 private:
  void write_line() {
    if (!access_log_enabled()) return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        runtime::Runtime::current()->now() - line_.start);
    write_access_line(
        fmt::format("http server={} client={} method={} target={} status={} bytes={} upstream={} "
                    "duration_ms={} request_id={}{}{}",
                    line_.server, line_.client, line_.method, line_.target, line_.status, bytes_,
                    line_.notes.upstream.empty() ? "-" : line_.notes.upstream, ms.count(),
                    line_.notes.request_id.empty() ? "-" : line_.notes.request_id,
                    line_.notes.error.empty() ? "" : " error=", line_.notes.error));
  }
  std::unique_ptr<mh::Body> inner_;
  Line line_;
  std::shared_ptr<metrics::HttpServerStats> stats_;
  uint64_t bytes_ = 0;
};

std::string printable_target(std::string_view target) {
  // Targets are checked ASCII without spaces by the codec; cap the length for the log.
  return std::string(target.substr(0, 2048));
}

}  // namespace

Task<Result<mh::Response>> AccessLog::call(mh::Request request) {
  LoggedBody::Line line;
  line.start = runtime::Runtime::current()->now();
  if (access_log_enabled()) {  // the strings are for the log line only
    line.server = server_name_;
    line.client = request.connection ? request.connection->peer_text : "-";
    line.method = request.head.method;
    line.target = printable_target(request.head.target);
  }
  mh::RequestNotes notes;
  request.notes = &notes;
  Result<mh::Response> response = co_await inner_->call(std::move(request));
  if (!response) {
    notes.error = response.error().to_string();
    response = mh::text_response(502);
  }
  line.status = response->head.status;
  line.notes = std::move(notes);
  response->body = std::make_unique<LoggedBody>(std::move(response->body), std::move(line), stats_);
  co_return response;
}

// --- HttpFactory --------------------------------------------------------------------------

mh::h2::Options h2_options(const config::ServerConfig& server) {
  const config::Http2Config& c = server.http2;
  mh::h2::Options o;
  o.max_concurrent_streams = c.max_concurrent_streams;
  o.initial_stream_window = c.initial_stream_window;
  o.connection_window = c.connection_window;
  o.max_header_list_size = c.max_header_list_size;
  o.max_continuations = c.max_continuations;
  o.reset_burst = c.max_resets_burst;
  o.reset_rate_per_sec = c.max_resets_per_sec;
  o.max_control_frames_per_sec = c.max_control_frames_per_sec;
  o.max_consecutive_empty_frames = c.max_consecutive_empty_frames;
  o.max_priority_frames_per_stream = c.max_priority_frames_per_stream;
  o.max_request_body = server.max_request_body_bytes;
  if (server.timeout.server_keepalive.count() > 0) o.idle_timeout = server.timeout.server_keepalive;
  o.read_body_timeout = server.timeout.server_read_body;
  o.write_timeout = server.timeout.server_write;
  return o;
}

namespace {

const RouteTable* find_route_table(const HttpService* service) {
  while (service) {
    if (const auto* table = dynamic_cast<const RouteTable*>(service)) return table;
    const auto* layer = dynamic_cast<const Layer<mh::Request, mh::Response>*>(service);
    if (!layer) return nullptr;
    service = layer->inner().get();
  }
  return nullptr;
}

std::vector<Upstream> http_upstreams_of(const config::RouteConfig& route) {
  std::vector<Upstream> out;
  for (const config::Upstream& u : route.upstreams) out.push_back({u.endpoint.address, u.weight});
  return out;
}

}  // namespace

Result<std::shared_ptr<HttpService>> HttpFactory::make_from(
    const std::shared_ptr<HttpService>& previous) const {
  const RouteTable* old = find_route_table(previous.get());
  std::shared_ptr<ConnectionPool> pool =
      old ? old->pool() : std::make_shared<ConnectionPool>(ConnectionPool::Options{});
  // Counters carry over while the server keeps its name (totals do not reset on reload).
  std::shared_ptr<metrics::HttpServerStats> stats;
  if (const auto* log = dynamic_cast<const AccessLog*>(previous.get());
      log && log->stats() && log->stats()->server == server_.name) {
    stats = log->stats();
  } else {
    stats = metrics::Registry::global().http(server_.name);
  }
  pool->set_gauge(stats);
  pool->set_max_idle_per_upstream(server_.upstream_max_idle_connections);
  ForwardOptions options;
  options.connect_timeout = server_.timeout.upstream_connect;
  options.response_timeout = server_.timeout.upstream_read;
  options.version = server_.upstream_http_version;
  options.h2 = h2_options(server_);
  options.h2.read_body_timeout = server_.timeout.upstream_read;

  Router router;
  std::vector<std::shared_ptr<HttpService>> routes;
  for (size_t r = 0; r < server_.routes.size(); ++r) {
    const config::RouteConfig& route = server_.routes[r];
    if (auto added = router.add(route.host, route.path); !added) return std::move(added).error();
    if (route.direct) {
      routes.push_back(std::make_shared<DirectAnswer>(*route.direct));
      continue;
    }
    std::vector<Upstream> upstreams = http_upstreams_of(route);
    std::shared_ptr<UpstreamSet> set;
    if (old) {
      for (const auto& r : old->routes()) {
        const auto* forward = dynamic_cast<const HttpForward*>(r.get());
        if (forward && forward->upstreams()->same_as(upstreams, route.load_balancer)) {
          set = forward->upstreams();
          break;
        }
      }
    }
    if (!set) set = std::make_shared<UpstreamSet>(std::move(upstreams), route.load_balancer);
    ForwardOptions route_options = options;
    route_options.host_rewrite = route.host_rewrite;
    route_options.strip_prefix = route.strip_prefix;
    route_options.add_prefix = route.add_prefix;
    route_options.request_headers = route.request_headers;
    route_options.response_headers = route.response_headers;
    route_options.trusted_proxies = server_.trusted_proxies;
    route_options.websocket = route.websocket;
    if (server_.timeout.tcp_idle.count() > 0) {
      route_options.tunnel_idle_timeout = server_.timeout.tcp_idle;
    }
    if (r < upstream_tls_.size() && upstream_tls_[r]) {
      route_options.tls = upstream_tls_[r];
      for (const config::Upstream& u : route.upstreams) {
        route_options.server_names.push_back(
            !route.upstream_tls->sni.empty() ? route.upstream_tls->sni : u.endpoint.uri.host);
      }
    }
    routes.push_back(std::make_shared<HttpForward>(std::move(set), pool, route_options, stats));
  }
  std::shared_ptr<HttpService> chain =
      std::make_shared<RouteTable>(std::move(router), std::move(routes), pool);
  chain = std::make_shared<AccessLog>(server_.name, std::move(chain), std::move(stats));
  return chain;
}

}  // namespace monolake::proxy::http
