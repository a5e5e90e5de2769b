// The L4 service chain over real loopback sockets, on both runtime backends (no mocks):
// TcpForward's copy both ways with half-close and byte counts; refused upstreams (back-off,
// retry on the next one, the attempt bound); the connect and idle timeouts; TlsTerminate with
// both TLS backends; the access log line; l4_server_stack's chain shape and UpstreamSet carry-over.
//
// Every upstream is a task on the test's own runtime listening on 127.0.0.1:0. Certificates
// come from tls/testing/make_test_certs.sh, run once per test process into TEST_TMPDIR.
#include "proxy/l4/l4.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/log.h"
#include "proxy/config/config.h"
#include "proxy/upstream/balancer.h"
#include "runtime/runtime.h"
#include "runtime/testing.h"
#include "runtime/time.h"
#include "tls/tls.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::proxy::l4 {
namespace {

using namespace std::chrono_literals;
using runtime::BackendKind;
using runtime::JoinHandle;
using runtime::spawn_with_handle;
using runtime::with_timeout;
using transport::Listener;
using transport::ListenOptions;
using transport::SocketAddress;
using transport::Stream;
using Clock = std::chrono::steady_clock;

// Bound on any single wait in a test, so a bug fails the test instead of hanging it.
constexpr auto kIoLimit = 10s;
// "At once": for an end that needs no waiting at all (a refused connect on loopback).
constexpr auto kPrompt = 1s;
// The proxy's own connect timeout where a test does not exercise it.
constexpr auto kConnectTimeout = 5s;
constexpr size_t kMiB = 1024 * 1024;

// --- helpers ------------------------------------------------------------------------------------

template <class T>
std::string describe(const Result<T>& r) {
  return r ? std::string("ok") : r.error().to_string();
}

std::string describe(const Result<Outcome>& r) {
  if (!r) return "call failed: " + r.error().to_string();
  return fmt::format("upstream={} to_upstream={} to_client={} failed_stage='{}' error={}",
                     r->upstream, r->to_upstream, r->to_client, r->failed_stage,
                     r->error ? r->error->to_string() : "none");
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

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

Listener listen_loopback(const ListenOptions& options = {}) {
  Result<SocketAddress> where = SocketAddress::parse("127.0.0.1:0");
  EXPECT_TRUE(where.has_value());
  if (!where) return Listener();
  Result<Listener> bound = Listener::bind(*where, options);
  EXPECT_TRUE(bound.has_value()) << describe(bound);
  return bound ? std::move(*bound) : Listener();
}

SocketAddress address_of(const Listener& listener) {
  Result<SocketAddress> local = listener.local_address();
  EXPECT_TRUE(local.has_value()) << describe(local);
  return local ? *local : SocketAddress();
}

// `n` loopback addresses nobody listens on: ports the kernel just gave listeners that are
// closed again (all bound at once, so the ports differ).
std::vector<SocketAddress> refused_addresses(size_t n) {
  std::vector<Listener> listeners;
  std::vector<SocketAddress> out;
  for (size_t i = 0; i < n; ++i) {
    listeners.push_back(listen_loopback({.reuse_port = false}));
    out.push_back(address_of(listeners.back()));
  }
  return out;  // the listeners close here
}

std::shared_ptr<UpstreamSet> upstream_set(const std::vector<SocketAddress>& addresses,
                                          Balancer balancer = Balancer::kRoundRobin) {
  std::vector<Upstream> upstreams;
  for (const SocketAddress& a : addresses) upstreams.push_back(Upstream{a, 1});
  return std::make_shared<UpstreamSet>(std::move(upstreams), balancer);
}

std::shared_ptr<TcpForward> forward_to(std::shared_ptr<UpstreamSet> set,
                                       std::optional<std::chrono::nanoseconds> idle = {},
                                       std::chrono::nanoseconds connect = kConnectTimeout) {
  TcpForward::Options options;
  options.connect_timeout = connect;
  options.idle_timeout = idle;
  return std::make_shared<TcpForward>(std::move(set), options);
}

// --- I/O on either a transport::Stream or a tls::TlsStream --------------------------------------

// Everything until end of stream.
template <class S>
Task<Result<std::string>> read_to_end(S* s) {
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await s->read_some(buffer);
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return buffer.to_string();
  }
}

// Exactly `n` bytes (an error if the stream ends first).
template <class S>
Task<Result<std::string>> read_exactly(S* s, size_t n) {
  IoBuffer buffer;
  while (buffer.size() < n) {
    Result<size_t> got = co_await s->read_some(buffer);
    if (!got) co_return std::move(got).error();
    if (*got == 0) {
      co_return Error(ErrorCode::kClosed,
                      fmt::format("end of stream after {} of {} bytes", buffer.size(), n));
    }
  }
  co_return buffer.to_string();
}

template <class S>
Task<Result<void>> write_string(S* s, std::string data) {
  auto written = co_await s->write_all(IoBuffer::copy_of(data));
  if (!written.result) co_return std::move(written.result).error();
  if (*written.result != data.size()) {
    co_return Error(ErrorCode::kIo, fmt::format("wrote {} of {}", *written.result, data.size()));
  }
  co_return ok();
}

template <class S>
Task<Result<void>> write_then_shutdown(S* s, std::string data) {
  Result<void> written = co_await write_string(s, std::move(data));
  if (!written) co_return written;
  co_return co_await s->shutdown_write();
}

// --- the ends around the proxy ------------------------------------------------------------------

// The upstream for one connection: echoes until end of stream, then sends `answer` (the way back
// to the client is still open after the client's half-close) and ends its side. Returns the
// bytes echoed.
Task<Result<size_t>> upstream_echo(Listener* listener, std::string answer = {}) {
  Result<Stream> s = co_await listener->accept();
  if (!s) co_return std::move(s).error();
  size_t total = 0;
  IoBuffer buffer;
  while (true) {
    Result<size_t> n = co_await s->read_some(buffer);
    if (!n) co_return std::move(n).error();
    if (*n == 0) break;
    auto [written, rest] = co_await s->write_all(std::move(buffer));
    buffer = std::move(rest);
    if (!written) co_return std::move(written).error();
    total += *written;
    buffer.release();
  }
  if (!answer.empty()) {
    Result<void> sent = co_await write_string(&*s, std::move(answer));
    if (!sent) co_return std::move(sent).error();
  }
  Result<void> shut = co_await s->shutdown_write();
  if (!shut) co_return std::move(shut).error();
  co_return total;
}

// The proxy for one connection: accepts it on `front` and serves it with `service`, as the
// server's accept loop does.
Task<Result<Outcome>> serve_one(Listener* front, std::shared_ptr<L4Service> service) {
  Result<Stream> accepted = co_await front->accept();
  if (!accepted) co_return std::move(accepted).error();
  Connection connection;
  connection.peer = accepted->peer_address().value_or(SocketAddress());
  connection.stream = std::move(*accepted);
  co_return co_await service->call(std::move(connection));
}

// A plain client that sends `message`, half-closes and reads the answer to the end.
struct Exchange {
  Result<void> sent = ok();
  Result<std::string> received = std::string();
};

Task<Exchange> exchange_plain(SocketAddress front, std::string message) {
  Exchange out;
  Result<Stream> client = co_await with_timeout(Stream::connect(front), kIoLimit);
  if (!client) {
    out.sent = client.error();
    co_return out;
  }
  // Written and read concurrently: the echo comes back while the message is still going out.
  JoinHandle<Result<void>> writer =
      spawn_with_handle(with_timeout(write_then_shutdown(&*client, std::move(message)), kIoLimit));
  out.received = co_await with_timeout(read_to_end(&*client), kIoLimit);
  out.sent = co_await writer;
  co_return out;
}

// --- certificates -------------------------------------------------------------------------------

// The test PKI: generated once per process (empty on failure, with a test failure added).
const std::string& test_certs() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/l4_test.XXXXXX";
    if (::mkdtemp(base.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << base;
      return std::string();
    }
    const std::string command =
        "bash tls/testing/make_test_certs.sh '" + base + "/certs' >/dev/null";
    const int status = std::system(command.c_str());
    if (status != 0) {
      ADD_FAILURE() << command << " failed with status " << status;
      return std::string();
    }
    return base + "/certs";
  }();
  return dir;
}

