// The GnuTLS 3.7 backend: sessions whose transport callbacks read and write memory buffers, so
// GnuTLS never touches a socket and never blocks.
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>

#include "tls/engine.h"

namespace monolake::tls::detail {

namespace {

// --- RAII and small helpers ------------------------------------------------------------------

struct SessionFree {
  void operator()(gnutls_session_t session) const { gnutls_deinit(session); }
};
using SessionPtr = std::unique_ptr<std::remove_pointer_t<gnutls_session_t>, SessionFree>;

struct CredentialsFree {
  void operator()(gnutls_certificate_credentials_t cred) const {
    gnutls_certificate_free_credentials(cred);
  }
};
using CredentialsPtr =
    std::unique_ptr<std::remove_pointer_t<gnutls_certificate_credentials_t>, CredentialsFree>;

struct PriorityFree {
  void operator()(gnutls_priority_t priority) const { gnutls_priority_deinit(priority); }
};
using PriorityPtr = std::unique_ptr<std::remove_pointer_t<gnutls_priority_t>, PriorityFree>;

// Debian's GnuTLS initialises itself from a library constructor; calling it again is cheap and
// keeps us correct on builds that do not.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { gnutls_global_init(); });
}

std::string gnutls_reason(int code) { return gnutls_strerror(code); }

// Copies a datum GnuTLS allocated for us and frees it.
std::string take_datum(gnutls_datum_t& datum) {
  std::string out(reinterpret_cast<const char*>(datum.data), datum.size);
  gnutls_free(datum.data);
  datum.data = nullptr;
  datum.size = 0;
  return out;
}

gnutls_datum_t as_datum(std::string_view bytes) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data())),
          static_cast<unsigned>(bytes.size())};
}

Result<CredentialsPtr> new_credentials() {
  gnutls_certificate_credentials_t raw = nullptr;
  if (int r = gnutls_certificate_allocate_credentials(&raw); r < 0) {
    return tls_error("tls: gnutls_certificate_allocate_credentials: " + gnutls_reason(r));
  }
  return CredentialsPtr(raw);
}

// --- configuration ---------------------------------------------------------------------------

// Mozilla "intermediate" and "modern" as GnuTLS priority strings. Starting from NORMAL keeps
// GnuTLS's choice of groups and signature algorithms; versions, ciphers, MACs and (TLS 1.2) key
// exchanges are then narrowed to the profile: AEAD only (no CBC), ECDHE/DHE only (no RSA key
// transport), no SSL 3.0 / TLS 1.0 / 1.1. The server's order wins. Renegotiation keeps
// GnuTLS's default (%PARTIAL_RENEGOTIATION: a first handshake without RFC 5746 signalling is
// allowed — TLS 1.3 clients need not send it — but an unsafe renegotiation never is), and we
// refuse every renegotiation anyway (see GnuTlsEngine::read). %SAFE_RENEGOTIATION would also
// turn away TLS 1.3 ClientHellos without renegotiation_info.
constexpr char kAeadCiphers[] =
    ":-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD";
constexpr char kTls12KeyExchanges[] = ":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA";
constexpr char kPolicyFlags[] = ":%SERVER_PRECEDENCE";

Result<std::string> priority_string(Version min, Version max, const std::string& policy) {
  if (policy == "modern") {
    if (max < Version::kTls13) {
      return Error(ErrorCode::kInvalidArgument,
                   "tls: cipher policy 'modern' is TLS 1.3 only, but max_version is TLSv1.2");
    }
    min = Version::kTls13;
  } else if (policy != "intermediate") {
    return Error(ErrorCode::kInvalidArgument, "tls: unknown cipher policy '" + policy + "'");
  }
  std::string out = "NORMAL:-VERS-ALL";
  if (max >= Version::kTls13) out += ":+VERS-TLS1.3";
  if (min <= Version::kTls12) out += ":+VERS-TLS1.2";
  out += kAeadCiphers;
  out += min <= Version::kTls12 ? kTls12KeyExchanges : ":-KX-ALL";
  out += kPolicyFlags;
  return out;
}

