#include "proxy/server/server.h"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "base/log.h"
#include "proxy/service/update.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/stream.h"

namespace monolake::proxy::server {

using namespace std::chrono_literals;

namespace {

// "FILE: KEY.PATH: reason", the configuration's error format.
Error config_error(const config::Config& config, const std::string& key_path,
                   const std::string& reason) {
  return Error(ErrorCode::kInvalidArgument, config.source + ": " + key_path + ": " + reason);
}

std::string server_path(const config::ServerConfig& server) { return "servers." + server.key; }

template <class T>
Result<void> assign(Result<T> made, T& to) {
  if (!made) return std::move(made).error();
  to = std::move(*made);
  return ok();
}

// Builds each server's chain from the previous generation of its layers (scope "servers.KEY").
class ServiceSetFactory final : public Factory<ServiceSet> {
 public:
  struct Server {
    std::string name;  // for the counters kept beside the chain
    std::optional<l4::L4Stack> l4;
    std::optional<http::HttpStack> http;
    std::optional<thrift::ThriftStack> thrift;
    http::ConnectionOptions http_connection;
    thrift::ConnectionOptions thrift_connection;
  };
  std::map<std::string, Server> servers;

  Result<std::shared_ptr<ServiceSet>> make_from(
      const std::shared_ptr<ServiceSet>& previous) const override {
    auto set = std::make_shared<ServiceSet>();
    const Generation* before = previous ? &previous->generation : nullptr;
    for (const auto& [key, server] : servers) {
      const Build build(before, set->generation, "servers." + key);
      ServerEntry entry;
      entry.http_connection = server.http_connection;
      entry.thrift_connection = server.thrift_connection;
      Result<void> built = ok();
      if (server.l4) {
        built = assign(server.l4->make(build), entry.l4);
      } else if (server.thrift) {
        built = assign(server.thrift->make(build), entry.thrift);
      } else {
        built = assign(server.http->make(build), entry.http);
        entry.http_stats = http::http_server_stats(build, server.name);
      }
      if (!built) {
        const Error& e = built.error();
        return Error(e.code(),
                     e.message().rfind("servers.", 0) == 0 ? e.message()
                                                           : "servers." + key + ": " + e.message(),
                     e.sys_errno());
      }
      set->servers.emplace(key, std::move(entry));
    }
    return set;
  }
};

// One listening socket per worker: SO_REUSEPORT sockets for TCP (the kernel spreads new
// connections across them), or one Unix socket dup'ed for each worker.
Result<std::vector<transport::Listener>> bind_per_worker(const transport::SocketAddress& address,
                                                         size_t workers) {
  std::vector<transport::Listener> out;
  transport::ListenOptions options;
  if (address.is_unix()) {
    Result<transport::Listener> first = transport::Listener::bind(address, options);
    if (!first) return std::move(first).error();
    for (size_t i = 1; i < workers; ++i) {
      const int fd = ::fcntl(first->fd(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return Error::from_errno(errno, "dup " + address.to_string());
      Result<transport::Listener> copy = transport::Listener::adopt(fd);
      if (!copy) {
        ::close(fd);
        return std::move(copy).error();
      }
      out.push_back(std::move(*copy));
    }
    out.insert(out.begin(), std::move(*first));
    return out;
  }
  options.reuse_port = true;
  for (size_t i = 0; i < workers; ++i) {
    Result<transport::Listener> listener = transport::Listener::bind(address, options);
    if (!listener) return std::move(listener).error();
    out.push_back(std::move(*listener));
  }
  return out;
}

Result<void> raise_open_files(const config::Config& config, uint64_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return Error::from_errno(errno, "getrlimit");
  if (limit.rlim_cur >= wanted) return ok();
  rlimit raised = limit;
  raised.rlim_cur = wanted;
  if (raised.rlim_max < wanted) raised.rlim_max = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    const int err = errno;
    return config_error(config, "runtime.max_open_files",
                        fmt::format("cannot raise the open-file limit to {} (now {}, hard limit "
                                    "{}): {}",
                                    wanted, limit.rlim_cur, limit.rlim_max, std::strerror(err)));
  }
  ML_LOG(kInfo, "open-file limit raised from {} to {}", limit.rlim_cur, wanted);
  return ok();
}

// After binding: become `user` (and its groups). Must run before the worker threads exist so
// that every thread, and every io_uring instance they create, has the new credentials.
Result<void> drop_privileges(const config::Config& config, const std::string& user) {
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return config_error(config, "runtime.user", "no such user \"" + user + "\"");
  if (::geteuid() != 0) {
    if (pw->pw_uid == ::geteuid()) return ok();  // already that user
    return config_error(config, "runtime.user",
                        "cannot switch to \"" + user + "\": not started as root");
  }
  if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
      ::setuid(pw->pw_uid) != 0) {
    return config_error(config, "runtime.user",
                        "cannot switch to \"" + user + "\": " + std::strerror(errno));
  }
  if (::setuid(0) == 0) {
    return config_error(config, "runtime.user", "privileges could not be dropped");
  }
  ML_LOG(kInfo, "running as user {} (uid {})", user, pw->pw_uid);
  return ok();
}

Task<void> nothing_first() { co_return; }

// http upstreams given as `uri` get their address here, on the control thread: an IP literal
// as is, a host name through the system resolver (once per load; never on a worker).
Result<void> resolve_uri_endpoints(const config::Config& config, config::ServerConfig& server,
                                   std::string* fingerprint) {
  for (size_t r = 0; r < server.routes.size(); ++r) {
    for (size_t u = 0; u < server.routes[r].upstreams.size(); ++u) {
      config::Endpoint& endpoint = server.routes[r].upstreams[u].endpoint;
      if (endpoint.kind != config::Endpoint::Kind::kUri) continue;
      const std::string key =
          fmt::format("{}.routes[{}].upstreams[{}].endpoint", server_path(server), r, u);
      const config::Uri& uri = endpoint.uri;
      if (uri.scheme != "http" && uri.scheme != "https") {
        return config_error(config, key, "\"" + uri.scheme + "\" upstreams are not supported");
      }
      const bool v6 = uri.host.find(':') != std::string::npos;
      auto literal = transport::SocketAddress::parse((v6 ? "[" + uri.host + "]" : uri.host) + ":" +
                                                     std::to_string(uri.port));
      if (literal) {
        endpoint.address = *literal;
        continue;
      }
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      const int rc =
          ::getaddrinfo(uri.host.c_str(), std::to_string(uri.port).c_str(), &hints, &found);
      if (rc != 0 || !found) {
        return config_error(config, key,
                            "cannot resolve \"" + uri.host + "\": " + gai_strerror(rc));
      }
      endpoint.address = transport::SocketAddress::from_sockaddr(found->ai_addr, found->ai_addrlen);
      ::freeaddrinfo(found);
      if (fingerprint) {
        *fingerprint +=
            uri.host + ":" + std::to_string(uri.port) + "=" + endpoint.address.to_string() + " ";
      }
    }
  }
  return ok();
}

}  // namespace

// --- Worker state --------------------------------------------------------------------------

// Touched only on the worker's own thread (through pool_->post and update_all).
struct WorkerState {
  struct Accepting {
    std::string server_key;  // whose chain serves this listener's connections (may change)
    std::shared_ptr<ListenerShared> shared;
    std::vector<runtime::JoinHandle<void>> loops;  // one per socket this worker accepts on
  };
  Slot<ServiceSet> slot;
  std::map<std::string, std::shared_ptr<Accepting>> accepting;  // by listener address
  bool draining = false;  // HTTP connections end after their current response