std::shared_ptr<const tls::ServerContext> make_tls_server(tls::Backend backend) {
  tls::ServerConfig config;
  tls::Certificate cert;
  cert.chain_file = test_certs() + "/a.pem";
  cert.key_file = test_certs() + "/a.key";
  cert.names = {"a.test", "*.a.test"};
  config.certificates.push_back(std::move(cert));
  config.handshake_timeout = 5s;
  auto made = tls::ServerContext::create(backend, config, tls::TicketKeys::generate());
  EXPECT_TRUE(made.has_value()) << describe(made);
  return made ? *made : nullptr;
}

std::shared_ptr<const tls::ClientContext> make_tls_client(tls::Backend backend) {
  tls::ClientConfig config;
  config.ca_file = test_certs() + "/ca.pem";
  config.handshake_timeout = 5s;
  auto made = tls::ClientContext::create(backend, config);
  EXPECT_TRUE(made.has_value()) << describe(made);
  return made ? *made : nullptr;
}

// --- chains -------------------------------------------------------------------------------------

config::ServerConfig tcp_server(const std::vector<SocketAddress>& upstreams,
                                Balancer balancer = Balancer::kRoundRobin,
                                std::vector<uint32_t> weights = {}) {
  config::ServerConfig server;
  server.key = "edge";
  server.name = "edge";
  server.proxy_type = config::ProxyType::kTcp;
  server.timeout.upstream_connect = 5s;
  server.timeout.tcp_idle = 0s;
  config::RouteConfig route;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    config::Upstream u;
    u.endpoint.kind = config::Endpoint::Kind::kSocket;
    u.endpoint.address = upstreams[i];
    u.weight = i < weights.size() ? weights[i] : 1;
    route.upstreams.push_back(std::move(u));
  }
  route.load_balancer = balancer;
  server.routes.push_back(std::move(route));
  return server;
}

// The Generation each chain made here was built into, so that a later make_chain can build
// from it as a reload does (the server's ServiceSet keeps it beside the chains).
std::map<const L4Service*, std::shared_ptr<Generation>>& generations() {
  static std::map<const L4Service*, std::shared_ptr<Generation>> all;
  return all;
}

