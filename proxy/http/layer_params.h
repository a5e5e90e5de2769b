// The parameters of the HTTP request layers that the configuration fills in (a route's direct
// answer, its header rewrites, the upstream HTTP version, trusted proxies): small value types of
// their own, so the layers in proxy/http take no configuration types and depend on no parser.
// proxy/config uses these types for the same keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "http/compression/encoder.h"
#include "transport/address.h"
#include "transport/cidr.h"

namespace monolake::proxy::http {

// A route that answers by itself: `return = { status = 200, body = "...", headers = {...} }`.
struct DirectResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // in the file's order
};

// request_headers / response_headers = { add = { name = "value" }, remove = ["name"] }.
struct HeaderRewrite {
  std::vector<std::pair<std::string, std::string>> add;  // set: replaces fields of that name
  std::vector<std::string> remove;
  bool empty() const { return add.empty() && remove.empty(); }
};

// rate_limit = { requests_per_sec, burst, key, max_keys }: the requests a route admits per key.
struct RateLimitParams {
  enum class Key { kSourceIp, kRoute, kHeader };
  double requests_per_sec = 1;  // for the whole process, split over its workers
  double burst = 1;             // requests admitted at once after a quiet spell
  Key key = Key::kSourceIp;
  std::string header;        // kHeader: the field whose value is the key (lower case)
  size_t max_keys = 100000;  // keys remembered per worker, least recently used forgotten first
};

// compression = { algorithms, min_length, types, gzip_level, brotli_quality, zstd_level }.
struct CompressionParams {
  // In order of preference: the first breaks a tie between codings a client rates alike.
  std::vector<monolake::http::compression::Coding> algorithms = {
      monolake::http::compression::Coding::kBrotli, monolake::http::compression::Coding::kZstd,
      monolake::http::compression::Coding::kGzip};
  uint64_t min_length = 1024;  // responses known to be shorter go as they are
  // Media types compressed: "type/subtype", or "type/*" for all of a type (lower case).
  std::vector<std::string> types = {"text/*", "application/json", "application/javascript",
                                    "image/svg+xml"};
  monolake::http::compression::Levels levels;
};

// A CIDR block ("10.0.0.0/8", "::1/128") for trusted_proxies.
using Cidr = transport::Cidr;

// http: the HTTP version spoken to upstreams (Monolake's key). kAuto: ALPN on https upstreams
// (h2 if the upstream picks it), HTTP/1.1 on cleartext ones.
enum class UpstreamHttpVersion { kHttp11, kHttp2, kAuto };

}  // namespace monolake::proxy::http
