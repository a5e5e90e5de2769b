#include "tls/tls.h"

#include "base/log.h"
#include "runtime/time.h"
#include "tls/engine.h"

namespace monolake::tls {

using detail::Engine;

// --- contexts ---------------------------------------------------------------------------------

// Checks shared by servers and clients, so both backends refuse the same configurations.
static Result<void> check_versions_and_policy(Version min, Version max, const std::string& policy) {
  if (min > max) return Error(ErrorCode::kInvalidArgument, "tls: min_version is above max_version");
  if (policy != "intermediate" && policy != "modern") {
    return Error(
        ErrorCode::kInvalidArgument,
        fmt::format("tls: unknown cipher policy '{}': expected intermediate or modern", policy));
  }
  if (policy == "modern" && max < Version::kTls13) {
    return Error(ErrorCode::kInvalidArgument,
                 "tls: cipher policy 'modern' is TLS 1.3 only, but max_version is TLS 1.2");
  }
  return ok();
}

static Result<void> check_server_config(const ServerConfig& config) {
  if (config.certificates.empty()) {
    return Error(ErrorCode::kInvalidArgument, "tls: a server needs at least one certificate");
  }
  return check_versions_and_policy(config.min_version, config.max_version, config.cipher_policy);
}

Result<std::shared_ptr<ServerContext>> ServerContext::create(Backend backend,
                                                             const ServerConfig& config,
                                                             std::shared_ptr<TicketKeys> keys) {
  if (auto r = check_server_config(config); !r) return std::move(r).error();
  if (!keys) keys = TicketKeys::generate();
  auto impl = backend == Backend::kOpenSsl ? detail::make_openssl_server(config, keys)
                                           : detail::make_gnutls_server(config, keys);
  if (!impl) return std::move(impl).error();
  return std::shared_ptr<ServerContext>(new ServerContext(backend, config, std::move(*impl)));
}

ServerContext::ServerContext(Backend backend, ServerConfig config,
                             std::shared_ptr<detail::ServerBackend> impl)
    : backend_(backend), config_(std::move(config)), impl_(std::move(impl)) {}

ServerContext::~ServerContext() = default;

static Error handshake_failure(Error error, std::string_view role) {
  if (error.code() == ErrorCode::kTimeout) {
    return Error(ErrorCode::kTimeout, fmt::format("TLS {} handshake timed out", role));
  }
  std::string message = fmt::format("TLS {} handshake: {}", role, error.message());
  return Error(error.code(), std::move(message), error.sys_errno());
}

Task<Result<TlsStream>> ServerContext::accept(transport::Stream stream,
                                              IoBuffer read_ahead) const {
  auto engine = impl_->new_engine();
  if (!engine) co_return std::move(engine).error();
  if (!read_ahead.empty()) (*engine)->feed(read_ahead.view());
  TlsStream tls(std::move(stream), std::move(*engine));
  Result<void> done = co_await runtime::with_timeout(tls.handshake(), config_.handshake_timeout);
  if (!done) co_return handshake_failure(std::move(done).error(), "server");
  co_return std::move(tls);
}

Result<std::shared_ptr<ClientContext>> ClientContext::create(Backend backend,
                                                             const ClientConfig& config) {
  if (auto r =
          check_versions_and_policy(config.min_version, config.max_version, config.cipher_policy);
      !r) {
    return std::move(r).error();
  }
  auto impl = backend == Backend::kOpenSsl ? detail::make_openssl_client(config)
                                           : detail::make_gnutls_client(config);
  if (!impl) return std::move(impl).error();
  return std::shared_ptr<ClientContext>(new ClientContext(backend, config, std::move(*impl)));
}

ClientContext::ClientContext(Backend backend, ClientConfig config,
                             std::shared_ptr<detail::ClientBackend> impl)
    : backend_(backend), config_(std::move(config)), impl_(std::move(impl)) {}

ClientContext::~ClientContext() = default;

Task<Result<TlsStream>> ClientContext::connect(transport::Stream stream,
                                               std::string server_name) const {
  if (config_.verify && server_name.empty()) {
    co_return Error(ErrorCode::kInvalidArgument,
                    "tls: verifying the server needs its name (or verify = false)");
  }
  auto engine = impl_->new_engine(server_name);
  if (!engine) co_return std::move(engine).error();
  TlsStream tls(std::move(stream), std::move(*engine));
  Result<void> done = co_await runtime::with_timeout(tls.handshake(), config_.handshake_timeout);
  if (!done) co_return handshake_failure(std::move(done).error(), "client");
  co_return std::move(tls);
}

// --- TlsStream --------------------------------------------------------------------------------

TlsStream::TlsStream(transport::Stream stream, std::unique_ptr<Engine> engine)
    : stream_(std::move(stream)), engine_(std::move(engine)) {}
TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

Task<Result<void>> TlsStream::flush() {
  // Another flush is sending: it keeps going until the engine has no output left, ours included.
  if (flushing_) co_return ok();
  flushing_ = true;
  Result<void> result = ok();
  while (engine_->has_output()) {
    IoBuffer out;
    engine_->drain(out);
    auto [written, rest] = co_await stream_.write_all(std::move(out));
    if (!written) {
      result = std::move(written).error();
      break;
    }
  }
  flushing_ = false;
  co_return result;
}

Task<Result<size_t>> TlsStream::fill() {
  IoBuffer in;
  Result<size_t> n = co_await stream_.read_some(in);
  if (n && *n > 0) engine_->feed(in.view());
  co_return n;
}

Task<Result<void>> TlsStream::handshake() {
  while (true) {
    Result<Engine::Status> step = engine_->handshake();
    // Send what the engine produced even on failure: that is the alert telling the peer why.
    Result<void> flushed = co_await flush();
    if (!step) co_return std::move(step).error();
    if (!flushed) co_return std::move(flushed).error();
    if (*step == Engine::Status::kDone) co_return ok();
    if (*step == Engine::Status::kClosed) {
      co_return Error(ErrorCode::kClosed, "peer closed the connection during the handshake");
    }
    Result<size_t> n = co_await fill();
    if (!n) co_return std::move(n).error();
    if (*n == 0)
      co_return Error(ErrorCode::kClosed, "peer closed the connection during the handshake");
  }
}

Task<Result<size_t>> TlsStream::read_some(IoBuffer& into) {
  const size_t before = into.size();
  while (true) {
    Result<Engine::Status> step = engine_->read(into);
    // Reading can produce output (TLS 1.3 key updates, alerts).
    Result<void> flushed = co_await flush();
    if (!step) co_return std::move(step).error();
    if (*step == Engine::Status::kDone) co_return into.size() - before;
    if (*step == Engine::Status::kClosed) {
      close_notify_received_ = true;
      co_return 0;
    }
    if (!flushed) co_return std::move(flushed).error();
    Result<size_t> n = co_await fill();
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return 0;  // the transport ended without close_notify
  }
}

Task<BufResult<size_t>> TlsStream::write_all(IoBuffer buffer) {
  const size_t size = buffer.size();
  if (Result<void> r = engine_->write(buffer.view()); !r) {
    co_return BufResult<size_t>{std::move(r).error(), std::move(buffer)};
  }
  buffer.consume(size);
  Result<void> flushed = co_await flush();
  if (!flushed) co_return BufResult<size_t>{std::move(flushed).error(), std::move(buffer)};
  co_return BufResult<size_t>{size, std::move(buffer)};
}

Task<Result<void>> TlsStream::shutdown() {
  if (Result<void> r = engine_->close_notify(); !r) co_return r;
  co_return co_await flush();
}

Task<Result<void>> TlsStream::shutdown_write() {
  Result<void> notified = co_await shutdown();
  Result<void> shut = co_await stream_.shutdown_write();
  if (!notified) co_return notified;
  co_return shut;
}

std::string TlsStream::alpn() const { return engine_->alpn(); }
std::string TlsStream::server_name() const { return engine_->server_name(); }
std::string TlsStream::peer_subject() const { return engine_->peer_subject(); }

bool TlsStream::resumed() const { return engine_->resumed(); }
Version TlsStream::version() const { return engine_->version(); }
std::string TlsStream::cipher() const { return engine_->cipher(); }

// --- ReloadableServerContext -----------------------------------------------------------------

Result<std::unique_ptr<ReloadableServerContext>> ReloadableServerContext::create(
    Backend backend, ServerConfig config, std::shared_ptr<TicketKeys> ticket_keys) {
  std::unique_ptr<ReloadableServerContext> holder(new ReloadableServerContext());
  holder->backend_ = backend;
  holder->ticket_keys_ = ticket_keys ? std::move(ticket_keys) : TicketKeys::generate();
  if (auto r = holder->reload(std::move(config)); !r) return std::move(r).error();
  return holder;
}

std::shared_ptr<const ServerContext> ReloadableServerContext::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

Result<void> ReloadableServerContext::reload() {
  std::lock_guard<std::mutex> one_at_a_time(reload_mutex_);
  ServerConfig config;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    config = config_;
  }
  return swap_in(std::move(config));
}

Result<void> ReloadableServerContext::reload(ServerConfig config) {
  std::lock_guard<std::mutex> one_at_a_time(reload_mutex_);
  return swap_in(std::move(config));
}

Result<void> ReloadableServerContext::swap_in(ServerConfig config) {
  auto fresh = ServerContext::create(backend_, config, ticket_keys_);
  if (!fresh) return std::move(fresh).error();
  std::lock_guard<std::mutex> lock(mutex_);
  config_ = std::move(config);
  current_ = std::move(*fresh);
  return ok();
}

}  // namespace monolake::tls
