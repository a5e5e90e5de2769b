#include "proxy/thrift/thrift_proxy.h"

#include <algorithm>
#include <cstdint>

#include "base/log.h"
#include "runtime/notify.h"
#include "runtime/runtime.h"
#include "transport/stream.h"

namespace monolake::proxy::thrift {

using runtime::Notify;

// --- TApplicationException --------------------------------------------------------------------

namespace {

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void put_be16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// The message: exception header, then the TApplicationException struct
// { 1: string message, 2: i32 type }.
std::string exception_message(ct::Protocol protocol, const std::string& method, int32_t seqid,
                              const std::string& message, int32_t type) {
  std::string m;
  if (protocol == ct::Protocol::kBinary) {
    put_be32(m, 0x80010000u | static_cast<uint32_t>(ct::MessageType::kException));
    put_be32(m, static_cast<uint32_t>(method.size()));
    m += method;
    put_be32(m, static_cast<uint32_t>(seqid));
    m.push_back(11);  // string
    put_be16(m, 1);
    put_be32(m, static_cast<uint32_t>(message.size()));
    m += message;
    m.push_back(8);  // i32
    put_be16(m, 2);
    put_be32(m, static_cast<uint32_t>(type));
    m.push_back(0);  // stop
    return m;
  }
  m.push_back(static_cast<char>(0x82));
  m.push_back(static_cast<char>((static_cast<int>(ct::MessageType::kException) << 5) | 1));
  put_varint(m, static_cast<uint32_t>(seqid));
  put_varint(m, method.size());
  m += method;
  m.push_back(0x18);  // field 1 (delta 1), binary
  put_varint(m, message.size());
  m += message;
  m.push_back(0x15);  // field 2 (delta 1), i32 (zigzag)
  put_varint(m, (static_cast<uint32_t>(type) << 1) ^ static_cast<uint32_t>(type >> 31));
  m.push_back(0);  // stop
  return m;
}

}  // namespace

ct::Frame application_exception(const ct::Frame& call, ApplicationError type,
                                const std::string& message) {
  const std::string payload = exception_message(call.protocol, call.method, call.seqid, message,
                                                static_cast<int32_t>(type));
  std::string wire;
  if (call.transport == ct::Transport::kFramed) {
    put_be32(wire, static_cast<uint32_t>(payload.size()));
    wire += payload;
  } else {
    std::string header;
    put_varint(header, call.protocol == ct::Protocol::kBinary ? 0 : 2);  // protocol id
    put_varint(header, 0);                                               // no transforms
    while (header.size() % 4 != 0) header.push_back(0);
    std::string body;
    put_be16(body, 0x0FFF);
    put_be16(body, 0);  // flags
    put_be32(body, call.header_seqid);
    put_be16(body, static_cast<uint16_t>(header.size() / 4));
    body += header;
    body += payload;
    put_be32(wire, static_cast<uint32_t>(body.size()));
    wire += body;
  }
  Result<ct::Frame> frame = ct::parse_frame(wire);
  if (frame) return std::move(*frame);
  ct::Frame raw;  // (cannot happen: the bytes above are well-formed) forward them as they are
  raw.wire = std::move(wire);
  return raw;
}

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kOneway:
      return "oneway";
    case Outcome::kUpstreamError:
      return "upstream_error";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kNoRoute:
      return "no_route";
  }
  return "ok";
}

// --- UpstreamConnection -----------------------------------------------------------------------

namespace {

// One call waiting on an upstream connection: the reply (for a oneway call, an empty frame once
// its bytes are written), or the error that ended the connection.
struct PendingCall {
  Notify done;
  std::optional<Result<ct::Frame>> result;
  bool connect_failed = false;  // the error is the connect's (passive health counts it)
  bool abandoned = false;       // the caller stopped waiting (its timeout)
};

Task<Result<void>> wait_for(std::shared_ptr<PendingCall> pending) {
  while (!pending->result) {
    Result<void> woken = co_await pending->done.wait();
    if (!woken) co_return woken;
  }
  co_return ok();
}

}  // namespace

