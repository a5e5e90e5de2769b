// TLS for Monolake: one interface, two backends (OpenSSL 3 and GnuTLS 3.7) chosen by name at
// run time, so an operator can switch library by configuration if one has a critical defect.
//
//   auto keys = tls::TicketKeys::generate();
//   auto server = tls::ServerContext::create(tls::Backend::kOpenSsl, config, keys).value();
//   Result<tls::TlsStream> s = co_await server->accept(std::move(tcp_stream));   // handshake
//   co_await s->read_some(buffer); co_await s->write_all(std::move(out)); co_await s->shutdown();
//
// Contexts are immutable once built and shared by every worker thread (a reload builds a new
// one and swaps it in; connections keep the one they started with). A TlsStream belongs to
// the thread that made it, like the transport::Stream it wraps. The TLS libraries never touch
// the socket: they work on memory buffers that the stream fills and drains with the runtime's
// owned-buffer I/O. No OpenSSL or GnuTLS header is visible through this one.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::tls {

using runtime::BufResult;
using runtime::Task;

enum class Backend { kOpenSsl, kGnuTls };
// "openssl" | "gnutls".
Result<Backend> parse_backend(std::string_view name);
std::string_view backend_name(Backend backend);

enum class Version { kTls12, kTls13 };
std::string_view version_name(Version version);
// "1.2" | "1.3" (also "TLSv1.2" | "TLSv1.3"); TLS 1.1 and older are not supported.
Result<Version> parse_version(std::string_view text);

// One certificate chain and its private key (PEM: PKCS#1, PKCS#8 or SEC1 EC; encrypted PKCS#8
// with a passphrase). `names` are the SNI names it serves (exact or "*.suffix"); the first
// certificate of a server is also the default for names that match none.
struct Certificate {
  std::string chain_file;
  std::string key_file;
  std::string key_passphrase;
  std::vector<std::string> names;
};

// The Mozilla "intermediate" profile: TLS 1.2 with ECDHE/DHE and AEAD ciphers, TLS 1.3 suites.
inline constexpr std::string_view kDefaultCipherPolicy = "intermediate";

struct ServerConfig {
  std::vector<Certificate> certificates;  // at least one; the first is the default
  std::vector<std::string> alpn;          // server's preference order, e.g. {"h2", "http/1.1"}
  Version min_version = Version::kTls12;
  Version max_version = Version::kTls13;
  // "intermediate" (default) or "modern" (TLS 1.3 only suites).
  std::string cipher_policy = std::string(kDefaultCipherPolicy);
  std::string client_ca_file;  // non-empty: ask for a client certificate, verified against it
  bool require_client_certificate = false;
  bool session_tickets = true;
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
};

struct ClientConfig {
  std::string ca_file;  // empty: the system store
  bool verify = true;   // verify the chain and the host name
  std::vector<std::string> alpn;
  Version min_version = Version::kTls12;
  Version max_version = Version::kTls13;
  std::string cipher_policy = std::string(kDefaultCipherPolicy);
  Certificate client_certificate;  // optional (empty chain_file: none)
  bool session_resumption = true;
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
};

// Session-ticket keys shared by all workers of a process, so a ticket issued by one worker is
// accepted by another; exported and imported across a binary upgrade; rotated periodically
// (the previous keys still decrypt, only the newest encrypts). Thread-safe.
class TicketKeys {
 public:
  static constexpr size_t kKeySize = 80;  // 16-byte name, 32-byte cipher key, 32-byte MAC key
  static constexpr size_t kMaxKeys = 3;   // the current key and two before it

  static std::shared_ptr<TicketKeys> generate();
  // The format of export_keys(): hex, keys newest first, separated by ':'.
  static Result<std::shared_ptr<TicketKeys>> import_keys(std::string_view text);
  std::string export_keys() const;

  // Makes a new key current; the oldest beyond kMaxKeys is dropped.
  void rotate();

  // Snapshot of the raw keys, newest first (for the backends).
  std::vector<std::string> keys() const;
  // The key whose 16-byte name is `name`, if still kept.
  std::optional<std::string> find(std::string_view name) const;
  std::string current() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> keys_;  // newest first
};

class TlsStream;

namespace detail {
class Engine;
class ServerBackend;
class ClientBackend;
}  // namespace detail

class ServerContext {
 public:
  // Loads certificates and keys and checks the configuration. Errors name the file and reason.
  static Result<std::shared_ptr<ServerContext>> create(Backend backend, const ServerConfig& config,
                                                       std::shared_ptr<TicketKeys> ticket_keys);
  ~ServerContext();

