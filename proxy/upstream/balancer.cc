#include "proxy/upstream/balancer.h"

#include <algorithm>

#include "base/log.h"

namespace monolake::proxy {

Result<Balancer> parse_balancer(std::string_view name) {
  if (name == "round_robin" || name == "RoundRobin") return Balancer::kRoundRobin;
  if (name == "random" || name == "Random") return Balancer::kRandom;
  if (name == "weighted_random" || name == "WeightedRandom") return Balancer::kWeightedRandom;
  if (name == "first" || name == "First") return Balancer::kFirst;
  if (name == "least_request" || name == "LeastRequest") return Balancer::kLeastRequest;
  if (name == "ring_hash") return Balancer::kRingHash;
  if (name == "maglev") return Balancer::kMaglev;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unknown load balancer '{}': expected round_robin, random, "
                           "weighted_random, first, least_request, ring_hash or maglev",
                           name));
}

std::string_view balancer_name(Balancer balancer) {
  switch (balancer) {
    case Balancer::kRoundRobin:
      return "round_robin";
    case Balancer::kRandom:
      return "random";
    case Balancer::kWeightedRandom:
      return "weighted_random";
    case Balancer::kFirst:
      return "first";
    case Balancer::kLeastRequest:
      return "least_request";
    case Balancer::kRingHash:
      return "ring_hash";
    case Balancer::kMaglev:
      return "maglev";
  }
  return "?";
}

UpstreamSet::UpstreamSet(std::vector<Upstream> upstreams, Balancer balancer,
                         std::chrono::nanoseconds backoff, uint64_t seed)
    : upstreams_(std::move(upstreams)),
      states_(upstreams_.size()),
      balancer_(balancer),
      backoff_(backoff),
      random_(seed ? seed : std::random_device{}()) {
  ML_CHECK_MSG(!upstreams_.empty(), "an UpstreamSet needs at least one upstream");
  for (const Upstream& u : upstreams_) total_weight_ += std::max<uint32_t>(u.weight, 1);
  if (hashes_keys(balancer_)) {
    // The tables hash each upstream's address text: the same on every worker and instance.
    std::vector<std::string> names;
    names.reserve(upstreams_.size());
    for (const Upstream& u : upstreams_) names.push_back(u.address.to_string());
    std::vector<HashTarget> targets;
    for (size_t i = 0; i < upstreams_.size(); ++i)
      targets.push_back({names[i], upstreams_[i].weight});
    if (balancer_ == Balancer::kRingHash) {
      ring_ = std::make_unique<const HashRing>(targets);
    } else {
      maglev_ = std::make_unique<const MaglevTable>(targets);
    }
  }
}

bool UpstreamSet::same_as(const std::vector<Upstream>& upstreams, Balancer balancer) const {
  if (balancer != balancer_ || upstreams.size() != upstreams_.size()) return false;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    if (!(upstreams[i].address == upstreams_[i].address) ||
        upstreams[i].weight != upstreams_[i].weight) {
      return false;
    }
  }
  return true;
}

size_t UpstreamSet::pick(runtime::TimePoint now, std::optional<uint64_t> key_hash) {
  if (key_hash && hashes_keys(balancer_)) {
    if (std::optional<size_t> hashed = pick_by_hash(*key_hash, now)) return *hashed;
  }
  const bool any_healthy = std::any_of(states_.begin(), states_.end(),
                                       [now](const State& s) { return s.retry_after <= now; });
  if (any_healthy) return pick_among_healthy(now);
  const auto soonest = std::min_element(
      states_.begin(), states_.end(),
      [](const State& a, const State& b) { return a.retry_after < b.retry_after; });
  return static_cast<size_t>(soonest - states_.begin());
}

std::optional<size_t> UpstreamSet::pick_by_hash(uint64_t key_hash, runtime::TimePoint now) const {
  const UsableUpstream healthy = [this, now](size_t i) { return states_[i].retry_after <= now; };
  return ring_ ? ring_->lookup(key_hash, healthy) : maglev_->lookup(key_hash, healthy);
}

size_t UpstreamSet::pick_among_healthy(runtime::TimePoint now) {
  const size_t n = upstreams_.size();
  auto healthy = [&](size_t i) { return states_[i].retry_after <= now; };
  switch (balancer_) {
    case Balancer::kFirst:
      for (size_t i = 0; i < n; ++i) {
        if (healthy(i)) return i;
      }
      break;
    case Balancer::kRoundRobin:
    case Balancer::kRingHash:  // a request without a key
    case Balancer::kMaglev:
      for (size_t tried = 0; tried < n; ++tried) {
        const size_t i = next_++ % n;
        if (healthy(i)) return i;
      }
      break;
    case Balancer::kRandom: {
      // Uniform among the healthy ones.
      std::uniform_int_distribution<size_t> dist(0, n - 1);
      for (size_t tries = 0; tries < 4 * n; ++tries) {
        const size_t i = dist(random_);
        if (healthy(i)) return i;
      }
      for (size_t i = 0; i < n; ++i) {
        if (healthy(i)) return i;
      }
      break;
    }
    case Balancer::kWeightedRandom: {
      uint64_t healthy_weight = 0;
      for (size_t i = 0; i < n; ++i) {
        if (healthy(i)) healthy_weight += std::max<uint32_t>(upstreams_[i].weight, 1);
      }
      std::uniform_int_distribution<uint64_t> dist(0, healthy_weight - 1);
      uint64_t ticket = dist(random_);
      for (size_t i = 0; i < n; ++i) {
        if (!healthy(i)) continue;
        const uint64_t w = std::max<uint32_t>(upstreams_[i].weight, 1);
        if (ticket < w) return i;
        ticket -= w;
      }
      break;
    }
    case Balancer::kLeastRequest: {
      // Fewest in flight; ties go round-robin so equal upstreams share the load.
      size_t best = n;
      for (size_t tried = 0; tried < n; ++tried) {
        const size_t i = (next_ + tried) % n;
        if (healthy(i) && (best == n || states_[i].active < states_[best].active)) best = i;
      }
      ++next_;
      if (best != n) return best;
      break;
    }
  }
  return 0;  // unreachable while some upstream is healthy
}

void UpstreamSet::report_failure(size_t index, runtime::TimePoint now) {
  State& s = states_[index];
  s.failures = std::min<uint32_t>(s.failures + 1, 4);
  const auto factor = 1u << (s.failures - 1);  // 1x, 2x, 4x, 8x
  s.retry_after = now + backoff_ * factor;
}

void UpstreamSet::report_success(size_t index) {
  states_[index].failures = 0;
  states_[index].retry_after = {};
}

std::shared_ptr<UpstreamSet> UpstreamSet::carry_over(const std::shared_ptr<UpstreamSet>& previous,
                                                     const std::vector<Upstream>& upstreams,
                                                     Balancer balancer) {
  if (previous && previous->same_as(upstreams, balancer)) return previous;
  return std::make_shared<UpstreamSet>(upstreams, balancer);
}

}  // namespace monolake::proxy
