// TLS over loopback TCP, every server backend against every client backend, on both runtime
// backends: handshake and data, SNI, ALPN, resumption and ticket keys, key formats,
// verification, version policy, client certificates, close_notify, hostile peers, reload.
//
// The certificates come from tls/testing/make_test_certs.sh, run once per test process into
// TEST_TMPDIR (no key is committed).
#include "tls/tls.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/testing.h"
#include "runtime/time.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::tls {
namespace {

using namespace std::chrono_literals;
using runtime::BackendKind;
using runtime::JoinHandle;
using runtime::spawn_with_handle;
using runtime::with_timeout;
using transport::Listener;
using transport::SocketAddress;
using transport::Stream;
using Clock = std::chrono::steady_clock;

// Bound on any single wait in a test, so a bug fails the test instead of hanging it.
constexpr auto kIoLimit = 10s;
// The contexts' own handshake bound (below kIoLimit, so the library's timeout shows first).
constexpr auto kHandshakeTimeout = 5s;

// --- parameters ----------------------------------------------------------------------------------

struct Combo {
  Backend server;
  Backend client;
  BackendKind runtime;
};

void PrintTo(const Combo& combo, std::ostream* os) {
  *os << backend_name(combo.server) << " server, " << backend_name(combo.client) << " client, "
      << runtime::backend_kind_name(combo.runtime);
}

std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  return fmt::format("{}_to_{}", backend_name(info.param.server), backend_name(info.param.client));
}

std::vector<Combo> all_pairs(BackendKind runtime) {
  std::vector<Combo> out;
  for (Backend server : {Backend::kOpenSsl, Backend::kGnuTls}) {
    for (Backend client : {Backend::kOpenSsl, Backend::kGnuTls}) {
      out.push_back({server, client, runtime});
    }
  }
  return out;
}

// --- small helpers -------------------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  return contains(lower(haystack), lower(needle));
}

template <class T>
std::string describe(const Result<T>& r) {
  return r ? std::string("ok") : r.error().to_string();
}

// Deterministic, seed-dependent bytes (so a misordered or mixed-up stream shows).
std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  EXPECT_TRUE(out.good()) << path;
}

void copy_file(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  EXPECT_FALSE(ec) << from << " -> " << to << ": " << ec.message();
}

// --- I/O over TlsStream --------------------------------------------------------------------------

// Exactly `n` bytes (an error if the stream ends first).
Task<Result<std::string>> read_exactly(TlsStream* s, size_t n) {
  IoBuffer buffer;
  while (buffer.size() < n) {
    Result<size_t> got = co_await with_timeout(s->read_some(buffer), kIoLimit);
    if (!got) co_return std::move(got).error();
    if (*got == 0) {
      co_return Error(ErrorCode::kClosed,
                      fmt::format("end of stream after {} of {} bytes", buffer.size(), n));
    }
  }
  co_return buffer.to_string();
}

Task<Result<void>> write_string(TlsStream* s, std::string data) {
  auto written = co_await with_timeout(s->write_all(IoBuffer::copy_of(data)), kIoLimit);
  if (!written.result) co_return std::move(written.result).error();
  if (*written.result != data.size()) {
    co_return Error(ErrorCode::kIo, fmt::format("wrote {} of {}", *written.result, data.size()));
  }
  co_return ok();
}

// Reads `n` bytes, then sends them back (all of them first, so a big echo cannot deadlock with
// a peer that writes everything before reading).
Task<Result<void>> echo_back(TlsStream* s, size_t n) {
  Result<std::string> got = co_await read_exactly(s, n);
  if (!got) co_return std::move(got).error();
  co_return co_await write_string(s, std::move(*got));
}

// Echoes until the peer ends the stream (cleanly or not).
Task<Result<void>> echo_until_end(TlsStream* s) {
  while (true) {
    IoBuffer buffer;
    Result<size_t> got = co_await with_timeout(s->read_some(buffer), kIoLimit);
    if (!got) co_return std::move(got).error();
    if (*got == 0) co_return ok();
    Result<void> sent = co_await write_string(s, buffer.to_string());
    if (!sent) co_return sent;
  }
}

// The client sends `message`, the server echoes it, the client checks what came back.
Task<Result<void>> exchange(TlsStream* client, TlsStream* server, std::string message) {
  JoinHandle<Result<void>> echo = spawn_with_handle(echo_back(server, message.size()));
  Result<void> sent = co_await write_string(client, message);
  if (!sent) {
    echo.cancel();
    (void)co_await echo;
    co_return Error(sent.error().code(), "client write: " + sent.error().to_string());
  }
  Result<std::string> back = co_await read_exactly(client, message.size());
  Result<void> echoed = co_await echo;
  if (!echoed) co_return Error(echoed.error().code(), "server echo: " + echoed.error().to_string());
  if (!back) co_return Error(back.error().code(), "client read: " + back.error().to_string());
  if (*back != message) co_return Error(ErrorCode::kProtocol, "echo differs from what was sent");
  co_return ok();
}

// --- connections ---------------------------------------------------------------------------------

Task<Result<TlsStream>> accept_tls(Listener* listener,
                                   std::shared_ptr<const ServerContext> server) {
  Result<Stream> tcp = co_await listener->accept();
  if (!tcp) co_return std::move(tcp).error();
  co_return co_await server->accept(std::move(*tcp));
}

Task<Result<TlsStream>> connect_tls(SocketAddress address,
                                    std::shared_ptr<const ClientContext> client, std::string name) {
  Result<Stream> tcp = co_await Stream::connect(address);
  if (!tcp) co_return std::move(tcp).error();
  co_return co_await client->connect(std::move(*tcp), std::move(name));
}

struct Connection {
  Result<TlsStream> server;
  Result<TlsStream> client;
};

