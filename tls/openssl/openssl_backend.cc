// The OpenSSL 3 backend: SSL objects over memory BIOs, so OpenSSL never touches a socket.
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <map>
#include <mutex>

#include "base/log.h"
#include "tls/engine.h"

namespace monolake::tls::detail {

namespace {

// Mozilla "intermediate" (TLS 1.2 part; TLS 1.3 suites are listed separately).
constexpr char kIntermediateCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// Drains OpenSSL's thread-local error queue into one readable string.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

int protocol_version(Version v) { return v == Version::kTls12 ? TLS1_2_VERSION : TLS1_3_VERSION; }

// ALPN names in the wire format: length-prefixed strings.
std::string alpn_wire(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) continue;
    out.push_back(static_cast<char>(n.size()));
    out += n;
  }
  return out;
}

int passphrase_cb(char* buf, int size, int, void* userdata) {
  const auto* pass = static_cast<const std::string*>(userdata);
  if (!pass || pass->empty()) return 0;
  const int n = std::min(size, static_cast<int>(pass->size()));
  std::memcpy(buf, pass->data(), static_cast<size_t>(n));
  return n;
}

Result<void> configure_common(SSL_CTX* ctx, Version min, Version max, const std::string& policy) {
  SSL_CTX_set_min_proto_version(ctx, protocol_version(min));
  SSL_CTX_set_max_proto_version(ctx, protocol_version(max));
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (policy == "modern") {
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  } else if (SSL_CTX_set_cipher_list(ctx, kIntermediateCiphers) != 1) {
    return tls_error("tls: cipher list: " + openssl_errors());
  }
  if (SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) {
    return tls_error("tls: TLS 1.3 suites: " + openssl_errors());
  }
  // Release buffers of idle connections.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return ok();
}

