// Fixed-count driver for instruction counts under callgrind:
//   http_parse_count MODE N     MODE: codec | llhttp | response
// parses bench/http_inputs.h's head N times. Run it for two counts and divide the difference
// in instructions by the difference in counts: start-up and exit cancel out (bench/README.md).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/http_inputs.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s codec|llhttp|response N\n", argv[0]);
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
  } else {
    return 2;
  }
  std::printf("%zu\n", sink);
  return 0;
}
