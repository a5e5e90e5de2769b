// Smoke test of the GnuTLS backend at the Engine level: a GnuTLS server and a GnuTLS client
// exchange ciphertext in memory (no runtime, no socket). The full TLS suite over sockets, for
// both backends, is tls/tls_test.cc. Certificates are generated at test time by
// tls/testing/make_test_certs.sh (no key is committed).
#include <gnutls/gnutls.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tls/engine.h"

namespace monolake::tls::detail {
namespace {

using Status = Engine::Status;

std::string& cert_dir() {
  static std::string dir;
  return dir;
}

std::string cert(const std::string& name) { return cert_dir() + "/" + name; }

Certificate certificate(const std::string& base, std::vector<std::string> names) {
  return {cert(base + ".pem"), cert(base + ".key"), "", std::move(names)};
}

class GnuTlsSmokeTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (!cert_dir().empty()) return;
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/gnutls_smoke.XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    const std::string command = "bash tls/testing/make_test_certs.sh '" + dir + "' >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    cert_dir() = dir;
  }

 protected:
  // a.test / *.a.test (RSA) first, so it is the default; b.test (EC) second.
  static ServerConfig server_config() {
    ServerConfig config;
    config.certificates = {certificate("a", {"a.test", "*.a.test"}), certificate("b", {"b.test"})};
    config.alpn = {"h2", "http/1.1"};
    return config;
  }
  static ClientConfig client_config() {
    ClientConfig config;
    config.ca_file = cert("ca.pem");
    return config;
  }

  static std::shared_ptr<ServerBackend> server(const ServerConfig& config,
                                               std::shared_ptr<TicketKeys> keys = nullptr) {
    auto made = make_gnutls_server(config, keys ? keys : TicketKeys::generate());
    EXPECT_TRUE(made.has_value()) << made.error().to_string();
    return made ? std::move(*made) : nullptr;
  }
  static std::shared_ptr<ClientBackend> client(const ClientConfig& config) {
    auto made = make_gnutls_client(config);
    EXPECT_TRUE(made.has_value()) << made.error().to_string();
    return made ? std::move(*made) : nullptr;
  }

  struct Connection {
    std::unique_ptr<Engine> client;
    std::unique_ptr<Engine> server;
    std::string client_error;  // empty: the handshake succeeded on that side
    std::string server_error;
    bool ok() const { return client_error.empty() && server_error.empty(); }
  };

  static void transfer(Engine& from, Engine& to) {
    IoBuffer bytes;
    from.drain(bytes);
    if (!bytes.empty()) to.feed(bytes.view());
  }

  // Runs both handshakes, moving ciphertext between them, until both finish or one fails (the
  // other then sees its alert).
  static Connection connect(const ServerBackend& server, const ClientBackend& client,
                            const std::string& name) {
    Connection c;
    auto s = server.new_engine();
    auto k = client.new_engine(name);
    EXPECT_TRUE(s.has_value() && k.has_value());
    if (!s || !k) return c;
    c.server = std::move(*s);
    c.client = std::move(*k);
    bool client_done = false;
    bool server_done = false;
    for (int round = 0; round < 10 && !(client_done && server_done); ++round) {
      if (!client_done && !step(*c.client, &client_done, &c.client_error)) {
        transfer(*c.client, *c.server);
        if (!server_done) step(*c.server, &server_done, &c.server_error);
        break;
      }
      transfer(*c.client, *c.server);
      if (!server_done && !step(*c.server, &server_done, &c.server_error)) {
        transfer(*c.server, *c.client);
        if (!client_done) step(*c.client, &client_done, &c.client_error);
        break;
      }
      transfer(*c.server, *c.client);
    }
    if (c.ok() && !(client_done && server_done)) c.client_error = "handshake did not finish";
    return c;
  }

  static bool step(Engine& engine, bool* done, std::string* error) {
    Result<Status> r = engine.handshake();
    if (!r) {
      *error = r.error().message();
      return false;
    }
    *done = *r == Status::kDone;
    return true;
  }

  // Sends `text` from one side and reads it on the other.
  static std::string send(Engine& from, Engine& to, std::string_view text) {
    EXPECT_TRUE(from.write(text).has_value());
    transfer(from, to);
    IoBuffer got;
    while (got.size() < text.size()) {
      Result<Status> r = to.read(got);
      transfer(to, from);
      if (!r || *r != Status::kDone) {
        ADD_FAILURE() << "read: " << (r ? static_cast<int>(*r) : -1) << " "
                      << (r ? "" : r.error().message());
        break;
      }
    }
    return got.to_string();
  }

