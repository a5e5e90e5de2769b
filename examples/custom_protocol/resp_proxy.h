// The "resp" server kind: a Redis (RESP2) proxy that routes each command by its name.
//
//   [servers.cache]
//   proxy_type = "resp"
//   listener = { type = "socket", value = "127.0.0.1:7000" }
//   max_bulk_bytes = 16777216       # the largest bulk string, either way (default 16 MiB)
//   max_frame_bytes = 67108864      # the largest command or reply (default 64 MiB)
//   max_args = 1024                 # the most arguments of one command (default)
//   [[servers.cache.routes]]
//   path = "GET,SET,DEL"            # command names (any case); "*" or none: every command
//   upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:6379" } }]
//
// One client connection is served by one RespProxy::call: commands are read in order, each goes
// to the first route that lists its name, over that route's upstream connection for this client
// (opened at the first command routed there, with the server's connect timeout; the upstream
// picked by the route's balancer, a failed connect backing it off), and its one reply is written
// back before the next command is read. An unrouted command gets `-ERR no route for command
// 'X'`; an unreachable or broken upstream, or one whose reply is malformed, over the limits or
// later than the server's idle timeout, `-ERR upstream unavailable` (the link is dropped; the
// next command routed there connects again); a malformed command closes the client's
// connection, and so does a client idle for the idle timeout. Not handled: MULTI/EXEC across
// routes, SUBSCRIBE (more than one reply per command), cluster redirects.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "examples/custom_protocol/resp_codec.h"
#include "proxy/framework/framework.h"

namespace example {

namespace framework = monolake::proxy::framework;
namespace l4 = monolake::proxy::l4;
using monolake::proxy::Build;
using monolake::proxy::FactoryLayer;
using monolake::proxy::UpstreamSet;

struct RespRoute {
  std::vector<std::string> commands;  // upper case; empty: every command
  std::vector<monolake::proxy::Upstream> upstreams;
  monolake::proxy::Balancer balancer = monolake::proxy::Balancer::kRoundRobin;
};

struct RespParams {
  std::vector<RespRoute> routes;
  RespLimits command_limits;  // from the client: a flat array of at most max_args bulk strings
  RespLimits reply_limits;    // from an upstream: any value within max_frame_bytes
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
  std::optional<std::chrono::nanoseconds> idle_timeout;  // absent: none
};

class RespProxy final : public monolake::proxy::Service<l4::Connection, l4::Outcome> {
 public:
  RespProxy(std::shared_ptr<const RespParams> params,
            std::vector<std::shared_ptr<UpstreamSet>> upstreams)
      : params_(std::move(params)), upstreams_(std::move(upstreams)) {}
  monolake::runtime::Task<monolake::Result<l4::Outcome>> call(l4::Connection connection) override;
  const std::vector<std::shared_ptr<UpstreamSet>>& upstreams() const { return upstreams_; }

 private:
  template <class Stream>
  monolake::runtime::Task<void> serve(Stream& client, l4::Outcome& outcome);

  std::shared_ptr<const RespParams> params_;
  std::vector<std::shared_ptr<UpstreamSet>> upstreams_;  // by route
};

class RespProxyFactory final : public FactoryLayer<RespProxy> {
 public:
  explicit RespProxyFactory(RespParams params)
      : params_(std::make_shared<const RespParams>(std::move(params))) {}
  monolake::Result<std::shared_ptr<RespProxy>> make_via_ref(const RespProxy* previous,
                                                            std::shared_ptr<Inner> inner,
                                                            const Build& build) const override;

 private:
  std::shared_ptr<const RespParams> params_;
};

// What main() registers.
monolake::proxy::ParamSchema resp_schema();
monolake::Result<std::shared_ptr<const framework::ConnectionLayerFactory>> make_resp(
    const framework::ServerKindParams& params);

}  // namespace example