Result<PriorityPtr> make_priority(Version min, Version max, const std::string& policy) {
  auto text = priority_string(min, max, policy);
  if (!text) return std::move(text).error();
  gnutls_priority_t raw = nullptr;
  const char* error_at = nullptr;
  if (int r = gnutls_priority_init2(&raw, text->c_str(), &error_at, 0); r < 0) {
    return tls_error("tls: GnuTLS priority '" + *text + "' rejected at '" +
                     (error_at ? error_at : "") + "': " + gnutls_reason(r));
  }
  return PriorityPtr(raw);
}

// GnuTLS 3.7 keeps at most 8 ALPN names of under 32 bytes each (fixed arrays in the session).
Result<void> check_alpn(const std::vector<std::string>& names) {
  if (names.size() > 8) {
    return Error(ErrorCode::kInvalidArgument, "tls: GnuTLS accepts at most 8 ALPN protocols");
  }
  for (const std::string& name : names) {
    if (name.empty() || name.size() >= 32) {
      return Error(ErrorCode::kInvalidArgument,
                   "tls: ALPN protocol '" + name + "' must be 1 to 31 bytes for GnuTLS");
    }
  }
  return ok();
}

Result<void> set_alpn(gnutls_session_t session, const std::vector<std::string>& names,
                      unsigned flags) {
  if (names.empty()) return ok();
  std::vector<gnutls_datum_t> datums;
  for (const std::string& name : names) datums.push_back(as_datum(name));
  // Copied into the session: `names` need not outlive this call.
  if (int r = gnutls_alpn_set_protocols(session, datums.data(),
                                        static_cast<unsigned>(datums.size()), flags);
      r < 0) {
    return tls_error("tls: ALPN: " + gnutls_reason(r));
  }
  return ok();
}

// Parses the chain on its own first so a bad chain and a bad key get errors naming the right
// file.
Result<void> check_chain(const std::string& path, std::string_view pem) {
  gnutls_x509_crt_t* certs = nullptr;
  unsigned count = 0;
  gnutls_datum_t data = as_datum(pem);
  const int r = gnutls_x509_crt_list_import2(&certs, &count, &data, GNUTLS_X509_FMT_PEM, 0);
  for (unsigned i = 0; i < count; ++i) gnutls_x509_crt_deinit(certs[i]);
  gnutls_free(certs);
  if (r < 0) {
    return Error(ErrorCode::kInvalidArgument, "tls: certificate " + path + ": " + gnutls_reason(r));
  }
  if (count == 0) {
    return Error(ErrorCode::kInvalidArgument, "tls: certificate " + path + ": no certificate");
  }
  return ok();
}

// Loads one chain and its key (PEM; PKCS#1, PKCS#8, SEC1 EC, or encrypted PKCS#8 with the
// passphrase). GnuTLS also checks that the key matches the leaf.
Result<void> load_certificate(gnutls_certificate_credentials_t cred, const Certificate& cert) {
  auto chain = read_file(cert.chain_file, "tls: certificate");
  if (!chain) return std::move(chain).error();
  auto key = read_file(cert.key_file, "tls: private key");
  if (!key) return std::move(key).error();
  if (auto r = check_chain(cert.chain_file, *chain); !r) return r;
  gnutls_datum_t chain_datum = as_datum(*chain);
  gnutls_datum_t key_datum = as_datum(*key);
  const char* pass = cert.key_passphrase.empty() ? nullptr : cert.key_passphrase.c_str();
  const int r = gnutls_certificate_set_x509_key_mem2(cred, &chain_datum, &key_datum,
                                                     GNUTLS_X509_FMT_PEM, pass, 0);
  if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
    return Error(ErrorCode::kInvalidArgument,
                 "tls: private key " + cert.key_file + " does not match " + cert.chain_file);
  }
  if (r < 0) {
    std::string message = "tls: private key " + cert.key_file + ": " + gnutls_reason(r);
    if (key->find("ENCRYPTED") != std::string::npos) {
      message += " (encrypted: check the passphrase)";
    }
    return Error(ErrorCode::kInvalidArgument, std::move(message));
  }
  return ok();
}