Result<std::shared_ptr<L4Service>> build_chain(const config::ServerConfig& server,
                                               const std::shared_ptr<L4Service>& previous,
                                               std::shared_ptr<const tls::ServerContext> tls,
                                               const std::string& scope = "servers.t") {
  Result<L4Stack> stack = l4_server_stack(server, std::move(tls));
  if (!stack) return std::move(stack).error();
  const Generation* before = nullptr;
  if (auto it = generations().find(previous.get()); previous && it != generations().end()) {
    before = it->second.get();
  }
  auto next = std::make_shared<Generation>();
  Result<std::shared_ptr<L4Service>> chain = stack->make(Build(before, *next, scope));
  if (chain) generations()[chain->get()] = next;
  return chain;
}

std::shared_ptr<L4Service> make_chain(const config::ServerConfig& server,
                                      const std::shared_ptr<L4Service>& previous = nullptr,
                                      std::shared_ptr<const tls::ServerContext> tls = nullptr,
                                      const std::string& scope = "servers.t") {
  Result<std::shared_ptr<L4Service>> chain = build_chain(server, previous, std::move(tls), scope);
  EXPECT_TRUE(chain.has_value()) << describe(chain);
  return chain ? *chain : nullptr;
}

// The layer under `service`, or nullptr if it is not a layer.
L4Service* inner_of(L4Service* service) {
  auto* layer = dynamic_cast<Layer<Connection, Outcome>*>(service);
  return layer ? layer->inner().get() : nullptr;
}

// The TcpForward at the bottom of an AccessLog -> [TlsTerminate] -> TcpForward chain.
TcpForward* forward_of(const std::shared_ptr<L4Service>& chain) {
  L4Service* s = chain.get();
  while (s && !dynamic_cast<TcpForward*>(s)) s = inner_of(s);
  return dynamic_cast<TcpForward*>(s);
}

// --- fixture ------------------------------------------------------------------------------------

class L4Test : public runtime::BackendTest {
 protected:
  void TearDown() override {
    listeners_.clear();  // before the runtime they accept on
    BackendTest::TearDown();
  }
  // A listener on 127.0.0.1:0 that lives until expect_quiet() or the end of the test.
  Listener& listen() { return listeners_.emplace_back(listen_loopback()); }
  // Nothing left behind once the listeners (whose multishot accept stays armed) are closed.
  void expect_quiet() {
    listeners_.clear();
    expect_idle();
  }
  bool backing_off(const UpstreamSet& set, size_t index) {
    return set.backing_off(index, rt().now());
  }

  std::deque<Listener> listeners_;
};

// --- copying both ways --------------------------------------------------------------------------

TEST_P(L4Test, CopiesBothWaysAndPassesTheHalfCloseOn) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto set = upstream_set({address_of(upstream)});
  auto forward = forward_to(set);
  const std::string payload = pattern(kMiB, 1);
  // Sent by the upstream after it saw the client's end of stream.
  const std::string answer = "upstream saw end of stream";

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&upstream, answer), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Exchange client = co_await exchange_plain(address_of(front), payload);
    Result<Outcome> outcome = co_await proxy;
    Result<size_t> echoed = co_await echo;

    EXPECT_TRUE(client.sent.has_value()) << describe(client.sent);
    CO_REQUIRE_OK(client.received);
    EXPECT_EQ(client.received->size(), payload.size() + answer.size());
    EXPECT_TRUE(*client.received == payload + answer) << "the bytes came back changed";
    CO_REQUIRE_OK(echoed);
    EXPECT_EQ(*echoed, payload.size());

    CO_REQUIRE_OK(outcome);
    EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
    EXPECT_EQ(outcome->failed_stage, "");
    EXPECT_EQ(outcome->upstream, address_of(upstream).to_string());
    EXPECT_EQ(outcome->to_upstream, payload.size());
    EXPECT_EQ(outcome->to_client, payload.size() + answer.size());
    EXPECT_FALSE(backing_off(*set, 0));
  };
  run(body());
  expect_quiet();
}

// The upstream ends first: its end of stream reaches the client, which can still send; the
// upstream reads that after its own half-close.
TEST_P(L4Test, UpstreamHalfCloseFirst) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto forward = forward_to(upstream_set({address_of(upstream)}));

  auto upstream_side = [](Listener* listener) -> Task<Result<std::string>> {
    Result<Stream> s = co_await listener->accept();
    if (!s) co_return std::move(s).error();
    Result<void> sent = co_await write_then_shutdown(&*s, std::string("hello, then goodbye"));
    if (!sent) co_return std::move(sent).error();
    co_return co_await read_to_end(&*s);
  };

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<std::string>> server =
        spawn_with_handle(with_timeout(upstream_side(&upstream), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    Result<std::string> greeting = co_await with_timeout(read_to_end(&*client), kIoLimit);
    CO_REQUIRE_OK(greeting);
    EXPECT_EQ(*greeting, "hello, then goodbye");
    // The client's side is still open for writing.
    Result<void> reply =
        co_await with_timeout(write_then_shutdown(&*client, std::string("bye")), kIoLimit);
    EXPECT_TRUE(reply.has_value()) << describe(reply);
    Result<std::string> heard = co_await server;
    CO_REQUIRE_OK(heard);
    EXPECT_EQ(*heard, "bye");
    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
    EXPECT_EQ(outcome->to_upstream, 3u);
    EXPECT_EQ(outcome->to_client, 19u);
  };
  run(body());
  expect_quiet();
}

