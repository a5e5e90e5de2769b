// Connecting to one of an UpstreamSet's upstreams the way tcp servers do, for any connection
// layer of one's own (a server kind, a filter that calls out): pick with the set's balancer,
// connect with a timeout, and on failure report the upstream (it is backed off, so the next pick
// skips it) and try the next, at most kMaxConnectAttempts in all. A connect cancelled because
// the connection's task is (the server draining) is not held against the upstream.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "proxy/upstream/balancer.h"
#include "runtime/task.h"
#include "transport/stream.h"

namespace monolake::proxy {

inline constexpr size_t kMaxConnectAttempts = 3;

struct UpstreamConnection {
  size_t index = 0;  // in the UpstreamSet
  transport::Stream stream;
};

// Each failure is logged as "LOG_AS: upstream ADDR failed: ERROR" (warning). `tried`: if given,
// set to each address tried in turn (the last one tried at the end). The error is the last
// attempt's. `key_hash`: the connection's key for a ring_hash or maglev set (UpstreamSet::pick).
runtime::Task<Result<UpstreamConnection>> connect_upstream(
    UpstreamSet& upstreams, std::chrono::nanoseconds timeout, std::string log_as,
    std::string* tried = nullptr, std::optional<uint64_t> key_hash = std::nullopt);

// Counts a request (a connection, a call) in flight on one upstream for least_request, for as
// long as it lives. The set must outlive it.
class InFlight {
 public:
  InFlight(UpstreamSet& set, size_t index) : set_(&set), index_(index) { set_->begin(index_); }
  ~InFlight() { set_->end(index_); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  UpstreamSet* set_;
  size_t index_;
};

}  // namespace monolake::proxy
