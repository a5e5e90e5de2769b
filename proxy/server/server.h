// The running proxy: worker threads, their listeners and their service chains, configured from
// a config::Config and reconfigured while traffic flows.
//
//   auto proxy = server::Proxy::start(std::move(config)).value();  // binds, starts workers
//   proxy->reload(std::move(new_config));   // SIGHUP: all-or-nothing; old config on failure
//   proxy->stop_accepting();                // drain: open connections go on
//   while (proxy->open_connections() > 0 && !timed_out) wait();
//   proxy->stop();
//
// Threads: one worker per configured core, each with its own runtime, its own service chains
// (a Slot per worker) and its own SO_REUSEPORT socket per TCP listener (a Unix-socket listener
// is one socket, dup'ed to every worker). Listening sockets are bound on the control thread (the
// one calling start/reload), so a bind failure is reported before anything changes, and handed
// to the workers when the new chains are committed.
//
// Reload: listeners are matched by address, so a reload that keeps an address keeps its
// sockets (no connection in an accept queue is lost), one that drops an address closes them,
// one that adds an address binds it. The chains are replaced two-phase (update_all): a failure
// on any worker leaves every worker on the old chains. `[runtime]` changes need a restart; a
// reload logs them and leaves them alone.
//
// Public methods are for the control thread only (not thread-safe among themselves).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "http/h1/server.h"
#include "http/h2/options.h"
#include "proxy/config/config.h"
#include "proxy/connection/chain.h"
#include "proxy/framework/registry.h"
#include "proxy/http/access_log.h"
#include "proxy/http/connection.h"
#include "proxy/http/server_stack.h"
#include "proxy/l4/l4.h"
#include "proxy/service/slot.h"
#include "proxy/service/stack.h"
#include "proxy/thrift/connection.h"
#include "proxy/thrift/thrift_proxy.h"
#include "runtime/options.h"
#include "runtime/worker_pool.h"
#include "tls/tls.h"
#include "transport/stream.h"

namespace monolake::proxy::server {

// One server's chain on one worker, with what its connections need besides the chain.
struct ServerEntry {
  std::string name;                                      // the server's `name`
  std::shared_ptr<l4::L4Service> l4;                     // proxy_type "tcp"
  std::shared_ptr<http::HttpService> http;               // proxy_type "http"
  std::shared_ptr<thrift::ThriftService> thrift;         // proxy_type "thrift"
  std::shared_ptr<metrics::HttpServerStats> http_stats;  // http: HTTP/2 connection counters
  http::ConnectionOptions http_connection;      // proxy_type "http": TLS, HTTP/1.1, HTTP/2 options
  thrift::ConnectionOptions thrift_connection;  // proxy_type "thrift"
  // Connection layers of every kind (empty chain: none), and whether the listener has TLS
  // (then the kind's TLS code runs their after_tls; else the accept path does, at once).
  std::shared_ptr<const connection::ConnectionChain> connection_filters;
  bool tls = false;
  // A route announces clients to its upstreams (send_proxy_protocol): the accept path reads
  // each connection's local address (a getsockname(2) the other servers do without).
  bool announces_clients = false;
};

// What a reload replaces on each worker at once: every server's chain, by server key.
struct ServiceSet {
  std::map<std::string, ServerEntry> servers;
  // Every layer's service and shared state, by identity: what the next build takes over.
  Generation generation;
};

// Shared by the workers for one listening address; lives as long as the address is configured.
struct ListenerShared {
  ~ListenerShared();
  std::atomic<size_t> active{0};  // open connections accepted here, all workers
  std::atomic<size_t> max_connections{0};
  // Worker sockets of this address still accepting, or still serving what their accept had
  // taken when it was stopped: 0 once every worker has stopped accepting here for good.
  std::atomic<size_t> accepting_sockets{0};
  // Duplicates of this address's listening sockets (one per socket the workers accept on),
  // kept for a binary upgrade: the new process receives them and accepts on the very same
  // sockets, so nothing waiting in an accept queue is lost. Closed with this object.
  std::vector<int> handover_fds;
  // Closes handover_fds: once the workers stop accepting here, the sockets must really close
  // (a duplicate kept open would keep the port listening with nobody accepting).
  void close_handover();
  // Unix listeners: the socket file this process made, removed when the listener is closed
  // unless something else has replaced the file since.
  transport::UnixSocketFile unix_file;
};

struct WorkerState;  // one worker's slot and listeners (server.cc)

// What a binary upgrade hands from the old process to the new one.
struct Handover {
  std::map<std::string, std::vector<int>> sockets;  // listener address -> listening sockets
  std::string ticket_keys;                          // tls::TicketKeys::export_keys()
};

class Proxy {
 public:
  // Raises RLIMIT_NOFILE (max_open_files), binds every listener, drops privileges (user),
  // starts the workers and installs the chains. Refuses proxy types this build cannot serve.
  //
  // `inherited`: the listening sockets and ticket keys of the process being replaced (binary
  // upgrade): an address it had is served on its sockets (several per worker when it had more,
  // shared when it had fewer); other addresses are bound. Its sockets are owned by the Proxy
  // afterwards (closed if unused).
  //
  // With inherited sockets the workers do not accept until release_accepts(): the old process
  // must have stopped accepting first (see release_accepts).
  //
  // `registry`: the filters and server kinds the configuration may name besides the built-ins
  // (the same registry the configuration was parsed against); nullptr: none. Kept for reloads.
  static Result<std::unique_ptr<Proxy>> start(
      config::Config config, Handover inherited = {},
      std::shared_ptr<const framework::Registry> registry = nullptr);