Result<void> load_certificate(SSL_CTX* ctx, const Certificate& cert) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.chain_file.c_str()) != 1) {
    return Error(ErrorCode::kInvalidArgument,
                 "tls: certificate " + cert.chain_file + ": " + openssl_errors());
  }
  // The passphrase callback reads this string during the load only.
  SSL_CTX_set_default_passwd_cb(ctx, passphrase_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&cert.key_passphrase));
  const int loaded = SSL_CTX_use_PrivateKey_file(ctx, cert.key_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  if (loaded != 1) {
    return Error(ErrorCode::kInvalidArgument,
                 "tls: private key " + cert.key_file + ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Error(ErrorCode::kInvalidArgument,
                 "tls: private key " + cert.key_file + " does not match " + cert.chain_file);
  }
  return ok();
}

// --- Engine -----------------------------------------------------------------------------------

class OpenSslEngine final : public Engine {
 public:
  OpenSslEngine(SSL* ssl, std::string server_name)
      : ssl_(ssl), server_name_(std::move(server_name)) {
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio_, -1);  // empty input means "retry", not end of stream
    SSL_set_bio(ssl_.get(), rbio_, wbio_);
    // For the client's session callbacks: the name the connection was asked for.
    SSL_set_app_data(ssl_.get(), &server_name_);
  }

  // SSL_free marks the session of a connection that sent no close_notify "not resumable"
  // (SSL 3 / TLS 1.0 rules; TLS 1.1 and later no longer ask for it), and that session object is
  // the one the client cache holds: every connection dropped without shutdown() would cost the
  // next one its resumption. Fatal alerts still invalidate the session when they happen.
  ~OpenSslEngine() override {
    SSL_set_shutdown(ssl_.get(), SSL_get_shutdown(ssl_.get()) | SSL_SENT_SHUTDOWN);
  }

  void feed(std::string_view ciphertext) override {
    BIO_write(rbio_, ciphertext.data(), static_cast<int>(ciphertext.size()));
  }

  void drain(IoBuffer& out) override {
    const size_t pending = BIO_ctrl_pending(wbio_);
    if (pending == 0) return;
    out.reserve(pending);
    const int n = BIO_read(wbio_, out.write_ptr(), static_cast<int>(pending));
    if (n > 0) out.commit(static_cast<size_t>(n));
  }

  bool has_output() const override { return BIO_ctrl_pending(wbio_) > 0; }

  Result<Status> handshake() override {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) return Status::kDone;
    return classify(r, "handshake");
  }

  Result<Status> read(IoBuffer& into) override {
    if (pending_) {
      Result<Status> earlier = std::move(*pending_);
      pending_.reset();
      return earlier;
    }
    bool got = false;
    while (true) {
      into.reserve(16 * 1024);
      ERR_clear_error();
      const int n = SSL_read(ssl_.get(), into.write_ptr(), static_cast<int>(into.writable_size()));
      if (n > 0) {
        into.commit(static_cast<size_t>(n));
        got = true;
        continue;
      }
      Result<Status> status = classify(n, "read");
      if (!got) return status;
      // Deliver what was decrypted first; a close or an error is reported on the next call.
      if (!status || *status == Status::kClosed) pending_ = std::move(status);
      return Status::kDone;
    }
  }

  Result<void> write(std::string_view plaintext) override {
    ERR_clear_error();
    size_t written = 0;
    while (written < plaintext.size()) {
      size_t n = 0;
      if (SSL_write_ex(ssl_.get(), plaintext.data() + written, plaintext.size() - written, &n) !=
          1) {
        return tls_error("TLS write: " + openssl_errors());
      }
      written += n;
    }
    return ok();
  }

  Result<void> close_notify() override {
    ERR_clear_error();
    if (SSL_shutdown(ssl_.get()) < 0) return tls_error("TLS shutdown: " + openssl_errors());
    return ok();
  }

  std::string alpn() const override {
    const unsigned char* data = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &data, &len);
    return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
  }
  std::string server_name() const override {
    if (!server_name_.empty()) return server_name_;
    const char* name = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
    return name ? name : "";
  }
  std::string peer_subject() const override {
    X509* peer = SSL_get0_peer_certificate(ssl_.get());
    if (!peer) return "";
    BIO* out = BIO_new(BIO_s_mem());
    if (!out) return "";
    X509_NAME_print_ex(out, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long size = BIO_get_mem_data(out, &data);
    std::string subject(data, size > 0 ? static_cast<size_t>(size) : 0);
    BIO_free(out);
    return subject;
  }
  bool resumed() const override { return SSL_session_reused(ssl_.get()) == 1; }
  Version version() const override {
    return SSL_version(ssl_.get()) == TLS1_3_VERSION ? Version::kTls13 : Version::kTls12;
  }
  std::string cipher() const override {
    const char* name = SSL_get_cipher_name(ssl_.get());
    return name ? name : "";
  }

  // Callbacks of the context this SSL came from can run for as long as the connection lives
  // (TLS 1.3 tickets arrive after the handshake), so the engine keeps that state alive even if
  // a reload has replaced the context.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  Result<Status> classify(int r, const char* what) {
    switch (SSL_get_error(ssl_.get(), r)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        return Status::kWantInput;
      case SSL_ERROR_ZERO_RETURN:
        return Status::kClosed;
      default:
        break;
    }
    const long verify = SSL_get_verify_result(ssl_.get());
    std::string reason = openssl_errors();
    if (verify != X509_V_OK) {
      reason = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify) +
               " (" + reason + ")";
    }
    return tls_error(std::string(what) + ": " + reason);
  }

  // First, so it is destroyed last: the SSL's context callbacks read the state it keeps alive.
  std::shared_ptr<const void> owner_;
  SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  std::string server_name_;
  // A read that decrypted data and then met a close or an error reports it on the next call.
  std::optional<Result<Status>> pending_;
};

// --- Server -----------------------------------------------------------------------------------

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Everything the server's OpenSSL callbacks read; shared with every engine it made.
class ServerState final : public ServerBackend, public std::enable_shared_from_this<ServerState> {
 public:
  Result<void> init(const ServerConfig& config, std::shared_ptr<TicketKeys> keys) {
    keys_ = std::move(keys);
    alpn_ = alpn_wire(config.alpn);
    auto policy = resumption_policy(config);
    if (!policy) return std::move(policy).error();
    unsigned digest_len = 0;
    if (EVP_Digest(policy->data(), policy->size(), session_context_, &digest_len, EVP_sha256(),
                   nullptr) != 1) {
      return tls_error("tls: SHA-256: " + openssl_errors());
    }
    for (const Certificate& cert : config.certificates) {
      CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
      if (!ctx) return tls_error("tls: SSL_CTX_new: " + openssl_errors());
      if (auto r = configure(ctx.get(), config); !r) return r;
      if (auto r = load_certificate(ctx.get(), cert); !r) return r;
      contexts_.push_back({cert.names, std::move(ctx)});
    }
    return ok();
  }

  Result<std::unique_ptr<Engine>> new_engine() const override {
    SSL* ssl = SSL_new(contexts_.front().ctx.get());
    if (!ssl) return tls_error("tls: SSL_new: " + openssl_errors());
    auto engine = std::make_unique<OpenSslEngine>(ssl, "");
    engine->keep_alive(shared_from_this());
    SSL_set_accept_state(ssl);
    return std::unique_ptr<Engine>(std::move(engine));
  }

