// The Thrift proxy as a service chain: a server with `proxy_type = "thrift"` hands every call
// (one decoded frame, codec/thrift.h) to
//
//   AccessLog -> ThriftForward
//
// ThriftForward picks an upstream with the route's balancer, takes an idle pooled connection to
// it (or connects with the connect timeout), forwards the frame's bytes unchanged, and for a
// call (not oneway) reads the reply frame, which must carry the same sequence id. A failed
// upstream (refused, timed out, closed, a malformed or mismatched reply) answers the client
// with a TApplicationException in the client's own transport and protocol, never a dropped
// connection. Connections are per worker, exclusive while a call is on them, and carried over
// reloads by the factory.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/thrift.h"
#include "proxy/config/config.h"
#include "proxy/service/service.h"
#include "proxy/upstream/balancer.h"
#include "runtime/time.h"
#include "transport/byte_stream.h"

namespace monolake::proxy::thrift {

namespace ct = monolake::codec::thrift;

// A call from a client connection; `client` is for logs.
struct Call {
  ct::Frame frame;
  std::string client;
};
// The reply to send back (nullopt for a oneway call), and what happened, for the log.
struct Reply {
  std::optional<ct::Frame> frame;
  std::string upstream;
  std::string error;  // set when the proxy answered with a TApplicationException
};

using ThriftService = Service<Call, Reply>;

// TApplicationException type codes (Thrift's own).
enum class ApplicationError : int32_t { kInternalError = 6, kProtocolError = 7 };

// A TApplicationException reply to `call`, in its transport and protocol, with its method and
// sequence id.
ct::Frame application_exception(const ct::Frame& call, ApplicationError type,
                                const std::string& message);

struct UpstreamConnection;

class ThriftForward final : public ThriftService {
 public:
  struct Options {
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds(5);
    std::chrono::nanoseconds reply_timeout = std::chrono::seconds(60);
  };
  struct Pool {
    ~Pool();
    std::map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>> idle;
  };
  ThriftForward(std::shared_ptr<UpstreamSet> upstreams, std::shared_ptr<Pool> pool, Options options)
      : upstreams_(std::move(upstreams)), pool_(std::move(pool)), options_(options) {}
  Task<Result<Reply>> call(Call call) override;
  const std::shared_ptr<UpstreamSet>& upstreams() const { return upstreams_; }
  const std::shared_ptr<Pool>& pool() const { return pool_; }

 private:
  std::shared_ptr<UpstreamSet> upstreams_;
  std::shared_ptr<Pool> pool_;
  Options options_;
};

// One access line per call:
//   thrift server=NAME client=ADDR method=M seqid=N type=call|oneway upstream=ADDR|-
//   duration_ms=N end=ok|exception: REASON
class AccessLog final : public Layer<Call, Reply> {
 public:
  AccessLog(std::string server_name, std::shared_ptr<Inner> inner)
      : Layer(std::move(inner)), server_name_(std::move(server_name)) {}
  Task<Result<Reply>> call(Call call) override;

 private:
  std::string server_name_;
};

class ThriftFactory final : public Factory<ThriftService> {
 public:
  explicit ThriftFactory(config::ServerConfig server) : server_(std::move(server)) {}
  Result<std::shared_ptr<ThriftService>> make_from(
      const std::shared_ptr<ThriftService>& previous) const override;

 private:
  config::ServerConfig server_;
};

}  // namespace monolake::proxy::thrift
