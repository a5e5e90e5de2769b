// The "resp" kind's maker (its checks and what it makes of a route's path), the carry-over of
// route upstream sets, and the layer over real loopback sockets where no upstream answers:
// replies the proxy makes itself, commands redis-server ignores, a malformed command, the idle
// timeout. Forwarding to a real redis-server is tests/example_custom_protocol_test.py's.
#include "examples/custom_protocol/resp_proxy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/stream.h"

namespace example {
namespace {

using namespace std::chrono_literals;
using monolake::Result;
using monolake::proxy::Generation;
using monolake::runtime::Task;
using monolake::runtime::with_timeout;
using monolake::transport::Listener;
using monolake::transport::SocketAddress;
using monolake::transport::Stream;

// Bound on any single wait, so a bug fails the test instead of hanging it.
constexpr auto kIoLimit = 10s;

monolake::proxy::Params defaults() {
  monolake::proxy::Params p;
  p.set("max_bulk_bytes", int64_t{16 << 20});
  p.set("max_frame_bytes", int64_t{64 << 20});
  p.set("max_args", int64_t{1024});
  return p;
}

monolake::proxy::Upstream upstream(const std::string& address) {
  return {SocketAddress::parse(address).value(), 1};
}

Result<std::shared_ptr<const framework::ConnectionLayerFactory>> make(
    const monolake::proxy::Params& p, std::vector<std::string> paths,
    std::chrono::nanoseconds idle = 600s) {
  const std::string server = "cache";
  framework::ServerKindParams params{p, server, {}};
  for (const std::string& path : paths) params.routes.push_back({path, {upstream("127.0.0.1:1")}});
  params.idle_timeout = idle;
  return make_resp(params);
}

std::string error_of(const monolake::proxy::Params& p, std::vector<std::string> paths) {
  auto made = make(p, std::move(paths));
  return made ? "made" : made.error().message();
}

TEST(RespMaker, RefusesBadPathsNamingTheRoute) {
  EXPECT_EQ(error_of(defaults(), {"GET,SET", "*", ""}), "made");
  EXPECT_EQ(error_of(defaults(), {"GET", "GET,,SET"}),
            "routes[1].path: 'GET,,SET' is not a list of command names (\"GET,SET\") or \"*\"");
  EXPECT_EQ(error_of(defaults(), {"GET SET"}).substr(0, 30), "routes[0].path: 'GET SET' is n");
  EXPECT_EQ(error_of(defaults(), {"GET,*"}).substr(0, 28), "routes[0].path: 'GET,*' is n");
  EXPECT_EQ(error_of(defaults(), {}), "routes: none");
  monolake::proxy::Params p = defaults();
  p.set("max_bulk_bytes", int64_t{2048});
  p.set("max_frame_bytes", int64_t{1024});
  EXPECT_EQ(error_of(p, {"*"}), "max_bulk_bytes: 2048 is over max_frame_bytes (1024)");
}

TEST(RespMaker, RouteUpstreamSetsCarryOverWhileTheRouteIsUnchanged) {
  const std::string server = "cache";
  const monolake::proxy::Params p = defaults();
  auto build = [&](const Generation* previous, Generation& next, const std::string& second) {
    framework::ServerKindParams params{p, server, {}};
    params.routes.push_back({"GET", {upstream("127.0.0.1:1")}});
    params.routes.push_back({"*", {upstream(second)}});
    auto factory = make_resp(params);
    EXPECT_TRUE(factory) << factory.error().to_string();
    auto made = (*factory)->make(nullptr, monolake::proxy::Build(previous, next, "kind"));
    EXPECT_TRUE(made) << made.error().to_string();
    return std::dynamic_pointer_cast<RespProxy>(*made);
  };
  Generation g1, g2, g3;
  auto one = build(nullptr, g1, "127.0.0.1:2");
  auto two = build(&g1, g2, "127.0.0.1:2");
  auto three = build(&g2, g3, "127.0.0.1:3");
  ASSERT_TRUE(one && two && three);
  EXPECT_EQ(one->upstreams()[0], two->upstreams()[0]);
  EXPECT_EQ(one->upstreams()[1], two->upstreams()[1]);
  EXPECT_EQ(two->upstreams()[0], three->upstreams()[0]);
  EXPECT_NE(two->upstreams()[1], three->upstreams()[1]);  // its upstream changed
}

class RespProxyTest : public ::testing::Test {
 protected:
  struct Run {
    std::string received;  // by the client, until the proxy closed
    Result<l4::Outcome> outcome = l4::Outcome{};
  };

