#include "examples/custom_protocol/resp_proxy.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "base/log.h"
#include "codec/framed.h"
#include "runtime/runtime.h"
#include "runtime/time.h"
#include "transport/prefixed.h"
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
// lives at one address (held by unique_ptr). Counts as a request in flight on the upstream for
// least_request while it lives.
struct UpstreamLink {
  UpstreamLink(Stream s, std::shared_ptr<UpstreamSet> upstreams, size_t i, const RespLimits& limits)
      : stream(std::move(s)),
        framed(stream, RespCodec(limits)),
        set(std::move(upstreams)),
        index(i),
        in_flight(*set, index) {}

  Stream stream;
  monolake::codec::Framed<Stream, RespCodec> framed;
  std::shared_ptr<UpstreamSet> set;
  size_t index;
  monolake::proxy::InFlight in_flight;
};

// The first route listing `command` (upper case), or nullopt.
std::optional<size_t> route_of(const RespParams& params, const std::string& command) {
  for (size_t r = 0; r < params.routes.size(); ++r) {
    const auto& names = params.routes[r].commands;
    if (names.empty() || std::find(names.begin(), names.end(), command) != names.end()) return r;
  }
  return std::nullopt;
}

// Adds `upstream` to the access log's list of upstreams this client used.
void note_upstream(l4::Outcome& outcome, const std::string& upstream) {
  const std::string listed = "," + outcome.upstream + ",";
  if (listed.find("," + upstream + ",") != std::string::npos) return;
  outcome.upstream += (outcome.upstream.empty() ? "" : ",") + upstream;
}

// Connects to one of the route's upstreams as tcp servers do (proxy/upstream/connect.h: each
// failure backs that upstream off, so the next try skips it). nullptr when none was reached.
Task<std::unique_ptr<UpstreamLink>> connect(const std::shared_ptr<UpstreamSet>& set,
                                            const RespParams& params, l4::Outcome& outcome) {
  Result<monolake::proxy::UpstreamConnection> connected =
      co_await monolake::proxy::connect_upstream(*set, params.connect_timeout, "resp");
  if (!connected) co_return nullptr;
  note_upstream(outcome, set->at(connected->index).address.to_string());
  co_return std::make_unique<UpstreamLink>(std::move(connected->stream), set, connected->index,
                                           params.reply_limits);
}

// Sends one command on `link` and reads its one reply.
Task<Result<std::string>> round_trip(UpstreamLink& link, const std::string& command) {
  if (Result<void> sent = co_await link.framed.send(command); !sent) {
    co_return std::move(sent).error();
  }
  Result<std::optional<std::string>> reply = co_await link.framed.next();
  if (!reply) co_return std::move(reply).error();
  if (!*reply) co_return Error(ErrorCode::kClosed, "closed before replying");
  co_return std::move(**reply);
}

template <class T>
Task<T> within(Task<T> task, const std::optional<std::chrono::nanoseconds>& limit) {
  if (!limit) co_return co_await std::move(task);
  co_return co_await monolake::runtime::with_timeout(std::move(task), *limit);
}

}  // namespace