  void stop_accepting(const std::string& address) {
    auto it = accepting.find(address);
    if (it == accepting.end()) return;
    for (auto& loop : it->second->loops) loop.cancel();  // each loop closes its socket as it ends
    accepting.erase(it);
  }
};

// The worker's current entry for a server (nullptr if the server is gone).
static const ServerEntry* entry_of(const WorkerState& worker, const std::string& key) {
  const std::shared_ptr<ServiceSet>& services = worker.slot.current();
  if (!services) return nullptr;
  auto it = services->servers.find(key);
  return it == services->servers.end() ? nullptr : &it->second;
}

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

namespace {

// Releases the open-connection count (incremented by dispatch()) however a connection task ends.
struct OpenConnection {
  ListenerShared* shared;
  ~OpenConnection() { shared->active.fetch_sub(1, std::memory_order_relaxed); }
};

// Serves one accepted connection with the chain it started with. The open-connection count
// (incremented by the accept loop) is released however the task ends.
Task<void> serve_connection(std::shared_ptr<l4::L4Service> chain, l4::Connection connection,
                            std::shared_ptr<ListenerShared> shared) {
  const OpenConnection counted{shared.get()};
  (void)co_await chain->call(std::move(connection));
}

// Counts an HTTP/2 connection that has ended in the server's /stats.
void count_h2(WorkerState* worker, const std::string& key,
              const monolake::http::h2::ServeStats& served) {
  const ServerEntry* current = entry_of(*worker, key);
  if (!current || !current->http_stats) return;
  current->http_stats->h2_connections.add();
  current->http_stats->h2_streams.add(served.streams);
  if (served.abuse) current->http_stats->h2_abuse_closed.add();
}

// Serves one HTTP connection (proxy/http/connection.h), each request on the worker's *current*
// chain for the server. `options` is a copy: the task starts a loop turn later, and a reload in
// between may free the ServiceSet it came from.
Task<void> serve_http_connection(transport::Stream stream, transport::SocketAddress peer,
                                 http::ConnectionOptions options, WorkerState* worker,
                                 std::string key, std::shared_ptr<ListenerShared> shared) {
  const OpenConnection counted{shared.get()};
  http::ChainSource chains = [worker, key]() -> std::shared_ptr<http::HttpService> {
    const ServerEntry* current = entry_of(*worker, key);
    return current ? current->http : nullptr;
  };
  http::H2Served h2_served = [worker, key](const monolake::http::h2::ServeStats& served) {
    count_h2(worker, key, served);
  };
  co_await http::serve_connection(std::move(stream), std::move(peer), std::move(options),
                                  &worker->draining, std::move(chains), std::move(h2_served));
}

// Serves one Thrift connection (proxy/thrift/connection.h): each call goes to the worker's
// *current* chain for the server, so a reload applies from the next call.
Task<void> serve_thrift_connection(transport::Stream stream, transport::SocketAddress peer,
                                   thrift::ConnectionOptions options, WorkerState* worker,
                                   std::string key, std::shared_ptr<ListenerShared> shared) {
  const OpenConnection counted{shared.get()};
  transport::ByteStreamOf<transport::Stream> bytes(std::move(stream));
  thrift::ChainSource chains = [worker, key]() -> std::shared_ptr<thrift::ThriftService> {
    const ServerEntry* current = entry_of(*worker, key);
    if (!current) return nullptr;
    return current->thrift;
  };
  co_await thrift::serve_connection(bytes, peer.to_string(), options, std::move(chains));
}

// Waits before the next accept after EMFILE/ENFILE: 10 ms doubling to 1 s, so a process out of
// descriptors neither spins nor stops serving when descriptors free up.
struct AcceptBackoff {
  std::chrono::milliseconds delay{0};
  runtime::TimePoint last_warning{};