// --- refused upstreams --------------------------------------------------------------------------

TEST_P(L4Test, RefusedUpstreamClosesTheClientAndBacksOff) {
  Listener& front = listen();
  const SocketAddress refused = refused_addresses(1)[0];
  auto set = upstream_set({refused});
  auto forward = forward_to(set);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    const Clock::time_point start = Clock::now();
    // The client sees its connection end (end of stream or reset), without waiting for anything.
    Result<std::string> got = co_await with_timeout(read_to_end(&*client), kPrompt);
    const int64_t waited = ms_since(start);
    if (got) {
      EXPECT_EQ(*got, "");
    } else {
      EXPECT_EQ(got.error().code(), ErrorCode::kConnectionReset) << describe(got);
    }
    EXPECT_LT(waited, 1000);

    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "connect") << describe(outcome);
    CO_REQUIRE(outcome->error.has_value());
    EXPECT_EQ(outcome->error->code(), ErrorCode::kConnectionRefused) << describe(outcome);
    EXPECT_EQ(outcome->upstream, refused.to_string());
    EXPECT_EQ(outcome->to_upstream, 0u);
    EXPECT_EQ(outcome->to_client, 0u);
    EXPECT_TRUE(backing_off(*set, 0));
  };
  run(body());
  expect_quiet();
}

TEST_P(L4Test, RefusedUpstreamIsSkippedForTheNext) {
  Listener& front = listen();
  Listener& good = listen();
  const SocketAddress refused = refused_addresses(1)[0];
  auto set = upstream_set({refused, address_of(good)});  // round robin starts with the first
  auto forward = forward_to(set);

  auto body = [&]() -> Task<void> {
    for (int round = 0; round < 2; ++round) {
      SCOPED_TRACE(fmt::format("connection {}", round));
      JoinHandle<Result<size_t>> echo =
          spawn_with_handle(with_timeout(upstream_echo(&good), kIoLimit));
      JoinHandle<Result<Outcome>> proxy =
          spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
      Exchange client = co_await exchange_plain(address_of(front), "through the second");
      Result<Outcome> outcome = co_await proxy;
      Result<size_t> echoed = co_await echo;
      CO_REQUIRE_OK(client.received);
      EXPECT_EQ(*client.received, "through the second");
      EXPECT_TRUE(echoed.has_value()) << describe(echoed);
      CO_REQUIRE_OK(outcome);
      EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
      EXPECT_EQ(outcome->upstream, address_of(good).to_string());
      EXPECT_EQ(outcome->to_upstream, 18u);
      EXPECT_EQ(outcome->to_client, 18u);
      EXPECT_TRUE(backing_off(*set, 0));
      EXPECT_FALSE(backing_off(*set, 1));
    }
  };
  run(body());
  expect_quiet();
}

// Every upstream refuses: kMaxConnectAttempts are tried (each once), then the connection fails.
TEST_P(L4Test, AttemptsAreBounded) {
  static_assert(kMaxConnectAttempts == 3, "the test below has four upstreams for three attempts");
  Listener& front = listen();
  const std::vector<SocketAddress> refused = refused_addresses(4);
  auto set = upstream_set(refused);
  auto forward = forward_to(set);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "connect");
    CO_REQUIRE(outcome->error.has_value());
    EXPECT_EQ(outcome->error->code(), ErrorCode::kConnectionRefused);
    EXPECT_EQ(outcome->upstream, refused[2].to_string());  // the last one tried
    EXPECT_TRUE(backing_off(*set, 0));
    EXPECT_TRUE(backing_off(*set, 1));
    EXPECT_TRUE(backing_off(*set, 2));
    EXPECT_FALSE(backing_off(*set, 3)) << "more than kMaxConnectAttempts upstreams were tried";
  };
  run(body());
  expect_quiet();
}

// --- connect timeout ----------------------------------------------------------------------------

// An upstream that never answers a SYN, on loopback: a listener with backlog 0 that is never
// accepted from. Once its accept queue holds one connection, Linux drops further SYNs
// (tcp_conn_request: sk_acceptq_is_full), so a connect stays in SYN_SENT until it times out.
// The queue is filled with raw non-blocking connects until one does not complete.
class Blackhole {
 public:
  Blackhole() : listener_(listen_loopback({.reuse_port = false, .backlog = 0})) {
    const SocketAddress address = address_of(listener_);
    for (int i = 0; i < 8 && !full_; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      fillers_.push_back(fd);
      if (::connect(fd, address.data(), address.size()) == 0) continue;
      if (errno != EINPROGRESS) break;
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 300) == 0) full_ = true;  // this SYN was dropped: the queue is full
    }
  }
  ~Blackhole() {
    for (int fd : fillers_) ::close(fd);
  }
  bool full() const { return full_; }
  SocketAddress address() const { return address_of(listener_); }

 private:
  Listener listener_;
  std::vector<int> fillers_;
  bool full_ = false;
};