template <class ClientStream>
Task<void> RespProxy::serve(ClientStream& client, l4::Outcome& outcome) {
  monolake::codec::Framed<ClientStream, RespCodec> commands(
      client, RespCodec(params_->command_limits, /*inline_commands=*/true));
  std::vector<std::unique_ptr<UpstreamLink>> links(params_->routes.size());
  while (true) {
    // Between commands the client may be idle for the idle timeout, no longer.
    Result<std::optional<std::string>> frame =
        co_await within(commands.next(), params_->idle_timeout);
    if (!frame) {
      outcome.failed_stage = "client";
      outcome.error = std::move(frame).error();
      co_return;
    }
    if (!*frame) co_return;  // the client closed between commands
    Result<std::vector<std::string>> args = command_arguments(**frame);
    if (!args) {
      outcome.failed_stage = "client";
      outcome.error = std::move(args).error();
      co_return;
    }
    if (args->empty()) continue;  // *0, *-1, a blank line: redis-server ignores them too
    std::string reply;
    if (std::optional<size_t> route = route_of(*params_, upper((*args)[0])); !route) {
      reply = error_reply("no route for command '" + (*args)[0] + "'");
    } else {
      std::unique_ptr<UpstreamLink>& link = links[*route];
      if (!link) link = co_await connect(upstreams_[*route], *params_, outcome);
      Result<std::string> answer = Error(ErrorCode::kClosed, "no upstream reachable");
      if (link) {
        outcome.to_upstream += (*frame)->size();
        answer = co_await within(round_trip(*link, **frame), params_->idle_timeout);
      }
      if (answer) {
        reply = std::move(*answer);
      } else {
        // Whatever happened to the reply (lost, malformed, over a limit, late), the link can
        // no longer be trusted to answer the next command with its own reply.
        if (link) {
          ML_LOG(kWarn, "resp: upstream {} dropped: {}",
                 link->set->at(link->index).address.to_string(), answer.error().to_string());
        }
        link.reset();
        reply = error_reply("upstream unavailable");
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
    // Bytes the server's connection layers read ahead are the client's first command bytes.
    monolake::transport::Prefixed<Stream> client(connection.stream,
                                                 std::move(connection.read_ahead));
    co_await serve(client, outcome);
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
  schema.integer("max_frame_bytes")
      .default_value(64 << 20)
      .range(1024, 1 << 30)
      .doc("the largest command or reply, all its elements included (each is held whole)");
  schema.integer("max_args")
      .default_value(1024)
      .range(1, 1 << 20)
      .doc("the most arguments of one command");
  return schema;
}

namespace {

// "GET, set" -> {"GET", "SET"}; "*" or "" -> {} (every command).
Result<std::vector<std::string>> command_names(const std::string& list, size_t route) {
  std::vector<std::string> names;
  if (list.empty() || list == "*") return names;
  size_t at = 0;
  while (at <= list.size()) {
    const size_t comma = std::min(list.find(',', at), list.size());
    std::string name = upper(list.substr(at, comma - at));
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (name.empty() || name.find_first_of(" \t*") != std::string::npos) {
      return Error(ErrorCode::kInvalidArgument,
                   "routes[" + std::to_string(route) + "].path: '" + list +
                       "' is not a list of command names (\"GET,SET\") or \"*\"");
    }
    names.push_back(std::move(name));
    at = comma + 1;
  }
  return names;
}

}  // namespace

Result<std::shared_ptr<const framework::ConnectionLayerFactory>> make_resp(
    const framework::ServerKindParams& p) {
  RespParams params;
  const auto bulk = static_cast<size_t>(p.params.integer("max_bulk_bytes"));
  const auto frame = static_cast<size_t>(p.params.integer("max_frame_bytes"));
  const auto args = static_cast<size_t>(p.params.integer("max_args"));
  if (bulk > frame) {
    return Error(ErrorCode::kInvalidArgument, "max_bulk_bytes: " + std::to_string(bulk) +
                                                  " is over max_frame_bytes (" +
                                                  std::to_string(frame) + ")");
  }
  params.command_limits.max_bulk_bytes = params.reply_limits.max_bulk_bytes = bulk;
  params.command_limits.max_frame_bytes = params.reply_limits.max_frame_bytes = frame;
  params.command_limits.max_elements = args;
  params.command_limits.max_depth = 1;
  // A reply may be any value: its size is what bounds it (every element takes 3 bytes or more).
  params.reply_limits.max_elements = frame;
  params.reply_limits.max_depth = 16;
  params.connect_timeout = p.connect_timeout;
  if (p.idle_timeout.count() > 0) params.idle_timeout = p.idle_timeout;
  if (p.routes.empty()) return Error(ErrorCode::kInvalidArgument, "routes: none");
  for (size_t r = 0; r < p.routes.size(); ++r) {
    RespRoute route;
    Result<std::vector<std::string>> names = command_names(p.routes[r].path, r);
    if (!names) return std::move(names).error();
    route.commands = std::move(*names);
    if (p.routes[r].upstreams.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "routes[" + std::to_string(r) + "].upstreams: none");
    }
    route.upstreams = p.routes[r].upstreams;
    route.balancer = p.routes[r].balancer;
    params.routes.push_back(std::move(route));
  }
  return std::make_shared<RespProxyFactory>(std::move(params));
}

}  // namespace example
