#include "proxy/l4/l4.h"

#include <utility>

#include "base/log.h"
#include "proxy/connection/proxy_header.h"
#include "proxy/upstream/connect.h"
#include "runtime/runtime.h"
#include "transport/copy.h"

namespace monolake::proxy::l4 {

namespace {

Outcome failed(std::string stage, Error error, Outcome outcome = {}) {
  outcome.failed_stage = std::move(stage);
  outcome.error = std::move(error);
  return outcome;
}

}  // namespace

// --- TcpForward ----------------------------------------------------------------------------

Task<Result<Outcome>> TcpForward::call(Connection connection) {
  Outcome outcome;
  const std::optional<uint64_t> key_hash =
      options_.hash_source_ip ? std::optional(stable_hash(connection.peer.ip_text()))
                              : std::nullopt;
  Result<UpstreamConnection> connected = co_await connect_upstream(
      *upstreams_, options_.connect_timeout, "l4", &outcome.upstream, key_hash);
  if (!connected) co_return failed("connect", std::move(connected).error(), std::move(outcome));
  const InFlight active(*upstreams_, connected->index);
  if (options_.send_proxy_protocol) {
    const transport::SocketAddress local =
        connection.context ? connection.context->local : transport::SocketAddress();
    auto [written, unused] = co_await connected->stream.write_all(IoBuffer::copy_of(
        connection::proxy_header_for(options_.send_proxy_protocol, connection.peer, local)));
    if (!written) co_return failed("connect", std::move(written).error(), std::move(outcome));
  }
  // What the connection layers read ahead goes first (on a TLS listener, TlsTerminate took it).
  if (const size_t early = connection.read_ahead.size(); early > 0) {
    auto [written, unused] = co_await connected->stream.write_all(std::move(connection.read_ahead));
    if (!written) co_return failed("copy", std::move(written).error(), std::move(outcome));
    outcome.to_upstream += early;
  }

  transport::CopyOptions copy_options{.idle_timeout = options_.idle_timeout,
                                      .zero_copy = options_.zero_copy};
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
  outcome.to_upstream += copied.a_to_b;
  outcome.to_client = copied.b_to_a;
  if (copied.error) co_return failed("copy", std::move(*copied.error), std::move(outcome));
  co_return outcome;
}

// --- TlsTerminate --------------------------------------------------------------------------

Task<Result<Outcome>> TlsTerminate::call(Connection connection) {
  Result<tls::TlsStream> secured = co_await context_->accept(
      std::move(connection.stream), std::exchange(connection.read_ahead, IoBuffer()));
  if (!secured) co_return failed("tls", std::move(secured).error());
  if (connection.layers) {
    if (Result<void> passed = connection.layers->after_tls(secured->server_name(), secured->alpn(),
                                                           secured->peer_subject());
        !passed) {
      co_return failed("connection_filter", std::move(passed).error());
    }
  }
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

std::vector<Upstream> upstreams_of(const config::RouteConfig& route) {
  std::vector<Upstream> out;
  for (const config::Upstream& u : route.upstreams) {
    out.push_back(Upstream{u.endpoint.address, u.weight});
  }
  return out;
}

std::shared_ptr<metrics::L4ServerStats> l4_server_stats(const Build& build,
                                                        const std::string& server_name) {
  return build.shared<metrics::L4ServerStats>(
      "stats:" + server_name, [&] { return metrics::Registry::global().l4(server_name); });
}

Result<std::shared_ptr<AccessLog>> AccessLogFactory::make_via_ref(const AccessLog*,
                                                                  std::shared_ptr<L4Service> inner,
                                                                  const Build& build) const {
  if (!inner) return Error(ErrorCode::kInvalidArgument, build.scope() + ": nothing to log");
  return std::make_shared<AccessLog>(server_name_, std::move(inner),
                                     l4_server_stats(build, server_name_));
}

Result<std::shared_ptr<TlsTerminate>> TlsTerminateFactory::make_via_ref(
    const TlsTerminate*, std::shared_ptr<L4Service> inner, const Build& build) const {
  if (!inner || !context_) {
    return Error(ErrorCode::kInvalidArgument, build.scope() + ": needs a context and an inner");
  }
  return std::make_shared<TlsTerminate>(context_, std::move(inner));
}

Result<std::shared_ptr<TcpForward>> TcpForwardFactory::make_via_ref(const TcpForward* previous,
                                                                    std::shared_ptr<L4Service>,
                                                                    const Build& build) const {
  if (params_.upstreams.empty()) {
    return Error(ErrorCode::kInvalidArgument, build.scope() + ": no upstreams");
  }
  std::shared_ptr<UpstreamSet> set = UpstreamSet::carry_over(
      previous ? previous->upstreams() : nullptr, params_.upstreams, params_.balancer);
  return std::make_shared<TcpForward>(std::move(set), params_.options);
}

Result<L4Stack> l4_server_stack(const config::ServerConfig& server,
                                std::shared_ptr<const tls::ServerContext> tls_context) {
  if (server.routes.size() != 1) {
    return Error(ErrorCode::kInvalidArgument, "a tcp server needs exactly one route");
  }
  const config::RouteConfig& route = server.routes.front();
  TcpForwardFactory::Params forward;
  forward.upstreams = upstreams_of(route);
  forward.balancer = route.load_balancer;
  forward.options.connect_timeout = server.timeout.upstream_connect;
  if (server.timeout.tcp_idle.count() > 0) forward.options.idle_timeout = server.timeout.tcp_idle;
  forward.options.zero_copy = server.tcp_splice;
  forward.options.send_proxy_protocol = route.send_proxy_protocol.value_or(0);
  forward.options.hash_source_ip = route.hash_on.has_value();  // source_ip: tcp's only key
  return connection_stack(server.name, std::move(tls_context), "forward",
                          std::make_shared<TcpForwardFactory>(std::move(forward)));
}

L4Stack connection_stack(const std::string& server_name,
                         std::shared_ptr<const tls::ServerContext> tls_context,
                         const std::string& handler_name,
                         std::shared_ptr<const L4Stack::Layer> handler) {
  L4Stack stack;
  stack.push("access_log", std::make_shared<AccessLogFactory>(server_name));
  if (tls_context) stack.push("tls", std::make_shared<TlsTerminateFactory>(std::move(tls_context)));
  stack.push(handler_name, std::move(handler));
  return stack;
}

}  // namespace monolake::proxy::l4
