#include "proxy/http/server_stack.h"

#include "proxy/http/access_log.h"
#include "proxy/http/compression.h"
#include "proxy/http/direct_answer.h"
#include "proxy/http/forward.h"
#include "proxy/http/rate_limit.h"
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

std::vector<Upstream> http_upstreams_of(const config::RouteConfig& route) {
  std::vector<Upstream> out;
  for (const config::Upstream& u : route.upstreams) out.push_back({u.endpoint.address, u.weight});
  return out;
}

// What every route of the server forwards with, before the route's own settings.
ForwardOptions server_forward_options(const config::ServerConfig& server) {
  ForwardOptions options;
  options.connect_timeout = server.timeout.upstream_connect;
  options.response_timeout = server.timeout.upstream_read;
  options.version = server.upstream_http_version;
  options.h2 = h2_options(server);
  options.h2.read_body_timeout = server.timeout.upstream_read;
  options.trusted_proxies = server.trusted_proxies;
  if (server.timeout.tcp_idle.count() > 0) options.tunnel_idle_timeout = server.timeout.tcp_idle;
  return options;
}

ForwardFactory::Params forward_params(const config::ServerConfig& server,
                                      const config::RouteConfig& route,
                                      std::shared_ptr<const tls::ClientContext> tls) {
  ForwardFactory::Params params;
  params.server_name = server.name;
  params.upstreams = http_upstreams_of(route);
  params.balancer = route.load_balancer;
  params.max_idle_per_upstream = server.upstream_max_idle_connections;
  ForwardOptions& options = params.options;
  options = server_forward_options(server);
  options.host_rewrite = route.host_rewrite;
  options.strip_prefix = route.strip_prefix;
  options.add_prefix = route.add_prefix;
  options.request_headers = route.request_headers;
  options.response_headers = route.response_headers;
  options.websocket = route.websocket;
  options.hash_on = route.hash_on;
  if (route.send_proxy_protocol) {
    options.send_proxy_protocol = *route.send_proxy_protocol;
    options.version = UpstreamHttpVersion::kHttp11;  // one client per upstream connection
  }
  if (tls) {
    options.tls = std::move(tls);
    for (const config::Upstream& u : route.upstreams) {
      options.server_names.push_back(!route.upstream_tls->sni.empty() ? route.upstream_tls->sni
                                                                      : u.endpoint.uri.host);
    }
  }
  return params;
}

// Pushes the layers of `filters` (at `key_path`[i] in the file) onto `stack`.
Result<void> push_filters(const std::vector<config::FilterConfig>& filters,
                          const std::string& route, const std::string& key_path,
                          const FilterLayerMaker& make, HttpStack& stack) {
  for (size_t i = 0; i < filters.size(); ++i) {
    const config::FilterConfig& filter = filters[i];
    const std::string path = key_path + "[" + std::to_string(i) + "]";
    if (!make) {
      return Error(ErrorCode::kInvalidArgument, path + ": no filter '" + filter.name + "' here");
    }
    Result<std::shared_ptr<const HttpStack::Layer>> layer = make(filter, route, path);
    if (!layer) return std::move(layer).error();
    stack.push("filter:" + filter.name, std::move(*layer),
               filter.id.empty() ? "" : "filter[" + filter.id + "]");
  }
  return ok();
}

}  // namespace

Result<HttpStack> http_server_stack(
    const config::ServerConfig& server,
    const std::vector<std::shared_ptr<const tls::ClientContext>>& upstream_tls,
    const FilterLayerMaker& filters, size_t workers) {
  const std::string server_path = "servers." + server.key;
  std::vector<RouteTableFactory::Route> routes;
  for (size_t r = 0; r < server.routes.size(); ++r) {
    const config::RouteConfig& route = server.routes[r];
    RouteTableFactory::Route entry{route.host, route.path, "", {}};
    if (route.rate_limit) {
      // Outermost in the route: a refused request costs no filter's work.
      entry.stack.push("rate_limit",
                       std::make_shared<RateLimitFactory>(*route.rate_limit, workers, server.name,
                                                          route.host + " " + route.path));
    }
    if (route.compression) {
      entry.stack.push("compression", std::make_shared<CompressionFactory>(*route.compression));
    }
    if (auto pushed = push_filters(route.filters, route.host + " " + route.path,
                                   server_path + ".routes[" + std::to_string(r) + "].filters",
                                   filters, entry.stack);
        !pushed) {
      return std::move(pushed).error();
    }
    if (route.direct) {
      entry.stack.push("return", std::make_shared<DirectAnswerFactory>(*route.direct));
    } else {
      auto tls = r < upstream_tls.size() ? upstream_tls[r] : nullptr;
      entry.stack.push("forward",
                       std::make_shared<ForwardFactory>(forward_params(server, route, tls)));
    }
    routes.push_back(std::move(entry));
  }
  HttpStack stack;
  stack.push("access_log", std::make_shared<AccessLogFactory>(server.name));
  if (server.compression) {
    // Outside the server's filters: they see the response as the upstream sent it.
    stack.push("compression", std::make_shared<CompressionFactory>(*server.compression));
  }
  if (auto pushed = push_filters(server.filters, "", server_path + ".filters", filters, stack);
      !pushed) {
    return std::move(pushed).error();
  }
  stack.push("routes", std::make_shared<RouteTableFactory>(std::move(routes)));
  return stack;
}

}  // namespace monolake::proxy::http
