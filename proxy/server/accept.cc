#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "proxy/connection/chain.h"
#include "proxy/server/internal/worker.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/byte_stream.h"
#include "transport/prefixed.h"

namespace monolake::proxy::server {

using namespace std::chrono_literals;

namespace {

// Releases the open-connection count (incremented by dispatch()) however a connection task ends.
struct OpenConnection {
  ListenerShared* shared;
  ~OpenConnection() { shared->active.fetch_sub(1, std::memory_order_relaxed); }
};

// Counts an HTTP/2 connection that has ended in the server's /stats.
void count_h2(WorkerState* worker, const std::string& key,
              const monolake::http::h2::ServeStats& served) {
  const ServerEntry* current = entry_of(*worker, key);
  if (!current || !current->http_stats) return;
  current->http_stats->h2_connections.add();
  current->http_stats->h2_streams.add(served.streams);
  if (served.abuse) current->http_stats->h2_abuse_closed.add();
}

// An HTTP connection (proxy/http/connection.h): each request on the worker's *current* chain
// for the server, so a reload reaches keep-alive and HTTP/2 clients at their next request.
Task<void> serve_http(transport::Stream stream, IoBuffer read_ahead,
                      connection::ConnectionContext& context, connection::ConnectionRun& layers,
                      http::ConnectionOptions options, WorkerState* worker, std::string key) {
  http::ChainSource chains = [worker, key]() -> std::shared_ptr<http::HttpService> {
    const ServerEntry* current = entry_of(*worker, key);
    return current ? current->http : nullptr;
  };
  http::H2Served h2_served = [worker, key](const monolake::http::h2::ServeStats& served) {
    count_h2(worker, key, served);
  };
  co_await http::serve_connection(std::move(stream), std::move(read_ahead), context, layers,
                                  std::move(options), &worker->draining, std::move(chains),
                                  std::move(h2_served));
}

// A Thrift connection (proxy/thrift/connection.h): each call goes to the worker's *current*
// chain for the server, so a reload applies from the next call.
Task<void> serve_thrift(transport::Stream stream, IoBuffer read_ahead,
                        const connection::ConnectionContext& context,
                        thrift::ConnectionOptions options, WorkerState* worker, std::string key) {
  transport::ByteStreamOf<transport::Prefixed<transport::Stream>> bytes(
      transport::Prefixed<transport::Stream>(stream, std::move(read_ahead)));
  thrift::ChainSource chains = [worker, key]() -> std::shared_ptr<thrift::ThriftService> {
    const ServerEntry* current = entry_of(*worker, key);
    if (!current) return nullptr;
    return current->thrift;
  };
  co_await thrift::serve_connection(bytes, context.client.to_string(), options, std::move(chains));
}

// Serves one accepted connection: the server's connection layers (proxy/connection/filter.h),
// then its protocol. `entry` is a copy of the worker's entry at accept: the task starts a loop
// turn later, and a reload in between may free the ServiceSet it came from. An L4 connection
// (tcp, user kinds) keeps that chain to its end; HTTP and Thrift take the current one per
// request. The open-connection count (incremented by dispatch()) is released however the task
// ends, and the layers' closed() run before that.
Task<void> serve_accepted(transport::Stream stream, ServerEntry entry, WorkerState* worker,
                          std::string key, std::shared_ptr<ListenerShared> shared) {
  const OpenConnection counted{shared.get()};
  connection::ConnectionContext context;
  context.server = entry.name;
  context.peer = stream.peer_address().value_or(transport::SocketAddress());
  context.client = context.peer;
  if (entry.announces_clients) {
    context.local = stream.local_address().value_or(transport::SocketAddress());
  }
  connection::ConnectionRun layers(entry.connection_filters, context);
  IoBuffer read_ahead;
  if (entry.connection_filters) {
    if (!co_await layers.before_tls(stream, read_ahead)) co_return;
    if (!entry.tls && !layers.after_tls()) co_return;
  }
  if (entry.thrift) {
    co_await serve_thrift(std::move(stream), std::move(read_ahead), context,
                          entry.thrift_connection, worker, std::move(key));
  } else if (entry.l4) {
    l4::Connection connection;
    connection.stream = std::move(stream);
    connection.peer = context.client;
    connection.read_ahead = std::move(read_ahead);
    connection.context = &context;
    connection.layers = &layers;
    (void)co_await entry.l4->call(std::move(connection));
  } else {
    co_await serve_http(std::move(stream), std::move(read_ahead), context, layers,
                        std::move(entry.http_connection), worker, std::move(key));
  }
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

// Hands one accepted connection to the worker's current chain for the listener's server.
void dispatch(transport::Stream stream, WorkerState* worker,
              const std::shared_ptr<WorkerState::Accepting>& accepting) {
  const ServerEntry* entry = entry_of(*worker, accepting->server_key);
  if (!entry) return;  // no chain for this listener (cannot happen): the stream closes
  accepting->shared->active.fetch_add(1, std::memory_order_relaxed);
  runtime::spawn(
      serve_accepted(std::move(stream), *entry, worker, accepting->server_key, accepting->shared));
}

Task<void> finish_listener(transport::Listener listener, WorkerState* worker,
                           std::shared_ptr<WorkerState::Accepting> accepting) {
  for (transport::Stream& stream : co_await listener.stop_accepting()) {
    dispatch(std::move(stream), worker, accepting);
  }
  accepting->shared->accepting_sockets.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace

Task<void> accept_loop(transport::Listener listener, std::string address, WorkerState* worker,
                       std::shared_ptr<WorkerState::Accepting> accepting) {
  ListenerShared& shared = *accepting->shared;
  AcceptBackoff backoff;
  // A binary upgrade's new process: not before the old process stopped accepting here.
  while (worker->accepts_held) {
    if (!co_await runtime::sleep(5ms)) break;
  }
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
