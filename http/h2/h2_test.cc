// http/h2's client and server talking to each other over a socket pair, on both backends:
// bodies and trailers both ways, many streams at once, flow control with large bodies, a
// stream limit, a reset stream cancelling its handler, the idle timeout and a drain GOAWAY.
// (Interoperation with other implementations — curl, nghttp, h2load, nghttpd, gRPC — is
// tested in tests/proxy_h2_test.py.)
#include <string>
#include <vector>

#include "http/h2/client.h"
#include "http/h2/server.h"
#include "runtime/testing.h"
#include "runtime/time.h"
#include "transport/stream.h"

namespace monolake::http::h2 {
namespace {

using namespace std::chrono_literals;
using runtime::Task;

class H2Test : public runtime::BackendTest {
 public:
  std::array<int, 2> pair() { return socket_pair(); }
};

Task<Result<std::string>> read_all(Body& body) {
  std::string out;
  while (true) {
    Result<IoBuffer> piece = co_await body.read();
    if (!piece) co_return piece.error();
    if (piece->empty()) co_return out;
    out += piece->view();
  }
}

// Echoes the request body; says what it saw in fields; trailers carry the body's length.
Task<Response> echo(Request request) {
  Response response;
  response.head.headers.add("x-method", request.head.method);
  response.head.headers.add("x-target", request.head.target);
  response.head.headers.add("x-host", std::string(request.head.headers.get("host").value_or("")));
  std::string body;
  if (request.body) {
    Result<std::string> all = co_await read_all(*request.body);
    if (!all) co_return text_response(400);
    body = std::move(*all);
    if (const HeaderMap* t = request.body->trailers()) {
      response.head.headers.add("x-request-trailer", std::string(t->get("x-sum").value_or("none")));
    }
  }
  // A body of unknown length (so the trailers go after DATA).
  class WithTrailers final : public Body {
   public:
    explicit WithTrailers(std::string text) : text_(std::move(text)) {
      trailers_.add("x-length", std::to_string(text_.size()));
    }
    Task<Result<IoBuffer>> read() override {
      if (done_) co_return IoBuffer();
      done_ = true;
      co_return IoBuffer::copy_of(text_);
    }
    std::optional<uint64_t> length() const override { return std::nullopt; }
    const HeaderMap* trailers() const override { return &trailers_; }

   private:
    std::string text_;
    HeaderMap trailers_;
    bool done_ = false;
  };
  response.body = std::make_unique<WithTrailers>(std::move(body));
  co_return response;
}

// A request body with trailers.
class TrailedBody final : public Body {
 public:
  explicit TrailedBody(std::string text) : text_(std::move(text)) { trailers_.add("x-sum", "42"); }
  Task<Result<IoBuffer>> read() override {
    if (offset_ >= text_.size()) co_return IoBuffer();
    const size_t n = std::min<size_t>(100000, text_.size() - offset_);
    IoBuffer piece = IoBuffer::copy_of(std::string_view(text_).substr(offset_, n));
    offset_ += n;
    co_return piece;
  }
  std::optional<uint64_t> length() const override { return std::nullopt; }
  const HeaderMap* trailers() const override { return &trailers_; }

 private:
  std::string text_;
  size_t offset_ = 0;
  HeaderMap trailers_;
};

RequestHead head(std::string method, std::string target) {
  RequestHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.headers.add("host", "example.test");
  return h;
}

// Runs `serve` on one end in the background and a client on the other.
struct Harness {
  runtime::BackendTest& test;
  Options options;
  Handler handler;
  ConnectionInfo info;
  std::unique_ptr<transport::ByteStreamOf<transport::Stream>> server_stream;
  std::optional<runtime::JoinHandle<ServeStats>> server;
  bool draining = false;

