#include "http/h1/codec.h"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>

#include "base/assert.h"

namespace monolake::http::h1 {

namespace {

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }
// Field-value bytes: HTAB, SP, VCHAR, obs-text.
constexpr std::array<bool, 256> kFieldByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0x21; c < 256; ++c) t[c] = c != 0x7f;
  t['\t'] = t[' '] = true;
  return t;
}();
inline bool is_field_byte(unsigned char c) { return kFieldByte[c]; }

// Word-at-a-time tests, eight bytes per step. load8 puts the first byte in the low lane on any
// host, so the lowest marked lane is the first byte in memory.
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHighs = 0x8080808080808080ull;
inline uint64_t load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
// The high bit of each lane of `v` below `n` (n <= 128). Only the lowest marked lane is exact
// (a borrow out of it may mark the lane above), which is all a scan needs: with no lane below n
// nothing borrows, and a lane >= 0x80 is cleared by ~v.
inline uint64_t bytes_below(uint64_t v, unsigned char n) { return (v - kOnes * n) & ~v & kHighs; }
// Index of the lowest marked lane of a non-zero mask.
inline size_t first_lane(uint64_t mask) { return static_cast<size_t>(std::countr_zero(mask)) / 8; }

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && is_ows(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && is_ows(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}

// Where the head ends, scanning from `scanned` (bytes before it were checked already).
// kDone: `end` is one past the blank line. kError: `error` says why and `error_pos` is the index
// of the byte that decided it.
//
// Errors are found in byte order, and each limit is applied at the byte that exceeds it, so the
// verdict depends only on the bytes, never on how they were split between calls: a head too
// long with a bad byte past the limit is 414/431 whether it arrives whole or in pieces.
struct HeadScan {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t end = 0;
  size_t error_pos = 0;
  ParseError error;
};

HeadScan scan_head(std::string_view in, size_t& scanned, const Limits& limits, bool request) {
  HeadScan r;
  auto fail = [&](size_t pos, int status, const char* reason) {
    r.status = ParseStatus::kError;
    r.error_pos = pos;
    r.error = {status, reason};
    scanned = 0;
    return r;
  };
  // The start line ends at the first CR; for a request it may be at most max_request_line long.
  const bool line_too_long =
      request && in.size() > limits.max_request_line &&
      in.substr(0, limits.max_request_line + 1).find('\r') == std::string_view::npos;
  // Bytes that need a look (CR, LF, NUL); the rest are skipped a table lookup at a time, up to
  // the first position where a limit applies.
  static constexpr auto kSpecial = [] {
    std::array<bool, 256> t{};
    t['\r'] = t['\n'] = t[0] = true;
    return t;
  }();
  const size_t stop = std::min(
      {in.size(), limits.max_head_bytes, line_too_long ? limits.max_request_line : in.size()});
  size_t i = scanned;
  for (; i < in.size(); ++i) {
    // Eight bytes at a time to the first byte below 0x0e (CR, LF and NUL are; so are HTAB and
    // other CTLs, which the byte loop then steps over), then byte by byte.
    while (i + 8 <= stop) {
      const uint64_t m = bytes_below(load8(in.data() + i), 0x0e);
      if (m != 0) {
        i += first_lane(m);
        break;
      }
      i += 8;
    }
    while (i < stop && !kSpecial[static_cast<unsigned char>(in[i])]) ++i;
    if (i == in.size()) break;
    if (line_too_long && i >= limits.max_request_line) {
      return fail(i, 414, "request line too long");
    }
    if (i >= limits.max_head_bytes) return fail(i, 431, "head too large");
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '\r') {
      if (i + 1 == in.size()) break;  // need the next byte to judge this CR
      if (in[i + 1] != '\n') return fail(i + 1, 400, "bare CR in head");
      continue;
    }
    if (c == '\n') {
      if (i == 0 || in[i - 1] != '\r') return fail(i, 400, "bare LF in head");
      if (i >= 3 && in[i - 2] == '\n' && in[i - 3] == '\r') {
        r.status = ParseStatus::kDone;
        r.end = i + 1;
        scanned = 0;
        return r;
      }
      continue;
    }
    if (c == 0) return fail(i, 400, "NUL in head");
  }
  scanned = i;
  return r;
}

