#include "base/typed_slots.h"

#include <gtest/gtest.h>

#include <string>

namespace monolake {
namespace {

struct Tenant {
  std::string name;
};
struct Score {
  int value = 0;
};

TEST(TypedSlots, EachTypeHasOneSlot) {
  TypedSlots slots;
  EXPECT_TRUE(slots.empty());
  EXPECT_EQ(slots.get<Tenant>(), nullptr);
  slots.set(Tenant{"acme"});
  slots.set(Score{3});
  ASSERT_NE(slots.get<Tenant>(), nullptr);
  EXPECT_EQ(slots.get<Tenant>()->name, "acme");
  slots.set(Score{5}).value += 1;  // replaces, and hands back the stored value
  EXPECT_EQ(slots.get<Score>()->value, 6);
  const TypedSlots& read_only = slots;
  EXPECT_EQ(read_only.get<Tenant>()->name, "acme");
  EXPECT_EQ(read_only.get<std::string>(), nullptr);  // a type never set
}

}  // namespace
}  // namespace monolake
