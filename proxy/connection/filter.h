// Connection layers: code that runs on every accepted connection of a server, whatever its kind
// (http, tcp, thrift, a registered one), before the protocol reads a byte of it.
//
//   accept -> before_tls of each layer, in order -> [TLS handshake] -> after_tls of each layer
//          -> the server's protocol (HTTP/1.1 or HTTP/2, L4 forwarding, Thrift, a user kind)
//          ...
//          connection ends -> closed() of each layer whose before_tls ran
//
// before_tls sees the raw socket (PROXY protocol, IP allow-lists, per-client connection limits).
// A layer that must read to decide reads into `read_ahead`, consumes what it understood from
// its front, and leaves the rest: the next layer, the TLS handshake and the protocol read those
// bytes first (transport/prefixed.h). after_tls sees what the handshake chose (SNI, ALPN); on a
// plain listener it runs right after the last before_tls. An error from either closes the
// connection: it is counted in /stats (monolake_connection_filter_closed_total{server,filter})
// and logged at debug level with the layer's identity and the error.
//
// A filter belongs to one worker and one generation of the configuration (a connection keeps
// the filters it was accepted with, so closed() reaches the object that saw it open). Its
// factory is shared by every worker and builds each worker's filter from that worker's
// previous generation of the same layer (make_via_ref), so per-worker state such as
// open-connection counts survives a reload.
#pragma once

#include <chrono>
#include <memory>

#include "base/buffer.h"
#include "base/result.h"
#include "proxy/connection/context.h"
#include "proxy/service/generation.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::proxy::connection {

class ConnectionFilter {
 public:
  virtual ~ConnectionFilter() = default;

  // Before TLS. `socket` may be read (append to `read_ahead`: read_more() below) but not written
  // to, except to answer a refusal. Bound every read in time; the framework does not.
  virtual runtime::Task<Result<void>> before_tls(transport::Stream& socket, IoBuffer& read_ahead,
                                                 ConnectionContext& context);
  // After the TLS handshake (or, on a plain listener, after every before_tls).
  virtual Result<void> after_tls(ConnectionContext& context);
  // The connection has ended, however it went (also when this or a later layer refused it).
  virtual void closed(const ConnectionContext& context);
};

// Reads once more from `socket` onto the end of `read_ahead`, waiting at most `limit`: the
// number of bytes read, 0 at end of stream, kTimeout when the client sent nothing in time.
runtime::Task<Result<size_t>> read_more(transport::Stream& socket, IoBuffer& read_ahead,
                                        std::chrono::nanoseconds limit);

// Builds one worker's filter at each load and reload (on that worker's thread; must not block).
class ConnectionFilterFactory {
 public:
  virtual ~ConnectionFilterFactory() = default;
  virtual Result<std::shared_ptr<ConnectionFilter>> make(const Build& build) const = 0;
};

// A factory of filters of type F, handed the F this layer built in the previous generation on
// this worker (nullptr the first time, or when the layer is new) to take over its state.
template <class F>
class ConnectionFilterFactoryOf : public ConnectionFilterFactory {
 public:
  virtual Result<std::shared_ptr<F>> make_via_ref(const F* previous, const Build& build) const = 0;

  Result<std::shared_ptr<ConnectionFilter>> make(const Build& build) const final {
    const std::shared_ptr<F> previous = build.previous<F>();
    Result<std::shared_ptr<F>> made = make_via_ref(previous.get(), build);
    if (!made) return std::move(made).error();
    if (!*made)
      return Error(ErrorCode::kInternal, build.scope() + ": the filter's factory made nothing");
    if (auto kept = build.keep(*made); !kept) return std::move(kept).error();
    return std::shared_ptr<ConnectionFilter>(std::move(*made));
  }
};

}  // namespace monolake::proxy::connection
