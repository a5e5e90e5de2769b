// The private interface between tls/ and its backends (openssl/, gnutls/). Not public API.
//
// An Engine is one TLS connection's protocol state and does no I/O: ciphertext from the peer is
// fed in, ciphertext to send is drained out, and TlsStream moves both over the socket with the
// runtime. That keeps the TLS libraries away from file descriptors (no blocking calls) and lets
// one driver serve both backends.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/buffer.h"
#include "base/result.h"
#include "tls/tls.h"

namespace monolake::tls::detail {

class Engine {
 public:
  enum class Status {
    kDone,       // the step finished (handshake complete, data read)
    kWantInput,  // send any output, feed more ciphertext, then call again
    kClosed,     // the peer sent close_notify
  };

  virtual ~Engine() = default;

  // Ciphertext received from the peer.
  virtual void feed(std::string_view ciphertext) = 0;
  // Appends ciphertext waiting to be sent to `out`.
  virtual void drain(IoBuffer& out) = 0;
  virtual bool has_output() const = 0;

  // Advances the handshake. Errors carry ErrorCode::kProtocol and the library's reason
  // (certificate verification failure, no shared cipher, unsupported version...).
  virtual Result<Status> handshake() = 0;
  // Decrypts what is available into `into`; kDone means at least one byte was appended.
  virtual Result<Status> read(IoBuffer& into) = 0;
  // Encrypts all of `plaintext` into the output.
  virtual Result<void> write(std::string_view plaintext) = 0;
  // Queues close_notify.
  virtual Result<void> close_notify() = 0;

  virtual std::string alpn() const = 0;
  virtual std::string server_name() const = 0;
  // The subject of the certificate the peer presented (RFC 4514 form), or empty.
  virtual std::string peer_subject() const = 0;
  virtual bool resumed() const = 0;
  virtual Version version() const = 0;
  virtual std::string cipher() const = 0;
};

class ServerBackend {
 public:
  virtual ~ServerBackend() = default;
  virtual Result<std::unique_ptr<Engine>> new_engine() const = 0;
};

class ClientBackend {
 public:
  virtual ~ClientBackend() = default;
  // `server_name`: SNI and the name to verify; a cached session for it is offered.
  virtual Result<std::unique_ptr<Engine>> new_engine(const std::string& server_name) const = 0;
};

// Backend factories (openssl/, gnutls/).
// Backends are shared: each engine keeps the state of the backend that made it alive (its
// callbacks can run for as long as the connection lives), so a reload can drop a context while
// its connections go on.
Result<std::shared_ptr<ServerBackend>> make_openssl_server(const ServerConfig& config,
                                                           std::shared_ptr<TicketKeys> keys);
Result<std::shared_ptr<ClientBackend>> make_openssl_client(const ClientConfig& config);
Result<std::shared_ptr<ServerBackend>> make_gnutls_server(const ServerConfig& config,
                                                          std::shared_ptr<TicketKeys> keys);
Result<std::shared_ptr<ClientBackend>> make_gnutls_client(const ClientConfig& config);

// Shared helpers for the backends.
// Matches an SNI name against a certificate name ("example.com" or "*.example.com", one label).
bool name_matches(std::string_view pattern, std::string_view name);
// What a resumed session must have been established under: the client-certificate policy
// (CA bundle contents and whether a certificate is required). A resumed handshake sends no
// certificates, so a session made under another policy (before a reload that added mTLS, or on
// another listener sharing the TicketKeys) must not resume; backends bind their tickets to a
// digest of this.
Result<std::string> resumption_policy(const ServerConfig& config);
// Reads a whole file, with an error naming it.
Result<std::string> read_file(const std::string& path, std::string_view what);
// A protocol error with the backend's reason.
inline Error tls_error(std::string message) {
  return Error(ErrorCode::kProtocol, std::move(message));
}

}  // namespace monolake::tls::detail
