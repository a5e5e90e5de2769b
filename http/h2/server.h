// The server side of an HTTP/2 connection: each request stream is handed to the handler in its
// own task as soon as its head has arrived (its body streams in while the handler runs), and
// each response is sent as it comes, interleaved with the others.
//
//   co_await http::h2::serve(stream, info, options, handler, std::move(already_read));
//
// What it enforces, beyond nghttp2's own RFC 9113 checks (HTTP messaging validation is on:
// pseudo-headers, connection-specific fields, `te` other than "trailers", CR/LF/NUL in fields,
// Content-Length against the DATA received all reset the stream with PROTOCOL_ERROR): the
// limits of Options (streams, windows, head size -> 431, body size -> 413 or RST_STREAM,
// CONTINUATION count, Rapid Reset, control-frame and empty-frame floods -> GOAWAY
// ENHANCE_YOUR_CALM, unread ACK floods -> the connection is closed), an idle timeout, and a
// graceful GOAWAY once `*draining` turns true. A reset stream cancels its handler.
//
// Requests reach the handler as HTTP/1.1 would: `Host` from :authority, the target from :path,
// cookie crumbs joined, version kHttp2.
#pragma once

#include <cstdint>
#include <string>

#include "base/buffer.h"
#include "http/exchange.h"
#include "http/h2/options.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::http::h2 {

struct ServeStats {
  uint64_t streams = 0;
  std::string ended;   // why the connection ended
  bool abuse = false;  // ended by a flood limit
};

// `pending`: bytes already read from the connection (the preface, when detected on a plain
// listener). `draining`: checked once a second; may be null.
runtime::Task<ServeStats> serve(transport::ByteStream& stream, const ConnectionInfo& info,
                                const Options& options, const Handler& handler,
                                IoBuffer pending = {}, const bool* draining = nullptr);

// Whether `bytes` (what a client sent first) is, or may still become, the HTTP/2 preface.
enum class PrefaceMatch { kNo, kPartial, kYes };
PrefaceMatch match_preface(std::string_view bytes);

}  // namespace monolake::http::h2
