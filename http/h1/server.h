// The server side of an HTTP/1.1 connection: reads requests, hands each to a handler, writes
// the responses in order (pipelined requests wait in the read buffer), keeps the connection
// alive when both sides allow it.
//
//   http::h1::ServerOptions options;
//   co_await http::h1::serve(stream, info, options, [&](http::Request r) { return handle(r); });
//
// What it enforces: the codec's strictness (a bad request gets its 4xx with Connection: close,
// then the connection closes; nothing reaches the handler); timeouts for an idle keep-alive
// connection (closed quietly), a head arriving too slowly (408) and a body stalling (closed);
// `Expect: 100-continue` (answered when the handler first reads the body); a request body the
// handler did not read is drained before the next request (up to a limit; else the connection
// closes). The handler is called once per request and may choose its service chain each time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "http/exchange.h"
#include "http/h1/codec.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::http::h1 {

struct ServerOptions {
  Limits limits;
  // Idle time allowed between requests; 0 = one request per connection.
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(75);
  // From the first byte of a request to the end of its head.
  std::chrono::nanoseconds read_header_timeout = std::chrono::seconds(30);
  // Longest wait for the next piece of a request body.
  std::chrono::nanoseconds read_body_timeout = std::chrono::seconds(60);
  // Longest a single write to the client may take (a client that stops reading does not hold
  // a response, and the upstream connection behind it, for ever).
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  // Unread request body drained after a response, at most this much; more closes the connection.
  uint64_t max_drain = 256 * 1024;
  // Checked before each response: once true, the response says Connection: close and the
  // connection ends after it (graceful drain).
  const bool* draining = nullptr;
};

using Handler = http::Handler;

struct ServeStats {
  uint64_t requests = 0;
  // Why the connection ended: "closed" (the client), "keepalive timeout", "header timeout",
  // "body timeout", "bad request", "write failed", "close requested"...
  const char* ended = "closed";
};

// `pending`: bytes already read from the connection (protocol detection), served first.
runtime::Task<ServeStats> serve(transport::ByteStream& stream, const ConnectionInfo& info,
                                const ServerOptions& options, const Handler& handler,
                                IoBuffer pending = {});

}  // namespace monolake::http::h1
