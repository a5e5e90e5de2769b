#include "http/h1/client.h"

#include <sys/socket.h>

#include <cerrno>

#include "http/h1/message_writer.h"
#include "runtime/time.h"

namespace monolake::http::h1 {

using runtime::Task;

ClientConnection::ClientConnection(std::unique_ptr<transport::ByteStream> stream,
                                   const Limits& limits)
    : stream_(std::move(stream)), limits_(limits), parser_(limits) {}

ClientConnection::~ClientConnection() = default;

bool ClientConnection::idle_and_healthy() {
  if (!in_.empty()) return false;  // bytes nobody asked for
  char byte;
  const ssize_t n = ::recv(stream_->socket().fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

Task<Result<void>> ClientConnection::write_request(const RequestHead& head, Body* body) {
  ++requests_;
  reusable_ = false;
  response_started_ = false;
  BodyFraming framing;
  if (body) {
    if (auto n = body->length()) {
      framing = {BodyFraming::Kind::kLength, *n};
    } else {
      framing = {BodyFraming::Kind::kChunked, 0};
    }
  }
  IoBuffer out = head_buffer(framing);
  write_request_head(head, framing, out);
  co_return co_await write_message(*stream_, std::move(out), body, framing, "request");
}

Task<Result<ResponseHead>> ClientConnection::read_response(std::string_view method,
                                                           std::chrono::nanoseconds timeout) {
  const runtime::TimePoint deadline = runtime::Runtime::current()->now() + timeout;
  while (true) {
    ResponseHead head;
    size_t consumed = 0;
    ParseStatus status = parser_.parse(in_.view(), consumed, method, head, framing_);
    while (status == ParseStatus::kNeedMore) {
      const auto left = deadline - runtime::Runtime::current()->now();
      if (left <= std::chrono::nanoseconds(0)) {
        co_return Error(ErrorCode::kTimeout, "upstream response timeout");
      }
      Result<size_t> n = co_await runtime::with_timeout(stream_->read_some(in_), left);
      if (!n) co_return std::move(n).error();
      if (*n == 0) {
        co_return Error(ErrorCode::kConnectionReset, in_.empty()
                                                         ? "upstream closed before responding"
                                                         : "upstream closed mid-head");
      }
      response_started_ = true;
      status = parser_.parse(in_.view(), consumed, method, head, framing_);
    }
    if (status == ParseStatus::kError) {
      co_return Error(ErrorCode::kProtocol, parser_.error().reason);
    }
    in_.consume(consumed);
    response_started_ = true;
    if (head.status >= 100 && head.status < 200 && head.status != 101) continue;  // interim
    keep_alive_ =
        !head.headers.has_token("connection", "close") &&
        (head.version == Version::kHttp11 || head.headers.has_token("connection", "keep-alive")) &&
        framing_.kind != BodyFraming::Kind::kUntilClose && head.status != 101;
    co_return head;
  }
}

// The response body, read from the connection it came on. Hands the connection back through
// on_end when the body ends, or when the body is dropped early (not reusable then).
class ResponseBody final : public Body {
 public:
  using OnEnd = std::function<void(std::unique_ptr<ClientConnection>, bool)>;
  ResponseBody(std::unique_ptr<ClientConnection> conn, std::chrono::nanoseconds timeout,
               OnEnd on_end)
      : conn_(std::move(conn)),
        timeout_(timeout),
        on_end_(std::move(on_end)),
        framing_(conn_->framing_),
        remaining_(framing_.length),
        chunked_(conn_->limits_) {
    if (framing_.kind == BodyFraming::Kind::kNone ||
        (framing_.kind == BodyFraming::Kind::kLength && framing_.length == 0)) {
      finish(true);
    }
  }
  ~ResponseBody() override {
    if (conn_) finish(false);
  }

  std::optional<uint64_t> length() const override {
    if (framing_.kind == BodyFraming::Kind::kLength) return framing_.length;
    if (framing_.kind == BodyFraming::Kind::kNone) return 0;
    return std::nullopt;
  }
  const HeaderMap* trailers() const override { return trailers_.empty() ? nullptr : &trailers_; }

  Task<Result<IoBuffer>> read() override {
    if (ended_) co_return IoBuffer();
    ClientConnection& c = *conn_;
    while (true) {
      if (!c.in_.empty()) {
        if (framing_.kind == BodyFraming::Kind::kLength) {
          if (c.in_.size() <= remaining_) {
            remaining_ -= c.in_.size();
            IoBuffer piece = std::move(c.in_);
            c.in_ = IoBuffer();
            if (remaining_ == 0) finish(true);
            co_return piece;
          }
          // More than the body: bytes after a complete response. Not reusable.
          IoBuffer piece = IoBuffer::copy_of(c.in_.view().substr(0, remaining_));
          remaining_ = 0;
          finish(false);
          co_return piece;
        }
        if (framing_.kind == BodyFraming::Kind::kUntilClose) {
          IoBuffer piece = std::move(c.in_);
          c.in_ = IoBuffer();
          co_return piece;
        }
        IoBuffer piece;
        size_t used = 0;
        const ParseStatus s =
            chunked_.decode(c.in_.view(), used, [&](std::string_view d) { piece.append(d); });
        c.in_.consume(used);
        if (s == ParseStatus::kError) {
          finish(false);
          co_return Error(ErrorCode::kProtocol, "upstream body: " + chunked_.error().reason);
        }
        if (s == ParseStatus::kDone) {
          trailers_ = chunked_.trailers();
          finish(c.in_.empty());
        }
        if (!piece.empty() || ended_) co_return piece;
      }
      Result<size_t> n = co_await runtime::with_timeout(c.stream_->read_some(c.in_), timeout_);
      if (!n) {
        finish(false);
        co_return std::move(n).error();
      }
      if (*n == 0) {
        if (framing_.kind == BodyFraming::Kind::kUntilClose) {
          finish(false);
          co_return IoBuffer();  // the body ends with the connection
        }
        finish(false);
        co_return Error(ErrorCode::kConnectionReset, "upstream closed mid-body (truncated)");
      }
    }
  }

 private:
  void finish(bool clean) {
    ended_ = true;
    if (!conn_) return;
    conn_->reusable_ = clean && conn_->keep_alive_ && conn_->in_.empty();
    const bool reusable = conn_->reusable_;
    if (on_end_) on_end_(std::move(conn_), reusable);
    conn_.reset();
  }

  std::unique_ptr<ClientConnection> conn_;
  std::chrono::nanoseconds timeout_;
  OnEnd on_end_;
  BodyFraming framing_;
  uint64_t remaining_ = 0;
  ChunkedDecoder chunked_;
  HeaderMap trailers_;
  bool ended_ = false;
};

std::unique_ptr<Body> ClientConnection::take_body(
    std::unique_ptr<ClientConnection> self, std::chrono::nanoseconds read_timeout,
    std::function<void(std::unique_ptr<ClientConnection>, bool)> on_end) {
  return std::make_unique<ResponseBody>(std::move(self), read_timeout, std::move(on_end));
}

}  // namespace monolake::http::h1
