#include "http/h1/server.h"

#include <algorithm>

#include "base/log.h"
#include "http/h1/message_writer.h"
#include "runtime/cancel.h"
#include "runtime/runtime.h"
#include "runtime/time.h"

namespace monolake::http::h1 {

namespace {

using runtime::Task;

// One deadline for whatever the connection is waiting for (idle, head, body). When it fires
// it cancels the connection's cancel state: the pending read ends and the connection closes.
struct PhaseTimer {
  runtime::Deadline deadline;
  runtime::CancelState* cancel = nullptr;
  bool fired = false;

  void arm(std::chrono::nanoseconds limit) {
    deadline.arm(runtime::Runtime::current()->now() + limit, &PhaseTimer::fire, this);
  }
  void disarm() { deadline.disarm(); }
  static void fire(void* self) {
    auto* t = static_cast<PhaseTimer*>(self);
    t->fired = true;
    t->cancel->cancel();
  }
};

// The request body being received, kept by the connection (not by the Body object), so the
// connection can drain what the handler left unread.
struct BodyState {
  BodyFraming framing;
  uint64_t remaining = 0;  // kLength
  ChunkedDecoder chunked{Limits{}};
  bool done = true;
  bool failed = false;  // malformed or cut short: the connection cannot be reused
  bool continue_pending = false;
};

struct Conn {
  transport::ByteStream& stream;
  const ServerOptions& options;
  IoBuffer in{};
  PhaseTimer timer{};
  BodyState body{};
  bool continue_sent = false;
};

// The next piece of the request body, from what is buffered or from the socket. An empty
// buffer at the end.
Task<Result<IoBuffer>> read_body_piece(Conn& c) {
  BodyState& b = c.body;
  if (b.done) co_return IoBuffer();
  if (b.continue_pending) {
    b.continue_pending = false;
    c.continue_sent = true;
    auto [sent, rest] =
        co_await c.stream.write_all(IoBuffer::copy_of("HTTP/1.1 100 Continue\r\n\r\n"));
    if (!sent) co_return std::move(sent).error();
  }
  while (true) {
    if (!c.in.empty()) {
      if (b.framing.kind == BodyFraming::Kind::kLength) {
        if (c.in.size() <= b.remaining) {
          // All buffered bytes are body: hand the buffer over without copying.
          b.remaining -= c.in.size();
          IoBuffer piece = std::move(c.in);
          c.in = IoBuffer();
          if (b.remaining == 0) b.done = true;
          co_return piece;
        }
        IoBuffer piece = IoBuffer::copy_of(c.in.view().substr(0, b.remaining));
        c.in.consume(b.remaining);
        b.remaining = 0;
        b.done = true;
        co_return piece;
      }
      IoBuffer piece;
      size_t used = 0;
      const ParseStatus s =
          b.chunked.decode(c.in.view(), used, [&](std::string_view data) { piece.append(data); });
      c.in.consume(used);
      if (s == ParseStatus::kError) {
        b.failed = true;
        b.done = true;
        co_return Error(ErrorCode::kProtocol, "request body: " + b.chunked.error().reason);
      }
      if (s == ParseStatus::kDone) b.done = true;
      if (!piece.empty() || b.done) co_return piece;
    }
    c.timer.arm(c.options.read_body_timeout);
    Result<size_t> n = co_await c.stream.read_some(c.in);
    c.timer.disarm();
    if (!n || *n == 0) {
      b.failed = true;
      b.done = true;
      if (c.timer.fired) co_return Error(ErrorCode::kTimeout, "request body timeout");
      if (!n) co_return std::move(n).error();
      co_return Error(ErrorCode::kProtocol, "client closed before the end of the request body");
    }
  }
}

class RequestBody final : public Body {
 public:
  RequestBody(Conn& conn, std::optional<uint64_t> length) : conn_(conn), length_(length) {}
  Task<Result<IoBuffer>> read() override { return read_body_piece(conn_); }
  std::optional<uint64_t> length() const override { return length_; }
  const HeaderMap* trailers() const override {
    const HeaderMap& t = conn_.body.chunked.trailers();
    return t.empty() ? nullptr : &t;
  }