  // Exchanges data both ways; the client's read also takes in a TLS 1.3 ticket.
  static void exchange(Connection& c) {
    EXPECT_EQ(send(*c.client, *c.server, "ping"), "ping");
    EXPECT_EQ(send(*c.server, *c.client, "pong"), "pong");
  }
};

TEST_F(GnuTlsSmokeTest, HandshakeAlpnDataAndCloseNotify) {
  auto srv = server(server_config());
  ClientConfig cc = client_config();
  cc.alpn = {"http/1.1", "h2"};
  auto cli = client(cc);
  Connection c = connect(*srv, *cli, "www.a.test");
  ASSERT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  EXPECT_EQ(c.client->version(), Version::kTls13);
  EXPECT_EQ(c.server->version(), Version::kTls13);
  EXPECT_EQ(c.server->alpn(), "h2");  // the server's preference wins
  EXPECT_EQ(c.client->alpn(), "h2");
  EXPECT_EQ(c.server->server_name(), "www.a.test");
  EXPECT_EQ(c.client->server_name(), "www.a.test");
  EXPECT_EQ(c.client->cipher(), "TLS_AES_128_GCM_SHA256");
  EXPECT_FALSE(c.client->resumed());
  exchange(c);

  const std::string big(200 * 1024, 'x');
  EXPECT_EQ(send(*c.client, *c.server, big), big);

  ASSERT_TRUE(c.client->close_notify().has_value());
  transfer(*c.client, *c.server);
  IoBuffer rest;
  Result<Status> r = c.server->read(rest);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, Status::kClosed);
}

TEST_F(GnuTlsSmokeTest, NoCommonAlpnGoesOnWithout) {
  auto srv = server(server_config());
  ClientConfig cc = client_config();
  cc.alpn = {"spdy/3"};
  auto cli = client(cc);
  Connection c = connect(*srv, *cli, "a.test");
  ASSERT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  EXPECT_EQ(c.server->alpn(), "");
  EXPECT_EQ(c.client->alpn(), "");
}

