#include "proxy/admin/admin.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "http/exchange.h"
#include "http/h1/server.h"
#include "proxy/metrics/metrics.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/byte_stream.h"
#include "transport/stream.h"

namespace monolake::proxy::admin {

namespace mh = monolake::http;
using runtime::Task;

namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

mh::Response json_response(int status, std::string body) {
  mh::Response r;
  r.head.status = status;
  r.head.headers.add("Content-Type", "application/json");
  r.body = std::make_unique<mh::StringBody>(std::move(body));
  return r;
}

mh::Response text(int status, std::string body, std::string_view type = "text/plain") {
  mh::Response r;
  r.head.status = status;
  r.head.headers.add("Content-Type", type);
  r.body = std::make_unique<mh::StringBody>(std::move(body));
  return r;
}

mh::Response handle(const Hooks& hooks, const mh::Request& request) {
  const std::string_view path = request.head.path();
  const std::string& method = request.head.method;
  if (path == "/ready") {
    if (method != "GET" && method != "HEAD") return text(405, "use GET\n");
    return text(200, "ready\n");
  }
  if (path == "/stats") {
    if (method != "GET" && method != "HEAD") return text(405, "use GET\n");
    return text(200, metrics::Registry::global().prometheus_text(), "text/plain; version=0.0.4");
  }
  if (path == "/config") {
    if (method != "GET" && method != "HEAD") return text(405, "use GET\n");
    return json_response(200, hooks.config_json() + "\n");
  }
  if (path == "/reload") {
    if (method != "POST") return text(405, "use POST\n");
    Result<void> done = hooks.reload();
    if (!done) {
      return json_response(
          409, "{\"ok\": false, \"error\": " + json_string(done.error().message()) + "}\n");
    }
    return json_response(200, "{\"ok\": true}\n");
  }
  return text(404, "not found: try /ready, /stats, /config, POST /reload\n");
}

Task<void> serve_admin_connection(transport::Stream stream, const Hooks* hooks) {
  mh::ConnectionInfo info;
  info.peer = stream.peer_address().value_or(transport::SocketAddress());
  transport::ByteStreamOf<transport::Stream> bytes(std::move(stream));
  mh::h1::ServerOptions options;
  options.keepalive_timeout = std::chrono::seconds(10);
  options.read_header_timeout = std::chrono::seconds(10);
  mh::h1::Handler handler = [hooks](mh::Request request) -> Task<mh::Response> {
    co_return handle(*hooks, request);
  };
  (void)co_await mh::h1::serve(bytes, info, options, handler);
}

Task<void> admin_accept_loop(int fd, const Hooks* hooks) {
  Result<transport::Listener> listener = transport::Listener::adopt(fd);
  if (!listener) co_return;
  while (true) {
    Result<transport::Stream> accepted = co_await listener->accept();
    if (!accepted) {
      if (accepted.error().code() == ErrorCode::kCancelled) co_return;
      ML_LOG(kWarn, "admin: accept: {}", accepted.error().to_string());
      if (!co_await runtime::sleep(std::chrono::milliseconds(100))) co_return;
      continue;
    }
    runtime::spawn(serve_admin_connection(std::move(*accepted), hooks));
  }
}

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::start(const config::AdminConfig& config,
                                                        Hooks hooks, bool replace) {
  std::unique_ptr<AdminServer> server(new AdminServer());
  server->hooks_ = std::move(hooks);
  transport::ListenOptions options;
  // One admin listener per process; during a binary upgrade the new process shares the TCP
  // address with the old one (which soon exits) or takes the Unix path over.
  options.reuse_port = true;
  options.unix_mode = 0600;
  if (replace && config.listen.is_unix()) ::unlink(config.listen.unix_file_path().c_str());
  Result<transport::Listener> listener = transport::Listener::bind(config.listen, options);
  if (!listener) {
    return Error(listener.error().code(), "admin.listen: " + listener.error().to_string());
  }
  server->address_ = config.listen.to_string();
  server->unix_file_ = transport::UnixSocketFile(config.listen.unix_file_path());
  const int fd = listener->release();
  runtime::WorkerPoolOptions pool;
  pool.workers = 1;
  pool.runtime.backend = runtime::BackendKind::kEpoll;  // a handful of admin requests
  pool.runtime.honor_env = false;
  const Hooks* hooks_ptr = &server->hooks_;
  auto started = runtime::WorkerPool::start(
      pool, [fd, hooks_ptr](size_t) { return admin_accept_loop(fd, hooks_ptr); });
  if (!started) {
    ::close(fd);
    return std::move(started).error();
  }
  server->thread_ = std::move(*started);
  return server;
}

AdminServer::~AdminServer() {
  if (thread_) thread_->stop();  // the runtime closes the listener with its task
  unix_file_.remove_if_ours();   // not if the new process of an upgrade has bound it since
}

// --- /config ------------------------------------------------------------------------------

namespace {

std::string endpoint_json(const config::Endpoint& e) {
  switch (e.kind) {
    case config::Endpoint::Kind::kSocket:
      return "{\"type\": \"socket\", \"value\": " + json_string(e.address.to_string()) + "}";
    case config::Endpoint::Kind::kUnix:
      return "{\"type\": \"unix\", \"value\": " + json_string(e.address.unix_file_path()) + "}";
    case config::Endpoint::Kind::kUri:
      return "{\"type\": \"uri\", \"value\": " + json_string(e.uri.text) + "}";
  }
  return "null";
}

std::string route_json(const config::RouteConfig& r) {
  std::string out = "{";
  if (!r.host.empty()) out += "\"host\": " + json_string(r.host) + ", ";
  if (!r.path.empty()) out += "\"path\": " + json_string(r.path) + ", ";
  if (!r.methods.empty()) {
    out += "\"method\": [";
    for (size_t i = 0; i < r.methods.size(); ++i) {
      out += (i ? ", " : "") + json_string(r.methods[i]);
    }
    out += "], ";
  }
  if (r.direct) {
    out += fmt::format("\"return\": {{\"status\": {}, \"body\": {}}}", r.direct->status,
                       json_string(r.direct->body));
    return out + "}";
  }
  out += "\"load_balancer\": " + json_string(config::load_balancer_name(r.load_balancer));
  if (r.hash_on) out += ", \"hash_on\": " + json_string(hash_on_text(*r.hash_on));
  out += ", \"upstreams\": [";
  for (size_t i = 0; i < r.upstreams.size(); ++i) {
    if (i) out += ", ";
    out += fmt::format("{{\"endpoint\": {}, \"weight\": {}}}",
                       endpoint_json(r.upstreams[i].endpoint), r.upstreams[i].weight);
  }
  out += "]";
  if (r.upstream_tls) {
    out += fmt::format(", \"upstream_tls\": {{\"stack\": {}, \"verify\": {}, \"sni\": {}}}",
                       json_string(tls::backend_name(r.upstream_tls->stack)),
                       r.upstream_tls->verify ? "true" : "false", json_string(r.upstream_tls->sni));
  }
  return out + "}";
}

}  // namespace

std::string config_to_json(const config::Config& c) {
  const config::RuntimeConfig& rt = c.runtime;
  std::string out = "{";
  out += "\"source\": " + json_string(c.source) + ", ";
  out += fmt::format(
      "\"runtime\": {{\"runtime_type\": {}, \"worker_threads\": {}, \"entries\": {}, "
      "\"cpu_affinity\": {}, \"drain_timeout_sec\": {}}}, ",
      json_string(runtime::backend_kind_name(rt.runtime_type)), rt.worker_threads, rt.entries,
      rt.cpu_affinity ? "true" : "false", rt.drain_timeout.count());
  out += "\"servers\": {";
  for (size_t i = 0; i < c.servers.size(); ++i) {
    const config::ServerConfig& s = c.servers[i];
    if (i) out += ", ";
    out += json_string(s.key) + ": {";
    out += "\"name\": " + json_string(s.name);
    out += ", \"proxy_type\": " + json_string(s.kind);
    out += ", \"listener\": " + json_string(s.listener.address.to_string());
    if (s.tls) {
      out += fmt::format(", \"tls\": {{\"stack\": {}, \"chain\": {}, \"sni_certificates\": {}}}",
                         json_string(tls::backend_name(s.tls->stack)),
                         json_string(s.tls->certificate.chain_file), s.tls->sni.size());
    }
    out += fmt::format(", \"max_connections\": {}", s.max_connections);
    if (s.proxy_type == config::ProxyType::kThrift) {
      out += fmt::format(", \"max_calls_in_flight\": {}", s.max_calls_in_flight);
    }
    out += ", \"routes\": [";
    for (size_t r = 0; r < s.routes.size(); ++r) {
      if (r) out += ", ";
      out += route_json(s.routes[r]);
    }
    out += "]}";
  }
  out += "}}";
  return out;
}

}  // namespace monolake::proxy::admin