TEST_P(L4Test, ConnectTimeoutBacksOffAndClosesTheClient) {
  Blackhole blackhole;
  ASSERT_TRUE(blackhole.full()) << "could not fill a backlog-0 accept queue on loopback";
  Listener& front = listen();
  auto set = upstream_set({blackhole.address()});
  auto forward = forward_to(set, std::nullopt, 300ms);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    const Clock::time_point start = Clock::now();
    Result<std::string> got = co_await with_timeout(read_to_end(&*client), kIoLimit);
    const int64_t waited = ms_since(start);
    EXPECT_TRUE(got.has_value() || got.error().code() == ErrorCode::kConnectionReset)
        << describe(got);
    EXPECT_GE(waited, 250);
    EXPECT_LT(waited, 3000);

    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "connect") << describe(outcome);
    CO_REQUIRE(outcome->error.has_value());
    EXPECT_EQ(outcome->error->code(), ErrorCode::kTimeout) << describe(outcome);
    EXPECT_EQ(outcome->upstream, blackhole.address().to_string());
    EXPECT_TRUE(backing_off(*set, 0));
  };
  run(body());
  expect_quiet();
}

// --- idle timeout -------------------------------------------------------------------------------

TEST_P(L4Test, IdleTimeoutEndsAQuietConnection) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto forward = forward_to(upstream_set({address_of(upstream)}), 200ms);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&upstream), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    const Clock::time_point start = Clock::now();
    Result<std::string> got = co_await with_timeout(read_to_end(&*client), kIoLimit);
    const int64_t waited = ms_since(start);
    EXPECT_TRUE(got.has_value() || got.error().code() == ErrorCode::kConnectionReset)
        << describe(got);
    EXPECT_GE(waited, 180);
    EXPECT_LT(waited, 3000);

    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "copy") << describe(outcome);
    CO_REQUIRE(outcome->error.has_value());
    EXPECT_EQ(outcome->error->code(), ErrorCode::kTimeout) << describe(outcome);
    EXPECT_EQ(outcome->to_upstream, 0u);
    EXPECT_EQ(outcome->to_client, 0u);
    // The upstream's connection was closed too.
    Result<size_t> echoed = co_await echo;
    EXPECT_TRUE(echoed.has_value() || echoed.error().code() == ErrorCode::kConnectionReset)
        << describe(echoed);
  };
  run(body());
  expect_quiet();
}

// Traffic re-arms the idle timeout: a connection that talks more often than the limit lives
// longer than it.
TEST_P(L4Test, TrafficKeepsTheIdleTimeoutAway) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto forward = forward_to(upstream_set({address_of(upstream)}), 300ms);
  constexpr int kRounds = 8;

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&upstream), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, forward), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      Result<void> slept = co_await runtime::sleep(60ms);
      CO_REQUIRE_OK(slept);
      Result<void> sent = co_await with_timeout(write_string(&*client, std::string("x")), kIoLimit);
      CO_REQUIRE_OK(sent);
      Result<std::string> back = co_await with_timeout(read_exactly(&*client, 1), kIoLimit);
      CO_REQUIRE_OK(back);
    }
    EXPECT_GE(ms_since(start), 400);  // longer than the idle limit in all
    Result<void> shut = co_await client->shutdown_write();
    EXPECT_TRUE(shut.has_value()) << describe(shut);
    Result<std::string> rest = co_await with_timeout(read_to_end(&*client), kIoLimit);
    EXPECT_TRUE(rest.has_value() && rest->empty()) << describe(rest);

    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
    EXPECT_EQ(outcome->to_upstream, static_cast<uint64_t>(kRounds));
    EXPECT_EQ(outcome->to_client, static_cast<uint64_t>(kRounds));
    Result<size_t> echoed = co_await echo;
    EXPECT_TRUE(echoed.has_value()) << describe(echoed);
  };
  run(body());
  expect_quiet();
}

// --- the factory --------------------------------------------------------------------------------

TEST_P(L4Test, FactoryBuildsAccessLogThenForward) {
  const std::vector<SocketAddress> upstreams = refused_addresses(2);
  std::shared_ptr<L4Service> chain = make_chain(tcp_server(upstreams));
  ASSERT_NE(chain, nullptr);
  ASSERT_NE(dynamic_cast<AccessLog*>(chain.get()), nullptr);
  L4Service* inner = inner_of(chain.get());
  ASSERT_NE(dynamic_cast<TcpForward*>(inner), nullptr) << "plain TCP has no TlsTerminate";
  const std::shared_ptr<UpstreamSet>& set = dynamic_cast<TcpForward*>(inner)->upstreams();
  ASSERT_EQ(set->size(), 2u);
  EXPECT_EQ(set->at(0).address, upstreams[0]);
  EXPECT_EQ(set->at(1).address, upstreams[1]);
  EXPECT_EQ(set->balancer(), Balancer::kRoundRobin);
}