  // Runs the server handshake on `stream` (bounded by handshake_timeout). `read_ahead`: bytes
  // already read from `stream` by code before the handshake (a connection layer that read past
  // a PROXY protocol header), taken as the first ciphertext from the client.
  Task<Result<TlsStream>> accept(transport::Stream stream, IoBuffer read_ahead = {}) const;

  Backend backend() const { return backend_; }
  const ServerConfig& config() const { return config_; }

 private:
  ServerContext(Backend backend, ServerConfig config, std::shared_ptr<detail::ServerBackend> impl);
  Backend backend_;
  ServerConfig config_;
  std::shared_ptr<detail::ServerBackend> impl_;
};

class ClientContext {
 public:
  static Result<std::shared_ptr<ClientContext>> create(Backend backend, const ClientConfig& config);
  ~ClientContext();

  // Runs the client handshake on `stream`. `server_name` is sent as SNI and, when verifying,
  // must match the certificate (so it may not be empty then: an error, not a skipped check). A
  // session from an earlier connection to the same name is offered for resumption.
  Task<Result<TlsStream>> connect(transport::Stream stream, std::string server_name) const;

  Backend backend() const { return backend_; }

 private:
  ClientContext(Backend backend, ClientConfig config, std::shared_ptr<detail::ClientBackend> impl);
  Backend backend_;
  ClientConfig config_;
  std::shared_ptr<detail::ClientBackend> impl_;
};

// A TLS connection over a transport::Stream, read and written like one.
class TlsStream {
 public:
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  // Waits for and decrypts the next data, appending it to `into`. 0 = the peer closed: with
  // close_notify (closed_cleanly() is then true) or by ending the transport without it.
  Task<Result<size_t>> read_some(IoBuffer& into);
  // Encrypts and sends all of `buffer`.
  Task<BufResult<size_t>> write_all(IoBuffer buffer);
  // Sends close_notify (the transport stays open; destroy or close it after).
  Task<Result<void>> shutdown();
  // Half-close, as transport::Stream::shutdown_write(): close_notify, then the transport's
  // write side is shut. Reading goes on (TLS 1.3 peers may keep sending), so a TlsStream can be
  // one side of transport::copy_bidirectional.
  Task<Result<void>> shutdown_write();

  std::string alpn() const;         // negotiated protocol, or empty
  std::string server_name() const;  // SNI the client sent (server side) / asked (client)
  // The subject of the certificate the peer presented ("CN=client,O=Example", RFC 4514), or
  // empty when it sent none. On a server with client_ca_file, a non-empty one was verified.
  std::string peer_subject() const;
  bool resumed() const;             // the handshake resumed an earlier session
  bool closed_cleanly() const { return close_notify_received_; }
  Version version() const;
  std::string cipher() const;

  transport::Stream& transport() { return stream_; }

 private:
  friend class ServerContext;
  friend class ClientContext;
  TlsStream(transport::Stream stream, std::unique_ptr<detail::Engine> engine);
  // Sends whatever ciphertext the engine has produced.
  Task<Result<void>> flush();
  // Reads more ciphertext from the transport into the engine. 0 = transport end of stream.
  Task<Result<size_t>> fill();
  Task<Result<void>> handshake();

  transport::Stream stream_;
  std::unique_ptr<detail::Engine> engine_;
  bool close_notify_received_ = false;
  // A read and a write may be in flight at once (full-duplex proxying); only one of them sends
  // ciphertext at a time, or their records could interleave on the socket.
  bool flushing_ = false;
};

// Holds the current ServerContext of a listener for certificate reload: reload() builds a new
// context from the same configuration (re-reading the files) and swaps it in; handshakes that
// start afterwards use it, open connections are untouched. Thread-safe.
class ReloadableServerContext {
 public:
  static Result<std::unique_ptr<ReloadableServerContext>> create(
      Backend backend, ServerConfig config, std::shared_ptr<TicketKeys> ticket_keys);
  std::shared_ptr<const ServerContext> current() const;
  // On failure the current context stays in force and the error says why.
  Result<void> reload();
  Result<void> reload(ServerConfig config);

 private:
  ReloadableServerContext() = default;
  Result<void> swap_in(ServerConfig config);  // with reload_mutex_ held
  Backend backend_ = Backend::kOpenSsl;
  std::shared_ptr<TicketKeys> ticket_keys_;
  std::mutex reload_mutex_;   // one reload at a time, so a slower one cannot undo a newer one
  mutable std::mutex mutex_;  // guards config_ and current_
  ServerConfig config_;
  std::shared_ptr<const ServerContext> current_;
};

}  // namespace monolake::tls