// One TCP connection to `listener`, with the server and client handshakes run concurrently.
Task<Connection> open_connection(Listener* listener, SocketAddress address,
                                 std::shared_ptr<const ServerContext> server,
                                 std::shared_ptr<const ClientContext> client, std::string name) {
  JoinHandle<Result<TlsStream>> accepted =
      spawn_with_handle(with_timeout(accept_tls(listener, std::move(server)), kIoLimit));
  Result<TlsStream> c =
      co_await with_timeout(connect_tls(address, std::move(client), std::move(name)), kIoLimit);
  Result<TlsStream> s = co_await accepted;
  co_return Connection{std::move(s), std::move(c)};
}

// One connection of serve_echo: the handshake, then echo until the client ends the stream.
Task<Result<void>> handle_echo(Stream tcp, std::shared_ptr<const ServerContext> ctx) {
  Result<TlsStream> s = co_await ctx->accept(std::move(tcp));
  if (!s) co_return std::move(s).error();
  co_return co_await echo_until_end(&*s);
}

// A server handling `count` connections concurrently.
Task<Result<void>> serve_echo(Listener* listener, std::shared_ptr<const ServerContext> ctx,
                              int count) {
  std::vector<JoinHandle<Result<void>>> handlers;
  for (int i = 0; i < count; ++i) {
    Result<Stream> tcp = co_await with_timeout(listener->accept(), kIoLimit);
    if (!tcp) co_return std::move(tcp).error();
    handlers.push_back(spawn_with_handle(handle_echo(std::move(*tcp), ctx)));
  }
  Result<void> all = ok();
  for (auto& h : handlers) {
    Result<void> r = co_await h;
    if (!r && all) all = std::move(r);
  }
  co_return all;
}

// A client of serve_echo: three messages of its own, then close_notify.
Task<Result<void>> talk(SocketAddress address, std::shared_ptr<const ClientContext> ctx,
                        uint32_t seed) {
  Result<TlsStream> c = co_await with_timeout(connect_tls(address, ctx, "a.test"), kIoLimit);
  if (!c) co_return std::move(c).error();
  for (uint32_t round = 0; round < 3; ++round) {
    const std::string message = pattern(32 * 1024 + seed, seed * 10 + round);
    Result<void> sent = co_await write_string(&*c, message);
    if (!sent) co_return sent;
    Result<std::string> back = co_await read_exactly(&*c, message.size());
    if (!back) co_return std::move(back).error();
    if (*back != message) co_return Error(ErrorCode::kProtocol, "mixed-up echo");
  }
  co_return co_await with_timeout(c->shutdown(), kIoLimit);
}

// What a connection plus one echo round trip showed, for assertions outside coroutines.
struct Outcome {
  std::optional<Error> server_error;    // server handshake
  std::optional<Error> client_error;    // client handshake
  std::optional<Error> exchange_error;  // the echo after the handshake
  bool server_resumed = false;
  bool client_resumed = false;
  std::string server_alpn;
  std::string client_alpn;
  std::string server_sni;
  std::string server_peer_subject;  // the client certificate the server saw
  Version server_version = Version::kTls12;
  Version client_version = Version::kTls12;
  std::string client_cipher;

  bool ok() const { return !server_error && !client_error && !exchange_error; }
  // Failed somewhere on the client's side (its handshake, or its first read after it).
  bool client_failed() const { return client_error || exchange_error; }
  std::string client_message() const {
    return client_error     ? client_error->to_string()
           : exchange_error ? exchange_error->to_string()
                            : "";
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "server: " << (o.server_error ? o.server_error->to_string() : "ok")
     << "; client: " << (o.client_error ? o.client_error->to_string() : "ok")
     << "; exchange: " << (o.exchange_error ? o.exchange_error->to_string() : "ok");
  return os;
}

// Connects, records what both ends negotiated and runs one echo round trip (which also makes
// the client read the TLS 1.3 session tickets the server sent after the handshake).
Task<Outcome> session(Listener* listener, SocketAddress address,
                      std::shared_ptr<const ServerContext> server,
                      std::shared_ptr<const ClientContext> client, std::string name) {
  Connection conn =
      co_await open_connection(listener, address, std::move(server), std::move(client), name);
  Outcome out;
  if (conn.server) {
    out.server_resumed = conn.server->resumed();
    out.server_alpn = conn.server->alpn();
    out.server_sni = conn.server->server_name();
    out.server_peer_subject = conn.server->peer_subject();
    out.server_version = conn.server->version();
  } else {
    out.server_error = conn.server.error();
  }
  if (conn.client) {
    out.client_resumed = conn.client->resumed();
    out.client_alpn = conn.client->alpn();
    out.client_version = conn.client->version();
    out.client_cipher = conn.client->cipher();
  } else {
    out.client_error = conn.client.error();
  }
  if (conn.client && conn.server) {
    Result<void> echoed = co_await exchange(&*conn.client, &*conn.server, "ping");
    if (!echoed) out.exchange_error = echoed.error();
  } else if (conn.client) {
    // The server gave up after the client finished its side (a TLS 1.3 server checks the
    // client's certificate after the client is done): the client learns it on its next read.
    Result<void> sent = co_await write_string(&*conn.client, "ping");
    if (!sent) {
      out.exchange_error = sent.error();
    } else {
      Result<std::string> got = co_await read_exactly(&*conn.client, 4);
      out.exchange_error =
          got ? Error(ErrorCode::kInternal, "the refused server echoed") : got.error();
    }
  }
  co_return out;
}

// --- fixture -------------------------------------------------------------------------------------

class TlsTest : public ::testing::TestWithParam<Combo> {
 public:
  // Both instantiations share one PKI: generated by the first suite to start.
  static void SetUpTestSuite() {
    if (!certs_.empty()) return;
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/tls_test.XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << dir;
      return;
    }
    const std::string command =
        "bash tls/testing/make_test_certs.sh '" + dir + "/certs' >/dev/null";
    const int status = std::system(command.c_str());
    if (status != 0) {
      ADD_FAILURE() << command << " failed with status " << status;
      return;
    }
    certs_ = dir + "/certs";
    scratch_ = dir;
  }

