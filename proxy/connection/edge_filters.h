// The built-in connection layers a server's own keys declare (docs/config.md):
//
//   allow / deny          AccessList: refuses clients by address, at accept, before a byte is
//                         read; where proxy_protocol is on, again on the address it announces.
//   connection_rate_limit ConnectionRateLimit: closes connections over per_sec (with bursts up to
//                         `burst`) at accept, after allow/deny on the peer. Each worker has a
//                         bucket of per_sec / workers (burst / workers, at least 1), so the
//                         process admits the rate when the kernel spreads connections evenly.
//   proxy_protocol        ProxyProtocol: reads the PROXY protocol header (codec/proxy_protocol.h)
//   proxy_protocol_from   before TLS and makes the client it announces the connection's
//                         effective client (ConnectionContext::client): X-Forwarded-For, access
//                         logs and the second access-list check use it.
//
// A refusal is an error from before_tls: the framework closes the connection and counts it in
// monolake_connection_filter_closed_total{server,filter} (filter.h). Access lists and the PROXY
// protocol are stateless, so a reload simply builds new ones; a worker's connection-rate bucket
// passes to its next generation.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "base/token_bucket.h"
#include "codec/proxy_protocol.h"
#include "proxy/connection/filter.h"
#include "transport/cidr.h"

namespace monolake::proxy::connection {

struct AccessListParams {
  // A client is refused if it is in a `deny` block, or if `allow` is not empty and it is in
  // none of its blocks (deny wins).
  std::vector<transport::Cidr> allow;
  std::vector<transport::Cidr> deny;
  bool empty() const { return allow.empty() && deny.empty(); }
};

// Whether `params` admits `client` (not a Unix peer: those are always admitted).
bool admitted(const AccessListParams& params, const transport::SocketAddress& client);

struct ProxyProtocolParams {
  codec::ProxyVersions versions = codec::ProxyVersions::kAny;
  // The peers (load balancers) whose header is read; empty: every peer. Other peers' connections
  // are served as if proxy_protocol were off (their first bytes are the protocol's).
  std::vector<transport::Cidr> from;
  // The whole header must have arrived within this (the server's read-header timeout).
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
};

// Factories for a server's ConnectionStack (stateless filters, one per worker and generation).
std::shared_ptr<const ConnectionFilterFactory> access_list_factory(AccessListParams params);
std::shared_ptr<const ConnectionFilterFactory> proxy_protocol_factory(ProxyProtocolParams params);
// `rate` is the server's, split here over `workers`.
std::shared_ptr<const ConnectionFilterFactory> connection_rate_limit_factory(TokenRate rate,
                                                                             size_t workers);

}  // namespace monolake::proxy::connection
