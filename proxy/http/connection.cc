#include "proxy/http/connection.h"

#include <utility>

#include "base/log.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/byte_stream.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

namespace {

// What requests see of the connection: the effective client (the socket's peer unless a
// connection layer announced another).
mh::ConnectionInfo connection_info(const transport::SocketAddress& peer) {
  mh::ConnectionInfo info;
  info.peer = peer;
  info.peer_text = info.peer.to_string();
  info.client_ip = info.peer.ip_text();
  return info;
}

// Each request on the chain current when it arrives, held for that request.
mh::h1::Handler handler_of(ChainSource chains) {
  return [chains = std::move(chains)](mh::Request request) -> Task<mh::Response> {
    std::shared_ptr<HttpService> chain = chains();
    if (!chain) co_return mh::text_response(503);
    Result<mh::Response> response = co_await chain->call(std::move(request));
    if (!response) co_return mh::text_response(502);
    co_return std::move(*response);
  };
}

// On a plain listener with HTTP/2 on: reads until the bytes are or are not the HTTP/2 preface
// (one deadline for the whole preface, however it is split). nullopt: the client went away or
// took too long.
Task<std::optional<mh::h2::PrefaceMatch>> detect_preface(transport::ByteStream& bytes,
                                                         IoBuffer& pending,
                                                         runtime::Duration limit) {
  const runtime::TimePoint deadline = runtime::Runtime::current()->now() + limit;
  // Bytes the connection layers read ahead may hold the whole preface, or a whole request.
  mh::h2::PrefaceMatch match =
      pending.empty() ? mh::h2::PrefaceMatch::kPartial : mh::h2::match_preface(pending.view());
  while (match == mh::h2::PrefaceMatch::kPartial) {
    const auto left = deadline - runtime::Runtime::current()->now();
    if (left <= runtime::Duration::zero()) co_return std::nullopt;
    Result<size_t> n = co_await runtime::with_timeout(bytes.read_some(pending), left);
    if (!n || *n == 0) co_return std::nullopt;
    match = mh::h2::match_preface(pending.view());
  }
  co_return match;
}

}  // namespace

Task<void> serve_connection(transport::Stream stream, IoBuffer read_ahead,
                            const connection::ConnectionContext& context,
                            connection::ConnectionRun& layers, ConnectionOptions options,
                            const bool* draining, ChainSource chains, H2Served h2_served) {
  mh::ConnectionInfo info = connection_info(context.client);
  info.local = context.local;
  options.h1.draining = draining;
  const mh::h1::Handler handler = handler_of(std::move(chains));
  if (options.tls) {
    Result<tls::TlsStream> secured =
        co_await options.tls->accept(std::move(stream), std::move(read_ahead));
    if (!secured) {
      ML_LOG(kDebug, "http: TLS handshake from {} failed: {}", info.peer_text,
             secured.error().to_string());
      co_return;
    }
    info.tls = true;
    info.server_name = secured->server_name();
    if (!layers.after_tls(secured->server_name(), secured->alpn(), secured->peer_subject())) {
      co_return;
    }
    const bool h2 = options.h2 && secured->alpn() == "h2";
    transport::ByteStreamOf<tls::TlsStream> bytes(std::move(*secured));
    if (h2) {
      h2_served(co_await mh::h2::serve(bytes, info, *options.h2, handler, {}, draining));
    } else {
      (void)co_await mh::h1::serve(bytes, info, options.h1, handler);
    }
    co_return;
  }
  transport::ByteStreamOf<transport::Stream> bytes(std::move(stream));
  IoBuffer pending = std::move(read_ahead);
  if (options.h2) {
    // HTTP/2 with prior knowledge starts with its preface; anything else is HTTP/1.1.
    std::optional<mh::h2::PrefaceMatch> match =
        co_await detect_preface(bytes, pending, options.h1.read_header_timeout);
    if (!match) co_return;
    if (*match == mh::h2::PrefaceMatch::kYes) {
      h2_served(
          co_await mh::h2::serve(bytes, info, *options.h2, handler, std::move(pending), draining));
      co_return;
    }
  }
  (void)co_await mh::h1::serve(bytes, info, options.h1, handler, std::move(pending));
}

}  // namespace monolake::proxy::http