// "HTTP/d.d" → major, minor.
bool parse_version(std::string_view v, int& major, int& minor) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7])) {
    return false;
  }
  major = v[5] - '0';
  minor = v[7] - '0';
  return true;
}

// Checks the field lines of a head (after the start line, up to and including the blank line)
// or of one trailer line, and adds them to `headers`. Every line ends with CRLF and holds no
// other CR or LF (scan_head and the chunked decoder see to that). One pass per line: the name
// scan finds the colon, the value scan finds the CR.
bool parse_fields(std::string_view block, const Limits& limits, HeaderMap& headers,
                  ParseError& error) {
  // One allocation each for a typical head's fields and for all their bytes.
  if (headers.empty()) headers.reserve(16, block.size());
  auto fail = [&](const char* reason) {
    error = {400, reason};
    return false;
  };
  const char* p = block.data();
  const char* const end = p + block.size();
  while (p != end) {
    if (*p == '\r' && end - p >= 2 && p[1] == '\n') break;  // the blank line
    if (is_ows(static_cast<unsigned char>(*p))) return fail("obs-fold (line folding) in a field");
    const char* const name = p;
    while (p != end && is_tchar(static_cast<unsigned char>(*p))) ++p;
    if (p == end || *p != ':') {
      if (p == end || *p == '\r') return fail("field line without a colon");
      return fail(is_ows(static_cast<unsigned char>(*p)) ? "whitespace in or before a field name"
                                                         : "bad field name");
    }
    if (p == name) return fail("empty field name");
    const std::string_view name_view(name, static_cast<size_t>(p - name));
    ++p;  // the colon
    while (p != end && is_ows(static_cast<unsigned char>(*p))) ++p;
    const char* const value = p;
    // Eight bytes at a time to the first CTL (below 0x20; HTAB then goes byte by byte) or DEL.
    while (end - p >= 8) {
      const uint64_t v = load8(p);
      const uint64_t m = bytes_below(v, 0x20) | bytes_below(v ^ (kOnes * 0x7f), 1);
      if (m != 0) {
        p += first_lane(m);
        break;
      }
      p += 8;
    }
    while (p != end && is_field_byte(static_cast<unsigned char>(*p))) ++p;
    if (p == end || *p != '\r') return fail("control character in a field value");
    if (end - p < 2 || p[1] != '\n') return fail("bare CR in a field line");
    const char* value_end = p;
    while (value_end != value && is_ows(static_cast<unsigned char>(value_end[-1]))) --value_end;
    p += 2;  // CRLF
    if (headers.size() == limits.max_fields) {
      error = {431, "too many fields"};
      return false;
    }
    headers.add(name_view, std::string_view(value, static_cast<size_t>(value_end - value)));
  }
  return true;
}

// 1*DIGIT, at most 18 digits (no overflow), the whole value.
bool parse_content_length(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 18) return false;
  for (unsigned char c : v) {
    if (!is_digit(c)) return false;
  }
  out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return true;
}

// The fields that decide Host and framing, found in one pass over the map (by name length
// first, so most fields cost one comparison). host / length point at the first of each.
struct FramingFields {
  size_t hosts = 0;
  size_t lengths = 0;
  bool transfer_encoding = false;
  std::string_view host;    // the first Host value (when hosts > 0)
  std::string_view length;  // the first Content-Length value (when lengths > 0)
};
FramingFields framing_fields(const HeaderMap& headers) {
  FramingFields r;
  for (const HeaderMap::Field& f : headers.fields()) {
    switch (f.name.size()) {
      case 4:
        if (iequals(f.name, "host") && r.hosts++ == 0) r.host = f.value;
        break;
      case 14:
        if (iequals(f.name, "content-length") && r.lengths++ == 0) r.length = f.value;
        break;
      case 17:
        r.transfer_encoding = r.transfer_encoding || iequals(f.name, "transfer-encoding");
        break;
      default:
        break;
    }
  }
  return r;
}