TEST_F(GnuTlsSmokeTest, Tls12IntermediateSuite) {
  auto srv = server(server_config());
  ClientConfig cc = client_config();
  cc.max_version = Version::kTls12;
  auto cli = client(cc);
  Connection c = connect(*srv, *cli, "a.test");
  ASSERT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  EXPECT_EQ(c.server->version(), Version::kTls12);
  EXPECT_EQ(c.server->cipher(), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  exchange(c);
}

// The TLS 1.2 suite names the certificate's key type: RSA for a, ECDSA for b.
TEST_F(GnuTlsSmokeTest, SniSelectsByConfiguredNames) {
  ServerConfig sc;
  // b (EC) is the default; a (RSA) is served for a name its SANs do not list.
  sc.certificates = {certificate("b", {"b.test"}), certificate("a", {"alias.test"})};
  auto srv = server(sc);
  ClientConfig cc;
  cc.verify = false;
  cc.max_version = Version::kTls12;
  auto cli = client(cc);
  auto suite_for = [&](const std::string& name) {
    Connection c = connect(*srv, *cli, name);
    EXPECT_TRUE(c.ok()) << name << ": " << c.client_error << " / " << c.server_error;
    return c.ok() ? c.client->cipher() : "";
  };
  EXPECT_EQ(suite_for("alias.test"), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  EXPECT_EQ(suite_for("b.test"), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  // a.test is in a's SANs but not in its names: the default serves it.
  EXPECT_EQ(suite_for("a.test"), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  EXPECT_EQ(suite_for("unknown.test"), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  EXPECT_EQ(suite_for(""), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
}

TEST_F(GnuTlsSmokeTest, SniWithVerification) {
  auto srv = server(server_config());
  auto cli = client(client_config());
  EXPECT_TRUE(connect(*srv, *cli, "b.test").ok());
  EXPECT_TRUE(connect(*srv, *cli, "x.a.test").ok());
  // The default (a) does not cover this name.
  Connection c = connect(*srv, *cli, "c.test");
  EXPECT_NE(c.client_error.find("certificate verify failed"), std::string::npos) << c.client_error;
  EXPECT_NE(c.client_error.find("does not match"), std::string::npos) << c.client_error;
  EXPECT_FALSE(c.server_error.empty());  // the client's alert ends the server's handshake
}

TEST_F(GnuTlsSmokeTest, VerificationFailures) {
  auto srv = server(server_config());
  ClientConfig other = client_config();
  other.ca_file = cert("other-ca.pem");
  Connection c = connect(*srv, *client(other), "a.test");
  EXPECT_NE(c.client_error.find("certificate verify failed"), std::string::npos) << c.client_error;
  EXPECT_NE(c.server_error.find("alert"), std::string::npos) << c.server_error;

  ServerConfig expired;
  expired.certificates = {certificate("expired", {"a.test"})};
  c = connect(*server(expired), *client(client_config()), "a.test");
  EXPECT_NE(c.client_error.find("expired"), std::string::npos) << c.client_error;
}

TEST_F(GnuTlsSmokeTest, IpAddressIsVerifiedAgainstIpSans) {
  ServerConfig sc;
  sc.certificates = {certificate("ip", {})};
  auto srv = server(sc);
  auto cli = client(client_config());
  Connection c = connect(*srv, *cli, "127.0.0.1");
  EXPECT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  EXPECT_EQ(c.server->server_name(), "");  // no SNI for an IP literal
  c = connect(*srv, *cli, "127.0.0.2");
  EXPECT_NE(c.client_error.find("certificate verify failed"), std::string::npos) << c.client_error;
}

TEST_F(GnuTlsSmokeTest, KeyFormatsAndErrors) {
  ServerConfig sc;
  Certificate enc = certificate("enc", {"a.test"});
  enc.key_passphrase = "secret";
  sc.certificates = {certificate("rsa1", {"a.test"}), certificate("b", {"b.test"}), enc};
  auto srv = server(sc);
  auto cli = client(client_config());
  EXPECT_TRUE(connect(*srv, *cli, "a.test").ok());
  EXPECT_TRUE(connect(*srv, *cli, "b.test").ok());

  sc.certificates = {enc};
  sc.certificates[0].key_passphrase = "wrong";
  auto bad = make_gnutls_server(sc, TicketKeys::generate());
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find(cert("enc.key")), std::string::npos)
      << bad.error().message();

  sc.certificates = {certificate("missing", {})};
  bad = make_gnutls_server(sc, TicketKeys::generate());
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find(cert("missing.pem")), std::string::npos)
      << bad.error().message();

  sc.certificates = {{cert("a.pem"), cert("b.key"), "", {}}};
  bad = make_gnutls_server(sc, TicketKeys::generate());
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("does not match"), std::string::npos)
      << bad.error().message();

  ServerConfig modern = server_config();
  modern.cipher_policy = "modern";
  modern.max_version = Version::kTls12;
  EXPECT_FALSE(make_gnutls_server(modern, TicketKeys::generate()).has_value());
}

TEST_F(GnuTlsSmokeTest, VersionRangeAndModernPolicy) {
  ServerConfig sc = server_config();
  sc.cipher_policy = "modern";
  auto srv = server(sc);
  ClientConfig old = client_config();
  old.max_version = Version::kTls12;
  Connection c = connect(*srv, *client(old), "a.test");
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(c.server_error.empty());
  EXPECT_FALSE(c.client_error.empty());
  c = connect(*srv, *client(client_config()), "a.test");
  EXPECT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
}

TEST_F(GnuTlsSmokeTest, ClientCertificates) {
  ServerConfig sc = server_config();
  sc.client_ca_file = cert("ca.pem");
  sc.require_client_certificate = true;
  auto required = server(sc);
  sc.require_client_certificate = false;
  auto requested = server(sc);
  ClientConfig with = client_config();
  with.client_certificate = certificate("client", {});
  auto anonymous = client(client_config());
  auto holder = client(with);

  Connection c = connect(*required, *anonymous, "a.test");
  EXPECT_NE(c.server_error.find("Certificate is required"), std::string::npos) << c.server_error;
  if (c.client_error.empty()) {
    // TLS 1.3: the client finished first and learns from the server's alert when it reads.
    IoBuffer none;
    Result<Status> r = c.client->read(none);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("alert"), std::string::npos) << r.error().message();
  }
  c = connect(*required, *holder, "a.test");
  EXPECT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  exchange(c);
  c = connect(*requested, *anonymous, "a.test");
  EXPECT_TRUE(c.ok()) << c.client_error << " / " << c.server_error;
  exchange(c);

  // A client certificate from another CA is refused.
  ServerConfig strict = server_config();
  strict.client_ca_file = cert("other-ca.pem");
  c = connect(*server(strict), *holder, "a.test");
  EXPECT_NE(c.server_error.find("certificate verify failed"), std::string::npos) << c.server_error;
}

TEST_F(GnuTlsSmokeTest, ResumptionTls13AndTls12) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(std::string(version_name(max)));
    auto keys = TicketKeys::generate();
    auto srv = server(server_config(), keys);
    ClientConfig cc = client_config();
    cc.max_version = max;
    auto cli = client(cc);
    Connection first = connect(*srv, *cli, "a.test");
    ASSERT_TRUE(first.ok()) << first.client_error << " / " << first.server_error;
    EXPECT_FALSE(first.client->resumed());
    exchange(first);  // TLS 1.3: the ticket arrives with data after the handshake

    Connection second = connect(*srv, *cli, "a.test");
    ASSERT_TRUE(second.ok()) << second.client_error << " / " << second.server_error;
    EXPECT_TRUE(second.client->resumed());
    EXPECT_TRUE(second.server->resumed());
    exchange(second);

    // Another backend (worker, reloaded context, new process) with the same keys accepts it.
    auto sibling = server(server_config(), keys);
    Connection third = connect(*sibling, *cli, "a.test");
    ASSERT_TRUE(third.ok());
    EXPECT_TRUE(third.server->resumed());
    exchange(third);

    // A name with no cached session makes a full handshake.
    Connection other = connect(*srv, *cli, "b.test");
    ASSERT_TRUE(other.ok());
    EXPECT_FALSE(other.server->resumed());

    // After rotate() new sessions use the new master key; older tickets mean a full handshake.
    keys->rotate();
    auto rotated = server(server_config(), keys);
    Connection fourth = connect(*rotated, *cli, "a.test");
    ASSERT_TRUE(fourth.ok());
    EXPECT_FALSE(fourth.server->resumed());
  }
}