Result<void> load_trust(gnutls_certificate_credentials_t cred, const std::string& path,
                        std::string_view what) {
  auto pem = read_file(path, what);
  if (!pem) return std::move(pem).error();
  gnutls_datum_t datum = as_datum(*pem);
  const int r = gnutls_certificate_set_x509_trust_mem(cred, &datum, GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(what) + " " + path + ": " + gnutls_reason(r));
  }
  if (r == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(what) + " " + path + ": no CA certificate in it");
  }
  return ok();
}

// The human-readable reasons behind a certificate verification status.
std::string verify_status_text(unsigned status) {
  gnutls_datum_t text = {nullptr, 0};
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0) {
    return "status " + std::to_string(status);
  }
  std::string out = take_datum(text);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// --- Engine ----------------------------------------------------------------------------------

// What an engine's callbacks need from the backend that made it. The engine keeps its owner
// alive: a certificate reload replaces the backend while connections it started still run, and
// their sessions point at its credentials and priorities.
class EngineOwner {
 public:
  virtual ~EngineOwner() = default;
  // Server: the ClientHello has been parsed (SNI known), the certificate not chosen yet.
  virtual int on_client_hello(gnutls_session_t) const { return 0; }
  // Client: resumption data for the next connection to `name`.
  virtual void store_session(const std::string&, std::string) const {}
};

class GnuTlsEngine final : public Engine {
 public:
  // `peer_name`: on a client, the name asked for (SNI, verification, session cache key).
  GnuTlsEngine(SessionPtr session, std::shared_ptr<const EngineOwner> owner, std::string peer_name)
      : owner_(std::move(owner)), peer_name_(std::move(peer_name)), session_(std::move(session)) {
    gnutls_session_t s = session_.get();
    gnutls_session_set_ptr(s, this);
    gnutls_transport_set_ptr(s, this);
    gnutls_transport_set_push_function(s, &GnuTlsEngine::push);
    gnutls_transport_set_pull_function(s, &GnuTlsEngine::pull);
    gnutls_transport_set_pull_timeout_function(s, &GnuTlsEngine::pull_timeout);
    // The caller bounds the handshake with its own timer; GnuTLS must never wait.
    gnutls_handshake_set_timeout(s, 0);
  }

  static GnuTlsEngine* of(gnutls_session_t session) {
    return static_cast<GnuTlsEngine*>(gnutls_session_get_ptr(session));
  }
  gnutls_session_t session() const { return session_.get(); }

  // For gnutls_handshake_set_post_client_hello_function: asks the owner.
  static int on_client_hello(gnutls_session_t session) {
    return of(session)->owner_->on_client_hello(session);
  }

