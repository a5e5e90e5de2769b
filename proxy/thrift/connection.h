// One client connection of a Thrift server: calls are read continuously and each runs on its
// own task, so a client that pipelines has many calls in flight at once (up to
// Options::max_in_flight; at the limit the connection is not read until one is answered, which
// is the back-pressure). Replies go back in the order the calls came: Apache Thrift's sync
// clients (C++, Python, Java) read replies in the order they sent calls, and several send every
// call with sequence id 0, so completion order would mix them up. A oneway call gets no reply
// and holds no place in that order.
//
// Timeouts: a connection with no call in flight and no frame begun is closed after
// keepalive_timeout (0: once its calls are answered; the first frame then has message_timeout
// to begin); a frame whose first bytes arrived must be whole within message_timeout; writing
// replies to a client that does not read gives up after write_timeout. A malformed frame closes
// the connection (calls in flight are dropped).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "codec/thrift.h"
#include "proxy/thrift/thrift_proxy.h"
#include "runtime/task.h"
#include "transport/byte_stream.h"

namespace monolake::proxy::thrift {

struct ConnectionOptions {
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(75);
  std::chrono::nanoseconds message_timeout = std::chrono::seconds(60);
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  size_t max_in_flight = 100;
  ct::Limits limits;
};

// The chain to give the next call to (the worker's current one: a reload takes effect at the
// next call), or null to close the connection.
using ChainSource = std::function<std::shared_ptr<ThriftService>()>;

// Serves `stream` until the client closes it, a timeout or an error; returns once nothing
// touches the stream any more (calls still waiting on an upstream finish on their own).
Task<void> serve_connection(transport::ByteStream& stream, std::string client,
                            ConnectionOptions options, ChainSource chains);

}  // namespace monolake::proxy::thrift
