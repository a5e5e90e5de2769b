// Fixed-count driver for instruction counts under callgrind:
//   http_parse_count MODE N     MODE: codec | llhttp | response | chunked16 | chunked256 |
//                                     write_request | write_response
// parses bench/http_inputs.h's head (or decodes a 1 KiB chunked body) N times. Run it for two
// counts and divide the difference in instructions by the difference in counts: start-up and exit
// cancel out (bench/README.md).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/http_inputs.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(
        stderr,
        "usage: %s codec|llhttp|response|chunked16|chunked256|write_request|write_response N\n",
        argv[0]);
    return 2;
  }
  const long n = std::atol(argv[2]);
  size_t sink = 0;
  monolake::http::h1::RequestParser request_parser;
  monolake::http::h1::ResponseParser response_parser;
  if (std::strcmp(argv[1], "codec") == 0) {
    for (long i = 0; i < n; ++i) {
      sink +=
          monolake::bench::parse_request_with_codec(request_parser, monolake::bench::kRequestHead);
    }
  } else if (std::strcmp(argv[1], "llhttp") == 0) {
    for (long i = 0; i < n; ++i) {
      sink += monolake::bench::parse_request_with_llhttp(monolake::bench::kRequestHead);
    }
  } else if (std::strcmp(argv[1], "response") == 0) {
    for (long i = 0; i < n; ++i) {
      sink += monolake::bench::parse_response_with_codec(response_parser,
                                                         monolake::bench::kResponseHead);
    }
  } else if (std::strcmp(argv[1], "chunked16") == 0 || std::strcmp(argv[1], "chunked256") == 0) {
    // 1024 payload bytes in chunks of 16 or 256 bytes.
    const std::string body = monolake::bench::chunked_body(1024, argv[1][7] == '1' ? 16 : 256);
    for (long i = 0; i < n; ++i) sink += monolake::bench::decode_chunked(body);
  } else if (std::strcmp(argv[1], "write_request") == 0 ||
             std::strcmp(argv[1], "write_response") == 0) {
    // The parsed heads written back into a reused buffer (as BM_H1Write*Head do).
    monolake::http::RequestHead request;
    monolake::http::ResponseHead response;
    monolake::http::h1::BodyFraming framing;
    size_t consumed = 0;
    if (request_parser.parse(monolake::bench::kRequestHead, consumed, request, framing) !=
            monolake::http::h1::ParseStatus::kDone ||
        response_parser.parse(monolake::bench::kResponseHead, consumed, "GET", response, framing) !=
            monolake::http::h1::ParseStatus::kDone) {
      return 1;
    }
    response.headers.remove("content-length");
    const bool req = std::strcmp(argv[1], "write_request") == 0;
    monolake::IoBuffer out;
    for (long i = 0; i < n; ++i) {
      out.clear();
      if (req) {
        monolake::http::h1::write_request_head(request, {}, out);
      } else {
        monolake::http::h1::write_response_head(
            response, {monolake::http::h1::BodyFraming::Kind::kLength, 1024}, out);
      }
      sink += out.size();
    }
  } else {
    return 2;
  }
  std::printf("%zu\n", sink);
  return 0;
}
