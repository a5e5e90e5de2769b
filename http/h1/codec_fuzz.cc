// Fuzz target for the HTTP/1.1 codec (http/h1/codec.h).
//
// Each input is fed, as raw bytes, to RequestParser (then the body that follows to the
// ChunkedDecoder or the Content-Length logic, then the next pipelined request), to
// ResponseParser (for a GET and for a HEAD), and to a ChunkedDecoder alone; with the default
// limits and with small ones. Besides "no crash, no sanitizer report" it checks:
//   - consumed <= size, and > 0 when a head is done;
//   - the verdict is the same whole and split (the head parsers are called with a prefix, then
//     with the whole input; the decoder gets the rest after what it consumed);
//   - what a parser accepts obeys the rules (valid names and values, one Host, framing fields
//     consistent with the framing, limits);
//   - an accepted head written back with write_request_head / write_response_head parses to
//     the same head (parse(write(parse(x))) == parse(x)).
//
// Built two ways:
//   - `bazel build --config=asan //http/h1:codec_fuzz` (clang, libFuzzer + ASan + UBSan):
//     bazel-bin/http/h1/codec_fuzz -max_total_time=60 NEW_DIR http/h1/testdata/fuzz_corpus
//   - with ML_FUZZ_REPLAY_MAIN, as the ordinary test codec_fuzz_replay_test: a small main()
//     that replays every file of the seed corpus (or the files and directories given as
//     arguments, e.g. a crash file) under gcc, splitting each input at every byte.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/h1/codec.h"
#include "testing/fuzz_check.h"

