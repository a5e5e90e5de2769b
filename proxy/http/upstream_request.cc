#include "proxy/http/upstream_request.h"

#include <random>

namespace monolake::proxy::http {

namespace mh = monolake::http;

namespace {
// Hop-by-hop field names (RFC 9110 7.6.1, plus the Proxy-* and Keep-Alive fields), by one
// case-insensitive look per field.
bool always_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return mh::iequals(name, "te");
    case 7:
      return mh::iequals(name, "trailer") || mh::iequals(name, "upgrade");
    case 10:
      return mh::iequals(name, "connection") || mh::iequals(name, "keep-alive");
    case 16:
      return mh::iequals(name, "proxy-connection");
    case 17:
      return mh::iequals(name, "transfer-encoding");
    case 18:
      return mh::iequals(name, "proxy-authenticate");
    case 19:
      return mh::iequals(name, "proxy-authorization");
    default:
      return false;
  }
}
}  // namespace

void remove_hop_by_hop(mh::HeaderMap& headers) {
  // Fields a Connection field names (other than the usual close / keep-alive tokens).
  std::vector<std::string> named;
  headers.for_each_token("connection", [&](std::string_view t) {
    // Never let Connection remove what routing and framing rely on.
    if (!mh::iequals(t, "close") && !mh::iequals(t, "keep-alive") && !mh::iequals(t, "host")) {
      named.emplace_back(t);
    }
  });
  for (const std::string& name : named) headers.remove(name);
  headers.remove_if([](const mh::HeaderMap::Field& f) { return always_hop_by_hop(f.name); });
}

namespace {

std::string new_request_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = random();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = kHex[bits & 0xf];
      bits >>= 4;
    }
  }
  return id;
}

// Whether the client's peer is one of the server's trusted proxies.
bool trusted(const ForwardOptions& options, const mh::ConnectionInfo* info) {
  if (!info || options.trusted_proxies.empty()) return false;
  for (const Cidr& cidr : options.trusted_proxies) {
    if (cidr.contains(info->peer)) return true;
  }
  return false;
}

}  // namespace

// The route's path rewrite: strip_prefix (on a segment boundary), then add_prefix.
void rewrite_path(const ForwardOptions& options, std::string& target) {
  if (target.empty() || target.front() != '/') return;
  if (!options.strip_prefix.empty() && target.rfind(options.strip_prefix, 0) == 0) {
    const size_t n = options.strip_prefix.size();
    const bool boundary = target.size() == n || target[n] == '/' || target[n] == '?' ||
                          options.strip_prefix.back() == '/';
    if (boundary) {
      target.erase(0, n);
      if (target.empty() || target.front() != '/') target.insert(0, "/");
    }
  }
  if (!options.add_prefix.empty()) {
    std::string_view prefix = options.add_prefix;
    if (prefix.back() == '/') prefix.remove_suffix(1);
    target.insert(0, prefix);
  }
}

void apply_header_rewrite(const HeaderRewrite& rewrite, mh::HeaderMap& headers) {
  for (const std::string& name : rewrite.remove) headers.remove(name);
  for (const auto& [name, value] : rewrite.add) headers.set(name, value);
}

void prepare_upstream_head(const ForwardOptions& options, mh::Request& request) {
  mh::RequestHead& head = request.head;
  if (!head.target.empty() && head.target.front() != '/' && head.target != "*") {
    std::string authority(head.authority());
    head.target = std::string(head.path_and_query());
    if (head.target.empty() || head.target.front() == '?') head.target.insert(0, "/");
    head.headers.set("Host", authority);
  }
  remove_hop_by_hop(head.headers);
  head.headers.remove("content-length");
  // A trusted proxy's X-Forwarded-For is appended to; anyone else's claim is replaced.
  std::optional<std::string_view> forwarded = head.headers.get("x-forwarded-for");
  if (forwarded && !forwarded->empty() && trusted(options, request.connection)) {
    head.headers.set("X-Forwarded-For",
                     std::string(*forwarded) + ", " + std::string(mh::client_ip(request)));
  } else {
    head.headers.set("X-Forwarded-For", mh::client_ip(request));
  }
  head.headers.set("X-Forwarded-Proto",
                   request.connection && request.connection->tls ? "https" : "http");
  std::string id;
  if (auto existing = head.headers.get("x-request-id"); existing && !existing->empty()) {
    id = std::string(*existing);
  } else {
    id = new_request_id();
    head.headers.add("X-Request-Id", id);
  }
  if (request.context) request.context->request_id = std::move(id);
  // An HTTP/1.0 client may omit Host; HttpForward::call names the upstream then.
}

// The Host of a request that came without one (HTTP/1.0): the upstream's authority, as nginx's
// proxy_pass sends. An empty Host is refused by many servers (nginx answers 400).
std::string upstream_authority(const transport::SocketAddress& address,
                               const std::string& server_name) {
  if (!server_name.empty()) return server_name;
  if (address.is_unix()) return "localhost";
  return address.to_string();
}

mh::Response error_response(mh::Request& request, int status, const std::string& why) {
  if (request.context) request.context->error = why;
  mh::Response r = mh::text_response(status);
  return r;
}

bool stale_connection_error(const Error& e) {
  return e.code() == ErrorCode::kConnectionReset || e.code() == ErrorCode::kClosed ||
         e.code() == ErrorCode::kIo;
}

}  // namespace monolake::proxy::http