// Transfer-Encoding: only "chunked" (once, last) is supported.
// chunked twice is malformed (RFC 9112 6.1), not an unimplemented coding. Called only when a
// Transfer-Encoding field is present (framing_fields says so); kAbsent is the callers'.
enum class TeVerdict { kAbsent, kChunked, kUnsupported, kNotFinalChunked, kChunkedTwice };
TeVerdict transfer_encoding(const HeaderMap& headers) {
  std::vector<std::string_view> codings;
  headers.for_each_token("transfer-encoding", [&](std::string_view t) { codings.push_back(t); });
  if (codings.empty() || !iequals(codings.back(), "chunked")) return TeVerdict::kNotFinalChunked;
  for (size_t i = 0; i + 1 < codings.size(); ++i) {
    if (iequals(codings[i], "chunked")) return TeVerdict::kChunkedTwice;
  }
  if (codings.size() != 1) return TeVerdict::kUnsupported;
  return TeVerdict::kChunked;
}

// reg-name bytes: unreserved, sub-delims and '%' (of pct-encoded), by table.
constexpr std::array<bool, 256> kRegNameByte = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 32] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=%")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool is_unreserved_or_subdelim(unsigned char c) { return kRegNameByte[c]; }

// uri-host [ ":" port ], no userinfo.
bool valid_authority(std::string_view a) {
  if (a.empty()) return false;
  std::string_view host = a;
  std::string_view port;
  if (a.front() == '[') {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return false;
    for (unsigned char c : a.substr(1, close - 1)) {
      if (!is_hex(c) && c != ':' && c != '.') return false;
    }
    host = a.substr(0, close + 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    const size_t colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
    if (host.empty()) return false;
    for (unsigned char c : host) {
      if (!is_unreserved_or_subdelim(c)) return false;  // '@', '/', spaces... are not
    }
  }
  if (port.size() > 5) return false;
  for (unsigned char c : port) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Runs llhttp over a head our checks accepted: a second parser must agree it is one complete
// head. The version is given as HTTP/1.x (llhttp refuses HTTP/1.2+, which we serve as 1.1).
struct LlhttpCheck {
  static int on_headers_complete(llhttp_t*) { return HPE_PAUSED; }
  static bool agrees(std::string_view head, llhttp_type_t type) {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_headers_complete = &LlhttpCheck::on_headers_complete;
    llhttp_t parser;
    llhttp_init(&parser, type, &settings);
    const llhttp_errno_t err = llhttp_execute(&parser, head.data(), head.size());
    return err == HPE_PAUSED && llhttp_get_error_pos(&parser) == head.data() + head.size();
  }
};

// The head as llhttp may see it: a request line with HTTP/1.x (x > 1) rewritten as HTTP/1.1.
bool llhttp_agrees(std::string_view head, size_t version_pos, bool rewrite, llhttp_type_t type) {
  if (!rewrite) return LlhttpCheck::agrees(head, type);
  std::string copy(head);
  copy.replace(version_pos, 8, "HTTP/1.1");
  return LlhttpCheck::agrees(copy, type);
}

// The parts of a request line, once checked.
struct RequestLine {
  std::string_view method;
  std::string_view target;
  size_t version_pos = 0;  // where "HTTP/" starts
  int minor = 0;
};

// method SP request-target SP HTTP-version (single spaces), and a target form the method allows.
// Depends on the line alone, so it is judged as soon as the line is complete.
bool check_request_line(std::string_view line, RequestLine& out, ParseError& error) {
  auto fail = [&](int status, const char* reason) {
    error = {status, reason};
    return false;
  };
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(400, "bad request line");
  const std::string_view method = line.substr(0, sp1);
  for (unsigned char c : method) {
    if (!is_tchar(c)) return fail(400, "bad method");
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "HTTP/0.9 or missing version");
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (target.empty()) return fail(400, "empty target");
  for (unsigned char c : target) {
    if (c < 0x21 || c > 0x7e) return fail(400, "control or non-ASCII byte in the target");
  }
  int major = 0, minor = 0;
  if (!parse_version(version, major, minor)) return fail(400, "malformed version");
  if (major != 1) return fail(505, "unsupported major version");

  // Target forms (RFC 9112 3.2): origin-form, absolute-form (http/https, no userinfo),
  // asterisk-form for OPTIONS. authority-form is CONNECT's, which a proxy here does not do.
  if (method == "CONNECT") return fail(501, "CONNECT is not supported");
  if (target == "*") {
    if (method != "OPTIONS") return fail(400, "'*' target without OPTIONS");
  } else if (target.front() != '/') {
    const size_t scheme_end = target.find("://");
    const std::string_view scheme = target.substr(0, scheme_end);
    if (scheme_end == std::string_view::npos ||
        !(iequals(scheme, "http") || iequals(scheme, "https"))) {
      return fail(400, "bad request target");
    }
    const std::string_view rest = target.substr(scheme_end + 3);
    if (!valid_authority(rest.substr(0, rest.find_first_of("/?")))) {
      return fail(400, "bad authority in the target");
    }
  }
  out = {method, target, sp2 + 1, minor};
  return true;
}

}  // namespace

// --- RequestParser ----------------------------------------------------------------------------

ParseStatus RequestParser::parse(std::string_view input, size_t& consumed, RequestHead& head,
                                 BodyFraming& framing) {
  auto fail = [this](int status, std::string reason) {
    error_ = {status, std::move(reason)};
    scanned_ = 0;
    return ParseStatus::kError;
  };
  // Empty lines before a request line are ignored (RFC 9112 2.2), a few at most.
  size_t skip = 0;
  while (skip + 1 < input.size() && input[skip] == '\r' && input[skip + 1] == '\n' && skip < 8) {
    skip += 2;
  }
  std::string_view in = input.substr(skip);
  if (scanned_ > in.size()) scanned_ = 0;
  const HeadScan scan = scan_head(in, scanned_, limits_, /*request=*/true);

  // The request line is judged as soon as its CRLF has arrived, before any later byte: an
  // HTTP/0.9 line, a bad target or version gets its answer without waiting for a blank line
  // that may never come. A scan error inside the line (NUL, bare LF, 414) comes first.
  const size_t cr = in.substr(0, std::min(in.size(), limits_.max_request_line + 1)).find('\r');
  const bool line_complete =
      cr != std::string_view::npos && cr + 1 < in.size() && in[cr + 1] == '\n';
  RequestLine line;
  if (line_complete && (scan.status != ParseStatus::kError || scan.error_pos > cr + 1)) {
    if (!check_request_line(in.substr(0, cr), line, error_)) {
      scanned_ = 0;
      return ParseStatus::kError;
    }
  }
  if (scan.status == ParseStatus::kError) return fail(scan.error.status, scan.error.reason);
  if (scan.status == ParseStatus::kNeedMore) return ParseStatus::kNeedMore;
  const std::string_view text = in.substr(0, scan.end);

  head.method.assign(line.method);
  head.target.assign(line.target);
  head.version = line.minor == 0 ? Version::kHttp10 : Version::kHttp11;
  head.headers.clear();
  if (!parse_fields(text.substr(cr + 2), limits_, head.headers, error_)) {
    scanned_ = 0;
    return ParseStatus::kError;
  }

  // Host (RFC 9112 3.2): exactly one in HTTP/1.1, at most one before; a valid authority.
  const FramingFields fields = framing_fields(head.headers);
  const size_t hosts = fields.hosts;
  if (hosts > 1) return fail(400, "more than one Host");
  if (hosts == 0 && head.version == Version::kHttp11) return fail(400, "missing Host");
  if (hosts == 1 && !valid_authority(fields.host)) return fail(400, "invalid Host");

  // Body framing (RFC 9112 6.3).
  const TeVerdict te =
      fields.transfer_encoding ? transfer_encoding(head.headers) : TeVerdict::kAbsent;
  const size_t lengths = fields.lengths;
  if (te != TeVerdict::kAbsent) {
    if (lengths > 0) return fail(400, "both Content-Length and Transfer-Encoding");
    if (head.version == Version::kHttp10) return fail(400, "Transfer-Encoding in HTTP/1.0");
    if (te == TeVerdict::kNotFinalChunked) {
      return fail(400, "Transfer-Encoding not ending in chunked");
    }
    if (te == TeVerdict::kChunkedTwice) return fail(400, "chunked applied more than once");
    if (te == TeVerdict::kUnsupported) return fail(501, "unsupported transfer coding");
    framing = {BodyFraming::Kind::kChunked, 0};
  } else if (lengths > 0) {
    uint64_t n = 0;
    if (lengths > 1) return fail(400, "more than one Content-Length");
    if (!parse_content_length(fields.length, n)) {
      return fail(400, "malformed Content-Length");
    }
    if (n > limits_.max_body) return fail(413, "body larger than the limit");
    framing = n == 0 ? BodyFraming{} : BodyFraming{BodyFraming::Kind::kLength, n};
  } else {
    framing = {};
  }

  if (!llhttp_agrees(text, line.version_pos, line.minor > 1, HTTP_REQUEST)) {
    return fail(400, "rejected by llhttp");
  }
  consumed = skip + scan.end;
  scanned_ = 0;
  return ParseStatus::kDone;
}

// --- ResponseParser ---------------------------------------------------------------------------

ParseStatus ResponseParser::parse(std::string_view input, size_t& consumed,
                                  std::string_view request_method, ResponseHead& head,
                                  BodyFraming& framing) {
  auto fail = [this](std::string reason) {
    error_ = {502, std::move(reason)};
    scanned_ = 0;
    return ParseStatus::kError;
  };
  HeadScan scan = scan_head(input, scanned_, limits_, /*request=*/false);
  if (scan.status == ParseStatus::kError) return fail("upstream: " + scan.error.reason);
  if (scan.status == ParseStatus::kNeedMore) return ParseStatus::kNeedMore;
  std::string_view text = input.substr(0, scan.end);
  const size_t line_end = text.find("\r\n");
  std::string_view line = text.substr(0, line_end);
  // HTTP-version SP 3DIGIT [SP reason]
  int major = 0, minor = 0;
  if (line.size() < 12 || !parse_version(line.substr(0, 8), major, minor) || major != 1 ||
      line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    return fail("upstream: malformed status line");
  }
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  // RFC 9110 15: codes outside 100..599 are invalid (a client treats them as a server error).
  if (status < 100 || status > 599) return fail("upstream: bad status code");
  std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (unsigned char c : reason) {
    if (!is_field_byte(c)) return fail("upstream: bad reason phrase");
  }
  head.status = status;
  head.reason.assign(reason);
  head.version = minor == 0 ? Version::kHttp10 : Version::kHttp11;
  head.headers.clear();
  ParseError field_error;
  if (!parse_fields(text.substr(line_end + 2), limits_, head.headers, field_error)) {
    return fail("upstream: " + field_error.reason);
  }
  const FramingFields fields = framing_fields(head.headers);
  const TeVerdict te =
      fields.transfer_encoding ? transfer_encoding(head.headers) : TeVerdict::kAbsent;
  const size_t lengths = fields.lengths;
  if (te != TeVerdict::kAbsent && lengths > 0) {
    return fail("upstream: both Content-Length and Transfer-Encoding");
  }
  if (lengths > 1) return fail("upstream: more than one Content-Length");
  uint64_t n = 0;
  if (lengths == 1 && !parse_content_length(fields.length, n)) {
    return fail("upstream: malformed Content-Length");
  }
  if (te != TeVerdict::kAbsent && head.version == Version::kHttp10) {
    return fail("upstream: Transfer-Encoding in HTTP/1.0");
  }
  if (te != TeVerdict::kAbsent && te != TeVerdict::kChunked) {
    return fail("upstream: unsupported Transfer-Encoding");
  }
  if (status < 200 || status == 204 || status == 304 || request_method == "HEAD") {
    framing = {};
  } else if (te == TeVerdict::kChunked) {
    framing = {BodyFraming::Kind::kChunked, 0};
  } else if (lengths == 1) {
    framing = n == 0 ? BodyFraming{BodyFraming::Kind::kLength, 0}
                     : BodyFraming{BodyFraming::Kind::kLength, n};
  } else {
    framing = {BodyFraming::Kind::kUntilClose, 0};
  }
  // No llhttp second opinion on responses: they come from configured upstreams, the checks
  // above are the same as for requests, and a second parse per response costs ~8k
  // instructions (callgrind), a third of a proxied request's budget.
  consumed = scan.end;
  scanned_ = 0;
  return ParseStatus::kDone;
}

namespace {

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) (RFC 9112 7.1.1),
// with a value a token or a quoted-string. `ext` is everything between the chunk size and the
// CR (it starts with ';' or whitespace), already free of CTLs other than HTAB. Whitespace is
// BWS only where the grammar puts it: before a ';', and around '='; never at the end, so
// "5 \r\n" and "5;a=b \r\n" are refused.
bool valid_chunk_extensions(std::string_view ext) {
  size_t i = 0;
  auto skip_ows = [&] {
    while (i < ext.size() && is_ows(static_cast<unsigned char>(ext[i]))) ++i;
  };
  auto token = [&] {
    const size_t start = i;
    while (i < ext.size() && is_tchar(static_cast<unsigned char>(ext[i]))) ++i;
    return i > start;
  };
  auto quoted_string = [&] {
    ++i;  // the opening quote
    while (i < ext.size()) {
      const unsigned char c = static_cast<unsigned char>(ext[i++]);
      if (c == '"') return true;
      if (c == '\\') {
        if (i == ext.size()) return false;
        ++i;  // quoted-pair: any HTAB, SP, VCHAR or obs-text
      }
    }
    return false;  // unterminated
  };
  if (ext.empty()) return false;
  for (;;) {
    skip_ows();
    if (i == ext.size() || ext[i] != ';') return false;
    ++i;
    skip_ows();
    if (!token()) return false;
    const size_t name_end = i;
    skip_ows();
    if (i < ext.size() && ext[i] == '=') {
      ++i;
      skip_ows();
      if (i < ext.size() && ext[i] == '"') {
        if (!quoted_string()) return false;
      } else if (!token()) {
        return false;
      }
    } else {
      i = name_end;  // whitespace after a name is BWS only before '=' or the next ';'
    }
    if (i == ext.size()) return true;
  }
}

}  // namespace