  // Client: verifies the server's chain, its purpose and (if given) its name. An IP literal is
  // matched against IP SANs, which a DNS-name check would not do.
  void verify_server(bool is_ip) {
    vdata_.clear();
    if (is_ip) {
      const int family = peer_name_.find(':') == std::string::npos ? AF_INET : AF_INET6;
      ip_size_ = family == AF_INET ? 4 : 16;
      inet_pton(family, peer_name_.c_str(), ip_);
      vdata_.push_back({GNUTLS_DT_IP_ADDRESS, ip_, ip_size_});
    } else if (!peer_name_.empty()) {
      vdata_.push_back(
          {GNUTLS_DT_DNS_HOSTNAME, reinterpret_cast<unsigned char*>(peer_name_.data()), 0});
    }
    vdata_.push_back({GNUTLS_DT_KEY_PURPOSE_OID,
                      reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_SERVER)),
                      0});
    gnutls_session_set_verify_cert2(session(), vdata_.data(), static_cast<unsigned>(vdata_.size()),
                                    0);
  }

  // Server: verifies a client certificate if one was sent. Presence itself is GnuTLS's job
  // (GNUTLS_CERT_REQUIRE); gnutls_session_set_verify_cert would also fail an absent one, which
  // is wrong for GNUTLS_CERT_REQUEST.
  void verify_client() { gnutls_session_set_verify_function(session(), &GnuTlsEngine::on_verify); }

  // Client: remembers resumption data. TLS 1.2 data is complete after the handshake; a TLS 1.3
  // ticket arrives afterwards, so it is taken from a hook when GnuTLS has processed it.
  void save_sessions() {
    save_sessions_ = true;
    gnutls_handshake_set_hook_function(session(), GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
                                       GNUTLS_HOOK_POST, &GnuTlsEngine::on_ticket);
  }

  void feed(std::string_view ciphertext) override { in_.append(ciphertext); }

  void drain(IoBuffer& out) override {
    if (out.empty()) {
      std::swap(out, out_);  // hand the buffer over instead of copying it
    } else {
      out.append(out_.view());
      out_.clear();
    }
  }

  bool has_output() const override { return !out_.empty(); }

  Result<Status> handshake() override {
    while (true) {
      const size_t input_before = in_.size();
      const int r = gnutls_handshake(session());
      if (r == GNUTLS_E_SUCCESS) {
        if (save_sessions_ && !is_tls13()) save_session();
        return Status::kDone;
      }
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        if (made_progress(input_before)) continue;
        return want_input();
      }
      // A warning (e.g. unrecognized_name) does not end the handshake.
      if (r == GNUTLS_E_WARNING_ALERT_RECEIVED) continue;
      return failure("handshake", r);
    }
  }

  Result<Status> read(IoBuffer& into) override {
    if (pending_) {
      Result<Status> earlier = std::move(*pending_);
      pending_.reset();
      return earlier;
    }
    bool got = false;
    while (true) {
      if (got && in_.empty() && gnutls_record_check_pending(session()) == 0) {
        return Status::kDone;
      }
      into.reserve(kReadChunk);
      const size_t input_before = in_.size();
      const ssize_t n = gnutls_record_recv(session(), into.write_ptr(), into.writable_size());
      if (n > 0) {
        into.commit(static_cast<size_t>(n));
        got = true;
        continue;
      }
      if (n == GNUTLS_E_WARNING_ALERT_RECEIVED) continue;
      if ((n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) && made_progress(input_before)) {
        continue;
      }
      Result<Status> status = read_status(static_cast<int>(n));
      if (!got) return status;
      // Deliver what was decrypted first; a close or an error is reported on the next call.
      if (!status || *status == Status::kClosed) pending_ = std::move(status);
      return Status::kDone;
    }
  }

  Result<void> write(std::string_view plaintext) override {
    size_t written = 0;
    int retries = 0;
    while (written < plaintext.size()) {
      // Sends at most one record per call. The push function takes everything, so GNUTLS_E_AGAIN
      // is not expected; a few retries finish whatever GnuTLS left pending, without ever spinning.
      const ssize_t n =
          gnutls_record_send(session(), plaintext.data() + written, plaintext.size() - written);
      if ((n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) && ++retries < kMaxWriteRetries) {
        continue;
      }
      if (n < 0) return failure("write", static_cast<int>(n));
      written += static_cast<size_t>(n);
      retries = 0;
    }
    return ok();
  }

  Result<void> close_notify() override {
    const int r = gnutls_bye(session(), GNUTLS_SHUT_WR);
    if (r < 0) return failure("shutdown", r);
    return ok();
  }

  std::string alpn() const override {
    gnutls_datum_t selected = {nullptr, 0};
    if (gnutls_alpn_get_selected_protocol(session(), &selected) < 0) return "";
    return std::string(reinterpret_cast<const char*>(selected.data), selected.size);
  }

  std::string server_name() const override {
    if (!peer_name_.empty()) return peer_name_;
    char name[256];
    size_t size = sizeof name;
    unsigned type = 0;
    if (gnutls_server_name_get(session(), name, &size, &type, 0) < 0 || type != GNUTLS_NAME_DNS) {
      return "";
    }
    return std::string(name, strnlen(name, size));
  }

  std::string peer_subject() const override {
    unsigned count = 0;
    const gnutls_datum_t* chain = gnutls_certificate_get_peers(session(), &count);
    if (!chain || count == 0) return "";
    gnutls_x509_crt_t cert;
    if (gnutls_x509_crt_init(&cert) < 0) return "";
    std::string subject;
    gnutls_datum_t dn = {nullptr, 0};
    if (gnutls_x509_crt_import(cert, &chain[0], GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn3(cert, &dn, 0) >= 0) {
      subject.assign(reinterpret_cast<const char*>(dn.data), dn.size);
      gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(cert);
    return subject;
  }
  bool resumed() const override { return gnutls_session_is_resumed(session()) != 0; }
  Version version() const override { return is_tls13() ? Version::kTls13 : Version::kTls12; }

  std::string cipher() const override {
    const char* name = gnutls_ciphersuite_get(session());
    return name ? name : "";
  }

 private:
  static constexpr size_t kReadChunk = 16 * 1024;  // one full TLS record
  static constexpr int kMaxWriteRetries = 4;

  bool is_tls13() const { return gnutls_protocol_get_version(session()) == GNUTLS_TLS1_3; }

  // GnuTLS also answers GNUTLS_E_AGAIN after a record that carried no application data (a
  // TLS 1.3 ticket or key update, an empty record), even when more input is waiting. It pulls
  // one record at a time, so input left over that the call consumed from means "call again";
  // requiring that it shrank keeps a misjudgement from looping forever.
  bool made_progress(size_t input_before) const {
    return !in_.empty() && in_.size() < input_before;
  }

  // Waiting for the peer, possibly for long: keep no input buffer while idle.
  Status want_input() {
    if (in_.empty()) in_.release();
    return Status::kWantInput;
  }

  Result<Status> read_status(int r) {
    switch (r) {
      case 0:
        return Status::kClosed;
      case GNUTLS_E_AGAIN:
      case GNUTLS_E_INTERRUPTED:
        return want_input();
      case GNUTLS_E_REHANDSHAKE:
        // A server's HelloRequest: we never renegotiate, and the no_renegotiation alert tells
        // the server why the connection ends. (A client's renegotiating ClientHello reaches a
        // GnuTLS 3.7 server as GNUTLS_E_UNEXPECTED_PACKET, refused with unexpected_message.)
        (void)gnutls_alert_send_appropriate(session(), r);
        return tls_error("read: renegotiation refused");
      default:
        return failure("read", r);
    }
  }

  // Queues the alert that explains the failure to the peer and words the error.
  Error failure(std::string_view what, int r) {
    if (r != GNUTLS_E_FATAL_ALERT_RECEIVED) (void)gnutls_alert_send_appropriate(session(), r);
    std::string reason;
    if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
      const unsigned status =
          client_status_ ? *client_status_ : gnutls_session_get_verify_cert_status(session());
      reason = "certificate verify failed: " + verify_status_text(status);
    } else {
      reason = gnutls_reason(r);
      if (r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        const char* alert = gnutls_alert_get_name(gnutls_alert_get(session()));
        reason += std::string(" (") + (alert ? alert : "unknown alert") + ")";
      }
    }
    return tls_error(std::string(what) + ": " + reason);
  }

  void save_session() {
    gnutls_datum_t data = {nullptr, 0};
    if (gnutls_session_get_data2(session(), &data) < 0) return;
    owner_->store_session(peer_name_, take_datum(data));
  }

  static ssize_t push(gnutls_transport_ptr_t self, const void* data, size_t size) {
    static_cast<GnuTlsEngine*>(self)->out_.append(data, size);
    return static_cast<ssize_t>(size);
  }

  static ssize_t pull(gnutls_transport_ptr_t self, void* data, size_t size) {
    auto* engine = static_cast<GnuTlsEngine*>(self);
    if (engine->in_.empty()) {
      gnutls_transport_set_errno(engine->session(), EAGAIN);
      return -1;
    }
    const size_t n = std::min(size, engine->in_.size());
    std::memcpy(data, engine->in_.data(), n);
    engine->in_.consume(n);
    return static_cast<ssize_t>(n);
  }

  // Only "is there input now?": never waits, whatever `ms` asks.
  static int pull_timeout(gnutls_transport_ptr_t self, unsigned) {
    return static_cast<GnuTlsEngine*>(self)->in_.empty() ? 0 : 1;
  }

  static int on_ticket(gnutls_session_t session, unsigned, unsigned, unsigned,
                       const gnutls_datum_t*) {
    GnuTlsEngine* engine = of(session);
    // A TLS 1.2 ticket is part of the handshake: saved when that completes.
    if (engine->is_tls13()) engine->save_session();
    return 0;
  }

  static int on_verify(gnutls_session_t session) {
    unsigned count = 0;
    if (gnutls_certificate_get_peers(session, &count) == nullptr || count == 0) return 0;
    gnutls_typed_vdata_st purpose = {
        GNUTLS_DT_KEY_PURPOSE_OID,
        reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_CLIENT)), 0};
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0) {
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
    of(session)->client_status_ = status;
    return status == 0 ? 0 : GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
  }

  // Declared before session_ so they outlive it: the session points at all of them.
  std::shared_ptr<const EngineOwner> owner_;
  std::string peer_name_;
  std::vector<gnutls_typed_vdata_st> vdata_;
  unsigned char ip_[16] = {};
  unsigned ip_size_ = 0;
  IoBuffer in_;   // ciphertext fed in, not yet pulled by GnuTLS
  IoBuffer out_;  // ciphertext pushed by GnuTLS, not yet drained
  SessionPtr session_;

  bool save_sessions_ = false;
  std::optional<unsigned> client_status_;  // server: result of verifying the client's chain
  // A read that decrypted data and then met a close or an error reports it on the next call.
  std::optional<Result<Status>> pending_;
};