 protected:
  void SetUp() override {
    ASSERT_FALSE(certs_.empty()) << "no test certificates (make_test_certs.sh failed)";
    runtime::RuntimeOptions options;
    options.backend = GetParam().runtime;
    options.honor_env = false;
    auto created = runtime::Runtime::create(options);
    ASSERT_TRUE(created.has_value()) << created.error().to_string();
    rt_ = std::move(*created);
    auto where = SocketAddress::parse("127.0.0.1:0");
    ASSERT_TRUE(where.has_value());
    auto bound = Listener::bind(*where);
    ASSERT_TRUE(bound.has_value()) << bound.error().to_string();
    listener_ = std::move(*bound);
    auto local = listener_.local_address();
    ASSERT_TRUE(local.has_value());
    address_ = *local;
  }

  void TearDown() override {
    listener_ = Listener();
    rt_.reset();
  }

  template <class T>
  T run(Task<T> task) {
    return rt_->block_on(std::move(task));
  }

  Backend server_backend() const { return GetParam().server; }
  Backend client_backend() const { return GetParam().client; }

  static std::string path(std::string_view file) { return certs_ + "/" + std::string(file); }

  // A fresh directory for files a test rewrites.
  static std::string scratch_dir() {
    std::string dir = scratch_ + "/scratch.XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << dir;
    return dir;
  }

  static Certificate cert(std::string_view stem, std::vector<std::string> names) {
    Certificate c;
    c.chain_file = path(std::string(stem) + ".pem");
    c.key_file = path(std::string(stem) + ".key");
    c.names = std::move(names);
    return c;
  }

  static ServerConfig server_config() {
    ServerConfig config;
    config.certificates.push_back(cert("a", {"a.test", "*.a.test"}));
    config.handshake_timeout = kHandshakeTimeout;
    return config;
  }
  static ServerConfig server_config(Certificate certificate) {
    ServerConfig config;
    config.certificates.push_back(std::move(certificate));
    config.handshake_timeout = kHandshakeTimeout;
    return config;
  }

  static ClientConfig client_config(Version max_version = Version::kTls13) {
    ClientConfig config;
    config.ca_file = path("ca.pem");
    config.max_version = max_version;
    config.handshake_timeout = kHandshakeTimeout;
    return config;
  }

  std::shared_ptr<const ServerContext> make_server(const ServerConfig& config,
                                                   std::shared_ptr<TicketKeys> keys = nullptr) {
    auto made = ServerContext::create(server_backend(), config, std::move(keys));
    EXPECT_TRUE(made.has_value()) << "ServerContext::create: " << describe(made);
    if (!made) return nullptr;
    return *made;
  }

  std::shared_ptr<const ClientContext> make_client(const ClientConfig& config) {
    auto made = ClientContext::create(client_backend(), config);
    EXPECT_TRUE(made.has_value()) << "ClientContext::create: " << describe(made);
    if (!made) return nullptr;
    return *made;
  }

  // A connection and one echo round trip (outside coroutines).
  Outcome connect(std::shared_ptr<const ServerContext> server,
                  std::shared_ptr<const ClientContext> client, std::string name) {
    return run(
        session(&listener_, address_, std::move(server), std::move(client), std::move(name)));
  }

  static std::string certs_;
  static std::string scratch_;
  std::unique_ptr<runtime::Runtime> rt_;
  Listener listener_;
  SocketAddress address_;
};

std::string TlsTest::certs_;
std::string TlsTest::scratch_;

// --- 1. handshake and data -----------------------------------------------------------------------

TEST_P(TlsTest, HandshakeAndEcho) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Connection conn = co_await open_connection(&listener_, address_, server, client, "a.test");
    CO_REQUIRE_OK(conn.server);
    CO_REQUIRE_OK(conn.client);
    TlsStream& s = *conn.server;
    TlsStream& c = *conn.client;
    EXPECT_EQ(s.version(), Version::kTls13);
    EXPECT_EQ(c.version(), Version::kTls13);
    EXPECT_FALSE(s.cipher().empty());
    EXPECT_FALSE(c.cipher().empty());
    EXPECT_EQ(s.server_name(), "a.test");
    EXPECT_EQ(c.server_name(), "a.test");
    EXPECT_EQ(s.alpn(), "");
    EXPECT_EQ(c.alpn(), "");
    EXPECT_FALSE(s.resumed());
    EXPECT_FALSE(c.resumed());
    EXPECT_FALSE(c.closed_cleanly());

    // Small messages, then sizes around the 16 KiB record limit.
    uint32_t seed = 1;
    for (size_t size : {1u, 2u, 5u, 100u, 1000u, 16383u, 16384u, 16385u, 70000u}) {
      Result<void> r = co_await exchange(&c, &s, pattern(size, seed++));
      EXPECT_TRUE(r.has_value()) << size << " bytes: " << describe(r);
    }
    // 1 MiB to the server and back.
    Result<void> big = co_await exchange(&c, &s, pattern(1 << 20, 99));
    EXPECT_TRUE(big.has_value()) << "1 MiB: " << describe(big);

    // And the server speaking first.
    Result<void> hello = co_await write_string(&s, "server first");
    EXPECT_TRUE(hello.has_value()) << describe(hello);
    Result<std::string> got = co_await read_exactly(&c, 12);
    EXPECT_TRUE(got.has_value() && *got == "server first") << describe(got);
  };
  run(body());
}

TEST_P(TlsTest, Tls12WhenTheClientCapsIt) {
  auto server = make_server(server_config());
  ClientConfig config = client_config();
  config.max_version = Version::kTls12;
  auto client = make_client(config);
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Connection conn = co_await open_connection(&listener_, address_, server, client, "a.test");
    CO_REQUIRE_OK(conn.server);
    CO_REQUIRE_OK(conn.client);
    EXPECT_EQ(conn.server->version(), Version::kTls12);
    EXPECT_EQ(conn.client->version(), Version::kTls12);
    EXPECT_FALSE(conn.server->cipher().empty());
    EXPECT_FALSE(conn.client->cipher().empty());
    Result<void> big = co_await exchange(&*conn.client, &*conn.server, pattern(1 << 20, 7));
    EXPECT_TRUE(big.has_value()) << describe(big);
  };
  run(body());
}

