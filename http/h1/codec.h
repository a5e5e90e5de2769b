// HTTP/1.1 wire codec: parses and writes message heads and body framing. It does no I/O (the
// connection code in server.h / client.h feeds it bytes), so every input can be tested whole
// and split at every byte.
//
// Strict by design (RFC 9112 / 9110): the head is checked byte by byte before llhttp tokenises
// it, because Debian's llhttp 8.1 lets through inputs a proxy must refuse (bare CR, obs-fold,
// empty or spaced field names, non-ASCII targets, HTTP/2.0 and HTTP/0.9 request lines, TE in
// HTTP/1.0). Body framing (Content-Length, chunked, trailers) is decoded here, not by llhttp.
// A request that breaks a rule gets an error carrying the status to answer (400, 413, 414, 431,
// 501, 505); the connection must then be closed, never reused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/buffer.h"
#include "http/message.h"

namespace monolake::http::h1 {

struct Limits {
  size_t max_request_line = 8 * 1024;  // longer: 414
  size_t max_head_bytes = 64 * 1024;   // the whole head (or trailer section); longer: 431
  size_t max_fields = 100;             // more: 431
  uint64_t max_body = 1ull << 30;      // request bodies (declared or received); larger: 413
};

// How the body of a parsed message is delimited.
struct BodyFraming {
  enum class Kind : uint8_t { kNone, kLength, kChunked, kUntilClose };
  Kind kind = Kind::kNone;
  uint64_t length = 0;  // kLength
};

enum class ParseStatus : uint8_t { kNeedMore, kDone, kError };

struct ParseError {
  int status = 400;    // for requests: what to answer; for responses: always 502 upstream-side
  std::string reason;  // for logs
};

// Parses request heads. One parser per connection; reset() between messages is implicit (each
// kDone starts the next message).
class RequestParser {
 public:
  explicit RequestParser(const Limits& limits = {}) : limits_(limits) {}

  // Parses the head at the start of `input`. kNeedMore: call again with the same bytes and
  // more. kDone: the head is `consumed` bytes; `head` and `framing` are set. kError: error().
  ParseStatus parse(std::string_view input, size_t& consumed, RequestHead& head,
                    BodyFraming& framing);
  const ParseError& error() const { return error_; }

 private:
  Limits limits_;
  size_t scanned_ = 0;  // bytes already searched for the end of the head
  ParseError error_;
};

// Parses response heads. `request_method` decides bodies (HEAD); 1xx heads parse as kDone with
// kNone framing (the caller reads the final response next).
class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits = {}) : limits_(limits) {}
  ParseStatus parse(std::string_view input, size_t& consumed, std::string_view request_method,
                    ResponseHead& head, BodyFraming& framing);
  const ParseError& error() const { return error_; }

 private:
  Limits limits_;
  size_t scanned_ = 0;
  ParseError error_;
};

// Decodes a chunked body: chunk sizes, extensions (checked, dropped), data, the last chunk and
// the trailer section. Payload bytes are handed to `on_data` as views into the input.
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const Limits& limits = {}) : limits_(limits) {}

  // Consumes as much of `input` as it can. kDone once the trailer section has ended (the
  // message's last byte is at `consumed`); kNeedMore when all of `input` was used.
  template <class OnData>
  ParseStatus decode(std::string_view input, size_t& consumed, OnData&& on_data) {
    consumed = 0;
    while (consumed < input.size()) {
      if (state_ == State::kData) {
        const size_t n =
            static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - consumed));
        on_data(input.substr(consumed, n));
        consumed += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCr;
        continue;
      }
      const unsigned char c = static_cast<unsigned char>(input[consumed]);
      ++consumed;
      if (step_common(c)) continue;
      const ParseStatus s = step(c);
      if (s != ParseStatus::kNeedMore) return s;
    }
    return state_ == State::kDone ? ParseStatus::kDone : ParseStatus::kNeedMore;
  }

  const HeaderMap& trailers() const { return trailers_; }
  const ParseError& error() const { return error_; }
  uint64_t body_bytes() const { return total_; }

 private:
  enum class State : uint8_t {
    kSize,         // hex digits
    kExtension,    // after ';' up to CR
    kSizeLf,       // CR seen after size/extension
    kData,         // remaining_ payload bytes
    kDataCr,       // CR after data
    kDataLf,       // LF after data
    kTrailerLine,  // a trailer field line, or the empty line ending the message
    kTrailerLf,
    kDone,
  };
  // The framing bytes of a plain chunk (size digits, CRLFs), inline: true if `c` was one and is
  // consumed, with the same effect step(c) has. Anything else (extensions, the last chunk,
  // trailers, limits, errors) returns false and goes to step().
  bool step_common(unsigned char c) {
    switch (state_) {
      case State::kSize:
        if (size_digits_ < 15) {
          const unsigned dec = static_cast<unsigned>(c - '0');
          const unsigned alpha = static_cast<unsigned>((c | 0x20) - 'a');
          const unsigned digit = dec < 10 ? dec : alpha < 6 ? alpha + 10 : 16;
          if (digit < 16) {
            ++size_digits_;
            size_ = size_ * 16 + digit;
            return true;
          }
        }
        if (c == '\r' && size_digits_ > 0) {
          state_ = State::kSizeLf;
          return true;
        }
        return false;
      case State::kSizeLf:
        // total_ <= max_body holds here (step() fails otherwise), so the subtraction is safe.
        if (c != '\n' || size_ == 0 || size_ > limits_.max_body - total_) return false;
        total_ += size_;
        remaining_ = size_;
        size_ = 0;
        size_digits_ = 0;
        state_ = State::kData;
        return true;
      case State::kDataCr:
        if (c != '\r') return false;
        state_ = State::kDataLf;
        return true;
      case State::kDataLf:
        if (c != '\n') return false;
        state_ = State::kSize;
        return true;
      default:
        return false;
    }
  }
  ParseStatus step(unsigned char c);
  ParseStatus fail(std::string reason, int status = 400);
  ParseStatus end_trailer_line();

  Limits limits_;
  State state_ = State::kSize;
  uint64_t size_ = 0;
  int size_digits_ = 0;
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
  bool in_quotes_ = false;
  std::string line_;  // current trailer line
  size_t trailer_bytes_ = 0;
  HeaderMap trailers_;
  ParseError error_;
};

// --- writing --------------------------------------------------------------------------------

// Appends "METHOD TARGET HTTP/1.1\r\n", the fields, the framing field, "\r\n". The map must not
// hold Content-Length or Transfer-Encoding (framing decides them).
void write_request_head(const RequestHead& head, const BodyFraming& framing, IoBuffer& out);
// Appends "HTTP/1.1 STATUS REASON\r\n", fields, framing, "\r\n". kNone framing writes no
// framing field (for 1xx/204/304 and HEAD answers) — pass kLength 0 for an empty body.
void write_response_head(const ResponseHead& head, const BodyFraming& framing, IoBuffer& out);
// One chunk's framing around `size` bytes of data: "SIZE\r\n" before, "\r\n" after.
void write_chunk_header(size_t size, IoBuffer& out);
void write_chunk_trailer(IoBuffer& out);
// "0\r\n", trailer fields, "\r\n".
void write_last_chunk(const HeaderMap* trailers, IoBuffer& out);

// Field-value and name checks shared with HTTP/2 translation (no CR, LF, NUL...).
bool valid_field_name(std::string_view name);
bool valid_field_value(std::string_view value);

}  // namespace monolake::http::h1
