#include "examples/custom_protocol/resp_proxy.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "base/log.h"
#include "codec/framed.h"
#include "runtime/runtime.h"
#include "transport/stream.h"

namespace example {

using monolake::Error;
using monolake::ErrorCode;
using monolake::IoBuffer;
using monolake::Result;
using monolake::runtime::Task;
using monolake::transport::Stream;

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string error_reply(const std::string& text) { return "-ERR " + text + "\r\n"; }

// This client's connection to one route's upstream. Framed borrows the stream, so the pair
// lives at one address (held by unique_ptr).
struct UpstreamLink {
  UpstreamLink(Stream s, size_t i, const RespLimits& limits)
      : stream(std::move(s)), framed(stream, RespCodec(limits)), index(i) {}
  Stream stream;
  monolake::codec::Framed<Stream, RespCodec> framed;
  size_t index;
};

// The first route listing `command` (upper case), or nullopt.
std::optional<size_t> route_of(const RespParams& params, const std::string& command) {
  for (size_t r = 0; r < params.routes.size(); ++r) {
    const auto& names = params.routes[r].commands;
    if (names.empty() || std::find(names.begin(), names.end(), command) != names.end()) return r;
  }
  return std::nullopt;
}

// Replies are bounded apart from commands: max_args is about what clients send, and a reply
// (LRANGE, KEYS, MGET) may well have more elements than any command has arguments.
RespLimits reply_limits(const RespParams& params) {
  RespLimits limits = params.limits;
  limits.max_elements = 1 << 20;
  return limits;
}

// Connects to one of the route's upstreams (up to 3 tries, each failure backing it off).
Task<std::unique_ptr<UpstreamLink>> connect(UpstreamSet& set, const RespParams& params,
                                            l4::Outcome& outcome) {
  monolake::runtime::Runtime* rt = monolake::runtime::Runtime::current();
  const size_t attempts = std::min<size_t>(3, set.size());
  for (size_t attempt = 0; attempt < attempts; ++attempt) {
    const size_t index = set.pick(rt->now());
    const auto& address = set.at(index).address;
    outcome.upstream = address.to_string();
    Result<Stream> stream = co_await Stream::connect(address, {.timeout = params.connect_timeout});
    if (stream) {
      set.report_success(index);
      co_return std::make_unique<UpstreamLink>(std::move(*stream), index, reply_limits(params));
    }
    set.report_failure(index, rt->now());
    ML_LOG(kWarn, "resp: upstream {} failed: {}", outcome.upstream, stream.error().to_string());
  }
  co_return nullptr;
}

}  // namespace

template <class ClientStream>
Task<void> RespProxy::serve(ClientStream& client, l4::Outcome& outcome) {
  monolake::codec::Framed<ClientStream, RespCodec> commands(
      client, RespCodec(params_->limits, /*inline_commands=*/true));
  std::vector<std::unique_ptr<UpstreamLink>> links(params_->routes.size());
  while (true) {
    Result<std::optional<std::string>> frame = co_await commands.next();
    if (!frame) {
      outcome.failed_stage = "client";
      outcome.error = std::move(frame).error();
      co_return;
    }
    if (!*frame) co_return;  // the client closed between commands
    outcome.to_upstream += (*frame)->size();
    std::string reply;
    Result<std::vector<std::string>> args = command_arguments(**frame);
    if (!args) {
      outcome.failed_stage = "client";
      outcome.error = std::move(args).error();
      co_return;
    }
    if (args->size() > params_->max_args) {
      reply = error_reply("too many arguments (max_args)");
    } else if (std::optional<size_t> route = route_of(*params_, upper((*args)[0])); !route) {
      reply = error_reply("no route for command '" + (*args)[0] + "'");
    } else {
      std::unique_ptr<UpstreamLink>& link = links[*route];
      if (!link) link = co_await connect(*upstreams_[*route], *params_, outcome);
      if (!link) {
        reply = error_reply("upstream unavailable");
      } else if (Result<void> sent = co_await link->framed.send(**frame); !sent) {
        upstreams_[*route]->report_failure(link->index,
                                           monolake::runtime::Runtime::current()->now());
        link.reset();
        reply = error_reply("upstream unavailable");
      } else {
        Result<std::optional<std::string>> answer = co_await link->framed.next();
        if (!answer || !*answer) {
          // Broken, closed or malformed: the reply is lost; this client's next command there
          // connects again.
          link.reset();
          reply = error_reply("upstream unavailable");
        } else {
          reply = std::move(**answer);
        }
      }
    }
    outcome.to_client += reply.size();
    if (Result<void> written = co_await commands.send(reply); !written) {
      outcome.failed_stage = "client";
      outcome.error = std::move(written).error();
      co_return;
    }
  }
}

Task<Result<l4::Outcome>> RespProxy::call(l4::Connection connection) {
  l4::Outcome outcome;
  if (connection.tls) {
    co_await serve(*connection.tls, outcome);
  } else {
    co_await serve(connection.stream, outcome);
  }
  co_return outcome;
}

Result<std::shared_ptr<RespProxy>> RespProxyFactory::make_via_ref(const RespProxy* previous,
                                                                  std::shared_ptr<Inner>,
                                                                  const Build&) const {
  std::vector<std::shared_ptr<UpstreamSet>> sets;
  for (size_t r = 0; r < params_->routes.size(); ++r) {
    const RespRoute& route = params_->routes[r];
    // The same route (by position and upstreams) keeps its balancer position and back-off.
    std::shared_ptr<UpstreamSet> before =
        previous && r < previous->upstreams().size() ? previous->upstreams()[r] : nullptr;
    sets.push_back(UpstreamSet::carry_over(before, route.upstreams, route.balancer));
  }
  return std::make_shared<RespProxy>(params_, std::move(sets));
}

monolake::proxy::ParamSchema resp_schema() {
  monolake::proxy::ParamSchema schema;
  schema.integer("max_bulk_bytes")
      .default_value(16 << 20)
      .range(1, 512 << 20)
      .doc("the largest bulk string, in a command or a reply");
  schema.integer("max_args")
      .default_value(1024)
      .range(1, 1 << 20)
      .doc("the most arguments of one command");
  return schema;
}

Result<std::shared_ptr<const framework::ConnectionLayerFactory>> make_resp(
    const framework::ServerKindParams& p) {
  RespParams params;
  params.limits.max_bulk_bytes = static_cast<size_t>(p.params.integer("max_bulk_bytes"));
  params.max_args = static_cast<size_t>(p.params.integer("max_args"));
  params.limits.max_elements = params.max_args;
  params.connect_timeout = p.connect_timeout;
  for (size_t r = 0; r < p.routes.size(); ++r) {
    RespRoute route;
    std::string list = p.routes[r].path;
    size_t at = 0;
    while (at <= list.size() && !list.empty() && list != "*") {
      const size_t comma = std::min(list.find(',', at), list.size());
      std::string name = upper(list.substr(at, comma - at));
      name.erase(0, name.find_first_not_of(' '));
      name.erase(name.find_last_not_of(' ') + 1);
      if (name.empty() || name.find_first_of(" \t*") != std::string::npos) {
        return Error(ErrorCode::kInvalidArgument,
                     "routes[" + std::to_string(r) + "].path: '" + list +
                         "' is not a list of command names (\"GET,SET\") or \"*\"");
      }
      route.commands.push_back(std::move(name));
      at = comma + 1;
    }
    route.upstreams = p.routes[r].upstreams;
    route.balancer = p.routes[r].balancer;
    params.routes.push_back(std::move(route));
  }
  return std::make_shared<RespProxyFactory>(std::move(params));
}

}  // namespace example