// Several connections at once on one runtime, each with its own data.
TEST_P(TlsTest, ConcurrentConnections) {
  constexpr int kConnections = 8;
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<void>> served =
        spawn_with_handle(serve_echo(&listener_, server, kConnections));
    std::vector<JoinHandle<Result<void>>> clients;
    for (int i = 0; i < kConnections; ++i) {
      clients.push_back(spawn_with_handle(talk(address_, client, static_cast<uint32_t>(i + 1))));
    }
    for (int i = 0; i < kConnections; ++i) {
      Result<void> r = co_await clients[static_cast<size_t>(i)];
      EXPECT_TRUE(r.has_value()) << "client " << i << ": " << describe(r);
    }
    Result<void> s = co_await served;
    EXPECT_TRUE(s.has_value()) << "server: " << describe(s);
  };
  run(body());
}

// --- 2. SNI --------------------------------------------------------------------------------------

TEST_P(TlsTest, SniSelectsTheCertificate) {
  ServerConfig config = server_config();
  config.certificates.push_back(cert("b", {"b.test"}));
  auto server = make_server(config);
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);

  // The client verifies the name, so success means the matching certificate was served.
  Outcome b = connect(server, client, "b.test");
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_EQ(b.server_sni, "b.test");

  Outcome wildcard = connect(server, client, "x.a.test");
  EXPECT_TRUE(wildcard.ok()) << wildcard;
  EXPECT_EQ(wildcard.server_sni, "x.a.test");

  Outcome exact = connect(server, client, "a.test");
  EXPECT_TRUE(exact.ok()) << exact;

  // No certificate has the name: the default (a) is served and fails the client's check.
  Outcome unknown = connect(server, client, "unknown.test");
  EXPECT_TRUE(unknown.client_error.has_value()) << unknown;
  EXPECT_TRUE(contains_ci(unknown.client_message(), "verify")) << unknown;
  EXPECT_TRUE(unknown.server_error.has_value()) << unknown;
}

// --- 3. ALPN -------------------------------------------------------------------------------------

TEST_P(TlsTest, AlpnFollowsServerPreference) {
  ServerConfig config = server_config();
  config.alpn = {"h2", "http/1.1"};
  auto server = make_server(config);
  ASSERT_TRUE(server);
  struct Case {
    std::vector<std::string> offered;
    std::string expected;
  };
  const Case cases[] = {
      {{"http/1.1", "h2"}, "h2"},
      {{"http/1.1"}, "http/1.1"},
      {{"spdy/3"}, ""},  // nothing in common: no ALPN, the handshake still succeeds
      {{}, ""},
  };
  for (const Case& c : cases) {
    std::string offered;
    for (const std::string& name : c.offered) offered += name + " ";
    SCOPED_TRACE("client offers " + offered);
    ClientConfig client_cfg = client_config();
    client_cfg.alpn = c.offered;
    auto client = make_client(client_cfg);
    ASSERT_TRUE(client);
    Outcome o = connect(server, client, "a.test");
    EXPECT_TRUE(o.ok()) << o;
    EXPECT_EQ(o.client_alpn, c.expected);
    EXPECT_EQ(o.server_alpn, c.expected);
  }
}

// --- 4. resumption and ticket keys ---------------------------------------------------------------

TEST_P(TlsTest, ResumesAndKeepsResuming) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto server = make_server(server_config());
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server && client);
    Outcome first = connect(server, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    EXPECT_FALSE(first.client_resumed);
    EXPECT_FALSE(first.server_resumed);
    Outcome second = connect(server, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;
    EXPECT_TRUE(second.client_resumed);
    EXPECT_TRUE(second.server_resumed);
    EXPECT_EQ(second.client_version, max);
    EXPECT_EQ(second.server_version, max);
    // And again: every connection leaves a session for the next one.
    Outcome third = connect(server, client, "a.test");
    ASSERT_TRUE(third.ok()) << third;
    EXPECT_TRUE(third.client_resumed);
    EXPECT_TRUE(third.server_resumed);
  }
}

// Sessions are kept per name asked for, also for IP literals (which send no SNI), with and
// without verification.
TEST_P(TlsTest, ResumesToAnIpAddress) {
  auto server = make_server(server_config(cert("ip", {"localhost"})));
  ASSERT_TRUE(server);
  for (bool verify : {true, false}) {
    SCOPED_TRACE(verify ? "verifying" : "not verifying");
    ClientConfig config = client_config();
    config.verify = verify;
    auto client = make_client(config);
    ASSERT_TRUE(client);
    Outcome first = connect(server, client, "127.0.0.1");
    ASSERT_TRUE(first.ok()) << first;
    Outcome second = connect(server, client, "127.0.0.1");
    ASSERT_TRUE(second.ok()) << second;
    EXPECT_TRUE(second.client_resumed);
    EXPECT_TRUE(second.server_resumed);
  }
}

TEST_P(TlsTest, NoResumptionWithoutTickets) {
  ServerConfig config = server_config();
  config.session_tickets = false;
  auto server = make_server(config);
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  Outcome first = connect(server, client, "a.test");
  ASSERT_TRUE(first.ok()) << first;
  Outcome second = connect(server, client, "a.test");
  ASSERT_TRUE(second.ok()) << second;
  EXPECT_FALSE(second.client_resumed);
  EXPECT_FALSE(second.server_resumed);
}

// Two workers: separate ServerContexts over the same TicketKeys.
TEST_P(TlsTest, TicketFromOneWorkerResumesOnAnother) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto keys = TicketKeys::generate();
    auto server1 = make_server(server_config(), keys);
    auto server2 = make_server(server_config(), keys);
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server1 && server2 && client);
    Outcome first = connect(server1, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    Outcome second = connect(server2, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;
    EXPECT_TRUE(second.client_resumed);
    EXPECT_TRUE(second.server_resumed);
  }
}

