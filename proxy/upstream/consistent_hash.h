// Consistent hashing of request keys onto upstreams, for the `ring_hash` and `maglev` load
// balancers: the same key reaches the same upstream on every worker, across reloads and on
// every instance of a fleet, because both the key's hash and the tables depend only on the
// upstreams' addresses and weights (a fixed, unseeded hash; no process state). Adding or
// removing one of N upstreams moves about 1/N of the keys.
//
// Both tables are immutable once built; a worker's UpstreamSet owns its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace monolake::proxy {

// A fixed 64-bit hash of bytes (FNV-1a, then a 64-bit finaliser so that keys differing in one
// byte land far apart). Never seeded: fleets and restarts must agree on it.
uint64_t stable_hash(std::string_view bytes);

// One upstream as the tables see it: its identity (the address text) and its weight.
struct HashTarget {
  std::string_view name;
  uint32_t weight = 1;
};

// Whether the upstream at an index may take the request now (not backing off).
using UsableUpstream = std::function<bool(size_t)>;

// Ketama-style ring: each upstream owns kPointsPerWeight x weight points (scaled down so the ring
// holds at most kMaxPoints); a key goes to the owner of the first point at or after its hash,
// and past an unusable upstream to the next usable one clockwise.
class HashRing {
 public:
  static constexpr uint32_t kPointsPerWeight = 160;
  static constexpr size_t kMaxPoints = 1 << 16;

  explicit HashRing(const std::vector<HashTarget>& targets);

  // The upstream for `hash`, or nullopt when none is usable.
  std::optional<size_t> lookup(uint64_t hash, const UsableUpstream& usable) const;
  size_t points() const { return ring_.size(); }

 private:
  struct Point {
    uint64_t hash;
    uint32_t index;
  };
  std::vector<Point> ring_;  // sorted by hash
  size_t targets_;
};

// Maglev (Eisenbud et al., NSDI 2016): a lookup table of a prime size M, each upstream filling
// slots in the order of its own permutation of 0..M-1, in proportion to its weight. A lookup is
// one index; past an unusable upstream the key is hashed again (a few times, then nullopt).
class MaglevTable {
 public:
  static constexpr size_t kMinSize = 1031;  // about 1% granularity of an upstream's share

  explicit MaglevTable(const std::vector<HashTarget>& targets);

  std::optional<size_t> lookup(uint64_t hash, const UsableUpstream& usable) const;
  size_t size() const { return table_.size(); }
  // The upstream at each slot, for tests of the distribution.
  const std::vector<uint32_t>& slots() const { return table_; }

 private:
  std::vector<uint32_t> table_;
  size_t targets_;
};

}  // namespace monolake::proxy
