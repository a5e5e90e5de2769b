// Connection layers over real loopback sockets, on both runtime backends: the order the
// framework runs them in, a layer that reads ahead handing its extra bytes to what comes next
// (transport::Prefixed), refusals (counted, closed() still called), the TLS facts after_tls
// sees, and each layer's identity and state across a rebuild (another generation).
#include "proxy/connection/chain.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "runtime/runtime.h"
#include "runtime/testing.h"
#include "runtime/time.h"
#include "transport/address.h"
#include "transport/prefixed.h"
#include "transport/stream.h"

namespace monolake::proxy::connection {
namespace {

using namespace std::chrono_literals;
using runtime::JoinHandle;
using runtime::spawn_with_handle;
using runtime::Task;
using transport::Listener;
using transport::SocketAddress;
using transport::Stream;

constexpr auto kIoLimit = 10s;

// What the test filters did, in order ("before:a", "after:a", "closed:a"...).
using Journal = std::vector<std::string>;

// Reads until a whole first line "CLIENT ip:port\n" is in read_ahead, takes it off the front and
// announces that client: a toy of what a PROXY protocol layer does.
class ClientLine final : public ConnectionFilter {
 public:
  explicit ClientLine(Journal* journal) : journal_(journal) {}
  Task<Result<void>> before_tls(Stream& socket, IoBuffer& read_ahead,
                                ConnectionContext& context) override {
    journal_->push_back("before:line");
    while (read_ahead.view().find('\n') == std::string_view::npos) {
      if (read_ahead.size() > 256) co_return Error(ErrorCode::kProtocol, "no line");
      Result<size_t> n = co_await read_more(socket, read_ahead, kIoLimit);
      if (!n) co_return std::move(n).error();
      if (*n == 0) co_return Error(ErrorCode::kClosed, "closed before the line");
    }
    const std::string_view bytes = read_ahead.view();
    const size_t end = bytes.find('\n');
    if (bytes.substr(0, 7) != "CLIENT ") co_return Error(ErrorCode::kProtocol, "not a line");
    Result<SocketAddress> client = SocketAddress::parse(bytes.substr(7, end - 7));
    if (!client) co_return std::move(client).error();
    context.client = *client;
    read_ahead.consume(end + 1);
    co_return ok();
  }
  void closed(const ConnectionContext&) override { journal_->push_back("closed:line"); }

 private:
  Journal* journal_;
};

// Records what it sees; refuses when told to, and a client in `refuse_client`.
class Recorder final : public ConnectionFilter {
 public:
  Recorder(std::string name, Journal* journal, bool refuse_after = false)
      : name_(std::move(name)), journal_(journal), refuse_after_(refuse_after) {}
  Task<Result<void>> before_tls(Stream&, IoBuffer& read_ahead,
                                ConnectionContext& context) override {
    journal_->push_back("before:" + name_ + " client=" + context.client.to_string() +
                        " read_ahead=" + read_ahead.to_string());
    co_return ok();
  }
  Result<void> after_tls(ConnectionContext& context) override {
    journal_->push_back("after:" + name_ + " tls=" + (context.tls ? "1" : "0") +
                        " sni=" + context.server_name + " alpn=" + context.alpn);
    if (refuse_after_) return Error(ErrorCode::kProtocol, "not this one");
    return ok();
  }
  void closed(const ConnectionContext&) override { journal_->push_back("closed:" + name_); }

 private:
  std::string name_;
  Journal* journal_;
  bool refuse_after_;
};

// A factory returning a given filter (state carry-over has its own test below).
class Fixed final : public ConnectionFilterFactory {
 public:
  explicit Fixed(std::shared_ptr<ConnectionFilter> filter) : filter_(std::move(filter)) {}
  Result<std::shared_ptr<ConnectionFilter>> make(const Build&) const override { return filter_; }

