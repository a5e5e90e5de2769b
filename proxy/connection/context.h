// ConnectionContext: what is known about one accepted client connection, written by the
// connection layers (proxy/connection/filter.h) and read by the ones after them and by the
// protocol above (the HTTP request context's client address, the access logs).
//
// Ownership: one per connection, owned by the task that serves it; layers get it by reference
// and must not keep a pointer past closed().
#pragma once

#include <string>

#include "base/typed_slots.h"
#include "transport/address.h"

namespace monolake::proxy::connection {

struct ConnectionContext {
  std::string server;             // the server's `name`
  transport::SocketAddress peer;  // the socket's own peer
  // The effective client: `peer` unless a layer learns better (a PROXY protocol header). The
  // HTTP stack uses it for X-Forwarded-For, the access logs print it.
  transport::SocketAddress client;
  // The address the client connected to, read only for servers with a route that announces
  // the client to its upstreams (send_proxy_protocol); unset otherwise.
  transport::SocketAddress local;

  // Set once the TLS handshake is done (after_tls layers see them); empty on plain listeners.
  bool tls = false;
  std::string server_name;  // SNI the client sent
  std::string alpn;         // the protocol ALPN chose
  // The client certificate's subject ("CN=client", RFC 4514), empty if it sent none; verified
  // against the server's client_ca when it has one.
  std::string client_subject;

  // Anything else layers pass along, one value per type (base/typed_slots.h).
  TypedSlots slots;
};

}  // namespace monolake::proxy::connection
