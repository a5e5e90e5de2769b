#include "examples/custom_protocol/resp_codec.h"

#include <charconv>
#include <string_view>

namespace example {

using monolake::Error;
using monolake::ErrorCode;
using monolake::Result;

namespace {

Error malformed(const std::string& why) { return Error(ErrorCode::kProtocol, "resp: " + why); }

// Scans one RESP value starting at `at`; returns the offset just past it, nullopt when the
// bytes end first, or an error.
class Scanner {
 public:
  Scanner(std::string_view bytes, const RespLimits& limits) : bytes_(bytes), limits_(limits) {}

  Result<std::optional<size_t>> value(size_t at, size_t depth) {
    if (at >= bytes_.size()) return std::optional<size_t>();
    const char type = bytes_[at];
    Result<std::optional<Line>> header = line(at + 1);
    if (!header) return std::move(header).error();
    if (!*header) return std::optional<size_t>();
    const Line& l = **header;
    switch (type) {
      case '+':
      case '-':
        return std::optional<size_t>(l.next);
      case ':': {
        if (!integer(l.text)) return malformed("integer reply is not an integer");
        return std::optional<size_t>(l.next);
      }
      case '$': {
        std::optional<long long> n = integer(l.text);
        if (!n || *n < -1) return malformed("bad bulk length");
        if (*n == -1) return std::optional<size_t>(l.next);
        if (static_cast<unsigned long long>(*n) > limits_.max_bulk_bytes) {
          return malformed("bulk string over max_bulk_bytes");
        }
        const size_t end = l.next + static_cast<size_t>(*n) + 2;
        if (bytes_.size() < end) return std::optional<size_t>();
        if (bytes_[end - 2] != '\r' || bytes_[end - 1] != '\n') {
          return malformed("bulk string not followed by CRLF");
        }
        return std::optional<size_t>(end);
      }
      case '*': {
        std::optional<long long> n = integer(l.text);
        if (!n || *n < -1) return malformed("bad array length");
        if (*n == -1) return std::optional<size_t>(l.next);
        if (static_cast<unsigned long long>(*n) > limits_.max_elements) {
          return malformed("array over max_elements");
        }
        if (depth + 1 > limits_.max_depth) return malformed("arrays nested too deep");
        size_t next = l.next;
        for (long long i = 0; i < *n; ++i) {
          Result<std::optional<size_t>> element = value(next, depth + 1);
          if (!element || !*element) return element;
          next = **element;
        }
        return std::optional<size_t>(next);
      }
      default:
        return malformed("unknown type byte");
    }
  }

  struct Line {
    std::string_view text;
    size_t next;  // past the CRLF
  };
  // The line starting at `at`, up to CRLF. A CR or LF that is not part of the CRLF is
  // malformed; so is a line longer than max_line. Decided on the bytes seen so far only when
  // more bytes could not change the verdict, so that split input reads as whole input.
  Result<std::optional<Line>> line(size_t at) {
    const size_t lf = bytes_.find('\n', at);
    if (lf == std::string_view::npos) {
      const std::string_view partial = bytes_.substr(at);
      if (partial.size() > limits_.max_line + 1) return malformed("line over max_line");
      const size_t cr = partial.find('\r');
      if (cr != std::string_view::npos && cr + 1 < partial.size()) {
        return malformed("bare CR or LF");
      }
      return std::optional<Line>();
    }
    if (lf == at || bytes_[lf - 1] != '\r') return malformed("bare CR or LF");
    const std::string_view text = bytes_.substr(at, lf - 1 - at);
    if (text.find('\r') != std::string_view::npos) return malformed("bare CR or LF");
    if (text.size() > limits_.max_line) return malformed("line over max_line");
    return std::optional<Line>(Line{text, lf + 1});
  }

  static std::optional<long long> integer(std::string_view text) {
    long long n = 0;
    if (text.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return n;
  }

 private:
  std::string_view bytes_;
  const RespLimits& limits_;
};

bool resp_type(char c) { return c == '+' || c == '-' || c == ':' || c == '$' || c == '*'; }

}  // namespace

Result<std::optional<std::string>> RespCodec::decode(monolake::IoBuffer& in) {
  const std::string_view bytes(reinterpret_cast<const char*>(in.data()), in.size());
  if (bytes.empty()) return std::optional<std::string>();
  Scanner scanner(bytes, limits_);
  Result<std::optional<size_t>> end = std::optional<size_t>();
  if (inline_commands_ && !resp_type(bytes[0])) {
    Result<std::optional<Scanner::Line>> l = scanner.line(0);
    if (!l) return std::move(l).error();
    if (!*l) return std::optional<std::string>();
    end = std::optional<size_t>((*l)->next);
  } else {
    end = scanner.value(0, 0);
  }
  if (!end) return std::move(end).error();
  if (!*end) return std::optional<std::string>();
  std::string frame(bytes.substr(0, **end));
  in.consume(**end);
  return std::optional<std::string>(std::move(frame));
}

void RespCodec::encode(const std::string& frame, monolake::IoBuffer& out) { out.append(frame); }

Result<std::vector<std::string>> command_arguments(const std::string& frame) {
  std::vector<std::string> args;
  if (frame.empty()) return malformed("empty command");
  if (frame[0] != '*' && resp_type(frame[0])) {
    return malformed("a command is an array of bulk strings");
  }
  if (frame[0] != '*') {
    // Inline: words separated by spaces (no quoting: enough for PING, GET k...).
    std::string_view line(frame);
    line.remove_suffix(2);
    size_t at = 0;
    while (at < line.size()) {
      const size_t space = line.find(' ', at);
      const size_t end = space == std::string_view::npos ? line.size() : space;
      if (end > at) args.emplace_back(line.substr(at, end - at));
      at = end + 1;
    }
    if (args.empty()) return malformed("empty inline command");
    return args;
  }
  // *N\r\n then N bulk strings; the codec has checked the framing already.
  size_t at = frame.find("\r\n") + 2;
  const long long n = std::stoll(frame.substr(1, at - 3));
  if (n <= 0) return malformed("a command is a non-empty array");
  for (long long i = 0; i < n; ++i) {
    if (frame[at] != '$') return malformed("command arguments are bulk strings");
    const size_t line_end = frame.find("\r\n", at);
    const long long len = std::stoll(frame.substr(at + 1, line_end - at - 1));
    if (len < 0) return malformed("a null argument");
    args.push_back(frame.substr(line_end + 2, static_cast<size_t>(len)));
    at = line_end + 2 + static_cast<size_t>(len) + 2;
  }
  return args;
}

}  // namespace example
