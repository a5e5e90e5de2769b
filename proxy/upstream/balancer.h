// Upstream selection for one route on one worker: the load balancers of the configuration and
// passive health (an upstream whose connect failed is skipped for a back-off period).
//
// Not thread-safe: each worker has its own UpstreamSet (a factory's make_from carries it over
// a reload when the upstream list is unchanged, so back-off and round-robin position survive).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "proxy/upstream/consistent_hash.h"
#include "runtime/timer.h"
#include "transport/address.h"

namespace monolake::proxy {

enum class Balancer {
  kRoundRobin,
  kRandom,
  kWeightedRandom,
  kFirst,
  kLeastRequest,
  kRingHash,  // consistent hashing of a request key (the route's hash_on), proxy/upstream/
  kMaglev,    // consistent_hash.h; requests without the key go round robin
};

// "round_robin" | "random" | "weighted_random" | "first" | "least_request" | "ring_hash" |
// "maglev", and Monolake's "RoundRobin" | "Random" | "WeightedRandom" | "First".
Result<Balancer> parse_balancer(std::string_view name);
std::string_view balancer_name(Balancer balancer);
inline bool hashes_keys(Balancer b) { return b == Balancer::kRingHash || b == Balancer::kMaglev; }

struct Upstream {
  transport::SocketAddress address;
  uint32_t weight = 1;
};

class UpstreamSet {
 public:
  static constexpr std::chrono::seconds kDefaultBackoff{5};

  UpstreamSet(std::vector<Upstream> upstreams, Balancer balancer,
              std::chrono::nanoseconds backoff = kDefaultBackoff, uint64_t seed = 0);

  // The index of the upstream to use now. Upstreams backing off are skipped; when all are,
  // the one whose back-off ends first is used (better a likely failure than none at all).
  // `key_hash` (stable_hash of the request's key) selects through the ring or maglev table of
  // a hashing balancer; without one, or with another balancer, it is ignored.
  size_t pick(runtime::TimePoint now, std::optional<uint64_t> key_hash = std::nullopt);

  // Passive health: a failed connect starts (or doubles, up to 8x) the back-off; a success
  // clears it.
  void report_failure(size_t index, runtime::TimePoint now);
  void report_success(size_t index);
  bool backing_off(size_t index, runtime::TimePoint now) const {
    return states_[index].retry_after > now;
  }

  // Requests in flight, for least_request.
  void begin(size_t index) { ++states_[index].active; }
  void end(size_t index) { --states_[index].active; }

  const Upstream& at(size_t index) const { return upstreams_[index]; }
  size_t size() const { return upstreams_.size(); }
  Balancer balancer() const { return balancer_; }
  // Same upstreams and balancer (a reload may then keep this set's state).
  bool same_as(const std::vector<Upstream>& upstreams, Balancer balancer) const;

  // For a layer built from its previous generation: `previous` itself (balancer position,
  // back-off, requests in flight) while its upstreams and balancer are unchanged, else a new set.
  static std::shared_ptr<UpstreamSet> carry_over(const std::shared_ptr<UpstreamSet>& previous,
                                                 const std::vector<Upstream>& upstreams,
                                                 Balancer balancer);

 private:
  struct State {
    runtime::TimePoint retry_after{};
    uint32_t failures = 0;
    uint32_t active = 0;
  };
  size_t pick_among_healthy(runtime::TimePoint now);
  std::optional<size_t> pick_by_hash(uint64_t key_hash, runtime::TimePoint now) const;

  std::vector<Upstream> upstreams_;
  std::vector<State> states_;
  Balancer balancer_;
  std::chrono::nanoseconds backoff_;
  size_t next_ = 0;
  uint64_t total_weight_ = 0;
  std::mt19937_64 random_;
  std::unique_ptr<const HashRing> ring_;       // kRingHash
  std::unique_ptr<const MaglevTable> maglev_;  // kMaglev
};

}  // namespace monolake::proxy
