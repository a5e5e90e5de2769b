#include "proxy/http/factory.h"

#include "proxy/http/access_log.h"
#include "proxy/http/direct_answer.h"
#include "proxy/http/forward.h"
#include "proxy/http/route_table.h"

namespace monolake::proxy::http {

namespace mh = monolake::http;

mh::h2::Options h2_options(const config::ServerConfig& server) {
  const config::Http2Config& c = server.http2;
  mh::h2::Options o;
  o.max_concurrent_streams = c.max_concurrent_streams;
  o.initial_stream_window = c.initial_stream_window;
  o.connection_window = c.connection_window;
  o.max_header_list_size = c.max_header_list_size;
  o.max_continuations = c.max_continuations;
  o.reset_burst = c.max_resets_burst;
  o.reset_rate_per_sec = c.max_resets_per_sec;
  o.max_control_frames_per_sec = c.max_control_frames_per_sec;
  o.max_consecutive_empty_frames = c.max_consecutive_empty_frames;
  o.max_priority_frames_per_stream = c.max_priority_frames_per_stream;
  o.max_request_body = server.max_request_body_bytes;
  if (server.timeout.server_keepalive.count() > 0) o.idle_timeout = server.timeout.server_keepalive;
  o.read_body_timeout = server.timeout.server_read_body;
  o.write_timeout = server.timeout.server_write;
  return o;
}

namespace {

const RouteTable* find_route_table(const HttpService* service) {
  while (service) {
    if (const auto* table = dynamic_cast<const RouteTable*>(service)) return table;
    const auto* layer = dynamic_cast<const Layer<mh::Request, mh::Response>*>(service);
    if (!layer) return nullptr;
    service = layer->inner().get();
  }
  return nullptr;
}

std::vector<Upstream> http_upstreams_of(const config::RouteConfig& route) {
  std::vector<Upstream> out;
  for (const config::Upstream& u : route.upstreams) out.push_back({u.endpoint.address, u.weight});
  return out;
}

}  // namespace

Result<std::shared_ptr<HttpService>> HttpFactory::make_from(
    const std::shared_ptr<HttpService>& previous) const {
  const RouteTable* old = find_route_table(previous.get());
  std::shared_ptr<ConnectionPool> pool =
      old ? old->pool() : std::make_shared<ConnectionPool>(ConnectionPool::Options{});
  // Counters carry over while the server keeps its name (totals do not reset on reload).
  std::shared_ptr<metrics::HttpServerStats> stats;
  if (const auto* log = dynamic_cast<const AccessLog*>(previous.get());
      log && log->stats() && log->stats()->server == server_.name) {
    stats = log->stats();
  } else {
    stats = metrics::Registry::global().http(server_.name);
  }
  pool->set_gauge(stats);
  pool->set_max_idle_per_upstream(server_.upstream_max_idle_connections);
  ForwardOptions options;
  options.connect_timeout = server_.timeout.upstream_connect;
  options.response_timeout = server_.timeout.upstream_read;
  options.version = server_.upstream_http_version;
  options.h2 = h2_options(server_);
  options.h2.read_body_timeout = server_.timeout.upstream_read;

  Router router;
  std::vector<std::shared_ptr<HttpService>> routes;
  for (size_t r = 0; r < server_.routes.size(); ++r) {
    const config::RouteConfig& route = server_.routes[r];
    if (auto added = router.add(route.host, route.path); !added) return std::move(added).error();
    if (route.direct) {
      routes.push_back(std::make_shared<DirectAnswer>(*route.direct));
      continue;
    }
    std::vector<Upstream> upstreams = http_upstreams_of(route);
    std::shared_ptr<UpstreamSet> set;
    if (old) {
      for (const auto& r : old->routes()) {
        const auto* forward = dynamic_cast<const HttpForward*>(r.get());
        if (forward && forward->upstreams()->same_as(upstreams, route.load_balancer)) {
          set = forward->upstreams();
          break;
        }
      }
    }
    if (!set) set = std::make_shared<UpstreamSet>(std::move(upstreams), route.load_balancer);
    ForwardOptions route_options = options;
    route_options.host_rewrite = route.host_rewrite;
    route_options.strip_prefix = route.strip_prefix;
    route_options.add_prefix = route.add_prefix;
    route_options.request_headers = route.request_headers;
    route_options.response_headers = route.response_headers;
    route_options.trusted_proxies = server_.trusted_proxies;
    route_options.websocket = route.websocket;
    if (server_.timeout.tcp_idle.count() > 0) {
      route_options.tunnel_idle_timeout = server_.timeout.tcp_idle;
    }
    if (r < upstream_tls_.size() && upstream_tls_[r]) {
      route_options.tls = upstream_tls_[r];
      for (const config::Upstream& u : route.upstreams) {
        route_options.server_names.push_back(
            !route.upstream_tls->sni.empty() ? route.upstream_tls->sni : u.endpoint.uri.host);
      }
    }
    routes.push_back(std::make_shared<HttpForward>(std::move(set), pool, route_options, stats));
  }
  std::shared_ptr<HttpService> chain =
      std::make_shared<RouteTable>(std::move(router), std::move(routes), pool);
  chain = std::make_shared<AccessLog>(server_.name, std::move(chain), std::move(stats));
  return chain;
}

}  // namespace monolake::proxy::http
