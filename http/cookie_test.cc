#include "http/cookie.h"

#include <gtest/gtest.h>

namespace monolake::http {
namespace {

TEST(CookieTest, FindsANamedCookieAmongSeveral) {
  HeaderMap headers;
  headers.add("Cookie", "theme=dark; sid=abc123;lang=en");
  EXPECT_EQ(cookie_value(headers, "sid"), "abc123");
  EXPECT_EQ(cookie_value(headers, "lang"), "en");
  EXPECT_EQ(cookie_value(headers, "theme"), "dark");
}

TEST(CookieTest, NamesAreExactAndTheFirstWins) {
  HeaderMap headers;
  headers.add("cookie", "SID=upper; sidx=longer; sid=first");
  headers.add("cookie", "sid=second");
  EXPECT_EQ(cookie_value(headers, "sid"), "first");
  EXPECT_EQ(cookie_value(headers, "Sid"), std::nullopt);
}

TEST(CookieTest, MissingMalformedAndEmpty) {
  HeaderMap headers;
  EXPECT_EQ(cookie_value(headers, "sid"), std::nullopt);
  headers.add("cookie", "garbage; ;=novalue; sid=; x=\"quoted\"");
  EXPECT_EQ(cookie_value(headers, "sid"), "");
  EXPECT_EQ(cookie_value(headers, "x"), "\"quoted\"");
  EXPECT_EQ(cookie_value(headers, "garbage"), std::nullopt);
}

}  // namespace
}  // namespace monolake::http