// A binary upgrade: the keys are exported, and the new process imports them.
TEST_P(TlsTest, TicketKeysSurviveExportAndImport) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto keys = TicketKeys::generate();
    keys->rotate();  // more than one key travels
    auto server1 = make_server(server_config(), keys);
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server1 && client);
    Outcome first = connect(server1, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;

    const std::string exported = keys->export_keys();
    auto imported = TicketKeys::import_keys(exported);
    ASSERT_TRUE(imported.has_value()) << imported.error().to_string();
    EXPECT_EQ((*imported)->export_keys(), exported);
    EXPECT_EQ((*imported)->keys(), keys->keys());
    auto server2 = make_server(server_config(), *imported);
    ASSERT_TRUE(server2);
    Outcome second = connect(server2, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;
    EXPECT_TRUE(second.client_resumed);
    EXPECT_TRUE(second.server_resumed);
  }
}

TEST_P(TlsTest, DifferentTicketKeysDoNotResume) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto server1 = make_server(server_config(), TicketKeys::generate());
    auto server2 = make_server(server_config(), TicketKeys::generate());
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server1 && server2 && client);
    Outcome first = connect(server1, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    Outcome second = connect(server2, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;  // a full handshake instead
    EXPECT_FALSE(second.client_resumed);
    EXPECT_FALSE(second.server_resumed);
  }
}

// A resumed handshake sends no certificates, so a ticket must not carry a client past a
// client-certificate policy it was not issued under (a reload that adds mTLS, another listener
// sharing the keys).
TEST_P(TlsTest, TicketsAreBoundToTheClientCertificatePolicy) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto keys = TicketKeys::generate();
    ServerConfig plain = server_config();
    ServerConfig with_mtls = server_config();
    with_mtls.client_ca_file = path("ca.pem");
    with_mtls.require_client_certificate = false;  // a client without one is still let in
    auto server1 = make_server(plain, keys);
    auto server2 = make_server(with_mtls, keys);
    auto server3 = make_server(plain, keys);
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server1 && server2 && server3 && client);
    Outcome first = connect(server1, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    Outcome other_policy = connect(server2, client, "a.test");
    ASSERT_TRUE(other_policy.ok()) << other_policy;
    EXPECT_FALSE(other_policy.server_resumed);
    EXPECT_FALSE(other_policy.client_resumed);
    Outcome fresh = connect(server1, client, "a.test");  // a new ticket from the plain policy
    ASSERT_TRUE(fresh.ok()) << fresh;
    Outcome same_policy = connect(server3, client, "a.test");
    ASSERT_TRUE(same_policy.ok()) << same_policy;
    EXPECT_TRUE(same_policy.server_resumed);
  }
}

TEST_P(TlsTest, VerifyingClientNeedsAServerName) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  Outcome o = connect(server, client, "");
  EXPECT_FALSE(o.ok()) << o;
}

TEST_P(TlsTest, TicketKeyRotation) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto keys = TicketKeys::generate();
    auto server = make_server(server_config(), keys);
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server && client);
    Outcome first = connect(server, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    keys->rotate();
    Outcome second = connect(server, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;
    if (server_backend() == Backend::kOpenSsl) {
      // OpenSSL opens tickets with any key TicketKeys still keeps (the current and two before).
      EXPECT_TRUE(second.client_resumed);
      EXPECT_TRUE(second.server_resumed);
    } else {
      // GnuTLS 3.7 takes one ticket master key and has no hook for older ones: after rotate()
      // tickets sealed under the previous key are refused and the client makes a full
      // handshake (what the GnuTLS backend documents).
      EXPECT_FALSE(second.client_resumed);
      EXPECT_FALSE(second.server_resumed);
    }
    // Either way the second connection got a ticket under the new key, which resumes.
    Outcome third = connect(server, client, "a.test");
    ASSERT_TRUE(third.ok()) << third;
    EXPECT_TRUE(third.client_resumed);
    EXPECT_TRUE(third.server_resumed);
  }
}

// Past kMaxKeys rotations the key that sealed a ticket is gone: a full handshake, no error.
TEST_P(TlsTest, TicketOfADroppedKeyDoesNotResume) {
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    auto keys = TicketKeys::generate();
    auto server = make_server(server_config(), keys);
    auto client = make_client(client_config(max));
    ASSERT_TRUE(server && client);
    Outcome first = connect(server, client, "a.test");
    ASSERT_TRUE(first.ok()) << first;
    for (size_t i = 0; i < TicketKeys::kMaxKeys; ++i) keys->rotate();
    Outcome second = connect(server, client, "a.test");
    ASSERT_TRUE(second.ok()) << second;
    EXPECT_FALSE(second.client_resumed);
    EXPECT_FALSE(second.server_resumed);
  }
}

// --- 5. key formats and loading errors -----------------------------------------------------------

TEST_P(TlsTest, KeyFormats) {
  struct Case {
    const char* stem;
    const char* name;
    const char* passphrase;
  };
  const Case cases[] = {
      {"a", "a.test", ""},          // PKCS#8 RSA
      {"rsa1", "a.test", ""},       // PKCS#1 RSA
      {"b", "b.test", ""},          // SEC1 EC
      {"enc", "a.test", "secret"},  // encrypted PKCS#8
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.stem);
    Certificate certificate = cert(c.stem, {c.name});
    certificate.key_passphrase = c.passphrase;
    auto server = make_server(server_config(certificate));
    auto client = make_client(client_config());
    ASSERT_TRUE(server && client);
    Outcome o = connect(server, client, c.name);
    EXPECT_TRUE(o.ok()) << o;
    EXPECT_FALSE(o.client_cipher.empty());
  }
}

