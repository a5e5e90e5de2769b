// The parameters of the HTTP request layers that the configuration fills in (a route's direct
// answer, its header rewrites, the upstream HTTP version, trusted proxies): small value types of
// their own, so the layers in proxy/http take no configuration types and depend on no parser.
// proxy/config uses these types for the same keys.
#pragma once

#include <string>
#include <utility>
#include <vector>

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

// A CIDR block ("10.0.0.0/8", "::1/128") for trusted_proxies.
using Cidr = transport::Cidr;

// http: the HTTP version spoken to upstreams (Monolake's key). kAuto: ALPN on https upstreams
// (h2 if the upstream picks it), HTTP/1.1 on cleartext ones.
enum class UpstreamHttpVersion { kHttp11, kHttp2, kAuto };

}  // namespace monolake::proxy::http
