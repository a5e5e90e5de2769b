#include "http/h1/codec.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

namespace monolake::http::h1 {
namespace {

using namespace std::string_literals;  // "\0" inside a literal needs ""s

// --- a connection, simulated ------------------------------------------------------------------
//
// Every input is fed the way a connection feeds the codec: bytes arrive in segments and are
// appended to a read buffer; a head parser is called with the whole buffer from the start of the
// message (again, with more bytes, after kNeedMore); a ChunkedDecoder is given the buffer and
// the bytes it consumed are dropped. Run() records every message completed and the final
// verdict; the checks below compare the verdict for the whole input against the verdict with
// the input split at every byte boundary, and fed one byte at a time.

enum class Side { kRequest, kResponse };

struct Message {
  RequestHead request;
  ResponseHead response;
  BodyFraming framing;
  std::string body;
  HeaderMap trailers;
  size_t end = 0;  // offset just past the message in the input
};

struct Outcome {
  std::vector<Message> messages;
  // kDone: the input is whole messages. kNeedMore: it ends inside one. kError: error_*.
  ParseStatus status = ParseStatus::kNeedMore;
  int error_status = 0;
  std::string error_reason;
  std::string invariant;  // a broken contract noticed while feeding (empty if none)
};

std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string describe(const HeaderMap& headers) {
  std::string out;
  for (const HeaderMap::Field& f : headers.fields()) {
    out += " [" + escape(f.name) + "]=[" + escape(f.value) + "]";
  }
  return out;
}

std::string describe(const Outcome& o, Side side) {
  std::string out;
  for (const Message& m : o.messages) {
    if (side == Side::kRequest) {
      out += "request " + escape(m.request.method) + " " + escape(m.request.target) + " " +
             std::string(version_name(m.request.version)) + describe(m.request.headers);
    } else {
      out += "response " + std::to_string(m.response.status) + " [" + escape(m.response.reason) +
             "] " + std::string(version_name(m.response.version)) + describe(m.response.headers);
    }
    out += " framing=" + std::to_string(static_cast<int>(m.framing.kind)) + "/" +
           std::to_string(m.framing.length) + " body=[" + escape(m.body) +
           "] trailers=" + describe(m.trailers) + " end=" + std::to_string(m.end) + "\n";
  }
  switch (o.status) {
    case ParseStatus::kDone:
      out += "done";
      break;
    case ParseStatus::kNeedMore:
      out += "need more";
      break;
    case ParseStatus::kError:
      out += "error " + std::to_string(o.error_status) + " (" + o.error_reason + ")";
      break;
  }
  if (!o.invariant.empty()) out += " BROKEN: " + o.invariant;
  return out;
}

Outcome run(Side side, std::string_view wire, const std::vector<size_t>& cuts, const Limits& limits,
            std::string_view request_method) {
  Outcome out;
  RequestParser request_parser(limits);
  ResponseParser response_parser(limits);
  std::optional<ChunkedDecoder> chunked;
  enum class Phase { kHead, kLength, kChunked, kUntilClose } phase = Phase::kHead;
  std::string buf;
  size_t buf_offset = 0;  // input offset of buf[0]
  Message msg;
  uint64_t remaining = 0;

  auto drop = [&](size_t n) {
    buf.erase(0, n);
    buf_offset += n;
  };
  auto finish = [&] {
    msg.end = buf_offset;
    out.messages.push_back(std::move(msg));
    msg = Message();
    phase = Phase::kHead;
  };
  auto fail = [&](const ParseError& e) {
    out.status = ParseStatus::kError;
    out.error_status = e.status;
    out.error_reason = e.reason;
    return out;
  };

  std::vector<size_t> ends;
  for (size_t c : cuts) {
    if (c > 0 && c < wire.size()) ends.push_back(c);
  }
  ends.push_back(wire.size());
  size_t pos = 0;
  for (size_t end : ends) {
    buf.append(wire.substr(pos, end - pos));
    pos = end;
    bool progress = true;
    while (progress) {
      progress = false;
      switch (phase) {
        case Phase::kHead: {
          if (buf.empty()) break;
          size_t consumed = 0;
          BodyFraming framing;
          ParseStatus s;
          if (side == Side::kRequest) {
            s = request_parser.parse(buf, consumed, msg.request, framing);
            if (s == ParseStatus::kError) return fail(request_parser.error());
          } else {
            s = response_parser.parse(buf, consumed, request_method, msg.response, framing);
            if (s == ParseStatus::kError) return fail(response_parser.error());
          }
          if (s == ParseStatus::kNeedMore) break;
          if (consumed == 0 || consumed > buf.size()) {
            out.invariant =
                "head consumed " + std::to_string(consumed) + " of " + std::to_string(buf.size());
            return out;
          }
          drop(consumed);
          msg.framing = framing;
          progress = true;
          switch (framing.kind) {
            case BodyFraming::Kind::kNone:
              finish();
              break;
            case BodyFraming::Kind::kLength:
              remaining = framing.length;
              phase = Phase::kLength;
              break;
            case BodyFraming::Kind::kChunked:
              chunked.emplace(limits);
              phase = Phase::kChunked;
              break;
            case BodyFraming::Kind::kUntilClose:
              phase = Phase::kUntilClose;
              break;
          }
          break;
        }
        case Phase::kLength: {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
          msg.body.append(buf, 0, n);
          drop(n);
          remaining -= n;
          if (remaining == 0) {
            finish();
            progress = true;
          }
          break;
        }
        case Phase::kChunked: {
          if (buf.empty()) break;
          size_t consumed = 0;
          const ParseStatus s =
              chunked->decode(buf, consumed, [&](std::string_view d) { msg.body.append(d); });
          if (consumed > buf.size()) {
            out.invariant = "decode consumed more than it was given";
            return out;
          }
          if (s == ParseStatus::kError) return fail(chunked->error());
          drop(consumed);
          if (s == ParseStatus::kDone) {
            if (chunked->body_bytes() != msg.body.size()) {
              out.invariant = "body_bytes() differs from the data handed out";
              return out;
            }
            msg.trailers = chunked->trailers();
            finish();
            progress = true;
          } else if (!buf.empty()) {
            out.invariant = "kNeedMore with input left over";
            return out;
          }
          break;
        }
        case Phase::kUntilClose:
          msg.body += buf;
          drop(buf.size());
          break;
      }
    }
  }
  if (phase == Phase::kUntilClose) finish();  // the peer closed: that ends the body
  out.status = phase == Phase::kHead && buf.empty() && !out.messages.empty()
                   ? ParseStatus::kDone
                   : ParseStatus::kNeedMore;
  return out;
}

// Feeds `wire` whole, split in two at every byte boundary (at a stride for big inputs), and one
// byte at a time; every way must give the same outcome. `whole` receives it.
testing::AssertionResult consistent(Side side, std::string_view wire, const Limits& limits,
                                    std::string_view request_method, Outcome* whole) {
  *whole = run(side, wire, {}, limits, request_method);
  const std::string expected = describe(*whole, side);
  if (!whole->invariant.empty()) {
    return testing::AssertionFailure() << "input \"" << escape(wire) << "\": " << expected;
  }
  const size_t stride = wire.size() <= 4096 ? 1 : wire.size() / 997;
  for (size_t cut = 1; cut < wire.size(); cut += stride) {
    const std::string got = describe(run(side, wire, {cut}, limits, request_method), side);
    if (got != expected) {
      return testing::AssertionFailure()
             << "input \"" << escape(wire.substr(0, 300)) << "\" split at " << cut
             << "\n  whole: " << expected << "\n  split: " << got;
    }
  }
  std::vector<size_t> every;
  for (size_t cut = 1; cut < wire.size(); ++cut) every.push_back(cut);
  const std::string got = describe(run(side, wire, every, limits, request_method), side);
  if (got != expected) {
    return testing::AssertionFailure()
           << "input \"" << escape(wire.substr(0, 300))
           << "\" fed byte by byte\n  whole: " << expected << "\n  bytes: " << got;
  }
  return testing::AssertionSuccess();
}

// The request (or several) is accepted whole and split; `out` gets the outcome.
testing::AssertionResult request_ok(std::string_view wire, Outcome* out,
                                    const Limits& limits = {}) {
  testing::AssertionResult r = consistent(Side::kRequest, wire, limits, "", out);
  if (!r) return r;
  if (out->status != ParseStatus::kDone) {
    return testing::AssertionFailure() << "input \"" << escape(wire.substr(0, 300))
                                       << "\" not accepted: " << describe(*out, Side::kRequest);
  }
  return testing::AssertionSuccess();
}

// Rejected with `status`, whole and split, and no message accepted before the error.
testing::AssertionResult request_rejected(std::string_view wire, int status,
                                          const Limits& limits = {}) {
  Outcome out;
  testing::AssertionResult r = consistent(Side::kRequest, wire, limits, "", &out);
  if (!r) return r;
  if (out.status != ParseStatus::kError || out.error_status != status || !out.messages.empty()) {
    return testing::AssertionFailure()
           << "input \"" << escape(wire.substr(0, 300)) << "\": expected error " << status
           << ", got: " << describe(out, Side::kRequest);
  }
  return testing::AssertionSuccess() << out.error_reason;
}

testing::AssertionResult response_ok(std::string_view wire, Outcome* out,
                                     std::string_view request_method = "GET",
                                     const Limits& limits = {}) {
  testing::AssertionResult r = consistent(Side::kResponse, wire, limits, request_method, out);
  if (!r) return r;
  if (out->status != ParseStatus::kDone) {
    return testing::AssertionFailure() << "input \"" << escape(wire.substr(0, 300))
                                       << "\" not accepted: " << describe(*out, Side::kResponse);
  }
  return testing::AssertionSuccess();
}

testing::AssertionResult response_rejected(std::string_view wire,
                                           std::string_view request_method = "GET",
                                           const Limits& limits = {}) {
  Outcome out;
  testing::AssertionResult r = consistent(Side::kResponse, wire, limits, request_method, &out);
  if (!r) return r;
  if (out.status != ParseStatus::kError || out.error_status != 502 || !out.messages.empty()) {
    return testing::AssertionFailure()
           << "input \"" << escape(wire.substr(0, 300))
           << "\": expected an error, got: " << describe(out, Side::kResponse);
  }
  return testing::AssertionSuccess();
}

// A request with the given field lines (each without CRLF) and a Host.
std::string get_with(std::string_view fields) {
  return "GET / HTTP/1.1\r\nHost: example.com\r\n" + std::string(fields) + "\r\n";
}
std::string post_with(std::string_view fields, std::string_view body = "") {
  return "POST /submit HTTP/1.1\r\nHost: example.com\r\n" + std::string(fields) + "\r\n" +
         std::string(body);
}

// --- the harness itself ---------------------------------------------------------------------

TEST(CodecHarnessTest, NoticesIncompleteInput) {
  Outcome out;
  ASSERT_TRUE(consistent(Side::kRequest, "GET / HTTP/1.1\r\nHost: a\r\n", {}, "", &out));
  EXPECT_EQ(out.status, ParseStatus::kNeedMore);
  ASSERT_TRUE(consistent(Side::kRequest, post_with("Content-Length: 5\r\n", "hel"), {}, "", &out));
  EXPECT_EQ(out.status, ParseStatus::kNeedMore);
  ASSERT_EQ(out.messages.size(), 0u);
  ASSERT_TRUE(consistent(Side::kRequest, "", {}, "", &out));
  EXPECT_EQ(out.status, ParseStatus::kNeedMore);
}

// --- requests that must be accepted ---------------------------------------------------------

TEST(RequestParserTest, SimpleGet) {
  Outcome out;
  const std::string wire =
      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\n"
      "Accept: */*\r\n\r\n";
  ASSERT_TRUE(request_ok(wire, &out));
  ASSERT_EQ(out.messages.size(), 1u);
  const Message& m = out.messages[0];
  EXPECT_EQ(m.request.method, "GET");
  EXPECT_EQ(m.request.target, "/index.html?q=1");
  EXPECT_EQ(m.request.path(), "/index.html");
  EXPECT_EQ(m.request.path_and_query(), "/index.html?q=1");
  EXPECT_EQ(m.request.authority(), "example.com");
  EXPECT_EQ(m.request.version, Version::kHttp11);
  ASSERT_EQ(m.request.headers.size(), 3u);
  EXPECT_EQ(m.request.headers.fields()[0].name, "Host");
  EXPECT_EQ(m.request.headers.fields()[1].name, "User-Agent");
  EXPECT_EQ(m.request.headers.fields()[1].value, "test/1.0");
  EXPECT_EQ(m.request.headers.fields()[2].value, "*/*");
  EXPECT_EQ(m.framing.kind, BodyFraming::Kind::kNone);
  EXPECT_EQ(m.end, wire.size());
}

TEST(RequestParserTest, DirectCallReportsConsumedAndNeedMore) {
  RequestParser parser;
  RequestHead head;
  BodyFraming framing;
  size_t consumed = 99;
  const std::string wire = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parser.parse(std::string_view(wire).substr(0, 10), consumed, head, framing),
            ParseStatus::kNeedMore);
  EXPECT_EQ(parser.parse(wire + "extra", consumed, head, framing), ParseStatus::kDone);
  EXPECT_EQ(consumed, wire.size());
  EXPECT_EQ(head.headers.get("host"), "a");
}

TEST(RequestParserTest, PostWithContentLength) {
  Outcome out;
  ASSERT_TRUE(request_ok(post_with("Content-Length: 11\r\n", "hello world"), &out));
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].request.method, "POST");
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kLength);
  EXPECT_EQ(out.messages[0].framing.length, 11u);
  EXPECT_EQ(out.messages[0].body, "hello world");
}

