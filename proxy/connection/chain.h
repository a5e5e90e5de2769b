// A server's connection layers, declared once (ConnectionStack, on the control thread) and
// built per worker (ConnectionChain), and what runs them on one connection (ConnectionRun).
// See filter.h for the order and the contract.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/buffer.h"
#include "base/result.h"
#include "proxy/connection/context.h"
#include "proxy/connection/filter.h"
#include "proxy/metrics/metrics.h"
#include "proxy/service/generation.h"
#include "proxy/service/stack.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::proxy::connection {

// One worker's connection layers of one server, for one generation. Immutable once built; a
// connection holds the chain it was accepted with.
class ConnectionChain {
 public:
  struct Entry {
    std::string identity;  // "filter:NAME" (#2...), or "filter[ID]"
    std::shared_ptr<ConnectionFilter> filter;
    std::shared_ptr<metrics::UserMetric> closed;  // connections this layer refused
  };
  explicit ConnectionChain(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// The declaration: filters in order, each with its identity.
class ConnectionStack {
 public:
  // `name`: the registered filter name; `id`: the configuration's explicit id, or "".
  void push(const std::string& name, const std::string& id,
            std::shared_ptr<const ConnectionFilterFactory> factory);
  bool empty() const { return layers_.empty(); }

  // Builds this worker's chain under `build` (the server's scope), each filter from its own
  // previous generation. `server_name` labels the refusal counters.
  Result<std::shared_ptr<const ConnectionChain>> make(const Build& build,
                                                      const std::string& server_name) const;

 private:
  struct Layer {
    std::string identity;
    std::shared_ptr<const ConnectionFilterFactory> factory;
  };
  std::vector<Layer> layers_;
  OccurrenceNames occurrences_;  // of filters without an id
};

// The connection layers' run on one connection. Keep it alive as long as the connection:
// its destructor calls closed() on every filter whose before_tls ran. `chain` may be null (no
// layers).
class ConnectionRun {
 public:
  ConnectionRun(std::shared_ptr<const ConnectionChain> chain, ConnectionContext& context)
      : chain_(std::move(chain)), context_(&context) {}
  ~ConnectionRun();
  ConnectionRun(const ConnectionRun&) = delete;
  ConnectionRun& operator=(const ConnectionRun&) = delete;

  // Each filter's before_tls in order; the first error stops the run (the connection closes).
  runtime::Task<Result<void>> before_tls(transport::Stream& socket, IoBuffer& read_ahead);
  // Each filter's after_tls in order: on a plain listener, right after before_tls...
  Result<void> after_tls();
  // ... on a TLS listener, once the handshake is done: the context's TLS facts are set first.
  Result<void> after_tls(std::string server_name, std::string alpn,
                         std::string client_subject = {});

 private:
  Error refused(const ConnectionChain::Entry& entry, Error error);

  std::shared_ptr<const ConnectionChain> chain_;
  ConnectionContext* context_;
  size_t entered_ = 0;  // filters whose before_tls ran
};

}  // namespace monolake::proxy::connection
