// One client connection of an HTTP server: the TLS handshake when the listener has TLS, then
// the protocol — HTTP/2 when ALPN chose h2 or (on a plain listener) the client opened with the
// HTTP/2 preface, HTTP/1.1 otherwise — and every request handed to the chain the ChainSource
// gives *at that request*, so a reload reaches keep-alive and HTTP/2 clients at their next
// request. As proxy/thrift/connection.h is for Thrift.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "http/h1/server.h"
#include "http/h2/options.h"
#include "http/h2/server.h"
#include "proxy/connection/chain.h"
#include "proxy/connection/context.h"
#include "proxy/http/http_service.h"
#include "runtime/task.h"
#include "tls/tls.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::proxy::http {

struct ConnectionOptions {
  monolake::http::h1::ServerOptions h1;
  std::optional<monolake::http::h2::Options> h2;  // HTTP/2 towards clients; nullopt: off
  std::shared_ptr<const tls::ServerContext> tls;  // the listener's TLS; nullptr: plain
};

// The chain for the next request, or nullptr (answered 503).
using ChainSource = std::function<std::shared_ptr<HttpService>()>;
// Told what an HTTP/2 connection served, once it ends (for /stats).
using H2Served = std::function<void(const monolake::http::h2::ServeStats&)>;

// Serves `stream` until the client closes it, a timeout, an error, or — once `*draining` is
// set — the end of the current response (HTTP/1.1) or a GOAWAY (HTTP/2). `read_ahead`: bytes
// the connection layers read and left (the client's first bytes). `context` (its `client` is
// the address requests are forwarded for) and `layers` belong to the caller and outlive the
// task; on a TLS listener this runs the handshake, fills in the context's TLS facts and then
// the layers' after_tls (on a plain one the caller has run it). `draining` must outlive the
// task.
Task<void> serve_connection(transport::Stream stream, IoBuffer read_ahead,
                            const connection::ConnectionContext& context,
                            connection::ConnectionRun& layers, ConnectionOptions options,
                            const bool* draining, ChainSource chains, H2Served h2_served);

}  // namespace monolake::proxy::http
