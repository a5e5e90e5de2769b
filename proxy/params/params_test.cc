#include "proxy/params/params.h"

#include <gtest/gtest.h>

namespace monolake::proxy {
namespace {

TEST(ParamSchema, DeclaresKeysInOrderAndTheLastDeclarationWins) {
  ParamSchema schema;
  schema.string("header").default_value("x-api-key");
  schema.integer("status").default_value(401).range(400, 599);
  schema.string("header").required();
  ASSERT_EQ(schema.specs().size(), 2u);
  EXPECT_EQ(schema.specs()[0].key, "header");
  EXPECT_TRUE(schema.specs()[0].required);
  EXPECT_FALSE(schema.specs()[0].default_value.has_value());
  const ParamSpec* status = schema.find("status");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->min, 400);
  EXPECT_EQ(status->max, 599);
  EXPECT_EQ(std::get<int64_t>(*status->default_value), 401);
  EXPECT_EQ(schema.find("nope"), nullptr);
  EXPECT_EQ(schema.check(), "");
}

TEST(ParamSchema, CheckNamesWhatIsWrong) {
  ParamSchema wrong_type;
  wrong_type.integer("n").default_value("ten");
  EXPECT_EQ(wrong_type.check(), "key 'n': the default is not an integer");
  ParamSchema out_of_range;
  out_of_range.integer("n").default_value(7).range(1, 5);
  EXPECT_EQ(out_of_range.check(), "key 'n': the default is outside its range");
  ParamSchema reserved;
  reserved.string("name");
  EXPECT_EQ(reserved.check(), "key 'name' is reserved (name, id)");
  ParamSchema flag;
  flag.boolean("on").default_value(true);
  EXPECT_EQ(flag.check(), "");
  EXPECT_TRUE(std::get<bool>(*flag.find("on")->default_value));
}

TEST(Params, GettersReturnTheValueOrAnEmptyOneOfTheAskedType) {
  Params p;
  p.set("header", std::string("x-key"));
  p.set("status", int64_t{403});
  p.set("on", true);
  p.set("keys", std::vector<std::string>{"a", "b"});
  p.set("add", StringMap{{"x", "1"}});
  EXPECT_EQ(p.string("header"), "x-key");
  EXPECT_EQ(p.integer("status"), 403);
  EXPECT_TRUE(p.boolean("on"));
  EXPECT_EQ(p.string_list("keys").size(), 2u);
  EXPECT_EQ(p.string_map("add").at(0).second, "1");
  EXPECT_TRUE(p.has("keys"));
  EXPECT_FALSE(p.has("missing"));
  EXPECT_EQ(p.string("missing"), "");
  EXPECT_EQ(p.integer("header"), 0);  // another type: empty, not a crash
  EXPECT_TRUE(p.string_list("status").empty());
}

}  // namespace
}  // namespace monolake::proxy