TEST_P(TlsTest, LoadingErrorsNameTheFile) {
  auto create = [&](Certificate certificate) {
    return ServerContext::create(server_backend(), server_config(std::move(certificate)), nullptr);
  };
  {
    SCOPED_TRACE("encrypted key without passphrase");
    auto r = create(cert("enc", {"a.test"}));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), "enc.key")) << r.error().to_string();
  }
  {
    SCOPED_TRACE("encrypted key with a wrong passphrase");
    Certificate c = cert("enc", {"a.test"});
    c.key_passphrase = "wrong";
    auto r = create(c);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), "enc.key")) << r.error().to_string();
  }
  {
    SCOPED_TRACE("missing certificate file");
    auto r = create(cert("missing", {"a.test"}));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), path("missing.pem"))) << r.error().to_string();
  }
  {
    SCOPED_TRACE("missing key file");
    Certificate c = cert("a", {"a.test"});
    c.key_file = path("nothing-here.key");
    auto r = create(c);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), c.key_file)) << r.error().to_string();
  }
  {
    SCOPED_TRACE("key of another certificate");
    Certificate c = cert("a", {"a.test"});
    c.key_file = path("b.key");
    auto r = create(c);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), "b.key") ||
                contains(r.error().to_string(), "a.pem"))
        << r.error().to_string();
  }
  {
    SCOPED_TRACE("client CA file missing");
    ClientConfig config = client_config();
    config.ca_file = path("no-such-ca.pem");
    auto r = ClientContext::create(client_backend(), config);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(contains(r.error().to_string(), config.ca_file)) << r.error().to_string();
  }
}

// --- 6. verification on the client ---------------------------------------------------------------

TEST_P(TlsTest, WrongCaFailsVerification) {
  auto server = make_server(server_config());
  ClientConfig config = client_config();
  config.ca_file = path("other-ca.pem");
  auto client = make_client(config);
  ASSERT_TRUE(server && client);
  Outcome o = connect(server, client, "a.test");
  ASSERT_TRUE(o.client_error.has_value()) << o;
  EXPECT_TRUE(contains_ci(o.client_error->to_string(), "verify")) << o;
  EXPECT_TRUE(o.server_error.has_value()) << o;
}

TEST_P(TlsTest, WrongHostNameFails) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  Outcome o = connect(server, client, "c.test");
  ASSERT_TRUE(o.client_error.has_value()) << o;
  EXPECT_TRUE(o.server_error.has_value()) << o;
  // A wildcard covers one label only.
  Outcome deep = connect(server, client, "x.y.a.test");
  EXPECT_TRUE(deep.client_error.has_value()) << deep;
}

TEST_P(TlsTest, ExpiredCertificateFails) {
  auto server = make_server(server_config(cert("expired", {"a.test"})));
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  Outcome o = connect(server, client, "a.test");
  ASSERT_TRUE(o.client_error.has_value()) << o;
  EXPECT_TRUE(o.server_error.has_value()) << o;
}

TEST_P(TlsTest, NoVerificationConnectsAnyway) {
  auto server = make_server(server_config(cert("expired", {"a.test"})));
  ClientConfig config = client_config();
  config.verify = false;
  config.ca_file = path("other-ca.pem");
  auto client = make_client(config);
  ASSERT_TRUE(server && client);
  Outcome o = connect(server, client, "not-the-name.test");
  EXPECT_TRUE(o.ok()) << o;
}

TEST_P(TlsTest, IpLiteralVerifiesAgainstIpSan) {
  auto client = make_client(client_config());
  auto ip_server = make_server(server_config(cert("ip", {"localhost"})));
  ASSERT_TRUE(ip_server && client);
  Outcome o = connect(ip_server, client, "127.0.0.1");
  EXPECT_TRUE(o.ok()) << o;
  // The a.test certificate has no IP address.
  auto a_server = make_server(server_config());
  ASSERT_TRUE(a_server);
  Outcome wrong = connect(a_server, client, "127.0.0.1");
  EXPECT_TRUE(wrong.client_error.has_value()) << wrong;
}

// --- 7. version policy ---------------------------------------------------------------------------

TEST_P(TlsTest, NoCommonVersionFailsOnBothEnds) {
  {
    SCOPED_TRACE("server TLS 1.3 only, client TLS 1.2 at most");
    ServerConfig server_cfg = server_config();
    server_cfg.min_version = Version::kTls13;
    ClientConfig client_cfg = client_config();
    client_cfg.max_version = Version::kTls12;
    auto server = make_server(server_cfg);
    auto client = make_client(client_cfg);
    ASSERT_TRUE(server && client);
    Outcome o = connect(server, client, "a.test");
    ASSERT_TRUE(o.server_error.has_value()) << o;
    ASSERT_TRUE(o.client_error.has_value()) << o;
    EXPECT_NE(o.server_error->code(), ErrorCode::kTimeout) << o;
    EXPECT_NE(o.client_error->code(), ErrorCode::kTimeout) << o;
  }
  {
    SCOPED_TRACE("server TLS 1.2 at most, client TLS 1.3 only");
    ServerConfig server_cfg = server_config();
    server_cfg.max_version = Version::kTls12;
    ClientConfig client_cfg = client_config();
    client_cfg.min_version = Version::kTls13;
    auto server = make_server(server_cfg);
    auto client = make_client(client_cfg);
    ASSERT_TRUE(server && client);
    Outcome o = connect(server, client, "a.test");
    ASSERT_TRUE(o.server_error.has_value()) << o;
    ASSERT_TRUE(o.client_error.has_value()) << o;
    EXPECT_NE(o.server_error->code(), ErrorCode::kTimeout) << o;
    EXPECT_NE(o.client_error->code(), ErrorCode::kTimeout) << o;
  }
}

// --- 8. client certificates ----------------------------------------------------------------------

TEST_P(TlsTest, MutualTls) {
  ServerConfig server_cfg = server_config();
  server_cfg.client_ca_file = path("ca.pem");
  server_cfg.require_client_certificate = true;
  auto server = make_server(server_cfg);
  ASSERT_TRUE(server);

  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(version_name(max));
    ClientConfig anonymous_cfg = client_config();
    anonymous_cfg.max_version = max;
    auto anonymous = make_client(anonymous_cfg);
    ClientConfig with_cert_cfg = anonymous_cfg;
    with_cert_cfg.client_certificate = cert("client", {});
    auto with_cert = make_client(with_cert_cfg);
    ASSERT_TRUE(anonymous && with_cert);

    Outcome refused = connect(server, anonymous, "a.test");
    EXPECT_TRUE(refused.server_error.has_value()) << refused;
    // TLS 1.2 fails the client's handshake; in TLS 1.3 the client finishes first and sees the
    // server's alert on its first read.
    EXPECT_TRUE(refused.client_failed()) << refused;

    Outcome accepted = connect(server, with_cert, "a.test");
    EXPECT_TRUE(accepted.ok()) << accepted;
    EXPECT_EQ(accepted.server_peer_subject, "CN=client");
    // A resumed session still names the client certificate it was established with.
    Outcome again = connect(server, with_cert, "a.test");
    EXPECT_TRUE(again.ok()) << again;
    EXPECT_TRUE(again.server_resumed);
    EXPECT_EQ(again.server_peer_subject, "CN=client");
  }

  // Optional client certificates: a client without one is let in.
  server_cfg.require_client_certificate = false;
  auto lenient = make_server(server_cfg);
  auto anonymous = make_client(client_config());
  ASSERT_TRUE(lenient && anonymous);
  Outcome o = connect(lenient, anonymous, "a.test");
  EXPECT_TRUE(o.ok()) << o;
  EXPECT_EQ(o.server_peer_subject, "");
}