  // One client connection through the layer: sends `input` and reads until the proxy closes.
  Run run(const std::shared_ptr<l4::L4Service>& service, std::string input) {
    return rt_->block_on(client_and_proxy(service, std::move(input)));
  }

  std::shared_ptr<l4::L4Service> service(std::vector<std::string> paths,
                                         std::chrono::nanoseconds idle = 600s) {
    auto factory = make(defaults(), std::move(paths), idle);
    EXPECT_TRUE(factory) << factory.error().to_string();
    auto made = (*factory)->make(nullptr, monolake::proxy::Build(nullptr, generation_, "kind"));
    EXPECT_TRUE(made) << made.error().to_string();
    return *made;
  }

 private:
  static Task<Result<l4::Outcome>> serve_one(Listener* front,
                                             std::shared_ptr<l4::L4Service> service) {
    Result<Stream> accepted = co_await front->accept();
    if (!accepted) co_return std::move(accepted).error();
    l4::Connection connection;
    connection.stream = std::move(*accepted);
    co_return co_await service->call(std::move(connection));
  }

  static Task<std::string> client(SocketAddress front, std::string input) {
    Result<Stream> stream = co_await Stream::connect(front);
    if (!stream) co_return "connect: " + stream.error().to_string();
    auto written = co_await stream->write_all(monolake::IoBuffer::copy_of(input));
    if (!written.result) co_return "write: " + written.result.error().to_string();
    std::string got;
    monolake::IoBuffer buffer;
    while (true) {
      Result<size_t> n = co_await stream->read_some(buffer);
      if (!n || *n == 0) co_return got;  // closed by the proxy
      got += buffer.view();
      buffer.clear();
    }
  }

  Task<Run> client_and_proxy(std::shared_ptr<l4::L4Service> service, std::string input) {
    Result<Listener> front = Listener::bind(SocketAddress::parse("127.0.0.1:0").value());
    if (!front) co_return Run{"bind: " + front.error().to_string()};
    const SocketAddress address = front->local_address().value();
    auto proxy = monolake::runtime::spawn_with_handle(
        with_timeout(serve_one(&*front, std::move(service)), kIoLimit));
    Run run;
    Result<std::string> got = co_await with_timeout(
        [](SocketAddress a, std::string in) -> Task<Result<std::string>> {
          co_return co_await client(a, std::move(in));
        }(address, std::move(input)),
        kIoLimit);
    run.received = got ? *got : "client: " + got.error().to_string();
    run.outcome = co_await proxy;
    co_return run;
  }

  std::unique_ptr<monolake::runtime::Runtime> rt_ =
      std::move(*monolake::runtime::Runtime::create({}));
  Generation generation_;
};

TEST_F(RespProxyTest, AnswersItselfWhenNoUpstreamCanAndClosesOnAMalformedCommand) {
  // GET's route has nothing listening (port 1); PING has no route; *0 and a blank line are
  // ignored as redis-server does; then a bulk string that is not a command closes.
  const std::string input =
      "*1\r\n$4\r\nPING\r\n*0\r\n\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\nGET k\r\n$1\r\nx\r\n";
  Run got = run(service({"GET"}), input);
  EXPECT_EQ(got.received,
            "-ERR no route for command 'PING'\r\n-ERR upstream unavailable\r\n"
            "-ERR upstream unavailable\r\n");
  ASSERT_TRUE(got.outcome) << got.outcome.error().to_string();
  EXPECT_EQ(got.outcome->failed_stage, "client");
  ASSERT_TRUE(got.outcome->error.has_value());
  EXPECT_EQ(got.outcome->error->code(), monolake::ErrorCode::kProtocol);
  EXPECT_EQ(got.outcome->to_client, got.received.size());
  EXPECT_EQ(got.outcome->to_upstream, 0u);  // nothing reached an upstream
  EXPECT_EQ(got.outcome->upstream, "");
}

TEST_F(RespProxyTest, AnOverLongCommandCloses) {
  std::string input = "*1025\r\n";  // max_args is 1024
  for (int i = 0; i < 1025; ++i) input += "$1\r\na\r\n";
  Run got = run(service({"*"}), input);
  EXPECT_EQ(got.received, "");
  ASSERT_TRUE(got.outcome && got.outcome->error.has_value());
  EXPECT_EQ(got.outcome->error->message(), "resp: array over max_elements");
}

TEST_F(RespProxyTest, AnIdleClientIsClosedAfterTheIdleTimeout) {
  const auto start = std::chrono::steady_clock::now();
  Run got = run(service({"*"}, 200ms), "");
  EXPECT_EQ(got.received, "");
  ASSERT_TRUE(got.outcome && got.outcome->error.has_value());
  EXPECT_EQ(got.outcome->error->code(), monolake::ErrorCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace example