// --- ChunkedDecoder ---------------------------------------------------------------------------

ParseStatus ChunkedDecoder::fail(std::string reason, int status) {
  error_ = {status, std::move(reason)};
  return ParseStatus::kError;
}

ParseStatus ChunkedDecoder::step(unsigned char c) {
  switch (state_) {
    case State::kSize:
      if (is_hex(c)) {
        if (++size_digits_ > 15) return fail("chunk size too large");
        size_ = size_ * 16 + (is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
        return ParseStatus::kNeedMore;
      }
      if (size_digits_ == 0) return fail("bad chunk size");
      if (c == '\r') {
        state_ = State::kSizeLf;
        return ParseStatus::kNeedMore;
      }
      if (c == ';' || is_ows(c)) {
        // The extensions are collected and checked as a whole at their CR.
        if (++trailer_bytes_ > limits_.max_head_bytes) return fail("chunk extensions too long");
        state_ = State::kExtension;
        line_.assign(1, static_cast<char>(c));
        return ParseStatus::kNeedMore;
      }
      return fail("junk after chunk size");
    case State::kExtension:
      // No CTL (a bare CR, LF or NUL included) anywhere in the extensions: the first CR ends
      // them, and is then judged against the grammar.
      if (c == '\r') {
        const bool valid = valid_chunk_extensions(line_);
        line_.clear();
        if (!valid) return fail("bad chunk extension");
        state_ = State::kSizeLf;
        return ParseStatus::kNeedMore;
      }
      if (!is_field_byte(c)) return fail("control character in a chunk extension");
      // Extensions count against the same budget as trailers (max_head_bytes per body): they
      // carry no payload, so nothing else would bound them (cf. Node's CVE-2024-22019).
      if (++trailer_bytes_ > limits_.max_head_bytes) return fail("chunk extensions too long");
      line_.push_back(static_cast<char>(c));
      return ParseStatus::kNeedMore;
    case State::kSizeLf:
      if (c != '\n') return fail("bare CR after chunk size");
      total_ += size_;
      if (total_ > limits_.max_body) return fail("body larger than the limit", 413);
      if (size_ == 0) {
        state_ = State::kTrailerLine;
        line_.clear();
        return ParseStatus::kNeedMore;
      }
      remaining_ = size_;
      size_ = 0;
      size_digits_ = 0;
      state_ = State::kData;
      return ParseStatus::kNeedMore;
    case State::kDataCr:
      if (c != '\r') return fail("chunk data not followed by CRLF");
      state_ = State::kDataLf;
      return ParseStatus::kNeedMore;
    case State::kDataLf:
      if (c != '\n') return fail("chunk data not followed by CRLF");
      state_ = State::kSize;
      return ParseStatus::kNeedMore;
    case State::kTrailerLine:
      if (c == '\r') {
        state_ = State::kTrailerLf;
        return ParseStatus::kNeedMore;
      }
      if (c == '\n' || c == 0) return fail("bare LF or NUL in trailers");
      if (++trailer_bytes_ > limits_.max_head_bytes) return fail("trailers too large", 431);
      line_.push_back(static_cast<char>(c));
      return ParseStatus::kNeedMore;
    case State::kTrailerLf:
      if (c != '\n') return fail("bare CR in trailers");
      return end_trailer_line();
    case State::kData:
    case State::kDone:
      break;
  }
  return fail("chunked decoder used after the end");
}

ParseStatus ChunkedDecoder::end_trailer_line() {
  if (line_.empty()) {
    state_ = State::kDone;
    return ParseStatus::kDone;
  }
  std::string block = line_ + "\r\n";
  line_.clear();
  if (!parse_fields(block, limits_, trailers_, error_)) return ParseStatus::kError;
  state_ = State::kTrailerLine;
  return ParseStatus::kNeedMore;
}

// --- writing ------------------------------------------------------------------------------

namespace {

// Heads are written by a cursor into space reserved once for their exact size: one capacity
// check per head instead of one per piece.
char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// The framing field line ("Content-Length: N\r\n", "Transfer-Encoding: chunked\r\n" or none).
struct FramingLine {
  char bytes[48];
  size_t size = 0;
  explicit FramingLine(const BodyFraming& framing) {
    constexpr std::string_view kLength = "Content-Length: ";
    constexpr std::string_view kChunked = "Transfer-Encoding: chunked\r\n";
    char* p = bytes;
    if (framing.kind == BodyFraming::Kind::kLength) {
      p = put(p, kLength);
      p = std::to_chars(p, bytes + sizeof bytes, framing.length).ptr;  // at most 20 digits
      *p++ = '\r';
      *p++ = '\n';
    } else if (framing.kind == BodyFraming::Kind::kChunked) {
      p = put(p, kChunked);
    }
    size = static_cast<size_t>(p - bytes);
  }
  std::string_view view() const { return {bytes, size}; }
};

// Bytes of the field lines, the framing line and the blank line.
size_t fields_size(const HeaderMap& headers, const FramingLine& framing) {
  size_t n = framing.size + 2;
  for (const HeaderMap::Field& f : headers.fields()) n += f.name.size() + f.value.size() + 4;
  return n;
}

char* put_fields(char* p, const HeaderMap& headers, const FramingLine& framing) {
  for (const HeaderMap::Field& f : headers.fields()) {
    p = put(p, f.name);
    *p++ = ':';
    *p++ = ' ';
    p = put(p, f.value);
    *p++ = '\r';
    *p++ = '\n';
  }
  p = put(p, framing.view());
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

}  // namespace

void write_request_head(const RequestHead& head, const BodyFraming& framing, IoBuffer& out) {
  constexpr std::string_view kVersion = " HTTP/1.1\r\n";
  const FramingLine line(framing);
  const size_t size = head.method.size() + 1 + head.target.size() + kVersion.size() +
                      fields_size(head.headers, line);
  out.reserve(size);
  char* const start = out.write_ptr();
  char* p = put(start, head.method);
  *p++ = ' ';
  p = put(p, head.target);
  p = put(p, kVersion);
  p = put_fields(p, head.headers, line);
  ML_DCHECK(static_cast<size_t>(p - start) == size);
  out.commit(static_cast<size_t>(p - start));
}

void write_response_head(const ResponseHead& head, const BodyFraming& framing, IoBuffer& out) {
  constexpr std::string_view kVersion = "HTTP/1.1 ";
  const std::string_view reason =
      head.reason.empty() ? reason_phrase(head.status) : std::string_view(head.reason);
  const FramingLine line(framing);
  const size_t size = kVersion.size() + 4 + reason.size() + 2 + fields_size(head.headers, line);
  out.reserve(size);
  char* const start = out.write_ptr();
  char* p = put(start, kVersion);
  *p++ = static_cast<char>('0' + head.status / 100 % 10);
  *p++ = static_cast<char>('0' + head.status / 10 % 10);
  *p++ = static_cast<char>('0' + head.status % 10);
  *p++ = ' ';
  p = put(p, reason);
  *p++ = '\r';
  *p++ = '\n';
  p = put_fields(p, head.headers, line);
  ML_DCHECK(static_cast<size_t>(p - start) == size);
  out.commit(static_cast<size_t>(p - start));
}

void write_chunk_header(size_t size, IoBuffer& out) {
  char hex[20];
  auto [end, ec] = std::to_chars(hex, hex + sizeof hex, size, 16);
  out.append(std::string_view(hex, static_cast<size_t>(end - hex)));
  out.append("\r\n");
}

void write_chunk_trailer(IoBuffer& out) { out.append("\r\n"); }

void write_last_chunk(const HeaderMap* trailers, IoBuffer& out) {
  out.append("0\r\n");
  if (trailers) {
    for (const HeaderMap::Field& f : trailers->fields()) {
      out.append(f.name);
      out.append(": ");
      out.append(f.value);
      out.append("\r\n");
    }
  }
  out.append("\r\n");
}

bool valid_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool valid_field_value(std::string_view value) {
  for (unsigned char c : value) {
    if (!is_field_byte(c)) return false;
  }
  return value == trim_ows(value);
}

}  // namespace monolake::http::h1
