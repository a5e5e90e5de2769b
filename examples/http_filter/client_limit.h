// An example connection filter: at most `max` open connections per client address on each
// worker, checked at accept, before TLS and before a byte is read.
//
//   [[servers.web.connection_filters]]
//   name = "client_limit"
//   max = 16                          # open connections per client address and worker (default)
//
// The client is the connection's effective client (ConnectionContext::client: the socket's
// peer, or what an earlier connection layer announced). A connection over the limit is closed
// at once; the framework counts it in /stats as
// monolake_connection_filter_closed_total{server="web",filter="filter:client_limit"}.
//
// The open counts are per-worker state that must survive a reload — connections accepted
// before it are still open after it, and their closed() calls reach the filter that saw them
// open — so each generation's filter shares its predecessor's table (make_via_ref).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "proxy/framework/framework.h"

namespace example {

namespace connection = monolake::proxy::connection;
namespace framework = monolake::proxy::framework;
using monolake::Result;

class ClientLimit final : public connection::ConnectionFilter {
 public:
  // Open connections by client address (no port), on this worker.
  using OpenCounts = std::map<std::string, size_t, std::less<>>;

  ClientLimit(size_t max, std::shared_ptr<OpenCounts> open) : max_(max), open_(std::move(open)) {}

  monolake::runtime::Task<Result<void>> before_tls(monolake::transport::Stream& socket,
                                                   monolake::IoBuffer& read_ahead,
                                                   connection::ConnectionContext& context) override;
  void closed(const connection::ConnectionContext& context) override;

  const std::shared_ptr<OpenCounts>& open() const { return open_; }

 private:
  size_t max_;
  std::shared_ptr<OpenCounts> open_;
};

class ClientLimitFactory final : public connection::ConnectionFilterFactoryOf<ClientLimit> {
 public:
  explicit ClientLimitFactory(size_t max) : max_(max) {}
  Result<std::shared_ptr<ClientLimit>> make_via_ref(
      const ClientLimit* previous, const monolake::proxy::Build& build) const override;

 private:
  size_t max_;
};

monolake::proxy::ParamSchema client_limit_schema();
Result<std::shared_ptr<const connection::ConnectionFilterFactory>> make_client_limit(
    const framework::ConnectionFilterParams& params);

}  // namespace example