TEST_P(L4Test, FactoryNeedsExactlyOneRoute) {
  config::ServerConfig none = tcp_server(refused_addresses(1));
  none.routes.clear();
  Result<std::shared_ptr<L4Service>> built = build_chain(none, nullptr, nullptr);
  ASSERT_FALSE(built.has_value());
  EXPECT_EQ(built.error().code(), ErrorCode::kInvalidArgument);

  config::ServerConfig two = tcp_server(refused_addresses(1));
  two.routes.push_back(two.routes.front());
  built = build_chain(two, nullptr, nullptr);
  ASSERT_FALSE(built.has_value());
  EXPECT_EQ(built.error().code(), ErrorCode::kInvalidArgument);
}

// A reload with the same upstreams and balancer keeps the UpstreamSet (and so the back-off of
// an upstream that refused); any change to them starts afresh.
TEST_P(L4Test, FactoryCarriesTheUpstreamSetOverWhenUnchanged) {
  Listener& front = listen();
  Listener& good = listen();
  const SocketAddress refused = refused_addresses(1)[0];
  const config::ServerConfig server = tcp_server({refused, address_of(good)});
  std::shared_ptr<L4Service> first = make_chain(server);
  ASSERT_NE(forward_of(first), nullptr);

  // One connection through the first chain: the refused upstream starts backing off.
  auto body = [&]() -> Task<void> {
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&good), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, first), kIoLimit));
    Exchange client = co_await exchange_plain(address_of(front), "ping");
    Result<Outcome> outcome = co_await proxy;
    (void)co_await echo;
    CO_REQUIRE_OK(client.received);
    EXPECT_EQ(*client.received, "ping");
    CO_REQUIRE_OK(outcome);
    EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
  };
  run(body());
  const std::shared_ptr<UpstreamSet> kept = forward_of(first)->upstreams();
  ASSERT_TRUE(backing_off(*kept, 0));

  // Unchanged (other settings may differ): the same set, back-off and all.
  config::ServerConfig retimed = server;
  retimed.timeout.upstream_connect = 1s;
  std::shared_ptr<L4Service> second = make_chain(retimed, first);
  ASSERT_NE(forward_of(second), nullptr);
  EXPECT_NE(second, first);
  EXPECT_EQ(forward_of(second)->upstreams(), kept);
  EXPECT_TRUE(backing_off(*forward_of(second)->upstreams(), 0));
  // ...also when TLS is added or removed around it (the forward layer keeps its identity).
  auto tls = make_tls_server(tls::Backend::kOpenSsl);
  ASSERT_NE(tls, nullptr);
  std::shared_ptr<L4Service> with_tls = make_chain(server, second, tls);
  ASSERT_NE(forward_of(with_tls), nullptr);
  EXPECT_EQ(forward_of(with_tls)->upstreams(), kept);
  std::shared_ptr<L4Service> back_to_plain = make_chain(server, with_tls);
  ASSERT_NE(forward_of(back_to_plain), nullptr);
  EXPECT_EQ(forward_of(back_to_plain)->upstreams(), kept);

  // Changed: a fresh set with no back-off.
  struct Change {
    const char* what;
    config::ServerConfig server;
  };
  std::vector<Change> changes = {
      {"balancer", tcp_server({refused, address_of(good)}, Balancer::kFirst)},
      {"weight", tcp_server({refused, address_of(good)}, Balancer::kRoundRobin, {1, 2})},
      {"order", tcp_server({address_of(good), refused})},
      {"one more", tcp_server({refused, address_of(good), refused_addresses(1)[0]})},
      {"one fewer", tcp_server({refused})},
  };
  for (const Change& change : changes) {
    SCOPED_TRACE(change.what);
    std::shared_ptr<L4Service> changed = make_chain(change.server, second);
    ASSERT_NE(forward_of(changed), nullptr);
    const std::shared_ptr<UpstreamSet>& fresh = forward_of(changed)->upstreams();
    EXPECT_NE(fresh, kept);
    for (size_t i = 0; i < fresh->size(); ++i) EXPECT_FALSE(backing_off(*fresh, i));
  }

  // Another server with the same upstreams shares nothing with this one: a fresh set.
  std::shared_ptr<L4Service> other = make_chain(server, second, nullptr, "servers.other");
  ASSERT_NE(forward_of(other), nullptr);
  EXPECT_NE(forward_of(other)->upstreams(), kept);
}

// The factory applies the server's idle timeout (tcp_idle; whole seconds in the configuration).
TEST_P(L4Test, FactoryAppliesTheIdleTimeout) {
  Listener& front = listen();
  Listener& upstream = listen();
  config::ServerConfig server = tcp_server({address_of(upstream)});
  server.timeout.tcp_idle = 1s;
  std::shared_ptr<L4Service> chain = make_chain(server);
  ASSERT_NE(chain, nullptr);

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&upstream), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, chain), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    const Clock::time_point start = Clock::now();
    Result<Outcome> outcome = co_await proxy;
    const int64_t waited = ms_since(start);
    (void)co_await echo;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "copy") << describe(outcome);
    CO_REQUIRE(outcome->error.has_value());
    EXPECT_EQ(outcome->error->code(), ErrorCode::kTimeout);
    EXPECT_GE(waited, 900);
    EXPECT_LT(waited, 5000);
  };
  run(body());
  expect_quiet();
}

