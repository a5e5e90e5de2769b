// The client side of an HTTP/2 connection (the proxy's upstream connection): many requests at
// once over one connection, each request body sent while its response arrives (gRPC streaming
// both ways works), trailers both ways.
//
//   auto conn = h2::ClientConnection::start(std::move(stream), options, "http", "10.0.0.1:80");
//   Result<Response> r = co_await (*conn)->request(std::move(head), std::move(body), 60s);
//
// A response body reads from its stream (its window is given back as it is read). The
// connection runs on the runtime that started it until it is closed, the peer ends it, or the
// last ClientConnection reference is dropped (then open streams are cancelled).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "http/exchange.h"
#include "http/h2/options.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::http::h2 {

class Session;

class ClientConnection {
 public:
  // Starts the connection (sends the preface and SETTINGS). `scheme` is the :scheme requests
  // carry; `peer` names the upstream in logs.
  static Result<std::shared_ptr<ClientConnection>> start(
      std::unique_ptr<transport::ByteStream> stream, const Options& options, std::string scheme,
      std::string peer);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Sends a request and waits at most `response_timeout` for the response head. The request
  // head's Host becomes :authority; connection-specific fields are dropped, `te: trailers`
  // kept. Errors: kLimitExceeded when no stream is free, kConnectionRefused when the upstream
  // refused the stream unprocessed (REFUSED_STREAM, or beyond its GOAWAY: safe to retry),
  // kTimeout, kConnectionReset / kClosed otherwise.
  //
  // The body is sent by a task of its own while the response arrives (full duplex: gRPC
  // streaming). kConcurrent lets that task outlive request(), so `body` must not borrow anything
  // its caller frees. kSentBeforeReturn (a body that reads from an HTTP/1.1 client connection)
  // waits until the body is sent — or cancelled, when the upstream has answered in full or
  // refused — before returning.
  enum class BodyMode { kConcurrent, kSentBeforeReturn };
  runtime::Task<Result<Response>> request(RequestHead head, std::unique_ptr<Body> body,
                                          std::chrono::nanoseconds response_timeout,
                                          BodyMode mode = BodyMode::kConcurrent);

  // Streams this connection can open now (0 after GOAWAY or once closed).
  size_t available_streams() const;
  size_t open_streams() const;
  bool closed() const;
  // Graceful: no new requests; the connection ends once its streams have.
  void shutdown();

 private:
  explicit ClientConnection(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  std::shared_ptr<Session> session_;
};

}  // namespace monolake::http::h2