// A multiplexed upstream connection: calls are queued with sequence ids unique on it, one task
// connects and writes everything queued in one write, another reads replies and hands each to
// the call with its sequence id. Any error (connect, reset, a malformed reply, a reply to no
// call) fails every call on it and ends it. A call that times out "poisons" it: no new call
// is queued, and it closes when the calls still waiting on it are done (a late reply to the
// abandoned call would otherwise be mistaken for nothing).
class UpstreamConnection : public std::enable_shared_from_this<UpstreamConnection> {
 public:
  UpstreamConnection(transport::SocketAddress address, std::chrono::nanoseconds connect_timeout,
                     std::shared_ptr<metrics::ThriftServerStats> stats)
      : address_(std::move(address)), connect_timeout_(connect_timeout), stats_(std::move(stats)) {}
  ~UpstreamConnection() {
    if (counted_ && stats_) stats_->upstream_connections.sub();
  }

  static std::shared_ptr<UpstreamConnection> open(
      transport::SocketAddress address, std::chrono::nanoseconds connect_timeout,
      std::shared_ptr<metrics::ThriftServerStats> stats) {
    auto connection =
        std::make_shared<UpstreamConnection>(std::move(address), connect_timeout, std::move(stats));
    std::shared_ptr<UpstreamConnection> self = connection;
    connection->writer_.emplace(runtime::spawn_with_handle(write_loop(std::move(self))));
    return connection;
  }

  bool usable() const { return !failed_ && !poisoned_; }
  // When the connect succeeded (nullopt: not yet, or it failed).
  const std::optional<runtime::TimePoint>& connected_at() const { return connected_at_; }
  bool idle() const { return calls_ == 0; }

  // Queues `frame`, its sequence id rewritten to one unique on this connection (a oneway call
  // keeps its own: nothing comes back for it).
  void send(ct::Frame& frame, const std::shared_ptr<PendingCall>& pending) {
    ++calls_;
    if (frame.type == ct::MessageType::kOneway) {
      oneways_.push_back(pending);
    } else {
      do {
        next_seqid_ = next_seqid_ == INT32_MAX ? 0 : next_seqid_ + 1;
      } while (waiting_.count(next_seqid_) != 0);
      ct::set_seqid(frame, next_seqid_);
      waiting_.emplace(next_seqid_, pending);
    }
    outgoing_.append(frame.wire);
    wake_writer_.notify();
  }

  // The caller of `pending` stopped waiting.
  void give_up(const std::shared_ptr<PendingCall>& pending) {
    if (pending->result || pending->abandoned) return;
    pending->abandoned = true;
    --calls_;
    poisoned_ = true;
    if (calls_ == 0) fail(Error(ErrorCode::kTimeout, "closed after a call timed out"), false);
  }

  // Ends the connection (every call on it fails with `e`).
  void close(const Error& e) { fail(e, false); }

 private:
  static Task<void> write_loop(std::shared_ptr<UpstreamConnection> self) {
    transport::ConnectOptions options;
    options.timeout = self->connect_timeout_;
    Result<transport::Stream> stream = co_await transport::Stream::connect(self->address_, options);
    if (!stream) {
      self->fail(stream.error(), true);
      co_return;
    }
    if (self->failed_) co_return;
    self->stream_ = std::move(*stream);
    self->connected_at_ = runtime::Runtime::current()->now();
    if (self->stats_) {
      self->stats_->upstream_connections.add();
      self->counted_ = true;
    }
    std::shared_ptr<UpstreamConnection> reader = self;
    self->reader_.emplace(runtime::spawn_with_handle(read_loop(std::move(reader))));
    IoBuffer spare;
    while (!self->failed_) {
      if (self->outgoing_.empty()) {
        Result<void> woken = co_await self->wake_writer_.wait();
        if (!woken) co_return;
        continue;
      }
      IoBuffer out = std::exchange(self->outgoing_, std::move(spare));
      std::vector<std::shared_ptr<PendingCall>> written = std::move(self->oneways_);
      self->oneways_.clear();
      runtime::BufResult<size_t> sent = co_await self->stream_.write_all(std::move(out));
      if (!sent.result) {
        self->fail(sent.result.error(), false);
        co_return;
      }
      spare = std::move(sent.buffer);
      spare.clear();
      if (spare.capacity() > 64 * 1024) spare.release();
      for (std::shared_ptr<PendingCall>& p : written) self->complete(p, ct::Frame());
    }
  }

