// An accepted connection as it travels down a connection stack (tcp servers, user server kinds)
// and the Outcome every layer returns, so the access log can say how it went. Its own header so
// that code building connection layers does not depend on the tcp proxy or the configuration.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/buffer.h"
#include "base/error.h"
#include "proxy/connection/chain.h"
#include "proxy/connection/context.h"
#include "proxy/service/service.h"
#include "tls/tls.h"
#include "transport/address.h"
#include "transport/stream.h"

namespace monolake::proxy::l4 {

// An accepted client connection on its way down the chain.
struct Connection {
  transport::Stream stream;           // the accepted socket (moved into `tls` by TlsTerminate)
  std::optional<tls::TlsStream> tls;  // set once the TLS handshake is done
  transport::SocketAddress peer;      // the effective client (connection layers may change it)
  // Bytes the connection layers read from `stream` and did not use: the client's first bytes,
  // to be read before the stream's own (transport/prefixed.h). TlsTerminate takes them as the
  // start of the handshake; a plaintext layer (TcpForward, a user kind's) must read them first.
  IoBuffer read_ahead;
  // The connection layers' view of this connection and their run, owned by the task serving it
  // (null in a bare chain). TlsTerminate writes the TLS facts and runs after_tls.
  connection::ConnectionContext* context = nullptr;
  connection::ConnectionRun* layers = nullptr;
};

// How a connection went; every service returns one (errors included), so the access log can
// say where it stopped.
struct Outcome {
  std::string upstream;      // the upstream connected to (or last tried); empty if none
  uint64_t to_upstream = 0;  // bytes client -> upstream
  uint64_t to_client = 0;    // bytes upstream -> client
  // Where it failed: "tls" (handshake), "connect" (no upstream reachable), "copy" (reset,
  // idle timeout... after the upstream was reached). Empty when it ended normally.
  std::string failed_stage;
  std::optional<Error> error;
};

using L4Service = Service<Connection, Outcome>;

}  // namespace monolake::proxy::l4