namespace monolake::http::h1 {
namespace {

// Replay mode splits every input at every byte; the fuzzer at a few points (it is fast that way
// and the mutations move the bytes around anyway).
bool g_every_split = false;

std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string repr(const HeaderMap& headers) {
  std::string out;
  for (const HeaderMap::Field& f : headers.fields()) {
    out += " [" + escape(f.name) + "]=[" + escape(f.value) + "]";
  }
  return out;
}

std::string repr(const BodyFraming& framing) {
  return " framing=" + std::to_string(static_cast<int>(framing.kind)) + "/" +
         std::to_string(framing.length);
}

std::string repr(const RequestHead& head) {
  return escape(head.method) + " " + escape(head.target) + " " +
         std::string(version_name(head.version)) + repr(head.headers);
}

std::string repr(const ResponseHead& head) {
  return std::to_string(head.status) + " [" + escape(head.reason) + "] " +
         std::string(version_name(head.version)) + repr(head.headers);
}

// What a head parser said about an input, as text (so whole and split compare as strings).
template <class Head>
std::string verdict(ParseStatus status, size_t consumed, const Head& head,
                    const BodyFraming& framing, const ParseError& error) {
  switch (status) {
    case ParseStatus::kNeedMore:
      return "need more";
    case ParseStatus::kError:
      return "error " + std::to_string(error.status) + " " + error.reason;
    case ParseStatus::kDone:
      break;
  }
  return "done " + std::to_string(consumed) + " " + repr(head) + repr(framing);
}

// The ways to split an input: in two at a few points (at every point when replaying), and one
// byte at a time.
std::vector<std::vector<size_t>> splits(std::string_view in) {
  std::vector<std::vector<size_t>> out;
  if (in.size() < 2) return out;
  if (g_every_split) {
    for (size_t c = 1; c < in.size(); ++c) out.push_back({c});
  } else {
    // The middle, near the start, and one the input chooses (so mutations can move it).
    out.push_back({in.size() / 2});
    out.push_back({1 + in.size() / 7});
    out.push_back({1 + static_cast<unsigned char>(in.back()) % (in.size() - 1)});
  }
  std::vector<size_t> every;
  for (size_t c = 1; c < in.size(); ++c) every.push_back(c);
  out.push_back(std::move(every));
  return out;
}

Limits small_limits() {
  Limits l;
  l.max_request_line = 64;
  l.max_head_bytes = 256;
  l.max_fields = 8;
  l.max_body = 64;
  return l;
}

// Limits nothing in a fuzz input reaches: for re-parsing what the writers produced.
Limits huge_limits() {
  Limits l;
  l.max_request_line = 1u << 30;
  l.max_head_bytes = 1u << 30;
  l.max_fields = 1u << 20;
  l.max_body = ~uint64_t{0};
  return l;
}

void check_fields(const HeaderMap& headers, const Limits& limits) {
  FUZZ_CHECK(headers.size() <= limits.max_fields);
  for (const HeaderMap::Field& f : headers.fields()) {
    FUZZ_CHECK(valid_field_name(f.name));
    FUZZ_CHECK(valid_field_value(f.value));
  }
}

HeaderMap without_framing(HeaderMap headers) {
  headers.remove("content-length");
  headers.remove("transfer-encoding");
  return headers;
}

// --- chunked bodies -------------------------------------------------------------------------

struct Decoded {
  ParseStatus status = ParseStatus::kNeedMore;
  std::string data;
  size_t end = 0;  // bytes of the input the message took (kDone)
  std::string trailers;
  std::string error;
  std::string str() const {
    return std::to_string(static_cast<int>(status)) + " end=" + std::to_string(end) + " [" +
           escape(data) + "]" + trailers + " " + error;
  }
};

// Feeds `in` to a decoder in pieces ending at `cuts`, dropping what each call consumed.
Decoded decode_chunked(std::string_view in, const std::vector<size_t>& cuts, const Limits& limits) {
  ChunkedDecoder decoder(limits);
  Decoded out;
  std::string pending;
  size_t offset = 0;  // input offset of pending[0]
  size_t pos = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(in.size());
  for (size_t end : ends) {
    pending.append(in.substr(pos, end - pos));
    pos = end;
    size_t consumed = ~size_t{0};
    out.status = decoder.decode(pending, consumed, [&](std::string_view d) {
      // Views into the input given to this call.
      FUZZ_CHECK(d.data() >= pending.data() &&
                 d.data() + d.size() <= pending.data() + pending.size());
      out.data.append(d);
    });
    FUZZ_CHECK(consumed <= pending.size());
    if (out.status == ParseStatus::kError) {
      out.error = std::to_string(decoder.error().status) + " " + decoder.error().reason;
      FUZZ_CHECK(decoder.error().status == 400 || decoder.error().status == 413 ||
                 decoder.error().status == 431);
      return out;
    }
    if (out.status == ParseStatus::kNeedMore) FUZZ_CHECK(consumed == pending.size());
    pending.erase(0, consumed);
    offset += consumed;
    if (out.status == ParseStatus::kDone) {
      FUZZ_CHECK(decoder.body_bytes() == out.data.size());
      FUZZ_CHECK(out.data.size() <= limits.max_body);
      check_fields(decoder.trailers(), limits);
      out.trailers = repr(decoder.trailers());
      out.end = offset;
      return out;
    }
  }
  FUZZ_CHECK(out.data.size() <= limits.max_body);
  return out;
}

// Decodes whole and split; returns the verdict (the same for all).
Decoded check_chunked(std::string_view in, const Limits& limits) {
  const Decoded whole = decode_chunked(in, {}, limits);
  for (const std::vector<size_t>& cuts : splits(in)) {
    FUZZ_CHECK_EQ(decode_chunked(in, cuts, limits).str(), whole.str());
  }
  return whole;
}

// --- requests -------------------------------------------------------------------------------

// Parses the head at the start of `in`, calling the parser with the prefixes ending at `cuts`
// first (while it needs more), as a connection does; returns the verdict.
std::string parse_request(std::string_view in, const Limits& limits,
                          const std::vector<size_t>& cuts, RequestHead& head, BodyFraming& framing,
                          size_t& consumed) {
  RequestParser parser(limits);
  consumed = ~size_t{0};
  ParseStatus status = ParseStatus::kNeedMore;
  for (size_t i = 0; i < cuts.size() && status == ParseStatus::kNeedMore; ++i) {
    status = parser.parse(in.substr(0, cuts[i]), consumed, head, framing);
  }
  if (status == ParseStatus::kNeedMore) status = parser.parse(in, consumed, head, framing);
  if (status == ParseStatus::kDone) FUZZ_CHECK(consumed > 0 && consumed <= in.size());
  if (status == ParseStatus::kError) {
    const int s = parser.error().status;
    FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
  }
  return verdict(status, consumed, head, framing, parser.error());
}

void check_request_head(const RequestHead& head, const BodyFraming& framing, const Limits& limits,
                        size_t consumed) {
  FUZZ_CHECK(consumed <= limits.max_head_bytes + 8);  // + the skipped empty lines
  FUZZ_CHECK(!head.method.empty());
  for (unsigned char c : head.method) FUZZ_CHECK(is_tchar(c));
  FUZZ_CHECK(!head.target.empty());
  for (unsigned char c : head.target) FUZZ_CHECK(c > 0x20 && c < 0x7f);
  FUZZ_CHECK(head.target.size() + head.method.size() + 10 <= limits.max_request_line);
  check_fields(head.headers, limits);
  const size_t hosts = head.headers.count("host");
  FUZZ_CHECK(hosts <= 1);
  if (head.version == Version::kHttp11) FUZZ_CHECK(hosts == 1);
  const bool te = head.headers.has("transfer-encoding");
  const size_t cl = head.headers.count("content-length");
  FUZZ_CHECK(!(te && cl > 0));
  FUZZ_CHECK(cl <= 1);
  switch (framing.kind) {
    case BodyFraming::Kind::kNone:
      FUZZ_CHECK(!te);
      if (cl == 1) {
        const std::string_view v = *head.headers.get("content-length");
        FUZZ_CHECK(v.find_first_not_of('0') == std::string_view::npos);
      }
      break;
    case BodyFraming::Kind::kLength:
      FUZZ_CHECK(cl == 1);
      FUZZ_CHECK(framing.length > 0 && framing.length <= limits.max_body);
      FUZZ_CHECK(std::to_string(framing.length) ==
                 head.headers.get("content-length")
                     ->substr(head.headers.get("content-length")->find_first_not_of('0')));
      break;
    case BodyFraming::Kind::kChunked:
      FUZZ_CHECK(te && head.version == Version::kHttp11);
      break;
    case BodyFraming::Kind::kUntilClose:
      FUZZ_CHECK(false);  // never for a request
  }
}

// write_request_head(parse(x)) parses to the same head.
void check_request_round_trip(const RequestHead& head, const BodyFraming& framing) {
  if (head.version != Version::kHttp11 && !head.headers.has("host")) return;  // 1.0 without Host
  RequestHead plain = head;
  plain.headers = without_framing(head.headers);
  IoBuffer out;
  write_request_head(plain, framing, out);
  RequestParser parser(huge_limits());
  RequestHead again;
  BodyFraming again_framing;
  size_t consumed = 0;
  const ParseStatus s = parser.parse(out.view(), consumed, again, again_framing);
  if (s != ParseStatus::kDone) {
    std::fprintf(stderr, "written head rejected (%d %s): %s\n", parser.error().status,
                 parser.error().reason.c_str(), escape(out.view()).c_str());
  }
  FUZZ_CHECK(s == ParseStatus::kDone);
  FUZZ_CHECK(consumed == out.size());
  FUZZ_CHECK(again.method == head.method);
  FUZZ_CHECK(again.target == head.target);
  FUZZ_CHECK(again.version == Version::kHttp11);
  FUZZ_CHECK_EQ(repr(without_framing(again.headers)), repr(plain.headers));
  FUZZ_CHECK_EQ(repr(again_framing), repr(framing));
}

void fuzz_requests(std::string_view data, const Limits& limits) {
  std::string_view rest = data;
  for (int message = 0; message < 4 && !rest.empty(); ++message) {
    RequestHead head;
    BodyFraming framing;
    size_t consumed = 0;
    const std::string whole = parse_request(rest, limits, {}, head, framing, consumed);
    for (const std::vector<size_t>& cuts : splits(rest)) {
      RequestHead split_head;
      BodyFraming split_framing;
      size_t split_consumed = 0;
      FUZZ_CHECK_EQ(parse_request(rest, limits, cuts, split_head, split_framing, split_consumed),
                    whole);
    }
    if (whole.rfind("done", 0) != 0) return;
    check_request_head(head, framing, limits, consumed);
    check_request_round_trip(head, framing);
    rest.remove_prefix(consumed);
    switch (framing.kind) {
      case BodyFraming::Kind::kNone:
        break;
      case BodyFraming::Kind::kLength:
        if (rest.size() < framing.length) return;
        rest.remove_prefix(framing.length);
        break;
      case BodyFraming::Kind::kChunked: {
        const Decoded d = check_chunked(rest, limits);
        if (d.status != ParseStatus::kDone) return;
        rest.remove_prefix(d.end);
        break;
      }
      case BodyFraming::Kind::kUntilClose:
        return;
    }
  }
}

// --- responses ------------------------------------------------------------------------------

std::string parse_response(std::string_view in, const Limits& limits, std::string_view method,
                           const std::vector<size_t>& cuts, ResponseHead& head,
                           BodyFraming& framing, size_t& consumed) {
  ResponseParser parser(limits);
  consumed = ~size_t{0};
  ParseStatus status = ParseStatus::kNeedMore;
  for (size_t i = 0; i < cuts.size() && status == ParseStatus::kNeedMore; ++i) {
    status = parser.parse(in.substr(0, cuts[i]), consumed, method, head, framing);
  }
  if (status == ParseStatus::kNeedMore) status = parser.parse(in, consumed, method, head, framing);
  if (status == ParseStatus::kDone) FUZZ_CHECK(consumed > 0 && consumed <= in.size());
  if (status == ParseStatus::kError) FUZZ_CHECK(parser.error().status == 502);
  return verdict(status, consumed, head, framing, parser.error());
}

void check_response_head(const ResponseHead& head, const BodyFraming& framing, const Limits& limits,
                         std::string_view method, size_t consumed) {
  FUZZ_CHECK(consumed <= limits.max_head_bytes);
  FUZZ_CHECK(head.status >= 100 && head.status <= 599);
  for (unsigned char c : head.reason) FUZZ_CHECK(c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f));
  check_fields(head.headers, limits);
  const bool te = head.headers.has("transfer-encoding");
  const size_t cl = head.headers.count("content-length");
  FUZZ_CHECK(!(te && cl > 0));
  FUZZ_CHECK(cl <= 1);
  const bool no_body =
      head.status < 200 || head.status == 204 || head.status == 304 || method == "HEAD";
  if (no_body) FUZZ_CHECK(framing.kind == BodyFraming::Kind::kNone);
  switch (framing.kind) {
    case BodyFraming::Kind::kNone:
      FUZZ_CHECK(no_body);
      break;
    case BodyFraming::Kind::kLength:
      FUZZ_CHECK(cl == 1);
      break;
    case BodyFraming::Kind::kChunked:
      FUZZ_CHECK(te);
      break;
    case BodyFraming::Kind::kUntilClose:
      FUZZ_CHECK(!te && cl == 0);
      break;
  }
}

void check_response_round_trip(const ResponseHead& head, const BodyFraming& framing,
                               std::string_view method) {
  ResponseHead plain = head;
  plain.headers = without_framing(head.headers);
  IoBuffer out;
  write_response_head(plain, framing, out);
  ResponseParser parser(huge_limits());
  ResponseHead again;
  BodyFraming again_framing;
  size_t consumed = 0;
  const ParseStatus s = parser.parse(out.view(), consumed, method, again, again_framing);
  if (s != ParseStatus::kDone) {
    std::fprintf(stderr, "written head rejected (%s): %s\n", parser.error().reason.c_str(),
                 escape(out.view()).c_str());
  }
  FUZZ_CHECK(s == ParseStatus::kDone);
  FUZZ_CHECK(consumed == out.size());
  FUZZ_CHECK(again.status == head.status);
  if (!head.reason.empty()) FUZZ_CHECK(again.reason == head.reason);
  FUZZ_CHECK_EQ(repr(without_framing(again.headers)), repr(plain.headers));
  FUZZ_CHECK_EQ(repr(again_framing), repr(framing));
}

void fuzz_responses(std::string_view data, const Limits& limits, std::string_view method) {
  std::string_view rest = data;
  for (int message = 0; message < 4 && !rest.empty(); ++message) {
    ResponseHead head;
    BodyFraming framing;
    size_t consumed = 0;
    const std::string whole = parse_response(rest, limits, method, {}, head, framing, consumed);
    for (const std::vector<size_t>& cuts : splits(rest)) {
      ResponseHead split_head;
      BodyFraming split_framing;
      size_t split_consumed = 0;
      FUZZ_CHECK_EQ(
          parse_response(rest, limits, method, cuts, split_head, split_framing, split_consumed),
          whole);
    }
    if (whole.rfind("done", 0) != 0) return;
    check_response_head(head, framing, limits, method, consumed);
    check_response_round_trip(head, framing, method);
    rest.remove_prefix(consumed);
    switch (framing.kind) {
      case BodyFraming::Kind::kNone:
        break;
      case BodyFraming::Kind::kLength:
        if (rest.size() < framing.length) return;
        rest.remove_prefix(framing.length);
        break;
      case BodyFraming::Kind::kChunked: {
        const Decoded d = check_chunked(rest, limits);
        if (d.status != ParseStatus::kDone) return;
        rest.remove_prefix(d.end);
        break;
      }
      case BodyFraming::Kind::kUntilClose:
        return;
    }
  }
}

void fuzz_one(std::string_view data) {
  for (const Limits& limits : {Limits{}, small_limits()}) {
    fuzz_requests(data, limits);
    fuzz_responses(data, limits, "GET");
    fuzz_responses(data, limits, "HEAD");
    check_chunked(data, limits);
  }
}

}  // namespace
}  // namespace monolake::http::h1

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  monolake::http::h1::fuzz_one(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifdef ML_FUZZ_REPLAY_MAIN
// The corpus replay test (//testing:fuzz_replay_main) checks every split point of every input.
extern "C" void MlFuzzReplayBegin() { monolake::http::h1::g_every_split = true; }
#endif
