// A request and its response as they travel through a service chain, whatever the wire
// version. The body pointers own their bodies; a request body reads from the client connection
// and must be consumed (or dropped) before the response is written, which the connection code
// takes care of.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/typed_slots.h"
#include "http/body.h"
#include "http/message.h"
#include "runtime/timer.h"
#include "transport/address.h"
#include "transport/byte_stream.h"

namespace monolake::http {

// The client connection a request came on (for X-Forwarded-*, routing and logs).
struct ConnectionInfo {
  transport::SocketAddress peer;  // the effective client (a PROXY header's, else the socket's)
  std::string peer_text;          // peer.to_string(), made once per connection
  std::string client_ip;          // the peer's address without the port ("unix" for Unix sockets)
  // The address the client connected to; set only when a route needs it (send_proxy_protocol).
  transport::SocketAddress local;
  bool tls = false;
  std::string server_name;  // SNI, with TLS
  // What request layers keep for the life of this connection, one value per type (a route's
  // upstream connections that announced this client). Mutable: requests see the connection
  // through a const pointer; destroyed when the connection ends.
  mutable TypedSlots slots;
};

// The per-request context: what one layer of a chain writes and a later one (or the access log)
// reads. The outermost layer that wants it (the access log) makes it; inner services write when
// it is there (Request::context may be null in a bare chain).
struct RequestContext {
  std::string upstream;    // the upstream that answered (or was last tried)
  std::string request_id;  // X-Request-Id as forwarded
  std::string error;       // why the proxy answered an error itself
  std::string route;       // the matched route ("HOST PATH"), set by the route table
  // When the access log layer took the request, on the worker's loop clock
  // (runtime::Runtime::now()): a layer times its own work against it.
  runtime::TimePoint received{};
  // The effective client address (no port): empty means the connection's client_ip. A layer
  // that learns better (PROXY protocol, a trusted X-Forwarded-For) sets it.
  std::string client_ip;
  // Extra `key=value` fields for the request's access-log line, in order (keys: [a-z0-9_]).
  std::vector<std::pair<std::string, std::string>> log_fields;
  // Anything else layers pass along, one value per type (base/typed_slots.h).
  TypedSlots slots;
};

struct Request {
  RequestHead head;
  std::unique_ptr<Body> body;  // nullptr: no body
  const ConnectionInfo* connection = nullptr;
  RequestContext* context = nullptr;
};

// Takes over the client connection after a 101 (Switching Protocols) response has been written:
// `client` is the connection, `pending` the bytes the client sent after its request head. The
// connection ends when the task does.
using UpgradeHandler =
    std::function<runtime::Task<void>(transport::ByteStream& client, IoBuffer pending)>;

struct Response {
  ResponseHead head;
  std::unique_ptr<Body> body;  // nullptr: an empty body
  bool close = false;          // close the client connection after this response
  UpgradeHandler upgrade;      // with status 101: what the connection becomes
};

// What a server connection (HTTP/1.1 or HTTP/2) calls for each request. It may choose its
// service chain each time.
using Handler = std::function<runtime::Task<Response>(Request)>;

// A response with a small text body ("502 Bad Gateway\n"...), for errors and direct answers.
Response text_response(int status, std::string body = {});

// The client's address without the port: the effective one a layer set in the request's context
// (PROXY protocol...), else the connection's peer; "unknown" when there is neither.
std::string_view client_ip(const Request& request);

}  // namespace monolake::http
