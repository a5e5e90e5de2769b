#include "proxy/http/access_log.h"

#include "base/log.h"
#include "runtime/runtime.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

namespace {

// Wraps a response body to count what is sent, and writes the access line when the body ends
// or is dropped (after the response went out, or the client went away).
class LoggedBody final : public mh::Body {
 public:
  struct Line {
    std::string server, client, method, target;
    int status = 0;
    mh::RequestContext notes;
    runtime::TimePoint start;
  };
  LoggedBody(std::unique_ptr<mh::Body> inner, Line line,
             std::shared_ptr<metrics::HttpServerStats> stats)
      : inner_(std::move(inner)), line_(std::move(line)), stats_(std::move(stats)) {}
  ~LoggedBody() override {
    if (stats_) stats_->observe(line_.status, runtime::Runtime::current()->now() - line_.start);
    write_line();
  }

  Task<Result<IoBuffer>> read() override {
    if (!inner_) co_return IoBuffer();
    Result<IoBuffer> piece = co_await inner_->read();
    if (!piece) {
      if (line_.notes.error.empty())
        line_.notes.error = "response body: " + piece.error().to_string();
      co_return piece;
    }
    bytes_ += piece->size();
    co_return piece;
  }
  std::optional<uint64_t> length() const override {
    return inner_ ? inner_->length() : std::optional<uint64_t>(0);
  }
  const mh::HeaderMap* trailers() const override { return inner_ ? inner_->trailers() : nullptr; }

 private:
  void write_line() {
    if (!access_log_enabled()) return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        runtime::Runtime::current()->now() - line_.start);
    std::string extra;  // fields layers added, before error= (which runs to the end of the line)
    for (const auto& [key, value] : line_.notes.log_fields) {
      extra += fmt::format(" {}={}", key, value.empty() ? "-" : value);
    }
    write_access_line(
        fmt::format("http server={} client={} method={} target={} status={} bytes={} upstream={} "
                    "duration_ms={} request_id={}{}{}{}",
                    line_.server, line_.client, line_.method, line_.target, line_.status, bytes_,
                    line_.notes.upstream.empty() ? "-" : line_.notes.upstream, ms.count(),
                    line_.notes.request_id.empty() ? "-" : line_.notes.request_id, extra,
                    line_.notes.error.empty() ? "" : " error=", line_.notes.error));
  }
  std::unique_ptr<mh::Body> inner_;
  Line line_;
  std::shared_ptr<metrics::HttpServerStats> stats_;
  uint64_t bytes_ = 0;
};

std::string printable_target(std::string_view target) {
  // Targets are checked ASCII without spaces by the codec; cap the length for the log.
  return std::string(target.substr(0, 2048));
}

}  // namespace

Task<Result<mh::Response>> AccessLog::call(mh::Request request) {
  LoggedBody::Line line;
  line.start = runtime::Runtime::current()->now();
  if (access_log_enabled()) {  // the strings are for the log line only
    line.server = server_name_;
    line.client = request.connection ? request.connection->peer_text : "-";
    line.method = request.head.method;
    line.target = printable_target(request.head.target);
  }
  mh::RequestContext notes;
  notes.received = line.start;
  request.context = &notes;
  Result<mh::Response> response = co_await inner_->call(std::move(request));
  if (!response) {
    notes.error = response.error().to_string();
    response = mh::text_response(502);
  }
  line.status = response->head.status;
  line.notes = std::move(notes);
  response->body = std::make_unique<LoggedBody>(std::move(response->body), std::move(line), stats_);
  co_return response;
}

std::shared_ptr<metrics::HttpServerStats> http_server_stats(const Build& build,
                                                            const std::string& server_name) {
  return build.shared<metrics::HttpServerStats>(
      "stats:" + server_name, [&] { return metrics::Registry::global().http(server_name); });
}

Result<std::shared_ptr<AccessLog>> AccessLogFactory::make_via_ref(
    const AccessLog*, std::shared_ptr<HttpService> inner, const Build& build) const {
  if (!inner) return Error(ErrorCode::kInvalidArgument, build.scope() + ": nothing to log");
  return std::make_shared<AccessLog>(server_name_, std::move(inner),
                                     http_server_stats(build, server_name_));
}

}  // namespace monolake::proxy::http