 private:
  Conn& conn_;
  std::optional<uint64_t> length_;
};

// The client connection as the response writer sees it: each write must finish within
// write_timeout, or the connection's deadline cancels it and the connection ends.
class TimedWrites final : public transport::ByteStream {
 public:
  explicit TimedWrites(Conn& c) : c_(c) {}
  Task<Result<size_t>> read_some(IoBuffer& into) override { return c_.stream.read_some(into); }
  Task<runtime::BufResult<size_t>> write_all(IoBuffer buffer) override {
    c_.timer.arm(c_.options.write_timeout);
    runtime::BufResult<size_t> r = co_await c_.stream.write_all(std::move(buffer));
    c_.timer.disarm();
    co_return r;
  }
  Task<Result<void>> shutdown_write() override { return c_.stream.shutdown_write(); }
  transport::Stream& socket() override { return c_.stream.socket(); }

 private:
  Conn& c_;
};

bool no_body_status(int status) { return status < 200 || status == 204 || status == 304; }

// Writes `response` (head and whole body). Returns false if the connection must close after it
// (it could not be framed for keep-alive, or a write failed).
Task<Result<bool>> write_response(Conn& c, Response& response, const RequestHead& request,
                                  bool keep_alive) {
  ResponseHead& head = response.head;
  BodyFraming framing;
  const bool bodiless = no_body_status(head.status) || request.method == "HEAD";
  if (bodiless) {
    framing = {};  // fields as given (a HEAD answer keeps its Content-Length)
  } else {
    head.headers.remove("content-length");
    head.headers.remove("transfer-encoding");
    if (!response.body) {
      framing = {BodyFraming::Kind::kLength, 0};
    } else if (auto n = response.body->length()) {
      framing = {BodyFraming::Kind::kLength, *n};
    } else if (request.version == Version::kHttp11) {
      framing = {BodyFraming::Kind::kChunked, 0};
    } else {
      framing = {BodyFraming::Kind::kUntilClose, 0};
      keep_alive = false;
    }
  }
  head.headers.remove("connection");
  if (!keep_alive) {
    head.headers.add("Connection", "close");
  } else if (request.version == Version::kHttp10) {
    head.headers.add("Connection", "keep-alive");
  }
  IoBuffer out = head_buffer(framing);
  write_response_head(head, framing, out);
  Body* body = bodiless ? nullptr : response.body.get();
  TimedWrites timed(c);
  Result<void> written = co_await write_message(timed, std::move(out), body, framing, "response");
  if (!written) co_return std::move(written).error();  // cut short: the connection closes
  co_return keep_alive;
}

// How long a lingering close waits for the client's next bytes before it closes. After a
// rejected request (malformed, too slow: possibly an attack that trickles bytes), briefly.
// After an answer to a request whose body the handler did not read (a 401 to an upload), the
// client is a legitimate uploader and may stall for a moment on a loaded machine; closing
// under it would reset the connection and destroy the answer before it is read (seen as curl's
// "Broken pipe" with a 1 s wait), so as long as nginx's lingering_timeout.
constexpr auto kRejectedSilence = std::chrono::seconds(1);
constexpr auto kUploadSilence = std::chrono::seconds(5);

// Ends a connection whose last response is written: stop writing, then read (and drop) what
// the client is still sending, so that closing with unread bytes does not send a reset that
// destroys the response before the client has read it (lingering close). As nginx's
// lingering_timeout and lingering_time: it ends when the client has been silent for `silence`,
// and in any case after 10 s or 64 MiB.
Task<void> linger_close(Conn& c, std::chrono::seconds silence) {
  (void)co_await c.stream.shutdown_write();
  constexpr size_t kMaxLingerBytes = 64 << 20;
  constexpr auto kMaxLinger = std::chrono::seconds(10);
  const auto deadline = runtime::Runtime::current()->now() + kMaxLinger;
  size_t dropped = 0;
  while (dropped < kMaxLingerBytes && runtime::Runtime::current()->now() < deadline) {
    c.in.clear();
    c.timer.arm(silence);
    Result<size_t> n = co_await c.stream.read_some(c.in);
    c.timer.disarm();
    if (!n || *n == 0 || c.timer.fired) break;
    dropped += *n;
  }
}

// After a rejected request: answer, then close with lingering.
Task<void> reject(Conn& c, int status, const std::string& reason) {
  Response r = text_response(status);
  IoBuffer out;
  r.head.headers.add("Connection", "close");
  const std::string& text = static_cast<StringBody*>(r.body.get())->text();
  write_response_head(r.head, {BodyFraming::Kind::kLength, text.size()}, out);
  out.append(text);
  ML_LOG(kDebug, "http: rejected request: {} {}", status, reason);
  auto [sent, rest] = co_await c.stream.write_all(std::move(out));
  if (!sent) co_return;
  co_await linger_close(c, kRejectedSilence);
}

// Drains what the handler left of the request body, up to max_drain.
Task<bool> drain_body(Conn& c) {
  uint64_t drained = 0;
  while (!c.body.done) {
    Result<IoBuffer> piece = co_await read_body_piece(c);
    if (!piece) co_return false;
    drained += piece->size();
    if (drained > c.options.max_drain) co_return false;
  }
  co_return !c.body.failed;
}

bool wants_keep_alive(const RequestHead& head) {
  if (head.headers.has_token("connection", "close")) return false;
  if (head.version == Version::kHttp10) return head.headers.has_token("connection", "keep-alive");
  return true;
}

Task<ServeStats> serve_loop(Conn& c, const ConnectionInfo& info, const Handler& handler) {
  ServeStats stats;
  RequestParser parser(c.options.limits);
  while (true) {
    // Wait for a head: quietly closed if nothing arrives within the keep-alive timeout, 408 if
    // a started head does not complete within the header timeout.
    RequestHead head;
    BodyFraming framing;
    size_t consumed = 0;
    bool idle_phase = c.in.empty();
    // An idle keep-alive connection keeps no read buffer (the next read brings its own).
    if (idle_phase) c.in.release();
    if (stats.requests > 0 && c.options.keepalive_timeout.count() == 0) break;
    c.timer.arm(idle_phase ? (stats.requests > 0 ? c.options.keepalive_timeout
                                                 : c.options.read_header_timeout)
                           : c.options.read_header_timeout);
    ParseStatus status = parser.parse(c.in.view(), consumed, head, framing);
    while (status == ParseStatus::kNeedMore) {
      Result<size_t> n = co_await c.stream.read_some(c.in);
      if (!n || *n == 0) {
        c.timer.disarm();
        if (c.timer.fired) {
          stats.ended = c.in.empty() ? "keepalive timeout" : "header timeout";
          if (!c.in.empty()) {
            // The timer's cancellation is sticky; answer outside it.
            co_return stats;  // 408 would need a fresh cancel state; close instead
          }
          co_return stats;
        }
        stats.ended = (!n) ? "read failed" : (c.in.empty() ? "closed" : "closed mid-head");
        co_return stats;
      }
      if (idle_phase) {
        idle_phase = false;
        c.timer.arm(c.options.read_header_timeout);
      }
      status = parser.parse(c.in.view(), consumed, head, framing);
    }
    c.timer.disarm();
    if (status == ParseStatus::kError) {
      stats.ended = "bad request";
      co_await reject(c, parser.error().status, parser.error().reason);
      co_return stats;
    }
    c.in.consume(consumed);
    ++stats.requests;

    // The body, as the handler will read it.
    c.body = BodyState();
    c.body.framing = framing;
    c.body.chunked = ChunkedDecoder(c.options.limits);
    Request request;
    const bool has_length_header = head.headers.has("content-length");
    if (framing.kind == BodyFraming::Kind::kLength) {
      c.body.remaining = framing.length;
      c.body.done = false;
      request.body = std::make_unique<RequestBody>(c, framing.length);
    } else if (framing.kind == BodyFraming::Kind::kChunked) {
      c.body.done = false;
      request.body = std::make_unique<RequestBody>(c, std::nullopt);
    } else if (has_length_header) {
      request.body = std::make_unique<StringBody>(std::string());  // Content-Length: 0
    }
    if (!c.body.done && head.version == Version::kHttp11 &&
        head.headers.has_token("expect", "100-continue")) {
      c.body.continue_pending = true;
    }
    head.headers.remove("expect");  // answered here, not forwarded
    bool keep_alive = wants_keep_alive(head);
    RequestHead request_view;  // what write_response needs after the handler took the head
    request_view.method = head.method;
    request_view.version = head.version;
    request.head = std::move(head);
    request.connection = &info;

    Response response = co_await handler(std::move(request));
    if (c.timer.fired) {
      stats.ended = "body timeout";
      co_return stats;
    }
    if (response.close || (c.options.draining && *c.options.draining)) keep_alive = false;
    // A body the handler did not finish: drain it (small) or close after the response.
    if (!c.body.done && !c.body.continue_pending) {
      if (!co_await drain_body(c)) keep_alive = false;
    } else if (!c.body.done) {
      keep_alive = false;  // 100-continue never sent: the client may or may not send the body
    }
    if (c.body.failed) keep_alive = false;
    if (response.head.status == 101 && response.upgrade && c.body.done && !c.body.failed) {
      // Switching protocols: the head as given (Connection/Upgrade kept), then the connection
      // belongs to the upgrade handler with whatever the client already sent.
      IoBuffer out;
      write_response_head(response.head, {}, out);
      auto [sent, rest] = co_await c.stream.write_all(std::move(out));
      if (!sent) {
        stats.ended = "write failed";
        co_return stats;
      }
      IoBuffer pending = std::move(c.in);
      c.in = IoBuffer();
      co_await response.upgrade(c.stream, std::move(pending));
      stats.ended = "upgraded";
      co_return stats;
    }
    if (response.head.status == 101) {
      response = text_response(502);  // a 101 without a handler cannot be honoured
      keep_alive = false;
    }
    Result<bool> written = co_await write_response(c, response, request_view, keep_alive);
    if (!written) {
      stats.ended = "write failed";
      co_return stats;
    }
    if (!*written) {
      stats.ended = "close requested";
      if (!c.body.done || c.body.failed || !c.in.empty()) {
        // The client may still be sending: do not reset under it. A failed body counts: its
        // read may have been cancelled (an HTTP/2 upstream answered before taking it all)
        // while the client goes on sending; after a reset or an end of stream the linger ends
        // at its first read.
        co_await linger_close(c, kUploadSilence);
      } else {
        (void)co_await c.stream.shutdown_write();
      }
      co_return stats;
    }
  }
  stats.ended = "keepalive disabled";
  (void)co_await c.stream.shutdown_write();
  co_return stats;
}

}  // namespace

Task<ServeStats> serve(transport::ByteStream& stream, const ConnectionInfo& info,
                       const ServerOptions& options, const Handler& handler, IoBuffer pending) {
  runtime::CancelState cancel;
  runtime::CancelLink link(co_await runtime::current_cancel_state{}, &cancel);
  Conn conn{stream, options};
  conn.in = std::move(pending);
  conn.timer.cancel = &cancel;
  Task<ServeStats> loop = serve_loop(conn, info, handler);
  loop.set_cancel_state(&cancel);
  ServeStats stats = co_await std::move(loop);
  conn.timer.disarm();
  co_return stats;
}

}  // namespace monolake::http::h1
