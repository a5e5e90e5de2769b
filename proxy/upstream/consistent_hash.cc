#include "proxy/upstream/consistent_hash.h"

#include <algorithm>
#include <string>

#include "base/assert.h"

namespace monolake::proxy {

namespace {

// splitmix64's finaliser: FNV-1a alone leaves short keys that differ in their last byte close
// together in the high bits, which is where the ring's order is decided.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t hash_with(std::string_view name, std::string_view suffix) {
  std::string bytes;
  bytes.reserve(name.size() + 1 + suffix.size());
  bytes.append(name).append("#").append(suffix);
  return stable_hash(bytes);
}

bool is_prime(size_t n) {
  if (n < 2) return false;
  for (size_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

size_t prime_at_least(size_t n) {
  while (!is_prime(n)) ++n;
  return n;
}

}  // namespace

uint64_t stable_hash(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

// --- HashRing ---------------------------------------------------------------------------------

HashRing::HashRing(const std::vector<HashTarget>& targets) : targets_(targets.size()) {
  ML_CHECK_MSG(!targets.empty(), "a hash ring needs at least one upstream");
  uint64_t total = 0;
  for (const HashTarget& t : targets) total += std::max<uint32_t>(t.weight, 1);
  // kPointsPerWeight a unit of weight while the ring stays within kMaxPoints, else shares of
  // kMaxPoints in proportion to the weights; at least one point an upstream.
  const uint64_t budget = std::min<uint64_t>(kPointsPerWeight * total, kMaxPoints);
  for (size_t i = 0; i < targets.size(); ++i) {
    const uint64_t weight = std::max<uint32_t>(targets[i].weight, 1);
    const uint64_t points = std::max<uint64_t>(1, weight * budget / total);
    for (uint64_t p = 0; p < points; ++p) {
      ring_.push_back({hash_with(targets[i].name, std::to_string(p)), static_cast<uint32_t>(i)});
    }
  }
  // Ties (astronomically rare) broken by index, so every process orders the ring alike.
  std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
  });
}

std::optional<size_t> HashRing::lookup(uint64_t hash, const UsableUpstream& usable) const {
  auto first = std::lower_bound(ring_.begin(), ring_.end(), hash,
                                [](const Point& p, uint64_t h) { return p.hash < h; });
  size_t at = static_cast<size_t>(first - ring_.begin()) % ring_.size();
  if (usable(ring_[at].index)) return ring_[at].index;  // the usual case: no allocation
  // Clockwise past unusable upstreams; each is asked once.
  std::vector<bool> asked(targets_, false);
  size_t left = targets_;
  for (size_t step = 0; step < ring_.size() && left > 0; ++step, at = (at + 1) % ring_.size()) {
    const size_t index = ring_[at].index;
    if (asked[index]) continue;
    if (usable(index)) return index;
    asked[index] = true;
    --left;
  }
  return std::nullopt;
}

// --- MaglevTable ------------------------------------------------------------------------------

MaglevTable::MaglevTable(const std::vector<HashTarget>& targets) : targets_(targets.size()) {
  ML_CHECK_MSG(!targets.empty(), "a maglev table needs at least one upstream");
  const size_t n = targets.size();
  const size_t m = prime_at_least(std::max(kMinSize, 101 * n));
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  uint32_t max_weight = 1;
  for (size_t i = 0; i < n; ++i) {
    offset[i] = hash_with(targets[i].name, "offset") % m;
    skip[i] = hash_with(targets[i].name, "skip") % (m - 1) + 1;
    max_weight = std::max(max_weight, std::max<uint32_t>(targets[i].weight, 1));
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_.assign(m, kEmpty);
  // Weights: each turn, an upstream earns its weight in credit and claims one slot for every
  // max_weight of credit, so shares follow the weights and the heaviest claims every turn.
  std::vector<uint64_t> credit(n, 0);
  size_t filled = 0;
  while (filled < m) {
    for (size_t i = 0; i < n && filled < m; ++i) {
      credit[i] += std::max<uint32_t>(targets[i].weight, 1);
      if (credit[i] < max_weight) continue;
      credit[i] -= max_weight;
      // The next slot of i's permutation not yet taken (m is prime, so it visits every slot).
      uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
      while (table_[slot] != kEmpty) {
        ++next[i];
        slot = (offset[i] + next[i] * skip[i]) % m;
      }
      table_[slot] = static_cast<uint32_t>(i);
      ++next[i];
      ++filled;
    }
  }
}

std::optional<size_t> MaglevTable::lookup(uint64_t hash, const UsableUpstream& usable) const {
  // The key's slot, then (past an unusable upstream) slots of the key hashed again: a key moves
  // only when its own upstream is out, and the moved keys spread over the others.
  size_t slot = hash % table_.size();
  for (size_t attempt = 0; attempt < 2 * targets_ + 3; ++attempt) {
    slot = hash % table_.size();
    if (usable(table_[slot])) return table_[slot];
    hash = mix(hash + 0x9e3779b97f4a7c15ULL);
  }
  // Rare (a heavy upstream out): walk the table from the last slot, still one answer per key.
  for (size_t step = 1; step < table_.size(); ++step) {
    const size_t index = table_[(slot + step) % table_.size()];
    if (usable(index)) return index;
  }
  return std::nullopt;
}

}  // namespace monolake::proxy