  static Task<void> read_loop(std::shared_ptr<UpstreamConnection> self) {
    while (!self->failed_) {
      while (!self->in_.empty()) {
        Result<std::optional<ct::Frame>> frame = self->codec_.decode(self->in_);
        if (!frame) {
          self->fail(frame.error(), false);
          co_return;
        }
        if (!frame->has_value()) break;
        ct::Frame& reply = **frame;
        if (reply.type != ct::MessageType::kReply && reply.type != ct::MessageType::kException) {
          self->fail(Error(ErrorCode::kProtocol, "the upstream sent a call, not a reply"), false);
          co_return;
        }
        auto it = self->waiting_.find(reply.seqid);
        if (it == self->waiting_.end()) {
          self->fail(Error(ErrorCode::kProtocol,
                           fmt::format("a reply with sequence id {} to no call", reply.seqid)),
                     false);
          co_return;
        }
        std::shared_ptr<PendingCall> pending = std::move(it->second);
        self->waiting_.erase(it);
        self->complete(pending, std::move(reply));
        if (self->failed_) co_return;
      }
      if (self->in_.empty()) self->in_.release();  // an idle connection keeps no buffer
      Result<size_t> n = co_await self->stream_.read_some(self->in_);
      if (!n) {
        self->fail(n.error(), false);
        co_return;
      }
      if (*n == 0) {
        self->fail(Error(ErrorCode::kConnectionReset, "the upstream closed the connection"), false);
        co_return;
      }
    }
  }

  void complete(const std::shared_ptr<PendingCall>& pending, Result<ct::Frame> result) {
    if (pending->result) return;
    if (!pending->abandoned) --calls_;
    pending->result.emplace(std::move(result));
    pending->done.notify();
    if (poisoned_ && calls_ == 0)
      fail(Error(ErrorCode::kTimeout, "closed after a call timed out"), false);
  }

  void fail(const Error& e, bool connecting) {
    if (failed_) return;
    failed_ = true;
    std::map<int32_t, std::shared_ptr<PendingCall>> waiting = std::move(waiting_);
    waiting_.clear();
    std::vector<std::shared_ptr<PendingCall>> oneways = std::move(oneways_);
    oneways_.clear();
    for (auto& [seqid, p] : waiting) {
      p->connect_failed = connecting;
      complete(p, e);
    }
    for (std::shared_ptr<PendingCall>& p : oneways) {
      p->connect_failed = connecting;
      complete(p, e);
    }
    // Both tasks end (a running one is not suspended: it returns on its own), and the socket
    // closes when the last owner lets go.
    if (reader_) reader_->cancel();
    if (writer_) writer_->cancel();
  }

  transport::SocketAddress address_;
  std::chrono::nanoseconds connect_timeout_;
  std::shared_ptr<metrics::ThriftServerStats> stats_;
  transport::Stream stream_;
  IoBuffer in_;
  ct::Codec codec_;
  IoBuffer outgoing_;                                        // queued frames, written in one go
  std::vector<std::shared_ptr<PendingCall>> oneways_;        // in outgoing_: done once written
  std::map<int32_t, std::shared_ptr<PendingCall>> waiting_;  // by rewritten sequence id
  size_t calls_ = 0;                                         // callers waiting on this
  int32_t next_seqid_ = 0;
  Notify wake_writer_;
  std::optional<runtime::JoinHandle<void>> writer_;
  std::optional<runtime::JoinHandle<void>> reader_;
  std::optional<runtime::TimePoint> connected_at_;
  bool counted_ = false;
  bool failed_ = false;
  bool poisoned_ = false;
};

// --- UpstreamPool -----------------------------------------------------------------------------

UpstreamPool::~UpstreamPool() {
  if (!runtime::Runtime::current()) return;  // the runtime is gone: its tasks went with it
  for (auto& [key, list] : idle_) {
    for (auto& connection : list) connection->close(Error(ErrorCode::kCancelled, "pool closed"));
  }
}

std::shared_ptr<UpstreamConnection> UpstreamPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  std::vector<std::shared_ptr<UpstreamConnection>>& list = it->second;
  while (!list.empty()) {
    std::shared_ptr<UpstreamConnection> connection = std::move(list.back());
    list.pop_back();
    if (connection->usable()) return connection;
  }
  return nullptr;
}