// The access log writes one line per connection saying how it ended.
TEST_P(L4Test, AccessLogLine) {
  Listener& front = listen();
  Listener& good = listen();
  const SocketAddress refused = refused_addresses(1)[0];
  std::shared_ptr<L4Service> refusing = make_chain(tcp_server({refused}));
  std::shared_ptr<L4Service> working = make_chain(tcp_server({address_of(good)}));
  ASSERT_TRUE(refusing && working);
  const LogLevel level = log_level();
  set_log_level(LogLevel::kInfo);

  std::string client_address;
  auto body = [&]() -> Task<void> {
    {
      JoinHandle<Result<Outcome>> proxy =
          spawn_with_handle(with_timeout(serve_one(&front, refusing), kIoLimit));
      Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
      CO_REQUIRE_OK(client);
      client_address = client->local_address().value_or(SocketAddress()).to_string();
      Result<Outcome> outcome = co_await proxy;
      CO_REQUIRE_OK(outcome);
    }
    JoinHandle<Result<size_t>> echo =
        spawn_with_handle(with_timeout(upstream_echo(&good, "!"), kIoLimit));
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, working), kIoLimit));
    Exchange client = co_await exchange_plain(address_of(front), "12345");
    CO_REQUIRE_OK(client.received);
    EXPECT_EQ(*client.received, "12345!");
    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    (void)co_await echo;
  };
  ::testing::internal::CaptureStderr();
  run(body());
  const std::string log = ::testing::internal::GetCapturedStderr();
  set_log_level(level);

  EXPECT_TRUE(contains(log, fmt::format("l4 server=edge client={} upstream={} to_upstream=0 "
                                        "to_client=0 duration_ms=",
                                        client_address, refused.to_string())))
      << log;
  EXPECT_TRUE(contains(log, "end=connect: connection_refused")) << log;
  EXPECT_TRUE(contains(log, fmt::format("upstream={} to_upstream=5 to_client=6 duration_ms=",
                                        address_of(good).to_string())))
      << log;
  EXPECT_TRUE(contains(log, " end=closed\n")) << log;
  expect_quiet();
}

ML_INSTANTIATE_BACKEND_TESTS(L4Test);

// --- TLS termination, on both TLS backends ------------------------------------------------------

struct TlsParam {
  tls::Backend tls;
  BackendKind runtime;
};

void PrintTo(const TlsParam& p, std::ostream* os) {
  *os << tls::backend_name(p.tls) << " on " << runtime::backend_kind_name(p.runtime);
}

std::string tls_param_name(const ::testing::TestParamInfo<TlsParam>& info) {
  return fmt::format("{}_{}", tls::backend_name(info.param.tls),
                     runtime::backend_kind_name(info.param.runtime));
}

// As runtime::BackendTest, with the TLS backend of TlsTerminate (and of the client) as well.
class L4TlsTest : public ::testing::TestWithParam<TlsParam> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(test_certs().empty()) << "no test certificates (make_test_certs.sh failed)";
    runtime::RuntimeOptions options;
    options.backend = GetParam().runtime;
    options.honor_env = false;
    auto created = runtime::Runtime::create(options);
    ASSERT_TRUE(created.has_value()) << created.error().to_string();
    rt_ = std::move(*created);
    server_ = make_tls_server(GetParam().tls);
    client_ = make_tls_client(GetParam().tls);
    ASSERT_TRUE(server_ && client_);
  }
  void TearDown() override {
    listeners_.clear();
    server_.reset();
    client_.reset();
    rt_.reset();
  }

  template <class T>
  T run(Task<T> task) {
    return rt_->block_on(std::move(task));
  }
  Listener& listen() { return listeners_.emplace_back(listen_loopback()); }
  void expect_quiet() {
    listeners_.clear();
    EXPECT_EQ(rt_->timers().size(), 0u);
    EXPECT_EQ(rt_->backend().in_flight(), 0u);
  }

  std::unique_ptr<runtime::Runtime> rt_;
  std::shared_ptr<const tls::ServerContext> server_;
  std::shared_ptr<const tls::ClientContext> client_;
  std::deque<Listener> listeners_;
};