 private:
  struct NamedContext {
    std::vector<std::string> names;
    CtxPtr ctx;
  };

  Result<void> configure(SSL_CTX* ctx, const ServerConfig& config) {
    if (auto r =
            configure_common(ctx, config.min_version, config.max_version, config.cipher_policy);
        !r) {
      return r;
    }
    // DHE-RSA suites of the intermediate profile need DH parameters: the RFC 7919 group sized
    // to the certificate's key.
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_ex_data(ctx, ex_index(), this);
    SSL_CTX_set_tlsext_servername_callback(ctx, &ServerState::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, this);
    if (!alpn_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &ServerState::on_alpn, this);
    // Sessions (tickets included) resume only under the same client-certificate policy.
    SSL_CTX_set_session_id_context(ctx, session_context_, sizeof session_context_);
    // Resumption is stateless (tickets), so every worker and a successor process can resume.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (config.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ServerState::on_ticket_key);
    } else {
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (!config.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, config.client_ca_file.c_str(), nullptr) != 1) {
        return Error(ErrorCode::kInvalidArgument,
                     "tls: client CA " + config.client_ca_file + ": " + openssl_errors());
      }
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(config.client_ca_file.c_str()));
      int mode = SSL_VERIFY_PEER;
      if (config.require_client_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(ctx, mode, nullptr);
    }
    return ok();
  }

  // SNI: switch the connection to the certificate whose names match; else keep the default.
  static int on_server_name(SSL* ssl, int*, void* arg) {
    auto* self = static_cast<ServerState*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;
    for (const NamedContext& nc : self->contexts_) {
      for (const std::string& pattern : nc.names) {
        if (name_matches(pattern, name)) {
          SSL_set_SSL_CTX(ssl, nc.ctx.get());
          return SSL_TLSEXT_ERR_OK;
        }
      }
    }
    return SSL_TLSEXT_ERR_OK;
  }

  static int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned inlen, void* arg) {
    auto* self = static_cast<ServerState*>(arg);
    unsigned char* selected = nullptr;
    const auto* ours = reinterpret_cast<const unsigned char*>(self->alpn_.data());
    // Server preference: the first of ours the client also offers.
    if (SSL_select_next_proto(&selected, outlen, ours, static_cast<unsigned>(self->alpn_.size()),
                              in, inlen) != OPENSSL_NPN_NEGOTIATED) {
      return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }

  // Session tickets sealed with the process-wide TicketKeys: AES-256-CBC + HMAC-SHA256.
  static int on_ticket_key(SSL* ssl, unsigned char* key_name, unsigned char* iv,
                           EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
    auto* self = static_cast<ServerState*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
    std::string key;
    int result = 1;
    if (encrypt) {
      key = self->keys_->current();
      std::memcpy(key_name, key.data(), 16);
      if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    } else {
      auto found = self->keys_->find(std::string_view(reinterpret_cast<char*>(key_name), 16));
      if (!found) return 0;  // unknown key: full handshake
      key = std::move(*found);
      // Accept, and issue a fresh ticket: when an older key sealed this one, and on every
      // TLS 1.3 resumption. There OpenSSL otherwise sends no ticket after a resumption, and
      // clients use a TLS 1.3 ticket once (RFC 8446 C.4; OpenSSL's client does), so every
      // other connection would be a full handshake.
      if (key != self->keys_->current() || SSL_version(ssl) >= TLS1_3_VERSION) result = 2;
    }
    const auto* aes_key = reinterpret_cast<const unsigned char*>(key.data() + 16);
    auto* mac_key = const_cast<char*>(key.data() + 48);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac_key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end(),
    };
    const int ok_cipher = encrypt
                              ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, aes_key, iv)
                              : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, aes_key, iv);
    if (ok_cipher != 1 || EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    return result;
  }

  std::shared_ptr<TicketKeys> keys_;
  std::string alpn_;
  unsigned char session_context_[32] = {};  // SHA-256 of resumption_policy()
  std::vector<NamedContext> contexts_;
};

// --- Client -----------------------------------------------------------------------------------

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

int client_ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The client context and its session cache; shared with every engine it made.
class ClientState final : public ClientBackend, public std::enable_shared_from_this<ClientState> {
 public:
  ~ClientState() {
    for (auto& [name, session] : sessions_) SSL_SESSION_free(session);
  }