void UpstreamPool::put(const std::string& key, std::shared_ptr<UpstreamConnection> connection) {
  if (!connection->usable()) return;
  std::vector<std::shared_ptr<UpstreamConnection>>& list = idle_[key];
  // Drop the ones the upstream closed meanwhile.
  list.erase(std::remove_if(list.begin(), list.end(), [](const auto& c) { return !c->usable(); }),
             list.end());
  if (list.size() >= kMaxIdlePerKey) {
    connection->close(Error(ErrorCode::kCancelled, "enough idle connections"));
    return;
  }
  list.push_back(std::move(connection));
}

size_t UpstreamPool::idle_count() const {
  size_t n = 0;
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

// --- ThriftForward ----------------------------------------------------------------------------

namespace {

// A failed upstream: the client gets a TApplicationException (a oneway call gets nothing).
void upstream_failed(Reply& reply, const ct::Frame& call, Outcome outcome, const std::string& why,
                     const std::string& told) {
  reply.outcome = outcome;
  reply.error = why;
  if (call.type != ct::MessageType::kOneway) {
    reply.frame = application_exception(call, ApplicationError::kInternalError, told);
  }
}

}  // namespace

Task<Result<Reply>> ThriftForward::call(Call call) {
  Reply reply;
  runtime::Runtime* rt = runtime::Runtime::current();
  std::optional<uint64_t> key_hash;
  if (options_.hash_source_ip) {
    if (Result<transport::SocketAddress> client = transport::SocketAddress::parse(call.client)) {
      key_hash = stable_hash(client->ip_text());
    }
  }
  const size_t index = upstreams_->pick(rt->now(), key_hash);
  const transport::SocketAddress& address = upstreams_->at(index).address;
  reply.upstream = address.to_string();
  ct::Frame& frame = call.frame;
  const bool oneway = frame.type == ct::MessageType::kOneway;
  // Calls in one transport (framed: and protocol) share a connection: a server expects one kind
  // on it (THeader frames name their protocol, so it may change between them).
  std::string key =
      frame.transport == ct::Transport::kHeader
          ? reply.upstream + " header"
          : fmt::format("{} framed/{}", reply.upstream, ct::protocol_name(frame.protocol));
  Session* session = call.session.get();
  std::shared_ptr<UpstreamConnection> connection;
  if (session) {
    auto it = session->leased.find(key);
    if (it != session->leased.end() && it->second->usable()) connection = it->second;
  }
  if (!connection) {
    connection = pool_->take(key);
    if (!connection)
      connection = UpstreamConnection::open(address, options_.connect_timeout, stats_);
    if (session) session->leased[key] = connection;
  }
  const int32_t client_seqid = frame.seqid;
  const uint32_t client_header_seqid = frame.header_seqid;
  auto pending = std::make_shared<PendingCall>();
  connection->send(frame, pending);
  // The frame's bytes are queued; its fields are the client's again (a TApplicationException
  // answers with them).
  frame.seqid = client_seqid;
  frame.header_seqid = client_header_seqid;
  upstreams_->begin(index);
  // The reply timeout counts from when the call could be written: a new connection's connect
  // has its own limit (its failure ends the wait).
  runtime::TimePoint deadline = rt->now() + options_.reply_timeout;
  Result<void> waited = ok();
  for (int round = 0; round < 3; ++round) {
    std::shared_ptr<PendingCall> waited_on = pending;
    waited = co_await runtime::with_timeout(wait_for(std::move(waited_on)), deadline - rt->now());
    if (waited || waited.error().code() != ErrorCode::kTimeout) break;
    if (!connection->connected_at()) {
      deadline = rt->now() + options_.reply_timeout;  // still connecting
    } else if (*connection->connected_at() + options_.reply_timeout > rt->now()) {
      deadline = *connection->connected_at() + options_.reply_timeout;
    } else {
      break;
    }
  }
  upstreams_->end(index);
  if (!waited) connection->give_up(pending);
  // Done with the connection: when no call of the session waits on it any more, it goes back
  // to the pool (or, broken, is dropped).
  if (connection->idle()) {
    if (session) {
      auto it = session->leased.find(key);
      if (it != session->leased.end() && it->second == connection) session->leased.erase(it);
    }
    if (connection->usable()) pool_->put(key, std::move(connection));
  }
  if (!waited) {
    if (stats_) stats_->upstream_errors.add();
    const std::string why =
        waited.error().code() == ErrorCode::kTimeout
            ? fmt::format(
                  "no reply within {} ms",
                  std::chrono::duration_cast<std::chrono::milliseconds>(options_.reply_timeout)
                      .count())
            : waited.error().to_string();
    upstream_failed(reply, frame, Outcome::kTimeout, reply.upstream + ": " + why,
                    "monolake: upstream timed out: " + why);
    co_return reply;
  }
  Result<ct::Frame>& result = *pending->result;
  if (!result) {
    if (pending->connect_failed) {
      upstreams_->report_failure(index, rt->now());
      if (stats_) stats_->upstream_connect_errors.add();
      upstream_failed(reply, frame, Outcome::kUpstreamError,
                      "connect " + reply.upstream + ": " + result.error().to_string(),
                      "monolake: upstream unavailable");
    } else {
      if (stats_) stats_->upstream_errors.add();
      upstream_failed(reply, frame, Outcome::kUpstreamError,
                      reply.upstream + ": " + result.error().to_string(),
                      "monolake: upstream failed: " + result.error().to_string());
    }
    co_return reply;
  }
  upstreams_->report_success(index);
  if (oneway) {
    reply.outcome = Outcome::kOneway;
    co_return reply;
  }
  ct::Frame answer = std::move(*result);
  ct::set_seqid(answer, client_seqid);
  if (answer.transport == ct::Transport::kHeader &&
      client_header_seqid != static_cast<uint32_t>(client_seqid)) {
    for (int i = 0; i < 4; ++i) {
      answer.wire[8 + i] = static_cast<char>(client_header_seqid >> (24 - 8 * i));
    }
    answer.header_seqid = client_header_seqid;
  }
  reply.frame = std::move(answer);
  co_return reply;
}

// --- MethodRouter -----------------------------------------------------------------------------

Task<Result<Reply>> MethodRouter::call(Call call) {
  for (const Route& route : routes_) {
    if (route.methods.empty() || std::find(route.methods.begin(), route.methods.end(),
                                           call.frame.method) != route.methods.end()) {
      co_return co_await route.service->call(std::move(call));
    }
  }
  Reply reply;
  reply.outcome = Outcome::kNoRoute;
  reply.error = "no route for method " + call.frame.method;
  if (call.frame.type != ct::MessageType::kOneway) {
    reply.frame =
        application_exception(call.frame, ApplicationError::kUnknownMethod,
                              "monolake: no route for method '" + call.frame.method + "'");
  }
  co_return reply;
}

// --- AccessLog --------------------------------------------------------------------------------

Task<Result<Reply>> AccessLog::call(Call call) {
  const runtime::TimePoint start = runtime::Runtime::current()->now();
  std::string method = call.frame.method;
  const int32_t seqid = call.frame.seqid;
  const bool oneway = call.frame.type == ct::MessageType::kOneway;
  std::string client = call.client;
  if (stats_) stats_->in_flight.add();
  Result<Reply> reply = co_await inner_->call(std::move(call));
  const runtime::Duration took = runtime::Runtime::current()->now() - start;
  if (stats_) {
    stats_->in_flight.sub();
    stats_->observe(
        reply ? static_cast<size_t>(reply->outcome) : static_cast<size_t>(Outcome::kUpstreamError),
        took);
  }
  if (access_log_enabled()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took);
    std::string end = "ok";
    if (!reply) {
      end = "failed: " + reply.error().to_string();
    } else if (!reply->error.empty()) {
      end = "exception: " + reply->error;
    }
    write_access_line(fmt::format(
        "thrift server={} client={} method={} seqid={} type={} upstream={} duration_ms={} end={}",
        server_name_, client, method, seqid, oneway ? "oneway" : "call",
        reply && !reply->upstream.empty() ? reply->upstream : "-", ms.count(), end));
  }
  co_return reply;
}