Result<SessionPtr> new_session(unsigned flags) {
  gnutls_session_t raw = nullptr;
  // GNUTLS_NONBLOCK: never wait for input (e.g. for a TLS 1.3 ticket in get_data2).
  if (int r = gnutls_init(&raw, flags | GNUTLS_NONBLOCK); r < 0) {
    return tls_error("tls: gnutls_init: " + gnutls_reason(r));
  }
  return SessionPtr(raw);
}

Result<void> check(int r, std::string_view what) {
  if (r < 0) return tls_error("tls: " + std::string(what) + ": " + gnutls_reason(r));
  return ok();
}

// --- Server ----------------------------------------------------------------------------------

// Everything a server session is built from; shared with every engine it made.
class ServerState final : public ServerBackend,
                          public EngineOwner,
                          public std::enable_shared_from_this<ServerState> {
 public:
  Result<void> init(const ServerConfig& config, std::shared_ptr<TicketKeys> keys) {
    if (auto r = check_alpn(config.alpn); !r) return r;
    auto priority = make_priority(config.min_version, config.max_version, config.cipher_policy);
    if (!priority) return std::move(priority).error();
    priority_ = std::move(*priority);
    for (const Certificate& cert : config.certificates) {
      auto cred = server_credentials(config, cert);
      if (!cred) return std::move(cred).error();
      certificates_.push_back({cert.names, std::move(*cred)});
    }
    alpn_ = config.alpn;
    auto policy = resumption_policy(config);
    if (!policy) return std::move(policy).error();
    policy_ = std::move(*policy);
    keys_ = std::move(keys);
    tickets_ = config.session_tickets && keys_ != nullptr;
    if (!config.client_ca_file.empty()) {
      client_certs_ = config.require_client_certificate ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST;
    }
    return ok();
  }

  Result<std::unique_ptr<Engine>> new_engine() const override {
    auto session = new_session(GNUTLS_SERVER | (tickets_ ? 0 : GNUTLS_NO_TICKETS));
    if (!session) return std::move(session).error();
    gnutls_session_t s = session->get();
    if (auto r = configure(s); !r) return std::move(r).error();
    auto engine = std::make_unique<GnuTlsEngine>(std::move(*session), shared_from_this(), "");
    if (client_certs_ != GNUTLS_CERT_IGNORE) engine->verify_client();
    return std::unique_ptr<Engine>(std::move(engine));
  }

  // SNI: our configured names pick the certificate, not GnuTLS's own matching against each
  // certificate's SANs (which ignores Certificate::names and, without a match, picks by key
  // type rather than our first). Each certificate has credentials of its own, and the session
  // is switched to the matching ones before GnuTLS selects the cipher suite and certificate.
  int on_client_hello(gnutls_session_t session) const override {
    char name[256];
    size_t size = sizeof name;
    unsigned type = 0;
    if (gnutls_server_name_get(session, name, &size, &type, 0) < 0 || type != GNUTLS_NAME_DNS) {
      return 0;  // no SNI: keep the default
    }
    const std::string_view sni(name, strnlen(name, size));
    for (const NamedCredentials& cert : certificates_) {
      for (const std::string& pattern : cert.names) {
        if (name_matches(pattern, sni)) {
          return gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cert.cred.get());
        }
      }
    }
    return 0;
  }

 private:
  struct NamedCredentials {
    std::vector<std::string> names;
    CredentialsPtr cred;
  };

  static Result<CredentialsPtr> server_credentials(const ServerConfig& config,
                                                   const Certificate& cert) {
    auto cred = new_credentials();
    if (!cred) return cred;
    if (auto r = load_certificate(cred->get(), cert); !r) return std::move(r).error();
    // The RFC 7919 ffdhe2048 group for DHE-RSA with clients that do not negotiate a group.
    if (auto r = check(gnutls_certificate_set_known_dh_params(cred->get(), GNUTLS_SEC_PARAM_MEDIUM),
                       "DH parameters");
        !r) {
      return std::move(r).error();
    }
    if (!config.client_ca_file.empty()) {
      if (auto r = load_trust(cred->get(), config.client_ca_file, "tls: client CA"); !r) {
        return std::move(r).error();
      }
    }
    return cred;
  }

  Result<void> configure(gnutls_session_t s) const {
    if (auto r = check(gnutls_priority_set(s, priority_.get()), "priority"); !r) return r;
    // The first certificate is the default; on_client_hello may switch by SNI.
    if (auto r = check(
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, certificates_.front().cred.get()),
            "credentials");
        !r) {
      return r;
    }
    if (certificates_.size() > 1) {
      gnutls_handshake_set_post_client_hello_function(s, &GnuTlsEngine::on_client_hello);
    }
    if (auto r = set_alpn(s, alpn_, GNUTLS_ALPN_SERVER_PRECEDENCE); !r) return r;
    if (client_certs_ != GNUTLS_CERT_IGNORE) {
      gnutls_certificate_server_set_request(s, client_certs_);
    }
    if (tickets_) return enable_tickets(s);
    return ok();
  }

  // The ticket master key is the first 64 bytes of the process-wide current TicketKeys key, so
  // every worker, and a process that imported the same keys, seals and opens the same tickets.
  // GnuTLS 3.7 rotates on its own from that master key (a new key every 18 hours by default,
  // the previous one still accepted). A TicketKeys::rotate() changes the master key for new
  // sessions; tickets sealed under an earlier TicketKeys key are then not accepted (GnuTLS
  // has no hook for old keys) and those clients make a full handshake.
  //
  // The master key is bound to the client-certificate policy (HMAC-SHA256 of the policy under
  // the TicketKeys key, two blocks for GnuTLS's 64 bytes), so a ticket from another policy
  // cannot be opened and its client makes a full handshake.
  Result<void> enable_tickets(gnutls_session_t s) const {
    const std::string key = keys_->current();
    unsigned char master_key[64];
    for (int block = 0; block < 2; ++block) {
      const std::string message = std::string(1, static_cast<char>('1' + block)) + policy_;
      if (int r = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key.data(), key.size(), message.data(),
                                   message.size(), master_key + 32 * block);
          r < 0) {
        return tls_error("tls: ticket key derivation: " + gnutls_reason(r));
      }
    }
    const gnutls_datum_t master = {master_key, sizeof master_key};
    return check(gnutls_session_ticket_enable_server(s, &master), "session tickets");
  }

  PriorityPtr priority_;
  std::vector<NamedCredentials> certificates_;  // the first is the default
  std::vector<std::string> alpn_;
  std::shared_ptr<TicketKeys> keys_;
  std::string policy_;  // resumption_policy(): tickets are bound to it
  bool tickets_ = false;
  gnutls_certificate_request_t client_certs_ = GNUTLS_CERT_IGNORE;
};

