#include "http/h2/server.h"

#include <nghttp2/nghttp2.h>

#include <charconv>

#include "http/h2/session.h"
#include "runtime/time.h"

namespace monolake::http::h2 {

namespace {

// The status of a request the proxy answers itself, before any handler (0: none).
int refusal(const StreamState& stream, const Options& options) {
  if (stream.head_too_large) return 431;
  if (stream.method == "CONNECT") return 501;
  if (content_length(stream.headers).value_or(0) > options.max_request_body) return 413;
  return 0;
}

Request make_request(const std::shared_ptr<Session>& session,
                     const std::shared_ptr<StreamState>& stream, const ConnectionInfo& info) {
  Request request;
  request.head.method = std::move(stream->method);
  request.head.target = std::move(stream->path);
  request.head.version = Version::kHttp2;
  request.head.headers = std::move(stream->headers);
  // :authority is the authority (RFC 9113 8.3.1); HTTP/1.1 carries it in Host.
  if (!stream->authority.empty()) request.head.headers.set("host", stream->authority);
  if (!(stream->in_ended && stream->in.empty())) {
    request.body =
        std::make_unique<StreamBody>(session, stream, content_length(request.head.headers));
  }
  request.connection = &info;
  return request;
}

bool body_forbidden(std::string_view method, int status) {
  return method == "HEAD" || status == 204 || status == 304 || (status >= 100 && status < 200);
}

// One request stream: the handler, then the response head and body.
runtime::Task<void> serve_stream(std::shared_ptr<Session> session,
                                 std::shared_ptr<StreamState> stream, const ConnectionInfo* info,
                                 const Handler* handler, int refused) {
  const std::string method = stream->method;
  Response response;
  if (refused != 0) {
    response = text_response(refused);
  } else {
    Request request = make_request(session, stream, *info);
    response = co_await (*handler)(std::move(request));
  }
  if (response.upgrade) response = text_response(502);  // no 101 in HTTP/2
  std::unique_ptr<Body> body = std::move(response.body);
  // An empty body is left out (END_STREAM on the HEADERS frame), unless trailers follow it.
  const bool empty = body && body->length() == 0 && !body->trailers();
  if (body_forbidden(method, response.head.status) || empty) {
    body.reset();
  }
  if (!session->submit_response(stream, response.head, body != nullptr)) co_return;
  if (body) co_await session->pump_body(stream, std::move(body));
}

// Checks `*draining` once a second and sends GOAWAY when it turns true.
struct DrainWatch {
  Session* session;
  const bool* draining;
  runtime::Deadline tick;
  static void fire(void* p) {
    auto* self = static_cast<DrainWatch*>(p);
    if (*self->draining) {
      self->session->shutdown();
      return;
    }
    self->arm();
  }
  void arm() {
    tick.arm(runtime::Runtime::current()->now() + std::chrono::seconds(1), &DrainWatch::fire, this);
  }
};

}  // namespace

PrefaceMatch match_preface(std::string_view bytes) {
  const std::string_view preface(kClientPreface, kClientPrefaceSize);
  const size_t n = std::min(bytes.size(), preface.size());
  if (bytes.substr(0, n) != preface.substr(0, n)) return PrefaceMatch::kNo;
  return n == preface.size() ? PrefaceMatch::kYes : PrefaceMatch::kPartial;
}

runtime::Task<ServeStats> serve(transport::ByteStream& stream, const ConnectionInfo& info,
                                const Options& options, const Handler& handler, IoBuffer pending,
                                const bool* draining) {
  auto session = std::make_shared<Session>(Session::Role::kServer, stream, options);
  session->set_peer(info.peer_text);
  Session* raw = session.get();
  Result<void> started =
      session->init([raw, &info, &handler, &options](std::shared_ptr<StreamState> s) {
        // Decided now, before any DATA of the stream is counted against the body limit.
        const int refused = refusal(*s, options);
        if (refused != 0) s->in_discard = true;
        s->task.emplace(runtime::spawn_with_handle(
            serve_stream(raw->shared_from_this(), s, &info, &handler, refused)));
      });
  ServeStats stats;
  if (!started) {
    stats.ended = started.error().to_string();
    co_return stats;
  }
  DrainWatch watch{raw, draining, {}};
  if (draining) watch.arm();
  co_await session->run(std::move(pending));
  watch.tick.disarm();
  stats.streams = session->streams_opened();
  stats.ended = session->end_reason();
  stats.abuse = session->abused();
  co_return stats;
}

}  // namespace monolake::http::h2
