#include "examples/custom_protocol/resp_codec.h"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace example {

using monolake::Error;
using monolake::ErrorCode;
using monolake::Result;

namespace {

Error malformed(const std::string& why) { return Error(ErrorCode::kProtocol, "resp: " + why); }

bool resp_type(char c) { return c == '+' || c == '-' || c == ':' || c == '$' || c == '*'; }

std::optional<long long> integer(std::string_view text) {
  long long n = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

struct Line {
  std::string_view text;
  size_t next;  // past the CRLF
};

// The line starting at `at`, up to CRLF. A CR or LF that is not part of the CRLF is malformed;
// so is a line longer than max_line. Decided on the bytes seen so far only when more bytes
// could not change the verdict, so that split input reads as whole input.
Result<std::optional<Line>> line(std::string_view bytes, size_t at, const RespLimits& limits) {
  // Search no further than the longest allowed line: a missing LF must not cost a scan of a
  // whole bulk string behind it.
  const std::string_view window = bytes.substr(at, limits.max_line + 2);
  const size_t lf = window.find('\n');
  if (lf == std::string_view::npos) {
    // The bare CR first: with the LF still to come, the whole line would be refused for it.
    const size_t cr = window.find('\r');
    if (cr != std::string_view::npos && cr + 1 < window.size()) return malformed("bare CR or LF");
    if (window.size() > limits.max_line + 1) return malformed("line over max_line");
    return std::optional<Line>();
  }
  if (lf == 0 || window[lf - 1] != '\r') return malformed("bare CR or LF");
  const std::string_view text = window.substr(0, lf - 1);
  if (text.find('\r') != std::string_view::npos) return malformed("bare CR or LF");
  if (text.size() > limits.max_line) return malformed("line over max_line");
  return std::optional<Line>(Line{text, at + lf + 1});
}

}  // namespace

Result<std::optional<std::string>> RespCodec::decode(monolake::IoBuffer& in) {
  const std::string_view bytes = in.view();
  auto fail = [this](Error error) -> Result<std::optional<std::string>> {
    reset();
    return error;
  };
  if (bytes.size() <= checked_) return std::optional<std::string>();
  if (checked_ == 0 && inline_commands_ && !resp_type(bytes[0])) {
    Result<std::optional<Line>> l = line(bytes, 0, limits_);
    if (!l) return fail(std::move(l).error());
    if (!*l) return std::optional<std::string>();
    checked_ = (*l)->next;
  } else {
    // One value header (and a bulk string's body) per turn; a complete value counts against
    // the arrays open around it, and the frame ends when none is left open.
    while (true) {
      if (checked_ >= bytes.size()) return std::optional<std::string>();
      const char type = bytes[checked_];
      Result<std::optional<Line>> header = line(bytes, checked_ + 1, limits_);
      if (!header) return fail(std::move(header).error());
      if (!*header) return std::optional<std::string>();
      const Line& l = **header;
      if (l.next > limits_.max_frame_bytes) return fail(malformed("value over max_frame_bytes"));
      size_t end = l.next;
      switch (type) {
        case '+':
        case '-':
          break;
        case ':':
          if (!integer(l.text)) return fail(malformed("integer reply is not an integer"));
          break;
        case '$': {
          std::optional<long long> n = integer(l.text);
          if (!n || *n < -1) return fail(malformed("bad bulk length"));
          if (*n == -1) break;
          if (static_cast<unsigned long long>(*n) > limits_.max_bulk_bytes) {
            return fail(malformed("bulk string over max_bulk_bytes"));
          }
          end = l.next + static_cast<size_t>(*n) + 2;
          if (end > limits_.max_frame_bytes) return fail(malformed("value over max_frame_bytes"));
          // Not yet whole: the header is checked again next time, which costs nothing.
          if (bytes.size() < end) return std::optional<std::string>();
          if (bytes[end - 2] != '\r' || bytes[end - 1] != '\n') {
            return fail(malformed("bulk string not followed by CRLF"));
          }
          break;
        }
        case '*': {
          std::optional<long long> n = integer(l.text);
          if (!n || *n < -1) return fail(malformed("bad array length"));
          if (*n <= 0) break;  // *-1 (null) and *0 are whole values
          if (static_cast<unsigned long long>(*n) > limits_.max_elements) {
            return fail(malformed("array over max_elements"));
          }
          if (open_.size() + 1 > limits_.max_depth)
            return fail(malformed("arrays nested too deep"));
          open_.push_back(static_cast<size_t>(*n));
          checked_ = l.next;
          continue;  // its elements follow
        }
        default:
          return fail(malformed("unknown type byte"));
      }
      checked_ = end;
      // The value just ended may be the last element of one or more arrays.
      while (!open_.empty() && --open_.back() == 0) open_.pop_back();
      if (open_.empty()) break;
    }
  }
  std::string frame(bytes.substr(0, checked_));
  in.consume(checked_);
  reset();
  return std::optional<std::string>(std::move(frame));
}

void RespCodec::encode(const std::string& frame, monolake::IoBuffer& out) { out.append(frame); }

Result<std::vector<std::string>> command_arguments(const std::string& frame) {
  std::vector<std::string> args;
  if (frame.size() < 2 || frame.compare(frame.size() - 2, 2, "\r\n") != 0) {
    return malformed("a command ends with CRLF");
  }
  if (frame[0] != '*') {
    if (resp_type(frame[0])) return malformed("a command is an array of bulk strings");
    // Inline: words separated by spaces or tabs.
    const std::string_view text(frame.data(), frame.size() - 2);
    size_t at = 0;
    while (at < text.size()) {
      const size_t gap = std::min(text.find_first_of(" \t", at), text.size());
      if (gap > at) args.emplace_back(text.substr(at, gap - at));
      at = gap + 1;
    }
    return args;
  }
  // *N\r\n then N bulk strings, each $LEN\r\nBYTES\r\n. The bounds are checked again here so
  // that this never reads past `frame`, whatever it is given.
  const std::string_view bytes(frame);
  size_t eol = bytes.find("\r\n");
  std::optional<long long> n = integer(bytes.substr(1, eol - 1));
  if (!n || *n < -1) return malformed("bad array length");
  size_t at = eol + 2;
  for (long long i = 0; i < *n; ++i) {
    if (at >= bytes.size() || bytes[at] != '$') {
      return malformed("command arguments are bulk strings");
    }
    eol = bytes.find("\r\n", at);
    if (eol == std::string_view::npos) return malformed("truncated argument");
    std::optional<long long> len = integer(bytes.substr(at + 1, eol - at - 1));
    if (!len || *len < 0) return malformed("a command argument is a non-null bulk string");
    const size_t begin = eol + 2;
    if (static_cast<unsigned long long>(*len) + 2 > bytes.size() - begin ||
        bytes.substr(begin + static_cast<size_t>(*len), 2) != "\r\n") {
      return malformed("truncated argument");
    }
    args.emplace_back(bytes.substr(begin, static_cast<size_t>(*len)));
    at = begin + static_cast<size_t>(*len) + 2;
  }
  if (at != bytes.size()) return malformed("bytes after the command's arguments");
  return args;
}

}  // namespace example
