#include "proxy/upstream/consistent_hash.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace monolake::proxy {
namespace {

constexpr int kKeys = 100000;

std::vector<std::string> names(int n, int first = 1) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i) out.push_back("10.0.0." + std::to_string(i) + ":80");
  return out;
}

std::vector<HashTarget> targets(const std::vector<std::string>& names,
                                std::vector<uint32_t> weights = {}) {
  std::vector<HashTarget> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back({names[i], i < weights.size() ? weights[i] : 1});
  }
  return out;
}

const UsableUpstream kAll = [](size_t) { return true; };

uint64_t key_hash(int key) { return stable_hash("user-" + std::to_string(key)); }

// For each key, the NAME of the upstream it lands on (indexes differ between tables).
template <typename Table>
std::vector<std::string> assign(const std::vector<std::string>& names, const Table& table,
                                const UsableUpstream& usable = kAll) {
  std::vector<std::string> out;
  for (int k = 0; k < kKeys; ++k) out.push_back(names[*table.lookup(key_hash(k), usable)]);
  return out;
}

std::map<std::string, int> shares(const std::vector<std::string>& assigned) {
  std::map<std::string, int> h;
  for (const std::string& name : assigned) ++h[name];
  return h;
}

template <typename Table>
class ConsistentHashTest : public ::testing::Test {};
using Tables = ::testing::Types<HashRing, MaglevTable>;
TYPED_TEST_SUITE(ConsistentHashTest, Tables);

// Pinned (values from an independent Python rendering of FNV-1a + splitmix64's finaliser):
// instances of a fleet, and a proxy before and after an upgrade, must agree on it.
TEST(StableHashTest, IsAFixedFunction) {
  EXPECT_EQ(stable_hash(""), 0xf52a15e9a9b5e89bULL);
  EXPECT_EQ(stable_hash("user-1"), 0xc499b5f8a721df58ULL);
  EXPECT_EQ(stable_hash("10.0.0.1:80#0"), 0xfe0cfe8a2ef11643ULL);
  EXPECT_NE(stable_hash("a"), stable_hash("b"));
}

TYPED_TEST(ConsistentHashTest, SpreadsKeysEvenly) {
  const auto five = names(5);
  const TypeParam table(targets(five));
  for (const auto& [name, count] : shares(assign(five, table))) {
    EXPECT_NEAR(count, kKeys / 5, kKeys / 5 / 4) << name;  // within 25% of a fair share
  }
}

TYPED_TEST(ConsistentHashTest, TheSameUpstreamsGiveTheSameTable) {
  const auto five = names(5);
  EXPECT_EQ(assign(five, TypeParam(targets(five))), assign(five, TypeParam(targets(five))));
}

TYPED_TEST(ConsistentHashTest, AddingOneOfSixMovesAboutASixthOfTheKeys) {
  const auto five = names(5);
  const auto six = names(6);
  const auto before = assign(five, TypeParam(targets(five)));
  const auto after = assign(six, TypeParam(targets(six)));
  int moved = 0, moved_elsewhere = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] == after[k]) continue;
    ++moved;
    moved_elsewhere += after[k] != six.back();
  }
  EXPECT_GT(moved, kKeys / 6 * 6 / 10);
  EXPECT_LT(moved, kKeys / 6 * 14 / 10);
  EXPECT_LT(moved_elsewhere, kKeys * 3 / 100) << "keys that moved between old upstreams";
}

TYPED_TEST(ConsistentHashTest, RemovingOneMovesOnlyItsKeys) {
  const auto five = names(5);
  const std::vector<std::string> four(five.begin(), five.begin() + 4);
  const auto before = assign(five, TypeParam(targets(five)));
  const auto after = assign(four, TypeParam(targets(four)));
  int kept_moved = 0, orphans = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] == five.back()) {
      ++orphans;
    } else {
      kept_moved += before[k] != after[k];
    }
  }
  EXPECT_NEAR(orphans, kKeys / 5, kKeys / 5 / 4);
  EXPECT_LT(kept_moved, kKeys * 3 / 100) << "keys of a remaining upstream that moved";
}

TYPED_TEST(ConsistentHashTest, SharesFollowWeights) {
  const auto three = names(3);
  const auto h = shares(assign(three, TypeParam(targets(three, {2, 1, 1}))));
  EXPECT_NEAR(h.at(three[0]), kKeys / 2, kKeys / 20);
  EXPECT_NEAR(h.at(three[1]), kKeys / 4, kKeys / 20);
}

TYPED_TEST(ConsistentHashTest, AnUnusableUpstreamsKeysGoElsewhereAndTheRestStay) {
  const auto five = names(5);
  const TypeParam table(targets(five));
  const auto all = assign(five, table);
  const auto without_2 = assign(five, table, [](size_t i) { return i != 2; });
  int moved_others = 0;
  std::map<std::string, int> took;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_NE(without_2[k], five[2]);
    if (all[k] == five[2]) {
      ++took[without_2[k]];
    } else {
      moved_others += all[k] != without_2[k];
    }
  }
  EXPECT_EQ(moved_others, 0);
  EXPECT_EQ(took.size(), 4u) << "the out upstream's keys spread over all the others";
}

TYPED_TEST(ConsistentHashTest, AHeavyUpstreamOutStillKeepsEachKeyOnOneOther) {
  const auto three = names(3);
  const TypeParam table(targets(three, {100, 1, 1}));
  const UsableUpstream without_0 = [](size_t i) { return i != 0; };
  for (int k = 0; k < 2000; ++k) {
    const std::optional<size_t> first = table.lookup(key_hash(k), without_0);
    ASSERT_TRUE(first.has_value()) << k;
    EXPECT_NE(*first, 0u);
    EXPECT_EQ(table.lookup(key_hash(k), without_0), first);
  }
}

TYPED_TEST(ConsistentHashTest, NoneUsableIsNullopt) {
  const auto three = names(3);
  const TypeParam table(targets(three));
  EXPECT_EQ(table.lookup(key_hash(7), [](size_t) { return false; }), std::nullopt);
}

TEST(HashRingTest, LargeWeightsStayBounded) {
  const auto three = names(3);
  const HashRing ring(targets(three, {100000, 100000, 1}));
  EXPECT_LE(ring.points(), HashRing::kMaxPoints + 3);
  EXPECT_GE(ring.points(), 3u);
}

TEST(MaglevTableTest, SizeIsPrimeAndEveryUpstreamHasSlots) {
  const auto seven = names(7);
  const MaglevTable table(targets(seven));
  EXPECT_EQ(table.size(), MaglevTable::kMinSize);
  std::map<uint32_t, int> slots;
  for (uint32_t index : table.slots()) ++slots[index];
  EXPECT_EQ(slots.size(), 7u);
  for (const auto& [index, count] : slots) EXPECT_NEAR(count, 1031 / 7, 2) << index;
}

}  // namespace
}  // namespace monolake::proxy
