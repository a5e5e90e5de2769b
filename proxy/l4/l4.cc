#include "proxy/l4/l4.h"

#include <algorithm>

#include "base/log.h"
#include "runtime/runtime.h"
#include "transport/copy.h"

namespace monolake::proxy::l4 {

namespace {

struct Connected {
  size_t index = 0;
  transport::Stream stream;
};

// Ends the upstream's in-flight count (least_request) however the connection ends.
class ActiveUpstream {
 public:
  ActiveUpstream(UpstreamSet& set, size_t index) : set_(set), index_(index) { set_.begin(index_); }
  ~ActiveUpstream() { set_.end(index_); }
  ActiveUpstream(const ActiveUpstream&) = delete;
  ActiveUpstream& operator=(const ActiveUpstream&) = delete;

 private:
  UpstreamSet& set_;
  size_t index_;
};

Outcome failed(std::string stage, Error error, Outcome outcome = {}) {
  outcome.failed_stage = std::move(stage);
  outcome.error = std::move(error);
  return outcome;
}

}  // namespace

// --- TcpForward ----------------------------------------------------------------------------

// Tries up to kMaxConnectAttempts upstreams (never more than there are). A failed connect
// (refused, timed out, unreachable) backs that upstream off, so the next pick skips it.
static Task<Result<Connected>> connect_any(UpstreamSet& upstreams, std::chrono::nanoseconds timeout,
                                           Outcome& outcome) {
  runtime::Runtime* rt = runtime::Runtime::current();
  runtime::CancelState* cancel = co_await runtime::current_cancel_state{};
  const size_t attempts = std::min<size_t>(kMaxConnectAttempts, upstreams.size());
  std::optional<Error> last;
  for (size_t attempt = 0; attempt < attempts; ++attempt) {
    const size_t index = upstreams.pick(rt->now());
    const transport::SocketAddress& address = upstreams.at(index).address;
    outcome.upstream = address.to_string();
    Result<transport::Stream> stream =
        co_await transport::Stream::connect(address, {.timeout = timeout});
    if (stream) {
      upstreams.report_success(index);
      co_return Connected{index, std::move(*stream)};
    }
    if (cancel && cancel->cancelled()) co_return std::move(stream).error();
    upstreams.report_failure(index, rt->now());
    ML_LOG(kWarn, "l4: upstream {} failed: {}", outcome.upstream, stream.error().to_string());
    last = std::move(stream).error();
  }
  co_return std::move(*last);
}

Task<Result<Outcome>> TcpForward::call(Connection connection) {
  Outcome outcome;
  Result<Connected> connected =
      co_await connect_any(*upstreams_, options_.connect_timeout, outcome);
  if (!connected) co_return failed("connect", std::move(connected).error(), std::move(outcome));
  ActiveUpstream active(*upstreams_, connected->index);

  transport::CopyOptions copy_options{.idle_timeout = options_.idle_timeout};
  // Two statements, not `tls ? co_await a : co_await b`: GCC 12 initialises the variable with a
  // bitwise copy of the chosen branch's temporary and then destroys that temporary too, so the
  // CopyResult's error message (a std::string) was freed twice, or, when short enough for the
  // in-place buffer, left pointing into the dead temporary (an invalid free later).
  transport::CopyResult copied;
  if (connection.tls) {
    copied =
        co_await transport::copy_bidirectional(*connection.tls, connected->stream, copy_options);
  } else {
    copied =
        co_await transport::copy_bidirectional(connection.stream, connected->stream, copy_options);
  }
  outcome.to_upstream = copied.a_to_b;
  outcome.to_client = copied.b_to_a;
  if (copied.error) co_return failed("copy", std::move(*copied.error), std::move(outcome));
  co_return outcome;
}

// --- TlsTerminate --------------------------------------------------------------------------

Task<Result<Outcome>> TlsTerminate::call(Connection connection) {
  Result<tls::TlsStream> secured = co_await context_->accept(std::move(connection.stream));
  if (!secured) co_return failed("tls", std::move(secured).error());
  connection.tls.emplace(std::move(*secured));
  co_return co_await inner_->call(std::move(connection));
}

// --- AccessLog -----------------------------------------------------------------------------

static std::string how_it_ended(const Result<Outcome>& outcome) {
  if (!outcome) return "failed: " + outcome.error().to_string();
  if (!outcome->error) return "closed";
  return outcome->failed_stage + ": " + outcome->error->to_string();
}

Task<Result<Outcome>> AccessLog::call(Connection connection) {
  runtime::Runtime* rt = runtime::Runtime::current();
  const runtime::TimePoint start = rt->now();
  const std::string client = access_log_enabled() ? connection.peer.to_string() : "";
  if (stats_) {
    stats_->connections.add();
    stats_->active.add();
  }
  Result<Outcome> outcome = co_await inner_->call(std::move(connection));
  if (stats_) {
    stats_->active.sub();
    if (outcome) {
      stats_->bytes_to_upstream.add(outcome->to_upstream);
      stats_->bytes_to_client.add(outcome->to_client);
      if (outcome->failed_stage == "connect") stats_->upstream_connect_errors.add();
    }
  }
  if (access_log_enabled()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(rt->now() - start);
    const bool reached = outcome && !outcome->upstream.empty();
    write_access_line(fmt::format(
        "l4 server={} client={} upstream={} to_upstream={} to_client={} duration_ms={} end={}",
        server_name_, client, reached ? outcome->upstream : "-", outcome ? outcome->to_upstream : 0,
        outcome ? outcome->to_client : 0, ms.count(), how_it_ended(outcome)));
  }
  co_return outcome;
}

// --- L4Factory -----------------------------------------------------------------------------

std::vector<Upstream> upstreams_of(const config::RouteConfig& route) {
  std::vector<Upstream> out;
  for (const config::Upstream& u : route.upstreams) {
    out.push_back(Upstream{u.endpoint.address, u.weight});
  }
  return out;
}

// The TcpForward at the bottom of a chain, if the chain is one of ours.
static const TcpForward* find_forward(const L4Service* service) {
  while (service) {
    if (const auto* forward = dynamic_cast<const TcpForward*>(service)) return forward;
    const auto* layer = dynamic_cast<const Layer<Connection, Outcome>*>(service);
    if (!layer) return nullptr;
    service = layer->inner().get();
  }
  return nullptr;
}

Result<std::shared_ptr<L4Service>> L4Factory::make_from(
    const std::shared_ptr<L4Service>& previous) const {
  if (server_.routes.size() != 1) {
    return Error(ErrorCode::kInvalidArgument, "a tcp server needs exactly one route");
  }
  const config::RouteConfig& route = server_.routes.front();
  std::vector<Upstream> upstreams = upstreams_of(route);
  std::shared_ptr<UpstreamSet> set;
  if (const TcpForward* old = find_forward(previous.get());
      old && old->upstreams()->same_as(upstreams, route.load_balancer)) {
    set = old->upstreams();  // keep back-off state and balancer position
  } else {
    set = std::make_shared<UpstreamSet>(std::move(upstreams), route.load_balancer);
  }
  TcpForward::Options options;
  options.connect_timeout = server_.timeout.upstream_connect;
  if (server_.timeout.tcp_idle.count() > 0) options.idle_timeout = server_.timeout.tcp_idle;
  std::shared_ptr<L4Service> chain = std::make_shared<TcpForward>(std::move(set), options);
  if (tls_context_) chain = std::make_shared<TlsTerminate>(tls_context_, std::move(chain));
  std::shared_ptr<metrics::L4ServerStats> stats;
  if (const auto* log = dynamic_cast<const AccessLog*>(previous.get());
      log && log->stats() && log->stats()->server == server_.name) {
    stats = log->stats();
  } else {
    stats = metrics::Registry::global().l4(server_.name);
  }
  chain = std::make_shared<AccessLog>(server_.name, std::move(chain), std::move(stats));
  return chain;
}

}  // namespace monolake::proxy::l4
