#include "proxy/thrift/thrift_proxy.h"

#include "base/log.h"
#include "runtime/runtime.h"
#include "transport/stream.h"

namespace monolake::proxy::thrift {

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

// --- ThriftForward ----------------------------------------------------------------------------

struct UpstreamConnection {
  explicit UpstreamConnection(transport::Stream s) : stream(std::move(s)) {}
  transport::ByteStreamOf<transport::Stream> stream;
  IoBuffer in;
  ct::Codec codec;
};

ThriftForward::Pool::~Pool() = default;

namespace {

// The next frame from the upstream, within `timeout`.
Task<Result<ct::Frame>> read_reply(UpstreamConnection& c, std::chrono::nanoseconds timeout) {
  const runtime::TimePoint deadline = runtime::Runtime::current()->now() + timeout;
  while (true) {
    if (!c.in.empty()) {
      Result<std::optional<ct::Frame>> frame = c.codec.decode(c.in);
      if (!frame) co_return std::move(frame).error();
      if (frame->has_value()) co_return std::move(**frame);
    }
    const auto left = deadline - runtime::Runtime::current()->now();
    if (left <= std::chrono::nanoseconds(0)) {
      co_return Error(ErrorCode::kTimeout, "no reply in time");
    }
    Result<size_t> n = co_await runtime::with_timeout(c.stream.read_some(c.in), left);
    if (!n) co_return std::move(n).error();
    if (*n == 0) co_return Error(ErrorCode::kConnectionReset, "the upstream closed the connection");
  }
}

// A failed upstream: the client gets a TApplicationException (a oneway call gets nothing).
void upstream_failed(Reply& reply, const ct::Frame& call, const Error& e) {
  reply.error = reply.upstream + ": " + e.to_string();
  if (call.type != ct::MessageType::kOneway) {
    reply.frame = application_exception(call, ApplicationError::kInternalError,
                                        "monolake: upstream failed: " + e.to_string());
  }
}

}  // namespace

Task<Result<Reply>> ThriftForward::call(Call call) {
  Reply reply;
  runtime::Runtime* rt = runtime::Runtime::current();
  const size_t index = upstreams_->pick(rt->now());
  const transport::SocketAddress& address = upstreams_->at(index).address;
  reply.upstream = address.to_string();
  std::unique_ptr<UpstreamConnection> conn;
  std::vector<std::unique_ptr<UpstreamConnection>>& idle = pool_->idle[reply.upstream];
  if (!idle.empty()) {
    conn = std::move(idle.back());
    idle.pop_back();
  } else {
    Result<transport::Stream> stream =
        co_await transport::Stream::connect(address, {.timeout = options_.connect_timeout});
    if (!stream) {
      upstreams_->report_failure(index, rt->now());
      reply.error = "connect " + reply.upstream + ": " + stream.error().to_string();
      if (call.frame.type != ct::MessageType::kOneway) {
        reply.frame = application_exception(call.frame, ApplicationError::kInternalError,
                                            "monolake: upstream unavailable");
      }
      co_return reply;
    }
    upstreams_->report_success(index);
    conn = std::make_unique<UpstreamConnection>(std::move(*stream));
  }
  runtime::BufResult<size_t> sent =
      co_await conn->stream.write_all(IoBuffer::copy_of(call.frame.wire));
  if (!sent.result) {
    upstream_failed(reply, call.frame, sent.result.error());
    co_return reply;
  }
  if (call.frame.type == ct::MessageType::kOneway) {
    pool_->idle[reply.upstream].push_back(std::move(conn));
    co_return reply;
  }
  Result<ct::Frame> answer = co_await read_reply(*conn, options_.reply_timeout);
  if (!answer) {
    upstream_failed(reply, call.frame, answer.error());
    co_return reply;
  }
  if (answer->seqid != call.frame.seqid) {
    upstream_failed(reply, call.frame, Error(ErrorCode::kProtocol, "reply with another seqid"));
    co_return reply;
  }
  if (conn->in.empty()) pool_->idle[reply.upstream].push_back(std::move(conn));
  reply.frame = std::move(*answer);
  co_return reply;
}

// --- AccessLog --------------------------------------------------------------------------------

Task<Result<Reply>> AccessLog::call(Call call) {
  const runtime::TimePoint start = runtime::Runtime::current()->now();
  std::string method = call.frame.method;
  const int32_t seqid = call.frame.seqid;
  const bool oneway = call.frame.type == ct::MessageType::kOneway;
  std::string client = std::move(call.client);
  Result<Reply> reply = co_await inner_->call(std::move(call));
  if (access_log_enabled()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        runtime::Runtime::current()->now() - start);
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

// --- ThriftFactory ----------------------------------------------------------------------------

Result<std::shared_ptr<ThriftService>> ThriftFactory::make_from(
    const std::shared_ptr<ThriftService>& previous) const {
  if (server_.routes.empty()) return Error(ErrorCode::kInvalidArgument, "no route");
  const config::RouteConfig& route = server_.routes.front();
  std::vector<Upstream> upstreams;
  for (const config::Upstream& u : route.upstreams)
    upstreams.push_back({u.endpoint.address, u.weight});
  // Carry the pool and the balancer's state over from the previous chain.
  const ThriftForward* old = nullptr;
  if (const auto* log = dynamic_cast<const AccessLog*>(previous.get())) {
    old = dynamic_cast<const ThriftForward*>(log->inner().get());
  }
  std::shared_ptr<UpstreamSet> set =
      old && old->upstreams()->same_as(upstreams, route.load_balancer)
          ? old->upstreams()
          : std::make_shared<UpstreamSet>(std::move(upstreams), route.load_balancer);
  std::shared_ptr<ThriftForward::Pool> pool =
      old ? old->pool() : std::make_shared<ThriftForward::Pool>();
  ThriftForward::Options options;
  options.connect_timeout = server_.timeout.upstream_connect;
  options.reply_timeout = server_.timeout.upstream_read;
  std::shared_ptr<ThriftService> chain =
      std::make_shared<ThriftForward>(std::move(set), std::move(pool), options);
  return std::shared_ptr<ThriftService>(
      std::make_shared<AccessLog>(server_.name, std::move(chain)));
}

}  // namespace monolake::proxy::thrift
