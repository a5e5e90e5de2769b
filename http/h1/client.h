// The client side of an HTTP/1.1 connection (the proxy's upstream connection): writes a request,
// reads the response head, then hands out the response body as a Body that reads from the
// connection. One request at a time; reusable for the next once the response body has been
// read to its end cleanly.
//
// Strict about responses (codec.h): CL+TE, duplicate Content-Length, bytes after a complete
// response, a body cut short — the response is not passed on as complete and the connection is
// never reused.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "http/body.h"
#include "http/exchange.h"
#include "http/h1/codec.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::http::h1 {

class ClientConnection {
 public:
  ClientConnection(std::unique_ptr<transport::ByteStream> stream, const Limits& limits = {});
  ~ClientConnection();

  // Writes the head (framing from `body`: Content-Length when known, else chunked) and the
  // whole body. `head.headers` must not hold framing fields.
  runtime::Task<Result<void>> write_request(const RequestHead& head, Body* body);

  // Reads the final response head (1xx interim responses are skipped). `method` decides whether
  // a body follows (HEAD). Waits at most `timeout` for the head to complete.
  runtime::Task<Result<ResponseHead>> read_response(std::string_view method,
                                                    std::chrono::nanoseconds timeout);

  // The body of the response just read. `on_end(connection, reusable)` is called once when the
  // body ends (cleanly or not) with this connection's ownership back, so a pool can keep it.
  // The ClientConnection must be owned by a unique_ptr the caller passes in.
  static std::unique_ptr<Body> take_body(
      std::unique_ptr<ClientConnection> self, std::chrono::nanoseconds read_timeout,
      std::function<void(std::unique_ptr<ClientConnection>, bool reusable)> on_end);

  // Framing of the response just read.
  const BodyFraming& framing() const { return framing_; }
  // Requests sent on this connection.
  uint64_t requests() const { return requests_; }
  // True if the connection may carry another request (clean end, keep-alive both ways).
  bool reusable() const { return reusable_; }
  // A pooled idle connection the upstream has closed (or sent unexpected bytes on) must not be
  // used: checks the socket without blocking.
  bool idle_and_healthy();
  // The same without the syscall: no bytes nobody asked for were buffered.
  bool idle() const { return in_.empty(); }
  // Whether any response byte has arrived for the current request (retry decisions).
  bool response_started() const { return response_started_; }

  transport::ByteStream& stream() { return *stream_; }
  // After a 101 response: gives up the stream (and the bytes that came after the 101 head).
  std::unique_ptr<transport::ByteStream> release(IoBuffer& pending) {
    pending = std::move(in_);
    in_ = IoBuffer();
    return std::move(stream_);
  }

 private:
  friend class ResponseBody;
  std::unique_ptr<transport::ByteStream> stream_;
  Limits limits_;
  IoBuffer in_;
  ResponseParser parser_;
  BodyFraming framing_;
  uint64_t requests_ = 0;
  bool reusable_ = false;
  bool keep_alive_ = false;
  bool response_started_ = false;
};

}  // namespace monolake::http::h1
