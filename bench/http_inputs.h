// Inputs and one-parse helpers shared by //bench:http_bench (Google Benchmark) and
// //bench:http_parse_count (the fixed-count driver run under callgrind), so both measure the
// same bytes with the same code.
//
// This header includes llhttp.h: the DESIGN rule keeps vendor headers inside the package that
// wraps them, but bench/ is a leaf nothing depends on, and timing llhttp alone on the same
// bytes is the point (how much the project's checks cost on top of the tokeniser).
#pragma once

#include <llhttp.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "base/buffer.h"
#include "http/h1/codec.h"

namespace monolake::bench {

// A typical proxied browser request head: 8 fields, a ~200-byte Cookie.
inline constexpr std::string_view kRequestHead =
    "GET /api/v1/items?page=2&sort=desc HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Cookie: session_id=5f2b8c1e9a7d4e3f8b6c2a1d0e9f8a7b; csrftoken=Qm9vdGNhbXBfY3NyZl90b2tlbl8x"
    "MjM0NTY3ODkw; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; "
    "theme=dark; lang=en-US; cart=3f9a\r\n"
    "X-Forwarded-For: 203.0.113.7, 198.51.100.23\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

// A typical upstream response head: 200, 6 fields, Content-Length 1024.
inline constexpr std::string_view kResponseHead =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Sat, 28 Nov 2026 10:00:00 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Content-Length: 1024\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: max-age=60\r\n"
    "\r\n";

// One request head through the project's codec, the way server.cc does it (a fresh head per
// request). Aborts on anything but kDone: a benchmark of a failing parse measures nothing.
inline size_t parse_request_with_codec(http::h1::RequestParser& parser, std::string_view in) {
  http::RequestHead head;
  http::h1::BodyFraming framing;
  size_t consumed = 0;
  if (parser.parse(in, consumed, head, framing) != http::h1::ParseStatus::kDone) std::abort();
  return consumed + head.headers.size();
}

inline size_t parse_response_with_codec(http::h1::ResponseParser& parser, std::string_view in) {
  http::ResponseHead head;
  http::h1::BodyFraming framing;
  size_t consumed = 0;
  if (parser.parse(in, consumed, "GET", head, framing) != http::h1::ParseStatus::kDone) {
    std::abort();
  }
  return consumed + framing.length;
}

// A chunked body: `total` payload bytes in chunks of `chunk` bytes, no extensions or trailers.
inline std::string chunked_body(size_t total, size_t chunk) {
  IoBuffer wire;
  const std::string data(chunk, 'x');
  for (size_t done = 0; done < total; done += chunk) {
    http::h1::write_chunk_header(chunk, wire);
    wire.append(data);
    http::h1::write_chunk_trailer(wire);
  }
  http::h1::write_last_chunk(nullptr, wire);
  return wire.to_string();
}

// Decodes a whole chunked body with a fresh decoder; returns the payload size.
inline size_t decode_chunked(std::string_view in) {
  http::h1::ChunkedDecoder decoder;
  size_t consumed = 0;
  size_t seen = 0;
  if (decoder.decode(in, consumed, [&](std::string_view d) { seen += d.size(); }) !=
      http::h1::ParseStatus::kDone) {
    std::abort();
  }
  return seen;
}

// llhttp alone: callbacks only note where each span is (what a codec needs at the least).
struct LlhttpSpans {
  struct Span {
    const char* at;
    size_t length;
  };
  Span method{}, url{}, version{};
  Span names[32]{};
  Span values[32]{};
  int fields = 0;

  static LlhttpSpans& of(llhttp_t* p) { return *static_cast<LlhttpSpans*>(p->data); }
  static int on_method(llhttp_t* p, const char* at, size_t n) {
    of(p).method = {at, n};
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, size_t n) {
    of(p).url = {at, n};
    return 0;
  }
  static int on_version(llhttp_t* p, const char* at, size_t n) {
    of(p).version = {at, n};
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, size_t n) {
    LlhttpSpans& s = of(p);
    if (s.fields < 32) s.names[s.fields] = {at, n};
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, size_t n) {
    LlhttpSpans& s = of(p);
    if (s.fields < 32) s.values[s.fields++] = {at, n};
    return 0;
  }
  // Stop at the end of the head, as the codec's own llhttp pass does.
  static int on_headers_complete(llhttp_t*) { return HPE_PAUSED; }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_method = &on_method;
      t.on_url = &on_url;
      t.on_version = &on_version;
      t.on_header_field = &on_header_field;
      t.on_header_value = &on_header_value;
      t.on_headers_complete = &on_headers_complete;
      return t;
    }();
    return s;
  }
};

inline size_t parse_request_with_llhttp(std::string_view in) {
  LlhttpSpans spans;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &LlhttpSpans::settings());
  parser.data = &spans;
  if (llhttp_execute(&parser, in.data(), in.size()) != HPE_PAUSED) std::abort();
  return static_cast<size_t>(llhttp_get_error_pos(&parser) - in.data()) +
         static_cast<size_t>(spans.fields);
}

}  // namespace monolake::bench