// --- 9. close_notify -----------------------------------------------------------------------------

TEST_P(TlsTest, CloseNotifyFromServer) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Connection conn = co_await open_connection(&listener_, address_, server, client, "a.test");
    CO_REQUIRE_OK(conn.server);
    CO_REQUIRE_OK(conn.client);
    Result<void> echoed = co_await exchange(&*conn.client, &*conn.server, "before close");
    EXPECT_TRUE(echoed.has_value()) << describe(echoed);
    Result<void> shut = co_await with_timeout(conn.server->shutdown(), kIoLimit);
    EXPECT_TRUE(shut.has_value()) << describe(shut);
    IoBuffer buffer;
    Result<size_t> n = co_await with_timeout(conn.client->read_some(buffer), kIoLimit);
    CO_REQUIRE_OK(n);
    EXPECT_EQ(*n, 0u);
    EXPECT_TRUE(conn.client->closed_cleanly());
  };
  run(body());
}

TEST_P(TlsTest, CloseNotifyFromClient) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Connection conn = co_await open_connection(&listener_, address_, server, client, "a.test");
    CO_REQUIRE_OK(conn.server);
    CO_REQUIRE_OK(conn.client);
    Result<void> shut = co_await with_timeout(conn.client->shutdown(), kIoLimit);
    EXPECT_TRUE(shut.has_value()) << describe(shut);
    IoBuffer buffer;
    Result<size_t> n = co_await with_timeout(conn.server->read_some(buffer), kIoLimit);
    CO_REQUIRE_OK(n);
    EXPECT_EQ(*n, 0u);
    EXPECT_TRUE(conn.server->closed_cleanly());
  };
  run(body());
}

TEST_P(TlsTest, TransportEndWithoutCloseNotify) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Connection conn = co_await open_connection(&listener_, address_, server, client, "a.test");
    CO_REQUIRE_OK(conn.server);
    CO_REQUIRE_OK(conn.client);
    Result<void> echoed = co_await exchange(&*conn.client, &*conn.server, "before close");
    EXPECT_TRUE(echoed.has_value()) << describe(echoed);
    // The server drops the TCP connection without a close_notify.
    Result<void> closed = co_await conn.server->transport().close();
    EXPECT_TRUE(closed.has_value()) << describe(closed);
    IoBuffer buffer;
    Result<size_t> n = co_await with_timeout(conn.client->read_some(buffer), kIoLimit);
    CO_REQUIRE_OK(n);
    EXPECT_EQ(*n, 0u);
    EXPECT_FALSE(conn.client->closed_cleanly());
  };
  run(body());
}

// --- 10. hostile and broken peers ----------------------------------------------------------------

Task<Result<size_t>> read_raw(Stream* s, IoBuffer* into) { co_return co_await s->read_some(*into); }

// Connects a plain TCP client, sends `bytes`, optionally ends the stream, and returns what the
// server's accept() made of it.
Task<Result<TlsStream>> raw_attempt(Listener* listener, SocketAddress address,
                                    std::shared_ptr<const ServerContext> server, std::string bytes,
                                    bool close_after) {
  JoinHandle<Result<TlsStream>> accepted =
      spawn_with_handle(with_timeout(accept_tls(listener, std::move(server)), kIoLimit));
  Result<Stream> raw = co_await Stream::connect(address);
  if (!raw) {
    accepted.cancel();
    (void)co_await accepted;
    co_return std::move(raw).error();
  }
  if (!bytes.empty()) {
    auto written = co_await raw->write_all(IoBuffer::copy_of(bytes));
    EXPECT_TRUE(written.result.has_value()) << describe(written.result);
  }
  if (close_after) {
    Result<void> closed = co_await raw->close();
    EXPECT_TRUE(closed.has_value()) << describe(closed);
  }
  Result<TlsStream> s = co_await accepted;
  if (!close_after) {
    // The server must have closed its end: the raw client reads an alert and/or end of
    // stream (or a reset), never a hang.
    IoBuffer sink;
    while (true) {
      Result<size_t> n = co_await with_timeout(read_raw(&*raw, &sink), kIoLimit);
      if (!n) {
        EXPECT_NE(n.error().code(), ErrorCode::kTimeout) << "the server kept the socket open";
        break;
      }
      if (*n == 0) break;
    }
  }
  co_return s;
}

TEST_P(TlsTest, GarbageInsteadOfClientHello) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    Result<TlsStream> s = co_await raw_attempt(&listener_, address_, server,
                                               "GET / HTTP/1.1\r\n\r\n", /*close_after=*/false);
    CO_REQUIRE(!s.has_value());
    EXPECT_EQ(s.error().code(), ErrorCode::kProtocol) << s.error().to_string();
    // The context goes on serving.
    Outcome next = co_await session(&listener_, address_, server, client, "a.test");
    EXPECT_TRUE(next.ok()) << next;
  };
  run(body());
}