TEST_F(GnuTlsSmokeTest, NoTicketsNoResumption) {
  ServerConfig sc = server_config();
  sc.session_tickets = false;
  auto srv = server(sc);
  auto cli = client(client_config());
  Connection first = connect(*srv, *cli, "a.test");
  ASSERT_TRUE(first.ok());
  exchange(first);
  Connection second = connect(*srv, *cli, "a.test");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second.server->resumed());
}

// A plain GnuTLS TLS 1.2 client that renegotiates after the handshake: our server refuses.
struct RawClient {
  std::string in;
  std::string out;
  gnutls_session_t session = nullptr;
  gnutls_certificate_credentials_t cred = nullptr;

  RawClient() {
    gnutls_certificate_allocate_credentials(&cred);
    gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
    gnutls_priority_set_direct(session, "NORMAL:-VERS-ALL:+VERS-TLS1.2", nullptr);
    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_ptr(session, this);
    gnutls_transport_set_push_function(session, &RawClient::push);
    gnutls_transport_set_pull_function(session, &RawClient::pull);
  }
  ~RawClient() {
    gnutls_deinit(session);
    gnutls_certificate_free_credentials(cred);
  }
  static ssize_t push(gnutls_transport_ptr_t self, const void* data, size_t size) {
    static_cast<RawClient*>(self)->out.append(static_cast<const char*>(data), size);
    return static_cast<ssize_t>(size);
  }
  static ssize_t pull(gnutls_transport_ptr_t p, void* data, size_t size) {
    auto* self = static_cast<RawClient*>(p);
    if (self->in.empty()) {
      gnutls_transport_set_errno(self->session, EAGAIN);
      return -1;
    }
    size = std::min(size, self->in.size());
    std::memcpy(data, self->in.data(), size);
    self->in.erase(0, size);
    return static_cast<ssize_t>(size);
  }
  void to(Engine& server) {
    server.feed(out);
    out.clear();
  }
  void from(Engine& server) {
    IoBuffer b;
    server.drain(b);
    in += b.view();
  }
};

TEST_F(GnuTlsSmokeTest, ServerRefusesClientRenegotiation) {
  auto srv = server(server_config());
  auto engine = srv->new_engine();
  ASSERT_TRUE(engine.has_value());
  Engine& server_engine = **engine;
  RawClient raw;
  int r = GNUTLS_E_AGAIN;
  bool server_done = false;
  for (int round = 0; round < 10 && (r != 0 || !server_done); ++round) {
    if (r != 0) r = gnutls_handshake(raw.session);
    raw.to(server_engine);
    Result<Status> s = server_engine.handshake();
    ASSERT_TRUE(s.has_value()) << s.error().message();
    server_done = *s == Status::kDone;
    raw.from(server_engine);
  }
  ASSERT_EQ(r, 0) << gnutls_strerror(r);
  ASSERT_EQ(server_engine.version(), Version::kTls12);
  r = gnutls_handshake(raw.session);  // a second handshake: renegotiation
  EXPECT_EQ(r, GNUTLS_E_AGAIN);
  raw.to(server_engine);
  IoBuffer data;
  Result<Status> s = server_engine.read(data);
  // GnuTLS 3.7 reports the renegotiating ClientHello as an unexpected packet.
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("unexpected"), std::string::npos) << s.error().message();
  raw.from(server_engine);
  EXPECT_EQ(gnutls_handshake(raw.session), GNUTLS_E_FATAL_ALERT_RECEIVED);
}

}  // namespace
}  // namespace monolake::tls::detail