  Result<std::shared_ptr<ClientConnection>> start(std::array<int, 2> fds,
                                                  Options client_options = {}) {
    server_stream =
        std::make_unique<transport::ByteStreamOf<transport::Stream>>(transport::Stream(fds[0]));
    server.emplace(
        runtime::spawn_with_handle(serve(*server_stream, info, options, handler, {}, &draining)));
    auto client_stream =
        std::make_unique<transport::ByteStreamOf<transport::Stream>>(transport::Stream(fds[1]));
    return ClientConnection::start(std::move(client_stream), client_options, "http", "test");
  }
};

TEST_P(H2Test, BodiesAndTrailersBothWaysOnManyConcurrentStreams) {
  run([](H2Test* t) -> Task<void> {
    Harness h{*t, {}, echo, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    std::vector<runtime::JoinHandle<std::string>> calls;
    for (int i = 0; i < 40; ++i) {
      calls.push_back(runtime::spawn_with_handle(
          [](std::shared_ptr<ClientConnection> c, int i) -> Task<std::string> {
            // Every 4th a 1 MiB body (more than the windows: flow control must turn).
            std::string text(i % 4 == 0 ? (1 << 20) + i : 10 + i, static_cast<char>('a' + i % 26));
            std::unique_ptr<Body> body = std::make_unique<TrailedBody>(text);
            RequestHead request_head = head("POST", "/s/" + std::to_string(i));
            Result<Response> r = co_await c->request(std::move(request_head), std::move(body), 10s);
            if (!r) co_return "request failed: " + r.error().to_string();
            if (r->head.status != 200) co_return "status " + std::to_string(r->head.status);
            if (r->head.headers.get("x-target") != "/s/" + std::to_string(i)) co_return "target";
            if (r->head.headers.get("x-host") != "example.test") co_return "host";
            if (r->head.headers.get("x-request-trailer") != "42") co_return "request trailers";
            Result<std::string> all = co_await read_all(*r->body);
            if (!all) co_return "body: " + all.error().to_string();
            if (*all != text) co_return "body differs";
            const HeaderMap* trailers = r->body->trailers();
            if (!trailers || trailers->get("x-length") != std::to_string(text.size())) {
              co_return "response trailers";
            }
            co_return "ok";
          }(conn, i)));
    }
    for (auto& call : calls) EXPECT_EQ(co_await call, "ok");
    conn->shutdown();
    ServeStats stats = co_await *h.server;
    EXPECT_EQ(stats.streams, 40u);
  }(this));
}

TEST_P(H2Test, StreamLimitIsAnnouncedAndHeld) {
  run([](H2Test* t) -> Task<void> {
    Options options;
    options.max_concurrent_streams = 2;
    int running = 0, most = 0;
    Handler slow = [&](Request) -> Task<Response> {
      most = std::max(most, ++running);
      (void)co_await runtime::sleep(30ms);
      --running;
      co_return text_response(200, "done");
    };
    Harness h{*t, options, slow, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    // Let the server's SETTINGS arrive.
    {
      RequestHead first = head("GET", "/warm");
      Result<Response> r = co_await conn->request(std::move(first), nullptr, 5s);
      EXPECT_TRUE(r.has_value());
    }
    std::vector<runtime::JoinHandle<int>> calls;
    for (int i = 0; i < 2; ++i) {
      calls.push_back(
          runtime::spawn_with_handle([](std::shared_ptr<ClientConnection> c) -> Task<int> {
            RequestHead request_head = head("GET", "/x");
            Result<Response> r = co_await c->request(std::move(request_head), nullptr, 5s);
            co_return r ? r->head.status : -1;
          }(conn)));
    }
    co_await runtime::yield_now{};
    EXPECT_EQ(conn->available_streams(), 0u);
    RequestHead third = head("GET", "/third");
    Result<Response> refused = co_await conn->request(std::move(third), nullptr, 5s);
    EXPECT_FALSE(refused.has_value());
    if (!refused) {
      EXPECT_EQ(refused.error().code(), ErrorCode::kLimitExceeded);
    }
    for (auto& call : calls) EXPECT_EQ(co_await call, 200);
    EXPECT_LE(most, 2);
    conn->shutdown();
    (void)co_await *h.server;
  }(this));
}

TEST_P(H2Test, ResponseTimeoutResetsTheStreamAndCancelsTheHandler) {
  run([](H2Test* t) -> Task<void> {
    bool handler_cancelled = false;
    Handler stuck = [&](Request) -> Task<Response> {
      Result<void> slept = co_await runtime::sleep(10s);
      if (!slept) handler_cancelled = true;
      co_return text_response(200);
    };
    Harness h{*t, {}, stuck, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    RequestHead request_head = head("GET", "/stuck");
    Result<Response> r = co_await conn->request(std::move(request_head), nullptr, 50ms);
    EXPECT_FALSE(r.has_value());
    if (!r) {
      EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
    }
    // The RST_STREAM reaches the server, which cancels the handler.
    for (int i = 0; i < 100 && !handler_cancelled; ++i) (void)co_await runtime::sleep(5ms);
    EXPECT_TRUE(handler_cancelled);
    conn->shutdown();
    (void)co_await *h.server;
  }(this));
}

TEST_P(H2Test, IdleConnectionGetsGoawayAfterTheIdleTimeout) {
  run([](H2Test* t) -> Task<void> {
    Options options;
    options.idle_timeout = 50ms;
    Harness h{*t, options, echo, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    ServeStats stats = co_await *h.server;
    EXPECT_EQ(stats.ended, "idle timeout");
    for (int i = 0; i < 100 && conn->available_streams() > 0; ++i)
      (void)co_await runtime::sleep(2ms);
    EXPECT_EQ(conn->available_streams(), 0u);  // GOAWAY received
  }(this));
}

TEST_P(H2Test, IdleTimeoutAlsoRunsAfterARequest) {
  // The idle timer restarts whenever the last open stream ends, not only at the start.
  run([](H2Test* t) -> Task<void> {
    Options options;
    options.idle_timeout = 80ms;
    Harness h{*t, options, echo, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    RequestHead request_head = head("GET", "/once");
    Result<Response> r = co_await conn->request(std::move(request_head), nullptr, 5s);
    EXPECT_TRUE(r.has_value());
    if (r) (void)co_await read_all(*r->body);
    ServeStats stats = co_await *h.server;  // ends by itself, about 80 ms after the answer
    EXPECT_EQ(stats.ended, "idle timeout");
    EXPECT_EQ(stats.streams, 1u);
  }(this));
}

TEST_P(H2Test, DroppingAnUnfinishedResponseBodyCancelsTheStream) {
  // A client that stops reading an endless response (a gRPC stream, server-sent events) resets
  // the stream: the server's body pump ends rather than sending for ever.
  run([](H2Test* t) -> Task<void> {
    auto pieces_made = std::make_shared<int>(0);
    auto body_gone = std::make_shared<bool>(false);
    class Endless final : public Body {
     public:
      Endless(std::shared_ptr<int> made, std::shared_ptr<bool> gone)
          : made_(std::move(made)), gone_(std::move(gone)) {}
      ~Endless() override { *gone_ = true; }
      Task<Result<IoBuffer>> read() override {
        ++*made_;
        co_return IoBuffer::copy_of(std::string(1000, 'e'));
      }
      std::optional<uint64_t> length() const override { return std::nullopt; }

     private:
      std::shared_ptr<int> made_;
      std::shared_ptr<bool> gone_;
    };
    Handler endless = [pieces_made, body_gone](Request) -> Task<Response> {
      Response response;
      response.body = std::make_unique<Endless>(pieces_made, body_gone);
      co_return response;
    };
    Harness h{*t, {}, endless, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    {
      RequestHead request_head = head("GET", "/stream");
      Result<Response> r = co_await conn->request(std::move(request_head), nullptr, 5s);
      EXPECT_TRUE(r.has_value());
      if (!r) co_return;
      Result<IoBuffer> first = co_await r->body->read();
      EXPECT_TRUE(first.has_value() && !first->empty());
    }  // the response (and its body) dropped here
    for (int i = 0; i < 200 && !*body_gone; ++i) (void)co_await runtime::sleep(5ms);
    EXPECT_TRUE(*body_gone) << "the server still pumps the endless body";
    const int made = *pieces_made;
    (void)co_await runtime::sleep(30ms);
    EXPECT_EQ(*pieces_made, made);
    conn->shutdown();
    (void)co_await *h.server;
  }(this));
}

TEST_P(H2Test, UnreadResponsesDoNotStallOtherStreamsOfTheClientConnection) {
  // 20 responses of 1 MiB nobody reads pin 20 stream windows (64 KiB each: more than the 1 MiB
  // connection window). On the client side the connection window is given back on arrival, so
  // another stream on the same connection still gets its whole response.
  run([](H2Test* t) -> Task<void> {
    Handler big = [](Request request) -> Task<Response> {
      if (request.head.target == "/small") co_return text_response(200, "small answer");
      co_return text_response(200, std::string(1 << 20, 'b'));
    };
    Harness h{*t, {}, big, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    std::vector<Response> unread;
    for (int i = 0; i < 20; ++i) {
      RequestHead request_head = head("GET", "/big");
      Result<Response> r = co_await conn->request(std::move(request_head), nullptr, 5s);
      EXPECT_TRUE(r.has_value());
      if (r) unread.push_back(std::move(*r));
    }
    (void)co_await runtime::sleep(50ms);  // let the big bodies fill their windows
    RequestHead request_head = head("GET", "/small");
    Result<Response> r = co_await conn->request(std::move(request_head), nullptr, 2s);
    EXPECT_TRUE(r.has_value());
    if (r) {
      Result<std::string> all = co_await runtime::with_timeout(read_all(*r->body), 2s);
      EXPECT_TRUE(all.has_value() && *all == "small answer");
    }
    unread.clear();
    conn->shutdown();
    (void)co_await *h.server;
  }(this));
}

TEST_P(H2Test, DrainSendsGoawayAndLetsTheOpenStreamFinish) {
  run([](H2Test* t) -> Task<void> {
    Handler slow = [](Request) -> Task<Response> {
      (void)co_await runtime::sleep(1300ms);
      co_return text_response(200, "finished");
    };
    Harness h{*t, {}, slow, {}, nullptr, std::nullopt};
    auto client = h.start(t->pair());
    EXPECT_TRUE(client.has_value());
    if (!client) co_return;
    std::shared_ptr<ClientConnection> conn = *client;
    auto call = runtime::spawn_with_handle([](std::shared_ptr<ClientConnection> c) -> Task<bool> {
      RequestHead request_head = head("GET", "/long");
      Result<Response> r = co_await c->request(std::move(request_head), nullptr, 5s);
      if (!r || r->head.status != 200) co_return false;
      Result<std::string> all = co_await read_all(*r->body);
      co_return all&&* all == "finished";
    }(conn));
    (void)co_await runtime::sleep(100ms);
    h.draining = true;
    EXPECT_TRUE(co_await call);
    ServeStats stats = co_await *h.server;  // ends by itself once the stream is done
    EXPECT_EQ(stats.streams, 1u);
    EXPECT_EQ(conn->available_streams(), 0u);
  }(this));
}

TEST(PrefaceTest, TellsThePrefaceFromHttp11) {
  EXPECT_EQ(match_preface(""), PrefaceMatch::kPartial);
  EXPECT_EQ(match_preface("PRI * HTTP/2"), PrefaceMatch::kPartial);
  EXPECT_EQ(match_preface(std::string(kClientPreface, kClientPrefaceSize) + "xyz"),
            PrefaceMatch::kYes);
  EXPECT_EQ(match_preface("GET / HTTP/1.1\r\n"), PrefaceMatch::kNo);
  EXPECT_EQ(match_preface("PRX"), PrefaceMatch::kNo);
}

ML_INSTANTIATE_BACKEND_TESTS(H2Test);

}  // namespace
}  // namespace monolake::http::h2