// --- Client ----------------------------------------------------------------------------------

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// The client credentials and its session cache; shared with every engine it made.
class ClientState final : public ClientBackend,
                          public EngineOwner,
                          public std::enable_shared_from_this<ClientState> {
 public:
  Result<void> init(const ClientConfig& config) {
    if (auto r = check_alpn(config.alpn); !r) return r;
    auto priority = make_priority(config.min_version, config.max_version, config.cipher_policy);
    if (!priority) return std::move(priority).error();
    priority_ = std::move(*priority);
    auto cred = new_credentials();
    if (!cred) return std::move(cred).error();
    cred_ = std::move(*cred);
    if (config.verify) {
      if (auto r = load_ca(config); !r) return r;
    }
    if (!config.client_certificate.chain_file.empty()) {
      if (auto r = load_certificate(cred_.get(), config.client_certificate); !r) return r;
      client_certificate_ = true;
    }
    verify_ = config.verify;
    alpn_ = config.alpn;
    resumption_ = config.session_resumption;
    return ok();
  }

  Result<std::unique_ptr<Engine>> new_engine(const std::string& server_name) const override {
    unsigned flags = GNUTLS_CLIENT | (resumption_ ? 0 : GNUTLS_NO_TICKETS);
    // Send our certificate even if the server's list of acceptable CAs does not name its
    // issuer (GnuTLS would otherwise send none), as OpenSSL does: the server decides.
    if (client_certificate_) flags |= GNUTLS_FORCE_CLIENT_CERT;
    auto session = new_session(flags);
    if (!session) return std::move(session).error();
    gnutls_session_t s = session->get();
    if (auto r = check(gnutls_priority_set(s, priority_.get()), "priority"); !r) {
      return std::move(r).error();
    }
    if (auto r =
            check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred_.get()), "credentials");
        !r) {
      return std::move(r).error();
    }
    const bool ip = is_ip_literal(server_name);
    // SNI carries host names only (RFC 6066).
    if (!server_name.empty() && !ip) {
      if (auto r = check(
              gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name.data(), server_name.size()),
              "server name");
          !r) {
        return std::move(r).error();
      }
    }
    if (auto r = set_alpn(s, alpn_, 0); !r) return std::move(r).error();
    auto engine =
        std::make_unique<GnuTlsEngine>(std::move(*session), shared_from_this(), server_name);
    if (verify_) engine->verify_server(ip);
    if (resumption_) {
      offer_cached_session(s, server_name);
      engine->save_sessions();
    }
    return std::unique_ptr<Engine>(std::move(engine));
  }

  void store_session(const std::string& name, std::string data) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    // Bounded: a client talking to very many names forgets an arbitrary one.
    if (sessions_.size() >= kMaxSessions && sessions_.count(name) == 0) {
      sessions_.erase(sessions_.begin());
    }
    sessions_[name] = std::move(data);
  }

 private:
  static constexpr size_t kMaxSessions = 10000;

  Result<void> load_ca(const ClientConfig& config) {
    if (!config.ca_file.empty()) return load_trust(cred_.get(), config.ca_file, "tls: CA");
    const int r = gnutls_certificate_set_x509_system_trust(cred_.get());
    if (r < 0) {
      return Error(ErrorCode::kInvalidArgument, "tls: CA (system store): " + gnutls_reason(r));
    }
    return ok();
  }

  void offer_cached_session(gnutls_session_t s, const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(name);
    if (it == sessions_.end()) return;
    // Stale or unusable data only means a full handshake.
    (void)gnutls_session_set_data(s, it->second.data(), it->second.size());
  }

  PriorityPtr priority_;
  CredentialsPtr cred_;
  bool verify_ = true;
  bool client_certificate_ = false;
  std::vector<std::string> alpn_;
  bool resumption_ = true;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::string> sessions_;  // server name -> gnutls session data
};

}  // namespace

Result<std::shared_ptr<ServerBackend>> make_gnutls_server(const ServerConfig& config,
                                                          std::shared_ptr<TicketKeys> keys) {
  global_init();
  if (config.certificates.empty()) {
    return Error(ErrorCode::kInvalidArgument, "tls: a server needs at least one certificate");
  }
  auto state = std::make_shared<ServerState>();
  if (auto r = state->init(config, std::move(keys)); !r) return std::move(r).error();
  return std::shared_ptr<ServerBackend>(std::move(state));
}

Result<std::shared_ptr<ClientBackend>> make_gnutls_client(const ClientConfig& config) {
  global_init();
  auto state = std::make_shared<ClientState>();
  if (auto r = state->init(config); !r) return std::move(r).error();
  return std::shared_ptr<ClientBackend>(std::move(state));
}

}  // namespace monolake::tls::detail