TEST_P(TlsTest, TruncatedHandshake) {
  auto server = make_server(server_config());
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    // A handshake record header announcing 16 KiB, then the end of the stream.
    const std::string header("\x16\x03\x01\x40\x00", 5);
    const auto start = Clock::now();
    Result<TlsStream> s =
        co_await raw_attempt(&listener_, address_, server, header, /*close_after=*/true);
    CO_REQUIRE(!s.has_value());
    EXPECT_NE(s.error().code(), ErrorCode::kTimeout) << s.error().to_string();
    EXPECT_LT(Clock::now() - start, 5s);
    Outcome next = co_await session(&listener_, address_, server, client, "a.test");
    EXPECT_TRUE(next.ok()) << next;
  };
  run(body());
}

TEST_P(TlsTest, StalledHandshakeTimesOut) {
  ServerConfig config = server_config();
  config.handshake_timeout = 200ms;
  auto server = make_server(config);
  auto client = make_client(client_config());
  ASSERT_TRUE(server && client);
  auto body = [&]() -> Task<void> {
    const auto start = Clock::now();
    Result<TlsStream> s =
        co_await raw_attempt(&listener_, address_, server, "", /*close_after=*/false);
    const auto elapsed = Clock::now() - start;
    CO_REQUIRE(!s.has_value());
    EXPECT_EQ(s.error().code(), ErrorCode::kTimeout) << s.error().to_string();
    EXPECT_GE(elapsed, 150ms);
    EXPECT_LT(elapsed, 5s);
    Outcome next = co_await session(&listener_, address_, server, client, "a.test");
    EXPECT_TRUE(next.ok()) << next;
  };
  run(body());
}

// --- 11. reload ----------------------------------------------------------------------------------

TEST_P(TlsTest, ReloadServesNewCertificateToNewConnections) {
  const std::string dir = scratch_dir();
  const std::string chain = dir + "/chain.pem";
  const std::string key = dir + "/key.pem";
  copy_file(path("a.pem"), chain);
  copy_file(path("a.key"), key);
  ServerConfig config;
  config.certificates.push_back({chain, key, "", {"a.test", "b.test"}});
  config.handshake_timeout = kHandshakeTimeout;
  auto made = ReloadableServerContext::create(server_backend(), config, nullptr);
  ASSERT_TRUE(made.has_value()) << made.error().to_string();
  ReloadableServerContext& reloadable = **made;
  // No resumption, so every connection shows the certificate it was given.
  ClientConfig client_cfg = client_config();
  client_cfg.session_resumption = false;
  auto client = make_client(client_cfg);
  ASSERT_TRUE(client);

  auto body = [&]() -> Task<void> {
    Connection old =
        co_await open_connection(&listener_, address_, reloadable.current(), client, "a.test");
    CO_REQUIRE_OK(old.server);
    CO_REQUIRE_OK(old.client);
    Result<void> first = co_await exchange(&*old.client, &*old.server, "first");
    EXPECT_TRUE(first.has_value()) << describe(first);

    // Certificate a does not cover b.test.
    Outcome before = co_await session(&listener_, address_, reloadable.current(), client, "b.test");
    EXPECT_TRUE(before.client_error.has_value()) << before;

    copy_file(path("b.pem"), chain);
    copy_file(path("b.key"), key);
    const ServerContext* replaced = reloadable.current().get();
    Result<void> reloaded = reloadable.reload();
    EXPECT_TRUE(reloaded.has_value()) << describe(reloaded);
    EXPECT_NE(reloadable.current().get(), replaced);

    Outcome after = co_await session(&listener_, address_, reloadable.current(), client, "b.test");
    EXPECT_TRUE(after.ok()) << after;

    // The open connection keeps working on the replaced context.
    Result<void> still = co_await exchange(&*old.client, &*old.server, pattern(100000, 3));
    EXPECT_TRUE(still.has_value()) << describe(still);

    // A broken file: the reload fails and the running context stays.
    write_file(chain, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    const ServerContext* in_force = reloadable.current().get();
    Result<void> broken = reloadable.reload();
    EXPECT_FALSE(broken.has_value());
    if (!broken) {
      EXPECT_TRUE(contains(broken.error().to_string(), chain)) << describe(broken);
    }
    EXPECT_EQ(reloadable.current().get(), in_force);
    ServerConfig missing = config;
    missing.certificates[0].key_file = dir + "/gone.key";
    Result<void> broken2 = reloadable.reload(missing);
    EXPECT_FALSE(broken2.has_value());
    EXPECT_EQ(reloadable.current().get(), in_force);

    Outcome later = co_await session(&listener_, address_, reloadable.current(), client, "b.test");
    EXPECT_TRUE(later.ok()) << later;
    Result<void> last = co_await exchange(&*old.client, &*old.server, "last");
    EXPECT_TRUE(last.has_value()) << describe(last);
  };
  run(body());
}

INSTANTIATE_TEST_SUITE_P(IoUring, TlsTest, ::testing::ValuesIn(all_pairs(BackendKind::kIoUring)),
                         combo_name);
INSTANTIATE_TEST_SUITE_P(Epoll, TlsTest, ::testing::ValuesIn(all_pairs(BackendKind::kEpoll)),
                         combo_name);

// --- 12. backend names ---------------------------------------------------------------------------

TEST(TlsBackendName, Parse) {
  auto openssl = parse_backend("openssl");
  ASSERT_TRUE(openssl.has_value());
  EXPECT_EQ(*openssl, Backend::kOpenSsl);
  auto gnutls = parse_backend("gnutls");
  ASSERT_TRUE(gnutls.has_value());
  EXPECT_EQ(*gnutls, Backend::kGnuTls);
  EXPECT_EQ(backend_name(Backend::kOpenSsl), "openssl");
  EXPECT_EQ(backend_name(Backend::kGnuTls), "gnutls");
  auto rustls = parse_backend("rustls");
  ASSERT_FALSE(rustls.has_value());
  EXPECT_EQ(rustls.error().code(), ErrorCode::kInvalidArgument);
  const std::string message = rustls.error().to_string();
  EXPECT_TRUE(contains(message, "rustls")) << message;
  EXPECT_TRUE(contains(message, "openssl")) << message;
  EXPECT_TRUE(contains(message, "gnutls")) << message;
}

}  // namespace
}  // namespace monolake::tls