  Result<void> init(const ClientConfig& config) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return tls_error("tls: SSL_CTX_new: " + openssl_errors());
    SSL_CTX* ctx = ctx_.get();
    if (auto r =
            configure_common(ctx, config.min_version, config.max_version, config.cipher_policy);
        !r) {
      return r;
    }
    verify_ = config.verify;
    if (config.verify) {
      const bool loaded = config.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                                 : SSL_CTX_load_verify_locations(
                                                       ctx, config.ca_file.c_str(), nullptr) == 1;
      if (!loaded) {
        return Error(ErrorCode::kInvalidArgument,
                     "tls: CA " +
                         (config.ca_file.empty() ? std::string("(system store)") : config.ca_file) +
                         ": " + openssl_errors());
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    const std::string alpn = alpn_wire(config.alpn);
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned>(alpn.size()));
    }
    if (!config.client_certificate.chain_file.empty()) {
      if (auto r = load_certificate(ctx, config.client_certificate); !r) return r;
    }
    if (config.session_resumption) {
      SSL_CTX_set_ex_data(ctx, client_ex_index(), this);
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(ctx, &ClientState::on_new_session);
      SSL_CTX_set_info_callback(ctx, &ClientState::on_info);
    }
    return ok();
  }

  Result<std::unique_ptr<Engine>> new_engine(const std::string& server_name) const override {
    SSL* ssl = SSL_new(ctx_.get());
    if (!ssl) return tls_error("tls: SSL_new: " + openssl_errors());
    auto engine = std::make_unique<OpenSslEngine>(ssl, server_name);
    engine->keep_alive(shared_from_this());
    const bool ip = is_ip_literal(server_name);
    if (!server_name.empty() && !ip) SSL_set_tlsext_host_name(ssl, server_name.c_str());
    if (verify_ && !server_name.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
      } else {
        SSL_set1_host(ssl, server_name.c_str());
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sessions_.find(server_name);
      if (it != sessions_.end()) {
        SSL_set_session(ssl, it->second);
        // TLS 1.3 tickets are for one use (RFC 8446 C.4: reuse links connections); the
        // connection stores the fresh ticket the server sends it.
        if (SSL_SESSION_get_protocol_version(it->second) == TLS1_3_VERSION) {
          SSL_SESSION_free(it->second);
          sessions_.erase(it);
        }
      }
    }
    SSL_set_connect_state(ssl);
    return std::unique_ptr<Engine>(std::move(engine));
  }

 private:
  // Keeps the newest session per server name for the next connection to it.
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    of(ssl)->store(ssl, session);
    return 1;  // we keep the reference
  }

  // TLS 1.2: a server resuming a session may renew its ticket (ours does when an older key
  // sealed it). OpenSSL then gives the connection a copy of the session holding the new ticket,
  // marks the old one (the one stored here) not resumable, and does not pass the copy to the
  // new-session callback, which it skips for resumed TLS 1.2 handshakes. Keep the copy.
  static void on_info(const SSL* ssl, int where, int) {
    if ((where & SSL_CB_HANDSHAKE_DONE) == 0) return;
    SSL* s = const_cast<SSL*>(ssl);
    if (SSL_session_reused(s) != 1 || SSL_version(s) >= TLS1_3_VERSION) return;
    if (SSL_SESSION* session = SSL_get1_session(s)) of(s)->store(s, session);
  }

  static ClientState* of(SSL* ssl) {
    return static_cast<ClientState*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_ex_index()));
  }

  // Takes over one reference to `session`. The key is the name the connection was made for
  // (new_engine looks it up by that): SNI and the verified name are missing for IP literals,
  // and the verified name also without verification.
  void store(SSL* ssl, SSL_SESSION* session) {
    const auto* name = static_cast<const std::string*>(SSL_get_app_data(ssl));
    const std::string key = name ? *name : std::string();
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = sessions_.emplace(key, session);
    if (!inserted) {
      // The same session again (a resumption without a new ticket) only drops a reference.
      SSL_SESSION* old = std::exchange(it->second, session);
      SSL_SESSION_free(old);
    }
  }

  CtxPtr ctx_;
  bool verify_ = true;
  mutable std::mutex mutex_;
  mutable std::map<std::string, SSL_SESSION*> sessions_;  // under mutex_
};

}  // namespace

Result<std::shared_ptr<ServerBackend>> make_openssl_server(const ServerConfig& config,
                                                           std::shared_ptr<TicketKeys> keys) {
  auto state = std::make_shared<ServerState>();
  if (auto r = state->init(config, std::move(keys)); !r) return std::move(r).error();
  return std::shared_ptr<ServerBackend>(std::move(state));
}

Result<std::shared_ptr<ClientBackend>> make_openssl_client(const ClientConfig& config) {
  auto state = std::make_shared<ClientState>();
  if (auto r = state->init(config); !r) return std::move(r).error();
  return std::shared_ptr<ClientBackend>(std::move(state));
}

}  // namespace monolake::tls::detail
