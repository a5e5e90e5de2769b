#include "http/h2/client.h"

#include <nghttp2/nghttp2.h>

#include <charconv>

#include "http/h2/session.h"
#include "runtime/notify.h"
#include "runtime/time.h"

namespace monolake::http::h2 {

namespace {

runtime::Task<void> run_session(std::shared_ptr<Session> session) {
  co_await session->run(IoBuffer());
}

}  // namespace

Result<std::shared_ptr<ClientConnection>> ClientConnection::start(
    std::unique_ptr<transport::ByteStream> stream, const Options& options, std::string scheme,
    std::string peer) {
  auto session = std::make_shared<Session>(Session::Role::kClient, std::move(stream), options);
  session->set_scheme(std::move(scheme));
  session->set_peer(std::move(peer));
  if (auto r = session->init(); !r) return r.error();
  runtime::spawn(run_session(session));
  return std::shared_ptr<ClientConnection>(new ClientConnection(std::move(session)));
}

ClientConnection::~ClientConnection() { session_->close(NGHTTP2_NO_ERROR); }

size_t ClientConnection::available_streams() const { return session_->available_streams(); }
size_t ClientConnection::open_streams() const { return session_->open_streams(); }
bool ClientConnection::closed() const { return session_->closed(); }
void ClientConnection::shutdown() { session_->shutdown(); }

namespace {

// Waits for the final response head of `stream` (interim 1xx heads are skipped by the session).
runtime::Task<Result<void>> wait_head(Session& session, const std::shared_ptr<StreamState>& stream,
                                      std::chrono::nanoseconds timeout) {
  while (!stream->head_done) {
    if (stream->closed || session.closed()) {
      const bool refused = stream->close_code == NGHTTP2_REFUSED_STREAM ||
                           (session.goaway_received() && stream->id > session.goaway_last_stream());
      if (refused) {
        co_return Error(ErrorCode::kConnectionRefused, "HTTP/2 upstream refused the stream");
      }
      co_return Error(ErrorCode::kConnectionReset, "HTTP/2 upstream reset the stream (code " +
                                                       std::to_string(stream->close_code) + ")");
    }
    Result<void> woken =
        co_await runtime::with_timeout(runtime::notified(stream->in_ready), timeout);
    if (!woken) co_return woken.error();
  }
  if (stream->head_too_large) {
    co_return Error(ErrorCode::kProtocol,
                    "HTTP/2 upstream response head over max_header_list_size");
  }
  co_return ok();
}

void cancel_pump(const std::shared_ptr<StreamState>& stream) {
  if (stream->task && !stream->task->done()) stream->task->cancel();
}

// Waits until the request body pump of `stream` has ended (cancelling it first unless
// `let_finish`). Used when the body borrows its caller's connection (HTTP/1.1), which must not
// be read by anyone else once request() returns.
runtime::Task<void> finish_pump(const std::shared_ptr<StreamState>& stream, bool let_finish) {
  if (!let_finish) cancel_pump(stream);
  while (stream->pump_running) {
    Result<void> woken = co_await stream->pump_done.wait();
    if (!woken) {
      // This task is being cancelled, so it cannot wait any more: stop the pump and let it
      // finish its pending operation (a loop turn or two).
      cancel_pump(stream);
      while (stream->pump_running) co_await runtime::yield_now{};
    }
  }
}

}  // namespace

runtime::Task<Result<Response>> ClientConnection::request(RequestHead head,
                                                          std::unique_ptr<Body> body,
                                                          std::chrono::nanoseconds response_timeout,
                                                          BodyMode mode) {
  std::shared_ptr<Session> session = session_;
  // Content-Length: the body's, or 0 for a bodiless request of a method that normally has one.
  const bool body_method = head.method == "POST" || head.method == "PUT" || head.method == "PATCH";
  std::optional<uint64_t> length;
  if (body) {
    length = body->length();
  } else if (body_method) {
    length = 0;
  }
  const bool has_body = body && length != 0;
  Result<std::shared_ptr<StreamState>> submitted = session->submit_request(head, has_body, length);
  if (!submitted) co_return submitted.error();
  std::shared_ptr<StreamState> stream = std::move(*submitted);
  if (has_body) {
    stream->task.emplace(runtime::spawn_with_handle(session->pump_body(stream, std::move(body))));
  }
  Result<void> head_arrived = co_await wait_head(*session, stream, response_timeout);
  if (!head_arrived) session->reset_stream(stream, NGHTTP2_CANCEL);
  if (mode == BodyMode::kSentBeforeReturn) {
    // Let the body finish only while the upstream may still want it.
    const bool wanted = head_arrived && !stream->in_ended && !stream->closed;
    co_await finish_pump(stream, wanted);
  }
  if (!head_arrived) co_return head_arrived.error();
  Response response;
  response.head.status = stream->status;
  response.head.version = Version::kHttp2;
  response.head.headers = std::move(stream->headers);
  if (!(stream->in_ended && stream->in.empty())) {
    response.body =
        std::make_unique<StreamBody>(session, stream, content_length(response.head.headers));
  } else if (!stream->trailers.empty() || stream->trailers_too_large) {
    // Trailers right after the head: keep them reachable through an empty body.
    response.body = std::make_unique<StreamBody>(session, stream, std::nullopt);
  }
  co_return response;
}

}  // namespace monolake::http::h2
