#include "proxy/http/compression.h"

#include <cctype>
#include <string>

#include "base/log.h"
#include "http/compression/compressed_body.h"
#include "http/compression/negotiate.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;
namespace mc = monolake::http::compression;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Every line of a list field, as one list.
std::string joined(const mh::HeaderMap& headers, std::string_view name) {
  std::string out;
  for (std::string_view line : headers.get_all(name)) {
    if (!out.empty()) out += ", ";
    out += line;
  }
  return out;
}

// The media type of a Content-Type ("text/html; charset=utf-8" -> "text/html"), lower case.
std::string media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  return lower(content_type);
}

bool type_listed(const std::vector<std::string>& types, const std::string& type) {
  for (const std::string& listed : types) {
    if (listed == type) return true;
    // "text/*": the type and its slash.
    if (listed.size() >= 2 && listed.compare(listed.size() - 2, 2, "/*") == 0 &&
        type.compare(0, listed.size() - 1, listed, 0, listed.size() - 1) == 0) {
      return true;
    }
  }
  return false;
}

void add_vary(mh::HeaderMap& headers) {
  if (headers.has_token("vary", "accept-encoding") || headers.has_token("vary", "*")) return;
  const std::string vary = joined(headers, "vary");
  headers.set("Vary", vary.empty() ? "Accept-Encoding" : vary + ", Accept-Encoding");
}

// A strong validator names these exact bytes; the compressed ones differ (RFC 9110 8.8.1).
void weaken_etag(mh::HeaderMap& headers) {
  std::optional<std::string_view> etag = headers.get("etag");
  if (!etag || etag->empty() || etag->front() != '"') return;
  headers.set("ETag", "W/" + std::string(*etag));
}

// Left in the request's context by the innermost compression layer that saw the request, so
// that an outer one (the server's, around a route's) leaves the response to the route's table.
struct CompressionDecided {};

}  // namespace

bool Compression::compressible(const mh::Response& response) const {
  const int status = response.head.status;
  if (!response.body || response.upgrade || status < 200 || status == 204 || status == 206 ||
      status == 304) {
    return false;
  }
  const mh::HeaderMap& headers = response.head.headers;
  if (std::optional<std::string_view> coding = headers.get("content-encoding");
      coding && lower(*coding) != "identity") {
    return false;  // already encoded (by the upstream, or an inner compression layer)
  }
  if (headers.has_token("cache-control", "no-transform")) return false;
  std::optional<std::string_view> type = headers.get("content-type");
  if (!type || !type_listed(params_->types, media_type(*type))) return false;
  const std::optional<uint64_t> length = response.body->length();
  return !length || *length >= params_->min_length;
}

Task<Result<mh::Response>> Compression::call(mh::Request request) {
  // What decides is in the request, which the inner layers take: read it first.
  const bool skip = request.head.method == "HEAD" || request.head.headers.has("range");
  std::optional<mc::Coding> coding;
  if (!skip)
    coding = mc::negotiate(joined(request.head.headers, "accept-encoding"), params_->algorithms);
  mh::RequestContext* context = request.context;
  Result<mh::Response> response = co_await inner_->call(std::move(request));
  if (context) {
    if (context->slots.get<CompressionDecided>()) co_return response;  // a route's table did
    context->slots.set(CompressionDecided{});
  }
  if (!response || skip || !compressible(*response)) co_return response;
  mh::HeaderMap& headers = response->head.headers;
  add_vary(headers);
  if (!coding) co_return response;
  Result<std::unique_ptr<mc::Encoder>> encoder =
      mc::make_encoder(*coding, params_->levels, response->body->length());
  if (!encoder) {
    // Out of memory for the library's state: the response goes as it is.
    ML_LOG(kWarn, "compression: {}", encoder.error().to_string());
    co_return response;
  }
  headers.set("Content-Encoding", mc::coding_name(*coding));
  headers.remove("content-length");
  weaken_etag(headers);
  response->body =
      std::make_unique<mc::CompressedBody>(std::move(response->body), std::move(*encoder));
  co_return response;
}

Result<std::shared_ptr<Compression>> CompressionFactory::make_via_ref(
    const Compression*, std::shared_ptr<HttpService> inner, const Build&) const {
  return std::make_shared<Compression>(params_, std::move(inner));
}

}  // namespace monolake::proxy::http
