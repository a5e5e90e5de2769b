#include "proxy/server/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "base/log.h"
#include "proxy/connection/edge_filters.h"
#include "proxy/server/internal/errors.h"
#include "proxy/server/internal/process.h"
#include "proxy/server/internal/resolve.h"
#include "proxy/server/internal/service_set.h"
#include "proxy/server/internal/worker.h"
#include "proxy/service/update.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/stream.h"

namespace monolake::proxy::server {

using namespace std::chrono_literals;
using internal::config_error;
using internal::drop_privileges;
using internal::raise_open_files;
using internal::resolve_uri_endpoints;
using internal::server_path;
using internal::ServiceSetFactory;

namespace {

Task<void> nothing_first() { co_return; }

// The layer of one `filters` entry, made by the maker the registry has under its name.
Result<std::shared_ptr<const http::HttpStack::Layer>> make_filter(
    const config::Config& config, const framework::Registry* registry,
    const config::ServerConfig& server, const config::FilterConfig& filter,
    const std::string& route, const std::string& key_path) {
  const framework::HttpFilterMaker* maker = registry ? registry->http_filter(filter.name) : nullptr;
  if (!maker) {
    return config_error(config, key_path + ".name", "unknown filter '" + filter.name + "'");
  }
  const framework::FilterParams params{filter.params, server.name, route};
  Result<std::shared_ptr<const framework::HttpLayerFactory>> made = (*maker)(params);
  if (!made) return config_error(config, key_path, made.error().message());
  if (!*made) return config_error(config, key_path, "the filter's maker made nothing");
  return std::shared_ptr<const http::HttpStack::Layer>(std::move(*made));
}

// The server's `connection_filters`, each made by the maker the registry has under its name.
Result<connection::ConnectionStack> connection_filter_stack(const config::Config& config,
                                                            const framework::Registry* registry,
                                                            const config::ServerConfig& server,
                                                            size_t workers) {
  connection::ConnectionStack stack;
  // allow/deny on the socket's peer, connection_rate_limit, the PROXY protocol header,
  // allow/deny on the client it announces; then the user's layers (connection/edge_filters.h).
  connection::AccessListParams access{server.allow, server.deny};
  if (!access.empty()) {
    stack.push("allow_deny", "allow_deny", connection::access_list_factory(access));
  }
  if (server.connection_rate_limit) {
    stack.push("connection_rate_limit", "connection_rate_limit",
               connection::connection_rate_limit_factory(*server.connection_rate_limit, workers));
  }
  if (server.proxy_protocol) {
    connection::ProxyProtocolParams params;
    params.versions = *server.proxy_protocol;
    params.from = server.proxy_protocol_from;
    params.timeout = server.timeout.server_read_header;
    stack.push("proxy_protocol", "proxy_protocol", connection::proxy_protocol_factory(params));
    if (!access.empty()) {
      stack.push("allow_deny", "allow_deny_announced", connection::access_list_factory(access));
    }
  }
  for (size_t i = 0; i < server.connection_filters.size(); ++i) {
    const config::FilterConfig& filter = server.connection_filters[i];
    const std::string key_path = fmt::format("{}.connection_filters[{}]", server_path(server), i);
    const framework::ConnectionFilterMaker* maker =
        registry ? registry->connection_filter(filter.name) : nullptr;
    if (!maker) {
      return config_error(config, key_path + ".name",
                          "unknown connection filter '" + filter.name + "'");
    }
    const framework::ConnectionFilterParams params{filter.params, server.name};
    Result<std::shared_ptr<const connection::ConnectionFilterFactory>> made = (*maker)(params);
    if (!made) return config_error(config, key_path, made.error().message());
    if (!*made) return config_error(config, key_path, "the connection filter's maker made nothing");
    stack.push(filter.name, filter.id, std::move(*made));
  }
  return stack;
}

// The connection stack of a server of a registered kind: access_log -> [tls] -> its layer.
Result<l4::L4Stack> custom_server_stack(const config::Config& config,
                                        const framework::Registry* registry,
                                        const config::ServerConfig& server,
                                        std::shared_ptr<const tls::ServerContext> tls_context) {
  const framework::ServerKindMaker* maker = registry ? registry->server_kind(server.kind) : nullptr;
  if (!maker) {
    return config_error(config, server_path(server) + ".proxy_type",
                        "unknown server kind '" + server.kind + "'");
  }
  framework::ServerKindParams params{server.kind_params, server.name, {}};
  for (const config::RouteConfig& route : server.routes) {
    params.routes.push_back(
        {route.path, l4::upstreams_of(route), route.load_balancer, route.hash_on});
  }
  params.connect_timeout = server.timeout.upstream_connect;
  params.idle_timeout = server.timeout.tcp_idle;
  Result<std::shared_ptr<const framework::ConnectionLayerFactory>> handler = (*maker)(params);
  if (!handler) return config_error(config, server_path(server), handler.error().message());
  if (!*handler) {
    return config_error(config, server_path(server), "the server kind's maker made nothing");
  }
  return l4::connection_stack(server.name, std::move(tls_context), "kind:" + server.kind,
                              std::move(*handler));
}

}  // namespace

// Plan of a configuration change, made on the control thread before anything changes.
struct Proxy::Plan {
  struct NewListener {
    std::shared_ptr<ListenerShared> shared;
    std::vector<std::vector<transport::Listener>> per_worker;  // sockets worker i accepts on
  };
  std::shared_ptr<const Factory<ServiceSet>> factory;
  std::map<std::string, NewListener> added;                       // by address
  std::vector<std::string> removed;                               // addresses
  std::map<std::string, std::string> server_of;                   // address -> server key
  std::map<std::string, std::shared_ptr<ListenerShared>> served;  // the listeners afterwards
  std::map<std::string, size_t> max_connections;                  // address -> limit
};

Result<void> check_supported(const config::Config& config) {
  std::string problems;
  for (const config::ServerConfig& server : config.servers) {
    if (server.proxy_type != config::ProxyType::kThrift || !server.tls) continue;
    if (!problems.empty()) problems += "\n";
    problems +=
        fmt::format("{}: {}.tls: TLS on \"{}\" listeners is not supported yet", config.source,
                    server_path(server), config::proxy_type_name(server.proxy_type));
  }
  if (!problems.empty()) return Error(ErrorCode::kUnsupported, problems);
  return ok();
}

std::vector<std::string> runtime_changes(const config::RuntimeConfig& a,
                                         const config::RuntimeConfig& b) {
  std::vector<std::string> out;
  auto note = [&out](const char* key, const auto& before, const auto& after) {
    if (before != after) out.push_back(fmt::format("{}: {} -> {}", key, before, after));
  };
  auto opt = [](const auto& v) { return v ? fmt::format("{}", *v) : std::string("(absent)"); };
  note("runtime_type", runtime::backend_kind_name(a.runtime_type),
       runtime::backend_kind_name(b.runtime_type));
  note("worker_threads", a.worker_threads, b.worker_threads);
  note("entries", a.entries, b.entries);
  note("sqpoll_idle", opt(a.sqpoll_idle_ms), opt(b.sqpoll_idle_ms));
  note("cpu_affinity", a.cpu_affinity, b.cpu_affinity);
  note("max_open_files", opt(a.max_open_files), opt(b.max_open_files));
  note("user", opt(a.user), opt(b.user));
  note("control_socket", opt(a.control_socket), opt(b.control_socket));
  note("drain_timeout_sec", a.drain_timeout.count(), b.drain_timeout.count());
  note("dns_refresh_sec", a.dns_refresh.count(), b.dns_refresh.count());
  return out;
}

Result<std::unique_ptr<Proxy>> Proxy::start(config::Config config, Handover inherited,
                                            std::shared_ptr<const framework::Registry> registry) {
  std::unique_ptr<Proxy> proxy(new Proxy());
  proxy->registry_ = std::move(registry);
  proxy->ticket_keys_ = tls::TicketKeys::generate();
  if (!inherited.ticket_keys.empty()) {
    // The old process's keys: tickets it issued still resume here.
    auto keys = tls::TicketKeys::import_keys(inherited.ticket_keys);
    if (!keys) return std::move(keys).error();
    proxy->ticket_keys_ = std::move(*keys);
  }
  proxy->inherited_ = std::move(inherited);
  const config::RuntimeConfig& rc = config.runtime;
  if (rc.max_open_files) {
    if (auto r = raise_open_files(config, *rc.max_open_files); !r) return std::move(r).error();
  }
  const bool upgrade = !proxy->inherited_.sockets.empty();
  for (size_t i = 0; i < rc.worker_threads; ++i) {
    proxy->worker_states_.push_back(std::make_unique<WorkerState>());
    proxy->worker_states_.back()->accepts_held = upgrade;
  }
  Result<std::unique_ptr<Plan>> plan = proxy->prepare(config);
  for (auto& [address, fds] : proxy->inherited_.sockets) {
    // Addresses the new configuration no longer has: their sockets close here.
    for (int fd : fds) ::close(fd);
  }
  proxy->inherited_.sockets.clear();
  if (!plan) return std::move(plan).error();
  if (rc.user) {
    if (auto r = drop_privileges(config, *rc.user); !r) return std::move(r).error();
  }
  runtime::WorkerPoolOptions options;
  options.workers = rc.worker_threads;
  options.runtime.backend = rc.runtime_type;
  options.runtime.honor_env = true;  // MONOLAKE_RUNTIME overrides runtime_type
  options.runtime.entries = rc.entries;
  options.runtime.sqpoll_idle_ms = rc.sqpoll_idle_ms;
  options.pin_cpus = rc.cpu_affinity;
  Result<std::unique_ptr<runtime::WorkerPool>> pool =
      runtime::WorkerPool::start(options, [](size_t) { return nothing_first(); });
  if (!pool) return std::move(pool).error();
  proxy->pool_ = std::move(*pool);
  if (auto r = proxy->commit(**plan); !r) return std::move(r).error();
  proxy->config_ = std::move(config);
  return proxy;
}

Proxy::~Proxy() { stop(); }

Result<std::unique_ptr<Proxy::Plan>> Proxy::prepare(const config::Config& config) {
  pending_fingerprint_.clear();
  if (auto r = check_supported(config); !r) return std::move(r).error();
  // Unreadable certificate or key files, named plainly (the TLS libraries' messages are not).
  if (auto r = config::check_files(config); !r) return std::move(r).error();
  auto plan = std::make_unique<Plan>();
  auto factory = std::make_shared<ServiceSetFactory>();
  std::string problems;
  auto problem = [&](const Error& e) {
    if (!problems.empty()) problems += "\n";
    problems += e.message();
  };
  for (const config::ServerConfig& configured : config.servers) {
    config::ServerConfig server = configured;
    if (auto resolved = resolve_uri_endpoints(config, server, &pending_fingerprint_); !resolved) {
      problem(resolved.error());
      continue;
    }
    std::shared_ptr<const tls::ServerContext> tls_context;
    if (server.tls) {
      tls::ServerConfig tls_config;
      tls_config.certificates.push_back(server.tls->certificate);
      for (const tls::Certificate& extra : server.tls->sni)
        tls_config.certificates.push_back(extra);
      tls_config.min_version = server.tls->min_version;
      if (!server.tls->client_ca_file.empty()) {
        tls_config.client_ca_file = server.tls->client_ca_file;
        tls_config.require_client_certificate = true;
      }
      if (server.proxy_type == config::ProxyType::kHttp) {
        tls_config.alpn = server.http2.enabled ? std::vector<std::string>{"h2", "http/1.1"}
                                               : std::vector<std::string>{"http/1.1"};
      }
      auto created = tls::ServerContext::create(server.tls->stack, tls_config, ticket_keys_);
      if (!created) {
        problem(config_error(config, server_path(server) + ".tls", created.error().message()));
        continue;
      }
      tls_context = std::move(*created);
    }
    ServiceSetFactory::Server entry;
    entry.name = server.name;
    entry.tls = tls_context != nullptr;
    for (const config::RouteConfig& route : server.routes) {
      entry.announces_clients = entry.announces_clients || route.send_proxy_protocol.has_value();
    }
    Result<connection::ConnectionStack> connection_filters =
        connection_filter_stack(config, registry_.get(), server, worker_states_.size());
    if (!connection_filters) {
      problem(connection_filters.error());
      continue;
    }
    entry.connection_filters = std::move(*connection_filters);
    if (server.proxy_type == config::ProxyType::kCustom) {
      Result<l4::L4Stack> stack = custom_server_stack(config, registry_.get(), server, tls_context);
      if (!stack) {
        problem(stack.error());
        continue;
      }
      entry.l4 = std::move(*stack);
    } else if (server.proxy_type == config::ProxyType::kTcp) {
      Result<l4::L4Stack> stack = l4::l4_server_stack(server, tls_context);
      if (!stack) {
        problem(config_error(config, server_path(server), stack.error().message()));
        continue;
      }
      entry.l4 = std::move(*stack);
    } else if (server.proxy_type == config::ProxyType::kThrift) {
      Result<thrift::ThriftStack> stack = thrift::thrift_server_stack(server);
      if (!stack) {
        problem(config_error(config, server_path(server), stack.error().message()));
        continue;
      }
      entry.thrift = std::move(*stack);
      entry.thrift_connection.keepalive_timeout = server.timeout.server_keepalive;
      entry.thrift_connection.message_timeout = server.timeout.server_message;
      entry.thrift_connection.write_timeout = server.timeout.server_write;
      entry.thrift_connection.max_in_flight = server.max_calls_in_flight;
    } else {
      std::vector<std::shared_ptr<const tls::ClientContext>> upstream_tls;
      bool tls_ok = true;
      for (size_t r = 0; r < server.routes.size(); ++r) {
        const auto& wanted = server.routes[r].upstream_tls;
        if (!wanted) {
          upstream_tls.push_back(nullptr);
          continue;
        }
        tls::ClientConfig client;
        client.ca_file = wanted->ca_file;
        client.verify = wanted->verify;
        // ALPN tells an https upstream which versions we speak (see upstream_http_version).
        // A route that sends a PROXY header speaks HTTP/1.1 (one client per connection).
        const config::UpstreamHttpVersion version = server.routes[r].send_proxy_protocol
                                                        ? config::UpstreamHttpVersion::kHttp11
                                                        : server.upstream_http_version;
        switch (version) {
          case config::UpstreamHttpVersion::kHttp11:
            client.alpn = {"http/1.1"};
            break;
          case config::UpstreamHttpVersion::kHttp2:
            client.alpn = {"h2"};
            break;
          case config::UpstreamHttpVersion::kAuto:
            client.alpn = {"h2", "http/1.1"};
            break;
        }
        auto created = tls::ClientContext::create(wanted->stack, client);
        if (!created) {
          problem(config_error(config,
                               fmt::format("{}.routes[{}].upstream_tls", server_path(server), r),
                               created.error().message()));
          tls_ok = false;
          break;
        }
        upstream_tls.push_back(std::move(*created));
      }
      if (!tls_ok) continue;
      const framework::Registry* registry = registry_.get();
      http::FilterLayerMaker filters = [&config, registry, &server](
                                           const config::FilterConfig& filter,
                                           const std::string& route, const std::string& key_path) {
        return make_filter(config, registry, server, filter, route, key_path);
      };
      Result<http::HttpStack> stack =
          http::http_server_stack(server, upstream_tls, filters, worker_states_.size());
      if (!stack) {
        problem(stack.error());
        continue;
      }
      entry.http = std::move(*stack);
      http::ConnectionOptions& connection = entry.http_connection;
      connection.tls = tls_context;
      connection.h1.keepalive_timeout = server.timeout.server_keepalive;
      connection.h1.read_header_timeout = server.timeout.server_read_header;
      connection.h1.read_body_timeout = server.timeout.server_read_body;
      connection.h1.write_timeout = server.timeout.server_write;
      connection.h1.limits.max_body = server.max_request_body_bytes;
      if (server.http2.enabled) connection.h2 = http::h2_options(server);
    }
    factory->servers.emplace(server.key, std::move(entry));

    const std::string address = server.listener.address.to_string();
    if (auto other = plan->server_of.find(address); other != plan->server_of.end()) {
      problem(config_error(config, server_path(server) + ".listener",
                           address + " is also the listener of servers." + other->second));
      continue;
    }
    plan->server_of[address] = server.key;
    plan->max_connections[address] = server.max_connections;
    if (auto kept = listeners_.find(address); kept != listeners_.end()) {
      plan->served[address] = kept->second;
      continue;
    }
    auto shared = std::make_shared<ListenerShared>();
    Result<std::vector<std::vector<transport::Listener>>> sockets =
        listeners_for(address, server.listener.address, *shared);
    if (!sockets) {
      problem(config_error(config, server_path(server) + ".listener", sockets.error().to_string()));
      continue;
    }
    shared->unix_file = transport::UnixSocketFile(server.listener.address.unix_file_path());
    plan->served[address] = shared;
    plan->added[address] = Plan::NewListener{shared, std::move(*sockets)};
  }
  if (!problems.empty()) return Error(ErrorCode::kInvalidArgument, problems);
  for (const auto& [address, shared] : listeners_) {
    if (!plan->served.count(address)) plan->removed.push_back(address);
  }
  plan->factory = std::move(factory);
  return plan;
}

Result<void> Proxy::commit(Plan& plan) {
  for (const auto& [address, limit] : plan.max_connections) {
    plan.served[address]->max_connections.store(limit, std::memory_order_relaxed);
  }
  std::function<Slot<ServiceSet>*(size_t)> slot_of = [this](size_t i) {
    return &worker_states_[i]->slot;
  };
  std::function<void(size_t)> after_commit = [this, &plan](size_t i) { attach_listeners(i, plan); };
  if (auto r = update_all<ServiceSet>(*pool_, slot_of, plan.factory, after_commit); !r) return r;
  for (const std::string& address : plan.removed) {
    listeners_.at(address)->close_handover();
    if (!handed_over_) listeners_.at(address)->unix_file.remove_if_ours();
  }
  listeners_ = plan.served;
  name_fingerprint_ = pending_fingerprint_;
  return ok();
}

// On worker `i`, right after its commit: stop the listeners the new configuration dropped,
// start the ones it added, and point every listener at its server's chain.
void Proxy::attach_listeners(size_t i, Plan& plan) {
  WorkerState& worker = *worker_states_[i];
  for (const std::string& address : plan.removed) worker.stop_accepting(address);
  for (auto& [address, added] : plan.added) {
    auto accepting = std::make_shared<WorkerState::Accepting>();
    accepting->shared = added.shared;
    worker.accepting[address] = accepting;
    for (transport::Listener& listener : added.per_worker[i]) {
      added.shared->accepting_sockets.fetch_add(1, std::memory_order_relaxed);
      accepting->loops.push_back(runtime::spawn_with_handle(
          accept_loop(std::move(listener), address, &worker, accepting)));
    }
  }
  for (const auto& [address, key] : plan.server_of) {
    if (auto it = worker.accepting.find(address); it != worker.accepting.end()) {
      it->second->server_key = key;
    }
  }
}

Result<void> Proxy::reload(config::Config config) {
  if (stopping_) {
    return Error(ErrorCode::kUnsupported, "shutting down: the configuration is no longer changed");
  }
  Result<std::unique_ptr<Plan>> plan = prepare(config);
  if (!plan) return std::move(plan).error();
  if (auto r = commit(**plan); !r) return r;
  for (const std::string& change : runtime_changes(config_.runtime, config.runtime)) {
    ML_LOG(kWarn, "reload: [runtime] {} needs a restart; ignored", change);
  }
  config.runtime = config_.runtime;  // what is really in force
  config_ = std::move(config);
  return ok();
}

Result<bool> Proxy::refresh_names() {
  if (stopping_) return false;
  std::string now;
  for (const config::ServerConfig& configured : config_.servers) {
    config::ServerConfig server = configured;
    if (auto r = resolve_uri_endpoints(config_, server, &now); !r) return std::move(r).error();
  }
  if (now == name_fingerprint_) return false;
  ML_LOG(kInfo, "dns: upstream addresses changed ({} -> {}); applying", name_fingerprint_, now);
  config::Config same = config_;
  if (auto r = reload(std::move(same)); !r) return std::move(r).error();
  return true;
}

void Proxy::release_accepts() {
  if (!pool_) return;
  std::function<bool(size_t)> release = [this](size_t i) {
    worker_states_[i]->accepts_held = false;
    return true;
  };
  detail::run_on_each_worker(*pool_, release);
}

bool Proxy::accepting_stopped() const {
  for (const auto& [address, shared] : listeners_) {
    if (shared->accepting_sockets.load(std::memory_order_acquire) > 0) return false;
  }
  return true;
}

void Proxy::stop_accepting() {
  if (!pool_) return;
  stopping_ = true;
  std::function<bool(size_t)> stop = [this](size_t i) {
    WorkerState& worker = *worker_states_[i];
    worker.draining = true;
    while (!worker.accepting.empty()) worker.stop_accepting(worker.accepting.begin()->first);
    return true;
  };
  detail::run_on_each_worker(*pool_, stop);
  for (const auto& [address, shared] : listeners_) {
    shared->close_handover();  // a new process that took them over has its own copies
    if (!handed_over_) shared->unix_file.remove_if_ours();
  }
}

size_t Proxy::open_connections() const {
  size_t total = 0;
  for (const auto& [address, shared] : listeners_) {
    total += shared->active.load(std::memory_order_relaxed);
  }
  return total;
}

void Proxy::stop() {
  if (pool_) pool_->stop();
}

}  // namespace monolake::proxy::server