 private:
  std::shared_ptr<ConnectionFilter> filter_;
};

// Per-worker state handed from one generation to the next: a count of connections seen.
class Counting final : public ConnectionFilter {
 public:
  explicit Counting(std::shared_ptr<int> seen) : seen(std::move(seen)) {}
  Task<Result<void>> before_tls(Stream&, IoBuffer&, ConnectionContext&) override {
    ++*seen;
    co_return ok();
  }
  std::shared_ptr<int> seen;
};
class CountingFactory final : public ConnectionFilterFactoryOf<Counting> {
 public:
  Result<std::shared_ptr<Counting>> make_via_ref(const Counting* previous,
                                                 const Build&) const override {
    return std::make_shared<Counting>(previous ? previous->seen : std::make_shared<int>(0));
  }
};

struct Pair {
  Stream client;
  Stream server;
};

Task<Result<Pair>> loopback_pair() {
  Result<Listener> listener = Listener::bind(*SocketAddress::parse("127.0.0.1:0"));
  if (!listener) co_return std::move(listener).error();
  JoinHandle<Result<Stream>> accepted = spawn_with_handle(listener->accept());
  Result<Stream> client = co_await Stream::connect(*listener->local_address());
  if (!client) co_return std::move(client).error();
  Result<Stream> server = co_await accepted;
  if (!server) co_return std::move(server).error();
  co_return Pair{std::move(*client), std::move(*server)};
}

Task<void> write(Stream& s, std::string text) {
  IoBuffer out;
  out.append(text);
  (void)co_await s.write_all(std::move(out));
}

Result<std::shared_ptr<const ConnectionChain>> build_chain(const ConnectionStack& stack,
                                                           Generation& next,
                                                           const Generation* previous = nullptr) {
  return stack.make(Build(previous, next, "servers.test"), "test");
}

class ConnectionChainTest : public runtime::BackendTest {};

TEST_P(ConnectionChainTest, ReadAheadBytesReachTheNextLayerAndTheProtocol) {
  Journal journal;
  ConnectionStack stack;
  stack.push("line", "", std::make_shared<Fixed>(std::make_shared<ClientLine>(&journal)));
  stack.push("record", "", std::make_shared<Fixed>(std::make_shared<Recorder>("r", &journal)));
  Generation generation;
  auto chain = build_chain(stack, generation);
  ASSERT_TRUE(chain) << chain.error().to_string();
  run([&]() -> Task<void> {
    Result<Pair> pair = co_await loopback_pair();
    CO_REQUIRE(pair);
    // One write: the line and the protocol's first bytes arrive together, so the line layer
    // necessarily reads past its line.
    co_await write(pair->client, "CLIENT 10.1.2.3:4567\nGET / HTTP/1.1\r\n");
    std::string protocol_saw;
    {
      ConnectionContext context;
      context.peer = context.client = *pair->server.peer_address();
      ConnectionRun layers(*chain, context);
      IoBuffer read_ahead;
      Result<void> passed = co_await layers.before_tls(pair->server, read_ahead);
      CO_REQUIRE(passed);
      CO_REQUIRE(layers.after_tls());
      EXPECT_EQ(context.client.to_string(), "10.1.2.3:4567");
      // The protocol reads the rest first, then what the client sends later.
      transport::Prefixed<Stream> prefixed(pair->server, std::move(read_ahead));
      co_await write(pair->client, "Host: a\r\n");
      IoBuffer in;
      while (in.view().find("Host: a\r\n") == std::string_view::npos) {
        Result<size_t> n = co_await runtime::with_timeout(prefixed.read_some(in), kIoLimit);
        CO_REQUIRE(n && *n > 0);
      }
      protocol_saw = in.to_string();
    }
    EXPECT_EQ(protocol_saw, "GET / HTTP/1.1\r\nHost: a\r\n");
  }());
  EXPECT_EQ(journal,
            (Journal{"before:line", "before:r client=10.1.2.3:4567 read_ahead=GET / HTTP/1.1\r\n",
                     "after:r tls=0 sni= alpn=", "closed:line", "closed:r"}));
  expect_idle();
}

TEST_P(ConnectionChainTest, ARefusalStopsTheRunIsCountedAndClosedStillRuns) {
  Journal journal;
  ConnectionStack stack;
  stack.push("line", "", std::make_shared<Fixed>(std::make_shared<ClientLine>(&journal)));
  stack.push("record", "", std::make_shared<Fixed>(std::make_shared<Recorder>("r", &journal)));
  Generation generation;
  auto chain = build_chain(stack, generation);
  ASSERT_TRUE(chain);
  run([&]() -> Task<void> {
    Result<Pair> pair = co_await loopback_pair();
    CO_REQUIRE(pair);
    co_await write(pair->client, "HELLO\n");
    ConnectionContext context;
    ConnectionRun layers(*chain, context);
    IoBuffer read_ahead;
    Result<void> passed = co_await layers.before_tls(pair->server, read_ahead);
    CO_REQUIRE(!passed);
    EXPECT_EQ(passed.error().message(), "filter:line: not a line");
  }());
  // The second layer never ran; the first was told the connection closed.
  EXPECT_EQ(journal, (Journal{"before:line", "closed:line"}));
  EXPECT_EQ((*chain)->entries()[0].closed->value.get(), 1u);
  EXPECT_EQ((*chain)->entries()[1].closed->value.get(), 0u);
  expect_idle();
}

TEST_P(ConnectionChainTest, AfterTlsSeesTheHandshakesChoicesAndMayRefuse) {
  Journal journal;
  ConnectionStack stack;
  stack.push("record", "", std::make_shared<Fixed>(std::make_shared<Recorder>("a", &journal)));
  stack.push("record", "",
             std::make_shared<Fixed>(std::make_shared<Recorder>("b", &journal, true)));
  Generation generation;
  auto chain = build_chain(stack, generation);
  ASSERT_TRUE(chain);
  EXPECT_EQ((*chain)->entries()[1].identity, "filter:record#2");
  ConnectionContext context;
  {
    ConnectionRun layers(*chain, context);
    Result<void> passed = layers.after_tls("a.test", "h2");
    ASSERT_FALSE(passed);
    EXPECT_EQ(passed.error().message(), "filter:record#2: not this one");
  }
  EXPECT_TRUE(context.tls);
  // closed() reaches only layers whose before_tls ran: none did here.
  EXPECT_EQ(journal,
            (Journal{"after:a tls=1 sni=a.test alpn=h2", "after:b tls=1 sni=a.test alpn=h2"}));
}

TEST(ConnectionStackTest, EachLayerTakesOverItsOwnStateByIdentity) {
  auto counting = std::make_shared<CountingFactory>();
  ConnectionStack first;
  first.push("count", "", counting);
  first.push("count", "mine", counting);
  Generation one;
  auto chain1 = build_chain(first, one);
  ASSERT_TRUE(chain1) << chain1.error().to_string();
  ASSERT_EQ((*chain1)->entries().size(), 2u);
  EXPECT_EQ((*chain1)->entries()[0].identity, "filter:count");
  EXPECT_EQ((*chain1)->entries()[1].identity, "filter[mine]");
  auto* by_name = static_cast<Counting*>((*chain1)->entries()[0].filter.get());
  auto* by_id = static_cast<Counting*>((*chain1)->entries()[1].filter.get());
  *by_name->seen = 3;
  *by_id->seen = 7;
  (*chain1)->entries()[0].closed->value.add(2);

  // A new layer in front does not move state between the others: identities stay.
  ConnectionStack second;
  second.push("count", "front", counting);
  second.push("count", "", counting);
  second.push("count", "mine", counting);
  Generation two;
  auto chain2 = build_chain(second, two, &one);
  ASSERT_TRUE(chain2);
  EXPECT_EQ(*static_cast<Counting*>((*chain2)->entries()[0].filter.get())->seen, 0);
  EXPECT_EQ(*static_cast<Counting*>((*chain2)->entries()[1].filter.get())->seen, 3);
  EXPECT_EQ(*static_cast<Counting*>((*chain2)->entries()[2].filter.get())->seen, 7);
  // So do the refusal counters (the server keeps its name).
  EXPECT_EQ((*chain2)->entries()[1].closed->value.get(), 2u);
}

ML_INSTANTIATE_BACKEND_TESTS(ConnectionChainTest);

}  // namespace
}  // namespace monolake::proxy::connection