  // For the control socket: dups of every listening socket and the ticket keys. From then on
  // the Unix socket files of the listeners are left in place at exit (the new process serves
  // them).
  Handover handover();
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Replaces the configuration. On any failure (bad TLS files, bind error, a factory failing on
  // a worker) the running configuration stays in force and the error says why.
  Result<void> reload(config::Config config);

  // Resolves the host names of `uri` upstreams again; if any address changed, applies the
  // running configuration anew (as a reload would) and returns true. Control thread only.
  Result<bool> refresh_names();
  bool uses_names() const { return !name_fingerprint_.empty(); }

  // Binary upgrade, new process: starts accepting on the inherited sockets, once the old process
  // says it has stopped accepting on them (or has gone). Accepting on a socket while the old
  // process still has an accept pending there can strand a connection in the accept queue: the
  // kernel wakes one io_uring accept per connection, and if that is the old process's, being
  // cancelled, nobody accepts the connection until the next one arrives.
  void release_accepts();

  // Stops accepting on every listener and closes them; open connections go on. Later reloads
  // are refused (the process is on its way out). Returns at once; accepting_stopped() says
  // when every worker is done.
  void stop_accepting();
  bool accepting_stopped() const;
  // Open client connections, all listeners and workers.
  size_t open_connections() const;
  // Stops the workers; connections still open are closed.
  void stop();

  runtime::BackendKind backend() const { return pool_->backend_kind(); }
  size_t workers() const { return pool_->size(); }
  const config::Config& config() const { return config_; }

 private:
  struct Plan;
  Proxy() = default;

  Result<std::unique_ptr<Plan>> prepare(const config::Config& config);
  Result<void> commit(Plan& plan);
  Result<std::vector<std::vector<transport::Listener>>> listeners_for(
      const std::string& address, const transport::SocketAddress& socket_address,
      ListenerShared& shared);
  void attach_listeners(size_t worker, Plan& plan);

  config::Config config_;
  std::shared_ptr<const framework::Registry> registry_;  // user filters and server kinds
  std::shared_ptr<tls::TicketKeys> ticket_keys_;  // one set for the process: any worker resumes
  // By listener address ("127.0.0.1:8080", "unix:/p"): the ones currently served.
  std::map<std::string, std::shared_ptr<ListenerShared>> listeners_;
  std::vector<std::unique_ptr<WorkerState>> worker_states_;
  // The addresses host names resolved to at the last prepare ("host:port=addr ...").
  std::string name_fingerprint_;
  std::string pending_fingerprint_;
  bool stopping_ = false;     // set by stop_accepting(): no more reloads
  bool handed_over_ = false;  // a new process took the sockets: leave their files alone
  Handover inherited_;        // during start(): the sockets of the process being replaced
  std::unique_ptr<runtime::WorkerPool> pool_;
};

// Lines naming the `[runtime]` settings that differ ("worker_threads: 4 -> 2"); empty if none.
std::vector<std::string> runtime_changes(const config::RuntimeConfig& before,
                                         const config::RuntimeConfig& after);

// Refuses what this build cannot serve yet, in the config's error format.
Result<void> check_supported(const config::Config& config);

}  // namespace monolake::proxy::server