  std::chrono::milliseconds next(const std::string& address, const Error& error) {
    delay = std::clamp(delay * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    const runtime::TimePoint now = runtime::Runtime::current()->now();
    if (now - last_warning >= 1s) {
      last_warning = now;
      ML_LOG(kWarn, "accept on {}: {}; pausing accepts for {} ms", address, error.to_string(),
             delay.count());
    }
    return delay;
  }
  void reset() { delay = std::chrono::milliseconds(0); }
};

}  // namespace

static Task<void> accept_loop(transport::Listener listener, std::string address,
                              WorkerState* worker,
                              std::shared_ptr<WorkerState::Accepting> accepting);

// --- Proxy ---------------------------------------------------------------------------------

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

Result<std::unique_ptr<Proxy>> Proxy::start(config::Config config) {
  return start(std::move(config), Handover{});
}

Result<std::unique_ptr<Proxy>> Proxy::start(config::Config config, Handover inherited) {
  std::unique_ptr<Proxy> proxy(new Proxy());
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
  for (size_t i = 0; i < rc.worker_threads; ++i) {
    proxy->worker_states_.push_back(std::make_unique<WorkerState>());
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
    if (server.proxy_type == config::ProxyType::kTcp) {
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
        switch (server.upstream_http_version) {
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
      entry.http = http::http_server_stack(server, upstream_tls);
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

ListenerShared::~ListenerShared() { close_handover(); }

void ListenerShared::close_handover() {
  for (int fd : handover_fds) ::close(fd);
  handover_fds.clear();
}

namespace {
int dup_fd(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }
}  // namespace

// The sockets each worker accepts on for a new address: the ones inherited from the process
// being replaced when it had this address (distributed over the workers), else freshly bound.
// `shared.handover_fds` gets a duplicate of each socket for a later upgrade.
Result<std::vector<std::vector<transport::Listener>>> Proxy::listeners_for(
    const std::string& address, const transport::SocketAddress& socket_address,
    ListenerShared& shared) {
  const size_t workers = worker_states_.size();
  std::vector<std::vector<transport::Listener>> per_worker(workers);
  auto inherited = inherited_.sockets.find(address);
  if (inherited != inherited_.sockets.end() && !inherited->second.empty()) {
    std::vector<int> fds = std::move(inherited->second);
    inherited_.sockets.erase(inherited);
    // Every inherited socket gets a worker (several per worker when there are more sockets
    // than workers), and every worker a socket (shared when there are fewer).
    for (size_t n = 0; n < std::max(fds.size(), workers); ++n) {
      const int fd = dup_fd(fds[n % fds.size()]);
      if (fd < 0) return Error::from_errno(errno, "dup inherited " + address);
      Result<transport::Listener> listener = transport::Listener::adopt(fd);
      if (!listener) {
        ::close(fd);
        return std::move(listener).error();
      }
      per_worker[n % workers].push_back(std::move(*listener));
    }
    shared.handover_fds = std::move(fds);
    return per_worker;
  }
  Result<std::vector<transport::Listener>> bound = bind_per_worker(socket_address, workers);
  if (!bound) return std::move(bound).error();
  for (size_t i = 0; i < workers; ++i) {
    const int fd = dup_fd((*bound)[i].fd());
    if (fd < 0) return Error::from_errno(errno, "dup " + address);
    // A Unix listener is one socket dup'ed per worker: hand it over once.
    if (!socket_address.is_unix() || i == 0)
      shared.handover_fds.push_back(fd);
    else
      ::close(fd);
    per_worker[i].push_back(std::move((*bound)[i]));
  }
  return per_worker;
}

Handover Proxy::handover() {
  Handover out;
  for (const auto& [address, shared] : listeners_) {
    std::vector<int>& fds = out.sockets[address];
    for (int fd : shared->handover_fds) fds.push_back(fd);  // borrowed: sent, not closed
  }
  out.ticket_keys = ticket_keys_->export_keys();
  handed_over_ = true;
  return out;
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

// --- accept loop ---------------------------------------------------------------------------

// Hands one accepted connection to the worker's current chain for the listener's server.
static void dispatch(transport::Stream stream, WorkerState* worker,
                     const std::shared_ptr<WorkerState::Accepting>& accepting) {
  const ServerEntry* entry = entry_of(*worker, accepting->server_key);
  if (!entry) return;  // no chain for this listener (cannot happen): the stream closes
  transport::SocketAddress peer = stream.peer_address().value_or(transport::SocketAddress());
  accepting->shared->active.fetch_add(1, std::memory_order_relaxed);
  if (entry->thrift) {
    runtime::spawn(serve_thrift_connection(std::move(stream), std::move(peer),
                                           entry->thrift_connection, worker, accepting->server_key,
                                           accepting->shared));
    return;
  }
  if (entry->l4) {
    l4::Connection connection;
    connection.peer = std::move(peer);
    connection.stream = std::move(stream);
    runtime::spawn(serve_connection(entry->l4, std::move(connection), accepting->shared));
  } else {
    runtime::spawn(serve_http_connection(std::move(stream), std::move(peer), entry->http_connection,
                                         worker, accepting->server_key, accepting->shared));
  }
}

static Task<void> finish_listener(transport::Listener listener, WorkerState* worker,
                                  std::shared_ptr<WorkerState::Accepting> accepting) {
  for (transport::Stream& stream : co_await listener.stop_accepting()) {
    dispatch(std::move(stream), worker, accepting);
  }
}

// Accepts on one worker's socket for one listener until cancelled (the socket closes with it;
// connections the kernel already accepted for it are served, not reset). The connection takes
// the worker's current chain of the listener's server.
static Task<void> accept_loop(transport::Listener listener, std::string address,
                              WorkerState* worker,
                              std::shared_ptr<WorkerState::Accepting> accepting) {
  ListenerShared& shared = *accepting->shared;
  AcceptBackoff backoff;
  while (true) {
    // At max_connections, leave new connections in the kernel's accept queue until one ends.
    while (shared.active.load(std::memory_order_relaxed) >=
           shared.max_connections.load(std::memory_order_relaxed)) {
      if (!co_await runtime::sleep(10ms)) break;
    }
    Result<transport::Stream> accepted = co_await listener.accept();
    if (!accepted) {
      const Error& e = accepted.error();
      if (e.code() == ErrorCode::kCancelled) break;
      const auto delay = e.code() == ErrorCode::kLimitExceeded ? backoff.next(address, e) : 10ms;
      if (e.code() != ErrorCode::kLimitExceeded) {
        ML_LOG(kWarn, "accept on {}: {}", address, e.to_string());
      }
      if (!co_await runtime::sleep(delay)) break;
      continue;
    }
    backoff.reset();
    dispatch(std::move(*accepted), worker, accepting);
  }
  // This task is cancelled: a fresh one waits for the multishot accept's last completion and
  // serves whatever the kernel accepted meanwhile (so nothing is reset at exit).
  runtime::spawn(finish_listener(std::move(listener), worker, accepting));
}

}  // namespace monolake::proxy::server