// A TLS client through TlsTerminate + TcpForward to a plain echo upstream: data both ways, the
// client's close_notify passed on as the upstream's end of stream, and back.
Task<void> tls_round_trip(Listener* front, Listener* upstream, std::shared_ptr<L4Service> chain,
                          std::shared_ptr<const tls::ClientContext> client_ctx) {
  JoinHandle<Result<size_t>> echo =
      spawn_with_handle(with_timeout(upstream_echo(upstream, "done"), kIoLimit));
  JoinHandle<Result<Outcome>> proxy =
      spawn_with_handle(with_timeout(serve_one(front, std::move(chain)), kIoLimit));
  Result<Stream> tcp = co_await with_timeout(Stream::connect(address_of(*front)), kIoLimit);
  CO_REQUIRE_OK(tcp);
  Result<tls::TlsStream> client =
      co_await with_timeout(client_ctx->connect(std::move(*tcp), "a.test"), kIoLimit);
  CO_REQUIRE_OK(client);

  const std::string message = pattern(256 * 1024, 5);
  JoinHandle<Result<void>> writer =
      spawn_with_handle(with_timeout(write_string(&*client, message), kIoLimit));
  Result<std::string> back =
      co_await with_timeout(read_exactly(&*client, message.size()), kIoLimit);
  Result<void> written = co_await writer;
  CO_REQUIRE_OK(written);
  CO_REQUIRE_OK(back);
  EXPECT_TRUE(*back == message) << "the echo differs from what was sent";
  Result<void> shut = co_await with_timeout(client->shutdown_write(), kIoLimit);
  EXPECT_TRUE(shut.has_value()) << describe(shut);
  Result<std::string> rest = co_await with_timeout(read_to_end(&*client), kIoLimit);
  CO_REQUIRE_OK(rest);
  EXPECT_EQ(*rest, "done");
  EXPECT_TRUE(client->closed_cleanly()) << "the proxy ended the TLS side without close_notify";

  Result<size_t> echoed = co_await echo;
  CO_REQUIRE_OK(echoed);
  EXPECT_EQ(*echoed, message.size());
  Result<Outcome> outcome = co_await proxy;
  CO_REQUIRE_OK(outcome);
  EXPECT_FALSE(outcome->error.has_value()) << describe(outcome);
  EXPECT_EQ(outcome->failed_stage, "");
  EXPECT_EQ(outcome->upstream, address_of(*upstream).to_string());
  // Plaintext bytes, both ways.
  EXPECT_EQ(outcome->to_upstream, message.size());
  EXPECT_EQ(outcome->to_client, message.size() + 4);
}

TEST_P(L4TlsTest, TerminatesAndForwardsPlaintext) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto set = upstream_set({address_of(upstream)});
  auto chain = std::make_shared<TlsTerminate>(server_, forward_to(set));
  run(tls_round_trip(&front, &upstream, chain, client_));
  expect_quiet();
}

// The chain l4_server_stack builds for a TLS listener: AccessLog -> TlsTerminate -> TcpForward, and
// it works end to end.
TEST_P(L4TlsTest, FactoryChainWithTls) {
  Listener& front = listen();
  Listener& upstream = listen();
  std::shared_ptr<L4Service> chain =
      make_chain(tcp_server({address_of(upstream)}), nullptr, server_);
  ASSERT_NE(chain, nullptr);
  ASSERT_NE(dynamic_cast<AccessLog*>(chain.get()), nullptr);
  L4Service* middle = inner_of(chain.get());
  ASSERT_NE(dynamic_cast<TlsTerminate*>(middle), nullptr);
  ASSERT_NE(dynamic_cast<TcpForward*>(inner_of(middle)), nullptr);
  run(tls_round_trip(&front, &upstream, chain, client_));
  expect_quiet();
}

// A client that does not speak TLS: the handshake fails, no upstream is contacted.
TEST_P(L4TlsTest, HandshakeFailure) {
  Listener& front = listen();
  Listener& upstream = listen();
  auto set = upstream_set({address_of(upstream)});
  auto chain = std::make_shared<TlsTerminate>(server_, forward_to(set));

  auto body = [&]() -> Task<void> {
    JoinHandle<Result<Stream>> upstream_accept = spawn_with_handle(upstream.accept());
    JoinHandle<Result<Outcome>> proxy =
        spawn_with_handle(with_timeout(serve_one(&front, chain), kIoLimit));
    Result<Stream> client = co_await with_timeout(Stream::connect(address_of(front)), kIoLimit);
    CO_REQUIRE_OK(client);
    Result<void> sent = co_await with_timeout(
        write_string(&*client, std::string("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")), kIoLimit);
    EXPECT_TRUE(sent.has_value()) << describe(sent);
    // The proxy may answer with an alert; then the connection ends.
    Result<std::string> got = co_await with_timeout(read_to_end(&*client), kIoLimit);
    EXPECT_TRUE(got.has_value() || got.error().code() == ErrorCode::kConnectionReset)
        << describe(got);

    Result<Outcome> outcome = co_await proxy;
    CO_REQUIRE_OK(outcome);
    EXPECT_EQ(outcome->failed_stage, "tls") << describe(outcome);
    EXPECT_TRUE(outcome->error.has_value());
    EXPECT_EQ(outcome->upstream, "");
    EXPECT_EQ(outcome->to_upstream, 0u);
    EXPECT_EQ(outcome->to_client, 0u);
    EXPECT_FALSE(upstream_accept.done()) << "the upstream was contacted";
    upstream_accept.cancel();
    Result<Stream> none = co_await upstream_accept;
    EXPECT_FALSE(none.has_value());
    EXPECT_FALSE(set->backing_off(0, runtime::Runtime::current()->now()));
  };
  run(body());
  expect_quiet();
}

std::vector<TlsParam> tls_params() {
  std::vector<TlsParam> out;
  for (BackendKind runtime : {BackendKind::kIoUring, BackendKind::kEpoll}) {
    for (tls::Backend tls : {tls::Backend::kOpenSsl, tls::Backend::kGnuTls}) {
      out.push_back({tls, runtime});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, L4TlsTest, ::testing::ValuesIn(tls_params()), tls_param_name);

}  // namespace
}  // namespace monolake::proxy::l4