TEST(RequestParserTest, ContentLengthZeroMeansNoBody) {
  Outcome out;
  ASSERT_TRUE(request_ok(post_with("Content-Length: 0\r\n"), &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(request_ok(post_with("Content-Length: 007\r\n", "1234567"), &out));
  EXPECT_EQ(out.messages[0].framing.length, 7u);
}

TEST(RequestParserTest, ChunkedWithExtensionsAndTrailers) {
  Outcome out;
  const std::string wire = post_with("Transfer-Encoding: chunked\r\n",
                                     "5;name=value;quoted=\"a \\\" b\"\r\nhello\r\n"
                                     "6 ; x ; y = z\r\n world\r\n"
                                     "A\r\n0123456789\r\n"
                                     "0;last\r\n"
                                     "X-Checksum: abc\r\nX-Other:  two words \r\n\r\n");
  ASSERT_TRUE(request_ok(wire, &out));
  ASSERT_EQ(out.messages.size(), 1u);
  const Message& m = out.messages[0];
  EXPECT_EQ(m.framing.kind, BodyFraming::Kind::kChunked);
  EXPECT_EQ(m.body, "hello world0123456789");
  ASSERT_EQ(m.trailers.size(), 2u);
  EXPECT_EQ(m.trailers.get("x-checksum"), "abc");
  EXPECT_EQ(m.trailers.get("X-OTHER"), "two words");
  EXPECT_EQ(m.end, wire.size());
}

TEST(RequestParserTest, ChunkedWithoutTrailersAndUpperCaseHex) {
  Outcome out;
  ASSERT_TRUE(request_ok(post_with("transfer-encoding: Chunked\r\n",
                                   "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n1A\r\n"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n0\r\n\r\n"),
                         &out));
  EXPECT_EQ(out.messages[0].body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
  EXPECT_TRUE(out.messages[0].trailers.empty());
}

TEST(RequestParserTest, PipelinedRequestsInOneBuffer) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = post_with("Content-Length: 3\r\n", "abc");
  const std::string third = "GET /three HTTP/1.1\r\nHost: c\r\n\r\n";
  Outcome out;
  ASSERT_TRUE(request_ok(first + second + third, &out));
  ASSERT_EQ(out.messages.size(), 3u);
  EXPECT_EQ(out.messages[0].request.target, "/one");
  EXPECT_EQ(out.messages[0].end, first.size());
  EXPECT_EQ(out.messages[1].body, "abc");
  EXPECT_EQ(out.messages[1].end, first.size() + second.size());
  EXPECT_EQ(out.messages[2].request.target, "/three");

  // A direct call: consumed marks the end of the first head only.
  RequestParser parser;
  RequestHead head;
  BodyFraming framing;
  size_t consumed = 0;
  ASSERT_EQ(parser.parse(first + second + third, consumed, head, framing), ParseStatus::kDone);
  EXPECT_EQ(consumed, first.size());
}

TEST(RequestParserTest, PipelinedRequestThenGarbageStopsAtTheGarbage) {
  Outcome out;
  ASSERT_TRUE(consistent(Side::kRequest, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /\x01 HTTP/1.1\r\n",
                         {}, "", &out));
  EXPECT_EQ(out.status, ParseStatus::kError);
  EXPECT_EQ(out.messages.size(), 1u);
}

TEST(RequestParserTest, LeadingEmptyLinesAreSkipped) {
  Outcome out;
  const std::string wire = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_TRUE(request_ok(wire, &out));
  EXPECT_EQ(out.messages[0].request.method, "GET");
  EXPECT_EQ(out.messages[0].end, wire.size());
  // Between pipelined requests too (a client's stray CRLF after a body).
  ASSERT_TRUE(request_ok(post_with("Content-Length: 2\r\n", "ok\r\n") + wire, &out));
  EXPECT_EQ(out.messages.size(), 2u);
}

TEST(RequestParserTest, AbsoluteFormTarget) {
  Outcome out;
  ASSERT_TRUE(request_ok(
      "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", &out));
  const RequestHead& r = out.messages[0].request;
  EXPECT_EQ(r.target, "http://example.com:8080/a/b?c=d");
  EXPECT_EQ(r.path_and_query(), "/a/b?c=d");
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.authority(), "example.com:8080");
  // The target's authority wins over Host (RFC 9112 3.2.2).
  ASSERT_TRUE(
      request_ok("GET HTTPS://target.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].request.authority(), "target.example");
  ASSERT_TRUE(request_ok("GET http://[::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].request.path_and_query(), "/");
}

TEST(RequestParserTest, OptionsAsterisk) {
  Outcome out;
  ASSERT_TRUE(request_ok("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].request.target, "*");
  EXPECT_EQ(out.messages[0].request.path_and_query(), "*");
  EXPECT_TRUE(request_rejected("GET * HTTP/1.1\r\nHost: example.com\r\n\r\n", 400));
}

TEST(RequestParserTest, Http10WithoutHost) {
  Outcome out;
  ASSERT_TRUE(request_ok("GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].request.version, Version::kHttp10);
  EXPECT_EQ(out.messages[0].request.authority(), "");
  ASSERT_TRUE(request_ok("POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", &out));
  EXPECT_EQ(out.messages[0].body, "hi");
}

TEST(RequestParserTest, HigherMinorVersionIsServedAsHttp11) {
  for (const char* v : {"HTTP/1.2", "HTTP/1.9"}) {
    Outcome out;
    ASSERT_TRUE(request_ok("GET / " + std::string(v) + "\r\nHost: a\r\n\r\n", &out)) << v;
    EXPECT_EQ(out.messages[0].request.version, Version::kHttp11) << v;
  }
}

TEST(RequestParserTest, FieldValuesKeepObsTextAndInnerSpacesAndTrimOws) {
  Outcome out;
  ASSERT_TRUE(request_ok(get_with("X-Latin: caf\xe9 \xff\x80 end\r\n"
                                  "X-Spaces: a  b\tc\r\n"
                                  "X-Trim: \t  value \t \r\n"
                                  "X-Empty:\r\n"
                                  "X-Blank:    \r\n"
                                  "X-Colon: a:b::c\r\n"),
                         &out));
  const HeaderMap& h = out.messages[0].request.headers;
  EXPECT_EQ(h.get("x-latin"), "caf\xe9 \xff\x80 end");
  EXPECT_EQ(h.get("x-spaces"), "a  b\tc");
  EXPECT_EQ(h.get("x-trim"), "value");
  EXPECT_EQ(h.get("x-empty"), "");
  EXPECT_EQ(h.get("x-blank"), "");
  EXPECT_EQ(h.get("x-colon"), "a:b::c");
}

TEST(RequestParserTest, FieldNamesMayUseEveryTokenCharacter) {
  Outcome out;
  ASSERT_TRUE(request_ok(get_with("!#$%&'*+-.^_`|~09azAZ: v\r\n"), &out));
  EXPECT_EQ(out.messages[0].request.headers.get("!#$%&'*+-.^_`|~09azaz"), "v");
}

TEST(RequestParserTest, RepeatedFieldsKeepOrder) {
  Outcome out;
  ASSERT_TRUE(request_ok(get_with("Accept: a\r\nX: 1\r\naccept: b\r\n"), &out));
  const HeaderMap& h = out.messages[0].request.headers;
  EXPECT_EQ(h.get_all("Accept"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(h.fields()[3].name, "accept");
}

TEST(RequestParserTest, HostForms) {
  for (const char* host : {"example.com", "example.com:80", "EXAMPLE.com:", "127.0.0.1:8080",
                           "[::1]", "[2001:db8::1]:443", "xn--bcher-kva.example", "a-b_c~d"}) {
    Outcome out;
    EXPECT_TRUE(request_ok("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n", &out))
        << host;
  }
}

TEST(RequestParserTest, MethodsKeepTheirCase) {
  Outcome out;
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
    ASSERT_TRUE(request_ok(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n", &out)) << m;
    EXPECT_EQ(out.messages[0].request.method, m);
  }
}

// --- requests that must be rejected ---------------------------------------------------------

TEST(RequestRejectTest, ContentLengthAndTransferEncoding) {
  EXPECT_TRUE(request_rejected(
      post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n"), 400));
}

TEST(RequestRejectTest, BadContentLength) {
  // Differing, duplicated (even when equal), a list.
  EXPECT_TRUE(request_rejected(post_with("Content-Length: 5\r\nContent-Length: 6\r\n"), 400));
  EXPECT_TRUE(
      request_rejected(post_with("Content-Length: 5\r\ncontent-length: 5\r\n", "hello"), 400));
  EXPECT_TRUE(request_rejected(post_with("Content-Length: 5, 5\r\n", "hello"), 400));
  EXPECT_TRUE(request_rejected(post_with("Content-Length: 5,6\r\n", "hello"), 400));
  // Malformed.
  for (const char* v :
       {"", "abc", "-1", "+5", "5 5", "0x10", "1e3", "5.0", "5;", "\"5\"", "99999999999999999999",
        "18446744073709551616", "0000000000000000000000000000005"}) {
    EXPECT_TRUE(request_rejected(post_with("Content-Length: " + std::string(v) + "\r\n"), 400))
        << v;
  }
}

TEST(RequestRejectTest, TransferEncodingOtherThanFinalChunked) {
  for (const char* v : {"gzip", "identity", "chunked, gzip", "chunked,identity", "", ",",
                        "chunked;q=1", "chunkedx", "x-chunked"}) {
    EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding: " + std::string(v) + "\r\n"), 400))
        << v;
  }
  // The same split over two lines.
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", "0\r\n\r\n"), 400));
}

TEST(RequestRejectTest, OtherCodingsBeforeChunkedAreNotImplemented) {
  EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding: gzip, chunked\r\n"), 501));
  EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding: deflate,chunked\r\n"), 501));
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 501));
}

TEST(RequestRejectTest, ChunkedTwiceIsMalformed) {
  // RFC 9112 6.1: chunked must not be applied more than once: a malformed message, not an
  // unimplemented coding.
  EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding: chunked, chunked\r\n"), 400));
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400));
}

TEST(RequestRejectTest, TransferEncodingInHttp10) {
  EXPECT_TRUE(request_rejected(
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected(
      "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400));
}

TEST(RequestRejectTest, ObsFold) {
  EXPECT_TRUE(request_rejected(get_with("X-Folded: a\r\n b\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with("X-Folded: a\r\n\tb\r\n"), 400));
  // Inside Transfer-Encoding (llhttp 8.1 accepts this).
  EXPECT_TRUE(request_rejected(
      post_with("Transfer-Encoding:\r\n chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding: gzip,\r\n chunked\r\n"), 400));
  // Whitespace before the first field line.
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", 400));
}

TEST(RequestRejectTest, CrLfNulInsideAField) {
  EXPECT_TRUE(request_rejected(get_with("X: a\rb\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with("X: a\nb\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with("X: a\0b\r\n"s), 400));
  EXPECT_TRUE(request_rejected(get_with("X\0Y: b\r\n"s), 400));
  EXPECT_TRUE(request_rejected(get_with("X: \0\r\n"s), 400));
  // Other controls.
  for (char c : {'\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'}) {
    EXPECT_TRUE(request_rejected(get_with("X: a" + std::string(1, c) + "b\r\n"), 400))
        << static_cast<int>(c);
  }
}

// Every control byte at every offset of a value (so at every lane of the codec's word-at-a-time
// scans): HTAB is a field byte, every other CTL (CR, LF and NUL included) and DEL are refused;
// obs-text passes.
TEST(RequestRejectTest, EveryControlByteAtEveryOffsetOfAValue) {
  const std::string value = "abcdefghijklmnop";
  for (int c = 0; c < 0x100; ++c) {
    const bool ctl = c < 0x20 || c == 0x7f;
    if (!ctl && c != 0x80 && c != 0xff) continue;
    for (size_t at = 0; at < value.size(); ++at) {
      std::string v = value;
      v[at] = static_cast<char>(c);
      const std::string wire = get_with("X-Long-Name: " + v + "\r\n");
      if (ctl && c != '\t') {
        EXPECT_TRUE(request_rejected(wire, 400)) << c << " at " << at;
      } else {
        Outcome out;
        ASSERT_TRUE(request_ok(wire, &out)) << c << " at " << at;
        // An HTAB at either end is OWS, trimmed.
        std::string expected = v;
        if (c == '\t' && at == 0) expected.erase(0, 1);
        if (c == '\t' && at == value.size() - 1) expected.pop_back();
        EXPECT_EQ(out.messages[0].request.headers.get("x-long-name"), expected);
      }
    }
  }
}

TEST(RequestRejectTest, WhitespaceBeforeTheColon) {
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected(post_with("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(post_with("Content-Length : 5\r\n", "hello"), 400));
}

TEST(RequestRejectTest, EmptyOrNonTokenFieldNames) {
  EXPECT_TRUE(request_rejected(get_with(": x\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with(":\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with("Foo Bar: x\r\n"), 400));
  EXPECT_TRUE(request_rejected(get_with("NoColonHere\r\n"), 400));
  for (const char* name : {"X(y)", "X@y", "X[y]", "X/y", "X=y", "X\"y", "X{y}", "X,y", "X;y", "X?y",
                           "X\\y", "caf\xe9", "X\x80"}) {
    EXPECT_TRUE(request_rejected(get_with(std::string(name) + ": v\r\n"), 400)) << name;
  }
}

TEST(RequestRejectTest, BareCrAnywhere) {
  EXPECT_TRUE(request_rejected("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\rHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400));
  // A head "ended" by \r\n\rX (llhttp 8.1 accepts this).
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\n\rXGET / HTTP/1.1\r\n\r\n", 400));
  // Leading: CR then not LF.
  EXPECT_TRUE(request_rejected("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400));
}

TEST(RequestRejectTest, BareLfLineEnds) {
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\nHost: a\n\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\n\n", 400));
  EXPECT_TRUE(request_rejected("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400));
}

TEST(RequestRejectTest, ControlOrNonAsciiBytesInTheTarget) {
  EXPECT_TRUE(request_rejected("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /a\tz HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /a\0z HTTP/1.1\r\nHost: a\r\n\r\n"s, 400));
}

TEST(RequestRejectTest, BadRequestTargets) {
  EXPECT_TRUE(request_rejected("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET http://user@host/ HTTP/1.1\r\nHost: host\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET http://u:p@host/ HTTP/1.1\r\nHost: host\r\n\r\n", 400));
}

TEST(RequestRejectTest, BadRequestLines) {
  for (const char* line : {" GET / HTTP/1.1", "GET / HTTP/1.1 ", "GET /  HTTP/1.1",
                           "GET\t/ HTTP/1.1", "GET /\tHTTP/1.1", "G(T / HTTP/1.1", "GET", "GET ",
                           "GET / ", "/ HTTP/1.1", "GET / / HTTP/1.1"}) {
    EXPECT_TRUE(request_rejected(std::string(line) + "\r\nHost: a\r\n\r\n", 400)) << line;
  }
}

TEST(RequestRejectTest, MissingDuplicatedOrInvalidHost) {
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET http://a/ HTTP/1.1\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400));
  EXPECT_TRUE(request_rejected("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400));
  for (const char* host :
       {"user@host", "user:pw@host", "@host", "a b", "a/b", "a?b", "a#b", "[::1", "[::1]x", "[::g]",
        ":80", "a:b", "a:123456", "a:80:80", "a\"b", "a<b", "a\\b", "caf\xe9"}) {
    EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n", 400))
        << host;
  }
}

TEST(RequestRejectTest, MalformedVersions) {
  for (const char* v : {"HTTP/1", "HTTP/1.", "HTTP/1.1.1", "HTTP/1.x", "http/1.1", "Http/1.1",
                        "HTTP/11", "HTTP/1.10", "HTTP /1.1", "HTTPS/1.1", "HTTP/1,1", "HTTP/+1.1",
                        "HTTP/10.0", "HTTP/", "1.1", "HTTP\\1.1", "HTTP/1.1x"}) {
    EXPECT_TRUE(request_rejected("GET / " + std::string(v) + "\r\nHost: a\r\n\r\n", 400)) << v;
  }
}

TEST(RequestRejectTest, MajorVersionOtherThanOne) {
  EXPECT_TRUE(request_rejected("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505));
  EXPECT_TRUE(request_rejected("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505));
  EXPECT_TRUE(request_rejected("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505));
  EXPECT_TRUE(request_rejected("GET / HTTP/9.9\r\n\r\n", 505));
  // The HTTP/2 connection preface sent to an HTTP/1.1 port.
  EXPECT_TRUE(request_rejected("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505));
}

TEST(RequestRejectTest, Http09RequestLine) {
  EXPECT_TRUE(request_rejected("GET /\r\n\r\n", 400));
  // Without waiting for a blank line that an HTTP/0.9 client never sends.
  EXPECT_TRUE(request_rejected("GET /\r\n", 400));
  EXPECT_TRUE(request_rejected("GET /index.html\r\n", 400));
}

TEST(RequestRejectTest, ConnectIsNotImplemented) {
  EXPECT_TRUE(
      request_rejected("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501));
}

// --- chunked bodies that must be rejected ---------------------------------------------------

std::string chunked_post(std::string_view body) {
  return post_with("Transfer-Encoding: chunked\r\n", body);
}

TEST(ChunkedRejectTest, ChunkSizeOverflowOrJunk) {
  EXPECT_TRUE(request_rejected(chunked_post("10000000000000000\r\nx\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("ffffffffffffffffff\r\n"), 400));
  for (const char* size :
       {"5x", "x", "-5", "+5", " 5", "0x5", "5 x", "5 5", "\t5", "", "5\t;a=\x01", "g"}) {
    EXPECT_TRUE(request_rejected(chunked_post(std::string(size) + "\r\nhello\r\n0\r\n\r\n"), 400))
        << size;
  }
}

TEST(ChunkedRejectTest, BadChunkExtensions) {
  // A bare CR inside the extensions (llhttp 8.1 accepts this).
  EXPECT_TRUE(request_rejected(chunked_post("5\r\r;ABCD\r\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5;a\rb\r\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5;a\nb\r\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5;a\0\r\nhello\r\n0\r\n\r\n"s), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5;a=\"x\r\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5;a=\"x\\\"\r\nhello\r\n0\r\n\r\n"), 400));
  for (const char* ext :
       {";", ";;", "; ", ";=", ";a=", ";a=b=c", ";a b", ";a=\"b\"c", ";(a)", ";a=b c", "junk"}) {
    EXPECT_TRUE(
        request_rejected(chunked_post("5" + std::string(ext) + "\r\nhello\r\n0\r\n\r\n"), 400))
        << ext;
  }
}

// RFC 9112 7.1: whitespace on the chunk-size line is BWS, allowed only before a ';' and around
// '=' inside an extension; never before the size, after it with no extension, or at the end.
TEST(ChunkedRejectTest, WhitespaceOnTheSizeLineOnlyAsBws) {
  for (const char* line :
       {"5 ", "5\t", "5 \t ", " 5", "\t5", " 5;a", "5 ;", "5;a ", "5;a\t", "5;a=b ", "5;a=b\t",
        "5;a=\"b\" ", "5;a ;b ", "5;a=b ;", "5;a;", "5; ", "5;a =", "5;a= ", "5 ;a=b ; "}) {
    EXPECT_TRUE(request_rejected(chunked_post(std::string(line) + "\r\nhello\r\n0\r\n\r\n"), 400))
        << escape(line);
  }
  for (const char* line : {"5 ;a=b", "5\t;a=b", "5 \t ;a", "5; a", "5;a ;b", "5;a = b",
                           "5;a=\"q\" ;b", "5 ; a = \"b c\" ; d"}) {
    Outcome out;
    EXPECT_TRUE(request_ok(chunked_post(std::string(line) + "\r\nhello\r\n0\r\n\r\n"), &out))
        << escape(line);
  }
}

// The last chunk is a chunk-size line too: the same whitespace rules, then the trailer section.
TEST(ChunkedRejectTest, LastChunkLineFollowsTheGrammar) {
  for (const char* last : {"0 ", "0\t", " 0", "0;", "0;a ", "0;a=b\t", "0 ;", "0;=x", "0x0"}) {
    EXPECT_TRUE(
        request_rejected(chunked_post("5\r\nhello\r\n" + std::string(last) + "\r\n\r\n"), 400))
        << escape(last);
  }
  Outcome out;
  ASSERT_TRUE(request_ok(chunked_post("5\r\nhello\r\n000 ;a = b\r\nT: v\r\n\r\n"), &out));
  EXPECT_EQ(out.messages[0].trailers.get("t"), "v");
  // Trailer lines: no obs-fold at the start of the section, nothing after the blank line's CR.
  EXPECT_TRUE(request_rejected(chunked_post("0\r\n\tX: a\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\x7f\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\r\n \r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\r\n\r \n"), 400));
}

TEST(ChunkedRejectTest, ChunkDataNotFollowedByCrlf) {
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhelloX\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello\rX0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello world\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhell\r\n0\r\n\r\n"), 400));
}

TEST(ChunkedRejectTest, BareLfOrCrInChunkFraming) {
  EXPECT_TRUE(request_rejected(chunked_post("5\nhello\r\n0\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello\r\n0\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello\r\n0\r\n\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("5\r\nhello\r\n0\r\n\rX"), 400));
}

TEST(ChunkedRejectTest, BadTrailers) {
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\r\n b\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\n : a\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\n: a\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nFoo Bar: a\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX : a\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\rb\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\nb\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\0b\r\n\r\n"s), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nX: a\x01\r\n\r\n"), 400));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nNoColon\r\n\r\n"), 400));
}

// --- limits ---------------------------------------------------------------------------------

TEST(LimitsTest, DefaultsAreAsDocumented) {
  const Limits limits;
  EXPECT_EQ(limits.max_request_line, 8u * 1024);
  EXPECT_EQ(limits.max_head_bytes, 64u * 1024);
  EXPECT_EQ(limits.max_fields, 100u);
  EXPECT_EQ(limits.max_body, 1ull << 30);
}

TEST(LimitsTest, RequestLineTooLongIs414) {
  // "GET " + target + " HTTP/1.1" is exactly 8 KiB: accepted; one byte more: 414.
  const std::string at_limit = "/" + std::string(8192 - 4 - 9 - 1, 'a');
  Outcome out;
  ASSERT_TRUE(request_ok("GET " + at_limit + " HTTP/1.1\r\nHost: a\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].request.target.size() + 13, 8192u);
  EXPECT_TRUE(request_rejected("GET " + at_limit + "a HTTP/1.1\r\nHost: a\r\n\r\n", 414));
  // Before the line has ended: the client is not waited for.
  EXPECT_TRUE(request_rejected("GET /" + std::string(9000, 'a'), 414));
  // The limit is counted before the bytes are checked further: a long line with a NUL late in
  // it is 414 whether it arrives whole or in pieces.
  EXPECT_TRUE(request_rejected("GET /" + std::string(9000, 'a') + "\0 HTTP/1.1\r\n\r\n"s, 414));
}

TEST(LimitsTest, HeadTooLargeIs431) {
  std::string fields;
  for (int i = 0; fields.size() < 64 * 1024; ++i) {
    fields += "X-Field-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
  }
  EXPECT_TRUE(request_rejected(get_with(fields), 431));
  // Without the end of the head in sight.
  EXPECT_TRUE(request_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(70000, 'v'), 431));
  // A bare CR after the limit: still 431, whole or split.
  EXPECT_TRUE(request_rejected(
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(70000, 'v') + "\r\r\n\r\n", 431));
}

TEST(LimitsTest, LongFieldsAfterAShortRequestLineAreNot414) {
  // A head bigger than max_request_line whose request line is short: fine however it is split
  // (the line's limit must be judged on the line, not on the first CR of a later segment).
  Outcome out;
  ASSERT_TRUE(request_ok(get_with("Cookie: " + std::string(20000, 'c') + "\r\n"), &out));
  EXPECT_EQ(out.messages[0].request.headers.get("cookie")->size(), 20000u);
  Limits limits;
  limits.max_request_line = 16;
  ASSERT_TRUE(
      request_ok("GET / HTTP/1.1\r\nHost: example.com\r\nX: 0123456789\r\n\r\n", &out, limits));
}

TEST(LimitsTest, HeadAtTheLimitIsAccepted) {
  Limits limits;
  limits.max_head_bytes = 64;
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";  // 28 bytes
  const std::string exact = head + std::string(64 - head.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 64u);
  Outcome out;
  EXPECT_TRUE(request_ok(exact, &out, limits));
  EXPECT_TRUE(
      request_rejected(head + std::string(64 - head.size() - 3, 'v') + "\r\n\r\n", 431, limits));
}

TEST(LimitsTest, MoreThanMaxFieldsIs431) {
  std::string fields;
  for (int i = 0; i < 99; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  Outcome out;
  ASSERT_TRUE(request_ok(get_with(fields), &out));  // Host + 99 = 100
  EXPECT_EQ(out.messages[0].request.headers.size(), 100u);
  EXPECT_TRUE(request_rejected(get_with(fields + "X-Last: v\r\n"), 431));
}

TEST(LimitsTest, BodyOverMaxBodyIs413) {
  EXPECT_TRUE(request_rejected(post_with("Content-Length: 1073741825\r\n"), 413));
  Outcome out;
  ASSERT_TRUE(
      consistent(Side::kRequest, post_with("Content-Length: 1073741824\r\n", "abc"), {}, "", &out));
  EXPECT_EQ(out.status, ParseStatus::kNeedMore);  // accepted, body still coming

  Limits limits;
  limits.max_body = 10;
  ASSERT_TRUE(request_ok(post_with("Content-Length: 10\r\n", "0123456789"), &out, limits));
  EXPECT_TRUE(request_rejected(post_with("Content-Length: 11\r\n", "0123456789a"), 413, limits));
  // Chunked: the total counts, across chunks, when the size line announces it.
  ASSERT_TRUE(request_ok(chunked_post("5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"), &out, limits));
  EXPECT_EQ(out.messages[0].body, "0123456789");
  EXPECT_TRUE(
      request_rejected(chunked_post("5\r\n01234\r\n6\r\n56789a\r\n0\r\n\r\n"), 413, limits));
  EXPECT_TRUE(request_rejected(chunked_post("b\r\n"), 413, limits));
  EXPECT_TRUE(
      request_rejected(chunked_post("fffffffffffffff\r\n"), 413));  // 15 digits, default limit
}

TEST(LimitsTest, TrailerLimits) {
  Limits limits;
  limits.max_fields = 2;
  limits.max_head_bytes = 100;
  Outcome out;
  ASSERT_TRUE(request_ok(chunked_post("0\r\nA: 1\r\nB: 2\r\n\r\n"), &out, limits));
  EXPECT_TRUE(request_rejected(chunked_post("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 431, limits));
  EXPECT_TRUE(
      request_rejected(chunked_post("0\r\nA: " + std::string(200, 'x') + "\r\n\r\n"), 431, limits));
}

TEST(LimitsTest, SmallLimitsApplyToOtherRequestsToo) {
  Limits limits;
  limits.max_request_line = 20;
  EXPECT_TRUE(request_rejected("GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", 414, limits));
  Outcome out;
  EXPECT_TRUE(request_ok("GET /01234 HTTP/1.1\r\nHost: a\r\n\r\n", &out, limits));   // 19 bytes
  EXPECT_TRUE(request_ok("GET /012345 HTTP/1.1\r\nHost: a\r\n\r\n", &out, limits));  // 20
  EXPECT_TRUE(request_rejected("GET /0123456 HTTP/1.1\r\nHost: a\r\n\r\n", 414, limits));
}

// --- ChunkedDecoder on its own ----------------------------------------------------------------

// Decodes `body` fed in pieces cut at `cuts`, with the connection's contract: consumed bytes are
// gone, the next call gets the rest (plus what arrived since).
struct Decoded {
  ParseStatus status = ParseStatus::kNeedMore;
  std::string data;
  HeaderMap trailers;
  size_t end = 0;  // offset of the first byte after the message
  int error_status = 0;
  std::string describe() const {
    return std::to_string(static_cast<int>(status)) + " [" + escape(data) + "]" +
           h1::describe(trailers) + " end=" + std::to_string(end) +
           " err=" + std::to_string(error_status);
  }
};

Decoded decode(std::string_view body, const std::vector<size_t>& cuts, const Limits& limits = {}) {
  ChunkedDecoder decoder(limits);
  Decoded out;
  std::string pending;
  size_t pending_offset = 0;
  size_t pos = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(body.size());
  for (size_t end : ends) {
    pending.append(body.substr(pos, end - pos));
    pos = end;
    size_t consumed = 0;
    out.status = decoder.decode(pending, consumed, [&](std::string_view d) { out.data += d; });
    if (out.status == ParseStatus::kError) {
      out.error_status = decoder.error().status;
      return out;
    }
    pending.erase(0, consumed);
    pending_offset += consumed;
    if (out.status == ParseStatus::kDone) {
      out.trailers = decoder.trailers();
      out.end = pending_offset;
      return out;
    }
  }
  return out;
}

testing::AssertionResult decodes_consistently(std::string_view body, Decoded* whole,
                                              const Limits& limits = {}) {
  *whole = decode(body, {}, limits);
  const size_t stride = body.size() <= 4096 ? 1 : body.size() / 997;
  for (size_t cut = 1; cut < body.size(); cut += stride) {
    const Decoded split = decode(body, {cut}, limits);
    if (split.describe() != whole->describe()) {
      return testing::AssertionFailure() << "\"" << escape(body) << "\" split at " << cut << ": "
                                         << split.describe() << " vs " << whole->describe();
    }
  }
  std::vector<size_t> every;
  for (size_t cut = 1; cut < body.size(); ++cut) every.push_back(cut);
  const Decoded bytes = decode(body, every, limits);
  if (bytes.describe() != whole->describe()) {
    return testing::AssertionFailure()
           << "\"" << escape(body) << "\" byte by byte: " << bytes.describe() << " vs "
           << whole->describe();
  }
  return testing::AssertionSuccess();
}

TEST(ChunkedDecoderTest, StopsAtTheEndOfTheMessage) {
  Decoded d;
  const std::string body = "3\r\nabc\r\n0\r\nT: v\r\n\r\n";
  ASSERT_TRUE(decodes_consistently(body + "GET / HTTP/1.1\r\n", &d));
  EXPECT_EQ(d.status, ParseStatus::kDone);
  EXPECT_EQ(d.data, "abc");
  EXPECT_EQ(d.end, body.size());
  EXPECT_EQ(d.trailers.get("t"), "v");
}

TEST(ChunkedDecoderTest, HandsOutDataAsViewsAndCountsBytes) {
  ChunkedDecoder decoder;
  size_t consumed = 0;
  std::vector<std::string> pieces;
  const std::string input = "4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n";
  ASSERT_EQ(decoder.decode(input, consumed, [&](std::string_view d) { pieces.emplace_back(d); }),
            ParseStatus::kDone);
  EXPECT_EQ(consumed, input.size());
  EXPECT_EQ(pieces, (std::vector<std::string>{"wiki", "pedia"}));
  EXPECT_EQ(decoder.body_bytes(), 9u);
  // Used again after the end: an error, not a second message.
  EXPECT_EQ(decoder.decode("0\r\n\r\n", consumed, [](std::string_view) {}), ParseStatus::kError);
}

TEST(ChunkedDecoderTest, IncompleteInputsNeedMore) {
  for (const char* body : {"", "5", "5\r", "5\r\n", "5\r\nhel", "5\r\nhello", "5\r\nhello\r",
                           "5\r\nhello\r\n", "0\r\n", "0\r\nX: y\r\n", "0\r\n\r", "5;a=\"b"}) {
    Decoded d;
    ASSERT_TRUE(decodes_consistently(body, &d)) << body;
    EXPECT_EQ(d.status, ParseStatus::kNeedMore) << escape(body);
  }
}

TEST(ChunkedDecoderTest, ExtensionsThatAreValid) {
  for (const char* ext :
       {";a", ";a=b", ";a=\"\"", ";a=\"b c\"", ";a=\"\\\"\"", ";a=\"\\\\\"", " ;a", "\t;a", "; a",
        ";a ;b", ";a = b", ";a= \"q\" ;b", ";a=\"\xe9\"", ";!#$%&'*+-.^_`|~=x", ";a=b;c=d;e"}) {
    Decoded d;
    ASSERT_TRUE(decodes_consistently("3" + std::string(ext) + "\r\nabc\r\n0\r\n\r\n", &d)) << ext;
    EXPECT_EQ(d.status, ParseStatus::kDone) << escape(ext);
    EXPECT_EQ(d.data, "abc") << escape(ext);
  }
}

TEST(ChunkedDecoderTest, ExtensionBytesHaveABudgetPerBody) {
  // Extensions carry no payload, so max_head_bytes bounds them (with the trailers) per body.
  Limits limits;
  limits.max_head_bytes = 1000;
  Decoded d;
  ASSERT_TRUE(
      decodes_consistently("3;a=" + std::string(990, 'x') + "\r\nabc\r\n0\r\n\r\n", &d, limits));
  EXPECT_EQ(d.status, ParseStatus::kDone);
  ASSERT_TRUE(
      decodes_consistently("3;a=" + std::string(1000, 'x') + "\r\nabc\r\n0\r\n\r\n", &d, limits));
  EXPECT_EQ(d.status, ParseStatus::kError);
  EXPECT_EQ(d.error_status, 400);
  // Spread over many one-byte chunks.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "1;ext=" + std::string(6, 'e') + "\r\nx\r\n";
  ASSERT_TRUE(decodes_consistently(many + "0\r\n\r\n", &d, limits));
  EXPECT_EQ(d.status, ParseStatus::kError);
  // The default budget, 64 KiB.
  ASSERT_TRUE(decodes_consistently("3;a=" + std::string(70000, 'x') + "\r\nabc\r\n0\r\n\r\n", &d));
  EXPECT_EQ(d.status, ParseStatus::kError);
}

TEST(ChunkedDecoderTest, LeadingZerosWithinFifteenDigits) {
  Decoded d;
  ASSERT_TRUE(decodes_consistently("00000000000003\r\nabc\r\n000\r\n\r\n", &d));
  EXPECT_EQ(d.status, ParseStatus::kDone);
  EXPECT_EQ(d.data, "abc");
}

TEST(ChunkedDecoderTest, RandomBodiesRoundTripAtRandomCuts) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string expected;
    IoBuffer wire;
    const int chunks = static_cast<int>(rng() % 5);
    for (int c = 0; c < chunks; ++c) {
      std::string data(1 + rng() % 40, '\0');
      for (char& ch : data) ch = static_cast<char>(rng());
      write_chunk_header(data.size(), wire);
      wire.append(data);
      write_chunk_trailer(wire);
      expected += data;
    }
    HeaderMap trailers;
    if (rng() % 2) trailers.add("X-Sum", std::to_string(expected.size()));
    write_last_chunk(&trailers, wire);
    std::vector<size_t> cuts;
    for (size_t p = 0; p < wire.size(); p += 1 + rng() % 7) cuts.push_back(p);
    const Decoded d = decode(wire.view(), cuts);
    ASSERT_EQ(d.status, ParseStatus::kDone) << escape(wire.view());
    EXPECT_EQ(d.data, expected);
    EXPECT_EQ(d.end, wire.size());
    EXPECT_EQ(describe(d.trailers), describe(trailers));
  }
}

// --- responses ------------------------------------------------------------------------------

TEST(ResponseParserTest, WithContentLength) {
  Outcome out;
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
  ASSERT_TRUE(response_ok(wire, &out));
  ASSERT_EQ(out.messages.size(), 1u);
  const Message& m = out.messages[0];
  EXPECT_EQ(m.response.status, 200);
  EXPECT_EQ(m.response.reason, "OK");
  EXPECT_EQ(m.response.version, Version::kHttp11);
  EXPECT_EQ(m.response.headers.get("server"), "x");
  EXPECT_EQ(m.framing.kind, BodyFraming::Kind::kLength);
  EXPECT_EQ(m.body, "hello");
}

TEST(ResponseParserTest, ContentLengthZero) {
  Outcome out;
  ASSERT_TRUE(response_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kLength);
  EXPECT_EQ(out.messages[0].framing.length, 0u);
}

TEST(ResponseParserTest, Chunked) {
  Outcome out;
  ASSERT_TRUE(response_ok(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
      &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kChunked);
  EXPECT_EQ(out.messages[0].body, "hello");
  EXPECT_EQ(out.messages[0].trailers.get("t"), "1");
}

TEST(ResponseParserTest, NoFramingReadsUntilClose) {
  Outcome out;
  ASSERT_TRUE(
      response_ok("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of this\r\n\r\nuntil close", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kUntilClose);
  EXPECT_EQ(out.messages[0].body, "all of this\r\n\r\nuntil close");
  ASSERT_TRUE(response_ok("HTTP/1.0 200 OK\r\n\r\nold", &out));
  EXPECT_EQ(out.messages[0].response.version, Version::kHttp10);
  EXPECT_EQ(out.messages[0].body, "old");
}

TEST(ResponseParserTest, NoBodyFor204And304And1xxAndHeadEvenWithContentLength) {
  Outcome out;
  ASSERT_TRUE(response_ok("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &out, "HEAD"));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &out, "HEAD"));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 200 OK\r\n\r\n", &out, "HEAD"));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  ASSERT_TRUE(response_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
}

TEST(ResponseParserTest, InterimResponsesThenTheFinalOne) {
  Outcome out;
  ASSERT_TRUE(
      response_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                  "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                  &out));
  ASSERT_EQ(out.messages.size(), 3u);
  EXPECT_EQ(out.messages[0].response.status, 100);
  EXPECT_EQ(out.messages[0].framing.kind, BodyFraming::Kind::kNone);
  EXPECT_EQ(out.messages[1].response.status, 103);
  EXPECT_EQ(out.messages[1].response.headers.get("link"), "</a>");
  EXPECT_EQ(out.messages[2].response.status, 201);
  EXPECT_EQ(out.messages[2].body, "ok");
}

TEST(ResponseParserTest, StatusLineWithoutReason) {
  Outcome out;
  ASSERT_TRUE(response_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].response.status, 200);
  EXPECT_EQ(out.messages[0].response.reason, "");
  ASSERT_TRUE(response_ok("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].response.status, 404);
  EXPECT_EQ(out.messages[0].response.reason, "");
  ASSERT_TRUE(response_ok("HTTP/1.1 599 Whatever It Says \xe9\r\nContent-Length: 0\r\n\r\n", &out));
  EXPECT_EQ(out.messages[0].response.reason, "Whatever It Says \xe9");
}

TEST(ResponseParserTest, HigherMinorVersionIsReadAsHttp11) {
  Outcome out;
  ASSERT_TRUE(response_ok("HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", &out));
  EXPECT_EQ(out.messages[0].response.version, Version::kHttp11);
  EXPECT_EQ(out.messages[0].body, "ok");
}

TEST(ResponseRejectTest, ContentLengthAndTransferEncoding) {
  EXPECT_TRUE(response_rejected(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  EXPECT_TRUE(response_rejected(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"));
}

TEST(ResponseRejectTest, BadContentLength) {
  EXPECT_TRUE(
      response_rejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_TRUE(
      response_rejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello"));
}

TEST(ResponseRejectTest, BadTransferEncoding) {
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"));
  EXPECT_TRUE(response_rejected("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"));
}

TEST(ResponseRejectTest, MalformedStatusLines) {
  for (const char* line :
       {"HTTP/1.1 20 OK",      "HTTP/1.1 2000 OK",   "HTTP/1.1 200OK",    "HTTP/1.1  200 OK",
        "HTTP/1.1 abc OK",     "HTTP/1.1 099 Low",   "HTTP/1.1 600 High", "HTTP/1.1 999 X",
        "HTTP/1.1 -20 OK",     "HTTP/2 200 OK",      "HTTP/2.0 200 OK",   "HTTP/0.9 200 OK",
        "http/1.1 200 OK",     "HTTP/1.1",           "HTTP/1.1 ",         "ICY 200 OK",
        "HTTP/1.1 200 O\x01K", "HTTP/1.1 200 OK\rX", " HTTP/1.1 200 OK",  "",
        "HTTP/1.10 200 OK"}) {
    EXPECT_TRUE(response_rejected(std::string(line) + "\r\nContent-Length: 0\r\n\r\n"))
        << escape(line);
  }
}

TEST(ResponseRejectTest, BadFields) {
  for (const char* field : {": x", "Foo Bar: x", "X : y", " X: y", "X: a\rb", "X: a\x01"}) {
    EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\n" + std::string(field) +
                                  "\r\nContent-Length: 0\r\n\r\n"))
        << escape(field);
  }
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\nContent-Length: 0\n\n"));
}

TEST(ResponseRejectTest, ChunkedBodyErrorsAreErrors) {
  Outcome out;
  ASSERT_TRUE(consistent(Side::kResponse,
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX", {},
                         "GET", &out));
  EXPECT_EQ(out.status, ParseStatus::kError);
}

TEST(ResponseRejectTest, HeadTooLarge) {
  Limits limits;
  limits.max_head_bytes = 64;
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'v') + "\r\n\r\n",
                                "GET", limits));
  EXPECT_TRUE(response_rejected("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'v'), "GET", limits));
}

// --- writers --------------------------------------------------------------------------------

// The fields as parsed minus the framing fields the writer adds.
HeaderMap without_framing(HeaderMap h) {
  h.remove("content-length");
  h.remove("transfer-encoding");
  return h;
}

TEST(WriterTest, RequestHeadRoundTrips) {
  RequestHead head;
  head.method = "PUT";
  head.target = "/upload/file.txt?version=2";
  head.headers.add("Host", "files.example:8443");
  head.headers.add("X-Latin", "caf\xe9");
  head.headers.add("Accept", "a");
  head.headers.add("accept", "b");
  head.headers.add("X-Empty", "");
  for (const BodyFraming& framing : {BodyFraming{}, BodyFraming{BodyFraming::Kind::kLength, 12345},
                                     BodyFraming{BodyFraming::Kind::kChunked, 0}}) {
    IoBuffer out;
    write_request_head(head, framing, out);
    Outcome parsed;
    std::string wire = out.to_string();
    if (framing.kind == BodyFraming::Kind::kChunked) wire += "0\r\n\r\n";
    if (framing.kind == BodyFraming::Kind::kLength) wire += std::string(12345, 'b');
    ASSERT_TRUE(request_ok(wire, &parsed)) << escape(out.view());
    const Message& m = parsed.messages[0];
    EXPECT_EQ(m.request.method, head.method);
    EXPECT_EQ(m.request.target, head.target);
    EXPECT_EQ(m.request.version, Version::kHttp11);
    EXPECT_EQ(describe(without_framing(m.request.headers)), describe(head.headers));
    EXPECT_EQ(m.framing.kind, framing.kind);
    EXPECT_EQ(m.framing.length, framing.length);
  }
}

TEST(WriterTest, RequestHeadBytes) {
  RequestHead head;
  head.method = "POST";
  head.target = "/x";
  head.headers.add("Host", "a");
  IoBuffer out;
  out.append("prefix|");
  write_request_head(head, {BodyFraming::Kind::kLength, 3}, out);
  EXPECT_EQ(out.view(), "prefix|POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
}

TEST(WriterTest, ResponseHeadRoundTrips) {
  ResponseHead head;
  head.status = 404;
  head.reason = "Nothing Here";
  head.headers.add("Server", "monolake");
  head.headers.add("Set-Cookie", "a=1");
  head.headers.add("Set-Cookie", "b=2");
  for (const BodyFraming& framing :
       {BodyFraming{BodyFraming::Kind::kUntilClose, 0}, BodyFraming{BodyFraming::Kind::kLength, 0},
        BodyFraming{BodyFraming::Kind::kLength, 4}, BodyFraming{BodyFraming::Kind::kChunked, 0}}) {
    IoBuffer out;
    write_response_head(head, framing, out);
    std::string wire = out.to_string();
    if (framing.kind == BodyFraming::Kind::kChunked) wire += "0\r\n\r\n";
    if (framing.kind == BodyFraming::Kind::kLength) wire += std::string(framing.length, 'b');
    if (framing.kind == BodyFraming::Kind::kUntilClose) wire += "rest";
    Outcome parsed;
    ASSERT_TRUE(response_ok(wire, &parsed)) << escape(wire);
    const Message& m = parsed.messages[0];
    EXPECT_EQ(m.response.status, 404);
    EXPECT_EQ(m.response.reason, "Nothing Here");
    EXPECT_EQ(describe(without_framing(m.response.headers)), describe(head.headers));
    EXPECT_EQ(m.framing.kind, framing.kind);
    EXPECT_EQ(m.framing.length, framing.length);
  }
}

TEST(WriterTest, ResponseHeadWritesTheStandardReasonAndNoFramingForNone) {
  ResponseHead head;
  head.status = 204;
  IoBuffer out;
  write_response_head(head, {}, out);
  EXPECT_EQ(out.view(), "HTTP/1.1 204 No Content\r\n\r\n");
  Outcome parsed;
  ASSERT_TRUE(response_ok(out.view(), &parsed));
  EXPECT_EQ(parsed.messages[0].response.reason, "No Content");
  EXPECT_EQ(parsed.messages[0].framing.kind, BodyFraming::Kind::kNone);

  head.status = 100;
  IoBuffer interim;
  write_response_head(head, {}, interim);
  EXPECT_EQ(interim.view(), "HTTP/1.1 100 Continue\r\n\r\n");
}

// Heads are written into space reserved for their exact size (checked by ML_DCHECK in debug
// builds): every status with its standard reason, every framing, appended after other bytes.
TEST(WriterTest, EveryStatusAndFramingWritesWhatWasReserved) {
  const BodyFraming framings[] = {{},
                                  {BodyFraming::Kind::kLength, 0},
                                  {BodyFraming::Kind::kLength, 99999999999999999ull},
                                  {BodyFraming::Kind::kLength, ~0ull},
                                  {BodyFraming::Kind::kChunked, 0}};
  for (int status = 100; status <= 599; ++status) {
    for (const BodyFraming& framing : framings) {
      ResponseHead head;
      head.status = status;
      head.headers.add("X-A", "b");
      IoBuffer out = IoBuffer::copy_of("prefix");
      write_response_head(head, framing, out);
      const std::string expected_length =
          framing.kind == BodyFraming::Kind::kLength
              ? "Content-Length: " + std::to_string(framing.length) + "\r\n"
          : framing.kind == BodyFraming::Kind::kChunked ? "Transfer-Encoding: chunked\r\n"
                                                        : "";
      EXPECT_EQ(out.view(), "prefixHTTP/1.1 " + std::to_string(status) + " " +
                                std::string(reason_phrase(status)) + "\r\nX-A: b\r\n" +
                                expected_length + "\r\n");
    }
  }
  RequestHead request;
  request.method = "PROPFIND";
  request.target = "/" + std::string(300, 'a');
  request.headers.add("Host", "h");
  IoBuffer out = IoBuffer::copy_of("x");
  write_request_head(request, {BodyFraming::Kind::kLength, ~0ull}, out);
  EXPECT_EQ(out.view(), "xPROPFIND " + request.target +
                            " HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n");
}

TEST(WriterTest, ChunksRoundTrip) {
  IoBuffer out;
  for (std::string_view data : {"a", "0123456789abcdef", "\r\n0\r\n\r\n"}) {
    write_chunk_header(data.size(), out);
    out.append(data);
    write_chunk_trailer(out);
  }
  const std::string big(300, 'z');
  write_chunk_header(big.size(), out);
  out.append(big);
  write_chunk_trailer(out);
  HeaderMap trailers;
  trailers.add("X-Digest", "sha-256=abc");
  trailers.add("X-Count", "4");
  write_last_chunk(&trailers, out);
  EXPECT_NE(out.view().find("12c\r\n"), std::string_view::npos);  // 300 in hex
  Decoded d;
  ASSERT_TRUE(decodes_consistently(out.view(), &d));
  ASSERT_EQ(d.status, ParseStatus::kDone);
  EXPECT_EQ(d.data, "a0123456789abcdef\r\n0\r\n\r\n" + big);
  EXPECT_EQ(describe(d.trailers), describe(trailers));
  EXPECT_EQ(d.end, out.size());

  IoBuffer last;
  write_last_chunk(nullptr, last);
  EXPECT_EQ(last.view(), "0\r\n\r\n");
}

TEST(WriterTest, RandomHeadsRoundTripAtRandomCuts) {
  std::mt19937 rng(11);
  const std::string tchars =
      "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  for (int round = 0; round < 300; ++round) {
    RequestHead head;
    head.method = std::vector<std::string>{"GET", "POST", "PUT", "DELETE", "PATCH"}[pick(5)];
    head.target = "/";
    for (size_t i = pick(30); i > 0; --i) head.target += static_cast<char>(0x21 + pick(0x5e));
    head.headers.add("Host", "h" + std::to_string(round) + ".example");
    for (size_t f = pick(8); f > 0; --f) {
      std::string name(1 + pick(12), 'x');
      for (char& c : name) c = tchars[pick(tchars.size())];
      if (iequals(name, "host") || iequals(name, "content-length") ||
          iequals(name, "transfer-encoding")) {
        continue;
      }
      std::string value;
      for (size_t i = pick(20); i > 0; --i) {
        const size_t k = pick(4);
        value += k == 0   ? ' '
                 : k == 1 ? static_cast<char>(0x80 + pick(0x80))
                          : static_cast<char>(0x21 + pick(0x5e));
      }
      while (!value.empty() && value.back() == ' ') value.pop_back();
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      ASSERT_TRUE(valid_field_name(name));
      ASSERT_TRUE(valid_field_value(value)) << escape(value);
      head.headers.add(name, value);
    }
    BodyFraming framing;
    if (pick(2)) framing = {BodyFraming::Kind::kLength, 1 + pick(5)};
    IoBuffer out;
    write_request_head(head, framing, out);
    out.append(std::string(framing.length, 'b'));
    std::vector<size_t> cuts;
    for (size_t p = 0; p < out.size(); p += 1 + pick(9)) cuts.push_back(p);
    const Outcome whole = run(Side::kRequest, out.view(), {}, {}, "");
    const Outcome split = run(Side::kRequest, out.view(), cuts, {}, "");
    ASSERT_EQ(whole.status, ParseStatus::kDone)
        << escape(out.view()) << describe(whole, Side::kRequest);
    EXPECT_EQ(describe(split, Side::kRequest), describe(whole, Side::kRequest));
    const Message& m = whole.messages[0];
    EXPECT_EQ(m.request.method, head.method);
    EXPECT_EQ(m.request.target, head.target);
    EXPECT_EQ(describe(without_framing(m.request.headers)), describe(head.headers));
    EXPECT_EQ(m.framing.kind, framing.kind);
  }
}

TEST(FieldChecksTest, Names) {
  EXPECT_TRUE(valid_field_name("Content-Type"));
  EXPECT_TRUE(valid_field_name("x"));
  EXPECT_TRUE(valid_field_name("!#$%&'*+-.^_`|~"));
  EXPECT_FALSE(valid_field_name(""));
  EXPECT_FALSE(valid_field_name("a b"));
  EXPECT_FALSE(valid_field_name("a:b"));
  EXPECT_FALSE(valid_field_name(":authority"));
  EXPECT_FALSE(valid_field_name("a\r"));
  EXPECT_FALSE(valid_field_name("a\n"));
  EXPECT_FALSE(valid_field_name("a\0"s));
  EXPECT_FALSE(valid_field_name("caf\xe9"));
}

TEST(FieldChecksTest, Values) {
  EXPECT_TRUE(valid_field_value(""));
  EXPECT_TRUE(valid_field_value("text/html; charset=utf-8"));
  EXPECT_TRUE(valid_field_value("a \t b"));
  EXPECT_TRUE(valid_field_value("caf\xe9 \x80\xff"));
  EXPECT_FALSE(valid_field_value("a\rb"));
  EXPECT_FALSE(valid_field_value("a\nb"));
  EXPECT_FALSE(valid_field_value("a\0b"s));
  EXPECT_FALSE(valid_field_value("a\x01"));
  EXPECT_FALSE(valid_field_value("a\x7f"));
  EXPECT_FALSE(valid_field_value(" leading"));
  EXPECT_FALSE(valid_field_value("trailing\t"));
}

}  // namespace
}  // namespace monolake::http::h1