// --- the stack -------------------------------------------------------------------------------

std::shared_ptr<metrics::ThriftServerStats> thrift_server_stats(const Build& build,
                                                                const std::string& server_name) {
  return build.shared<metrics::ThriftServerStats>(
      "stats:" + server_name, [&] { return metrics::Registry::global().thrift(server_name); });
}

std::shared_ptr<UpstreamPool> thrift_upstream_pool(const Build& build) {
  return build.shared<UpstreamPool>("upstream_pool",
                                    [] { return std::make_shared<UpstreamPool>(); });
}

Result<std::shared_ptr<AccessLog>> AccessLogFactory::make_via_ref(
    const AccessLog*, std::shared_ptr<ThriftService> inner, const Build& build) const {
  if (!inner) return Error(ErrorCode::kInvalidArgument, build.scope() + ": nothing to log");
  return std::make_shared<AccessLog>(server_name_, std::move(inner),
                                     thrift_server_stats(build, server_name_));
}

std::string MethodRouterFactory::route_scope(const std::vector<std::string>& methods) {
  std::string names;
  for (const std::string& m : methods) names += (names.empty() ? "" : ",") + m;
  return "route[" + (names.empty() ? std::string("*") : names) + "]";
}

Result<std::shared_ptr<MethodRouter>> MethodRouterFactory::make_via_ref(
    const MethodRouter*, std::shared_ptr<ThriftService>, const Build& build) const {
  std::vector<MethodRouter::Route> routes;
  OccurrenceNames scopes;  // routes with one method list (the first matches) stay apart
  for (const Route& route : routes_) {
    Result<std::shared_ptr<ThriftService>> chain =
        route.stack.make(build.scoped(scopes.next(route_scope(route.methods))));
    if (!chain) return std::move(chain).error();
    routes.push_back(MethodRouter::Route{route.methods, std::move(*chain)});
  }
  return std::make_shared<MethodRouter>(std::move(routes));
}

Result<std::shared_ptr<ThriftForward>> ThriftForwardFactory::make_via_ref(
    const ThriftForward* previous, std::shared_ptr<ThriftService>, const Build& build) const {
  if (params_.upstreams.empty()) {
    return Error(ErrorCode::kInvalidArgument, build.scope() + ": no upstreams");
  }
  std::shared_ptr<UpstreamSet> set = UpstreamSet::carry_over(
      previous ? previous->upstreams() : nullptr, params_.upstreams, params_.balancer);
  return std::make_shared<ThriftForward>(std::move(set), thrift_upstream_pool(build),
                                         params_.options,
                                         thrift_server_stats(build, params_.server_name));
}

Result<ThriftStack> thrift_server_stack(const config::ServerConfig& server) {
  if (server.routes.empty()) return Error(ErrorCode::kInvalidArgument, "no route");
  ThriftForward::Options options;
  options.connect_timeout = server.timeout.upstream_connect;
  options.reply_timeout = server.timeout.upstream_read;
  std::vector<MethodRouterFactory::Route> routes;
  std::shared_ptr<ThriftForwardFactory> first_forward;
  bool by_method = false;
  for (const config::RouteConfig& route : server.routes) {
    ThriftForwardFactory::Params params;
    params.server_name = server.name;
    for (const config::Upstream& u : route.upstreams) {
      params.upstreams.push_back({u.endpoint.address, u.weight});
    }
    params.balancer = route.load_balancer;
    params.options = options;
    params.options.hash_source_ip = route.hash_on.has_value();  // source_ip: thrift's only key
    auto forward = std::make_shared<ThriftForwardFactory>(std::move(params));
    if (!first_forward) first_forward = forward;
    MethodRouterFactory::Route r{route.methods, {}};
    r.stack.push("forward", std::move(forward));
    by_method = by_method || !route.methods.empty();
    routes.push_back(std::move(r));
  }
  ThriftStack stack;
  stack.push("access_log", std::make_shared<AccessLogFactory>(server.name));
  if (by_method) {
    stack.push("routes", std::make_shared<MethodRouterFactory>(std::move(routes)));
  } else {
    // Every call goes to the first route: no router, and its forward under the identity it
    // has under one, so adding method routes later keeps its state.
    stack.push("forward", std::move(first_forward),
               "routes/" + MethodRouterFactory::route_scope({}) + "/forward");
  }
  return stack;
}

}  // namespace monolake::proxy::thrift
