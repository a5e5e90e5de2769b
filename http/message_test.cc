#include "http/message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace monolake::http {
namespace {

using Views = std::vector<std::string_view>;

TEST(MessageTest, VersionNames) {
  EXPECT_EQ(version_name(Version::kHttp10), "HTTP/1.0");
  EXPECT_EQ(version_name(Version::kHttp11), "HTTP/1.1");
  EXPECT_EQ(version_name(Version::kHttp2), "HTTP/2");
}

TEST(MessageTest, IequalsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("ABC-xyz_09", "abc-XYZ_09"));
  EXPECT_FALSE(iequals("a", "ab"));
  EXPECT_FALSE(iequals("host", "hosts"));
  // Not a case pair, though they differ in bit 0x20 only.
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("\xc9", "\xe9"));  // Latin-1 É / é: not ASCII
  EXPECT_TRUE(iequals("\xe9", "\xe9"));
}

TEST(HeaderMapTest, AddKeepsOrderAndCase) {
  HeaderMap h;
  EXPECT_TRUE(h.empty());
  h.add("Content-Type", "text/plain");
  h.add("X-A", "1");
  h.add("x-a", "2");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_FALSE(h.empty());
  EXPECT_EQ(h.fields()[0].name, "Content-Type");
  EXPECT_EQ(h.fields()[2].name, "x-a");
  EXPECT_EQ(h.get("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(h.get("x-A"), "1");  // the first one
  EXPECT_EQ(h.get_all("X-A"), (Views{"1", "2"}));
  EXPECT_EQ(h.count("X-A"), 2u);
  EXPECT_TRUE(h.has("content-type"));
  EXPECT_FALSE(h.has("content"));
  EXPECT_FALSE(h.get("missing").has_value());
  EXPECT_TRUE(h.get_all("missing").empty());
}

TEST(HeaderMapTest, EmptyValuesAreValues) {
  HeaderMap h;
  h.add("X-Empty", "");
  ASSERT_TRUE(h.get("x-empty").has_value());
  EXPECT_EQ(*h.get("x-empty"), "");
}

TEST(HeaderMapTest, SetReplacesTheFirstAndDropsTheRest) {
  HeaderMap h;
  h.add("A", "1");
  h.add("Via", "x");
  h.add("a", "2");
  h.add("B", "3");
  h.add("A", "4");
  h.set("a", "new");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.fields()[0].name, "A");  // position and spelling of the first kept
  EXPECT_EQ(h.fields()[0].value, "new");
  EXPECT_EQ(h.fields()[1].name, "Via");
  EXPECT_EQ(h.fields()[2].name, "B");
  h.set("New-One", "v");
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.fields()[3].name, "New-One");
}

TEST(HeaderMapTest, RemoveCountsWhatItRemoved) {
  HeaderMap h;
  h.add("Connection", "close");
  h.add("Keep", "1");
  h.add("connection", "x");
  EXPECT_EQ(h.remove("CONNECTION"), 2u);
  EXPECT_EQ(h.remove("connection"), 0u);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.fields()[0].name, "Keep");
  h.clear();
  EXPECT_TRUE(h.empty());
}

TEST(HeaderMapTest, TokensAcrossLinesTrimmedAndNonEmpty) {
  HeaderMap h;
  h.add("Connection", " keep-alive ,, Upgrade\t");
  h.add("connection", "TE");
  h.add("Other", "close");
  std::vector<std::string> tokens;
  h.for_each_token("connection", [&](std::string_view t) { tokens.emplace_back(t); });
  EXPECT_EQ(tokens, (std::vector<std::string>{"keep-alive", "Upgrade", "TE"}));
  EXPECT_TRUE(h.has_token("Connection", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "te"));
  EXPECT_FALSE(h.has_token("Connection", "close"));  // only in another field
  EXPECT_FALSE(h.has_token("Connection", "keep"));   // whole tokens only
  EXPECT_FALSE(h.has_token("Missing", "x"));
}

TEST(HeaderMapTest, TokensOfEmptyAndCommaOnlyValues) {
  HeaderMap h;
  h.add("TE", "");
  h.add("TE", " , ,");
  int n = 0;
  h.for_each_token("te", [&](std::string_view) { ++n; });
  EXPECT_EQ(n, 0);
}

// Every field, as "name: value" lines, for comparing maps.
std::string dump(const HeaderMap& headers) {
  std::string out;
  for (const HeaderMap::Field f : headers.fields()) {
    out.append(f.name).append(": ").append(f.value).append("\n");
  }
  return out;
}

TEST(HeaderMapTest, ViewsOfTheMapItselfCanBeAddedAndSet) {
  HeaderMap h;
  h.add("X-Long-Name-To-Copy", std::string(200, 'v'));
  h.add("Short", "s");
  // add() with a name and value that are views of its own bytes, many times (the bytes move
  // as they grow).
  for (int i = 0; i < 50; ++i) {
    const HeaderMap::Field first = h.fields()[0];
    h.add(first.name, first.value);
  }
  EXPECT_EQ(h.count("x-long-name-to-copy"), 51u);
  for (const HeaderMap::Field f : h.fields()) {
    if (f.name != "Short") {
      EXPECT_EQ(f.value, std::string(200, 'v'));
    }
  }
  // set() with a longer value taken from the map, and a shorter one.
  h.set("Short", *h.get("X-Long-Name-To-Copy"));
  EXPECT_EQ(h.get("short"), std::string(200, 'v'));
  h.set("Short", h.get("short")->substr(0, 3));
  EXPECT_EQ(h.get("short"), "vvv");
  EXPECT_EQ(h.size(), 52u);
}

TEST(HeaderMapTest, ChurnCompactsAndKeepsEveryField) {
  HeaderMap h;
  h.add("Host", "example.com");
  for (int i = 0; i < 1000; ++i) {
    h.set("X-Counter", std::to_string(i) + std::string(100, 'c'));
    h.add("X-Temp", "t");
    h.remove("x-temp");
  }
  h.remove_if([](const HeaderMap::Field& f) { return f.name == "Nothing"; });
  EXPECT_EQ(dump(h), "Host: example.com\nX-Counter: 999" + std::string(100, 'c') + "\n");
  // A copy is independent of the original.
  HeaderMap copy = h;
  h.set("Host", "changed");
  EXPECT_EQ(copy.get("host"), "example.com");
  EXPECT_EQ(h.get("host"), "changed");
  h.clear();
  EXPECT_TRUE(h.empty());
  h.add("A", "b");
  EXPECT_EQ(dump(h), "A: b\n");
}

TEST(RequestHeadTest, OriginForm) {
  RequestHead r;
  r.target = "/a/b?x=1&y=2";
  r.headers.add("Host", "example.com:8080");
  EXPECT_EQ(r.path_and_query(), "/a/b?x=1&y=2");
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.authority(), "example.com:8080");
  r.target = "/";
  EXPECT_EQ(r.path(), "/");
  r.target = "/?";
  EXPECT_EQ(r.path(), "/");
  EXPECT_EQ(r.path_and_query(), "/?");
}

TEST(RequestHeadTest, AbsoluteForm) {
  RequestHead r;
  r.headers.add("Host", "ignored.example");
  r.target = "http://example.com/a?b";
  EXPECT_EQ(r.path_and_query(), "/a?b");
  EXPECT_EQ(r.path(), "/a");
  EXPECT_EQ(r.authority(), "example.com");
  r.target = "https://example.com:8443";
  EXPECT_EQ(r.path_and_query(), "/");
  EXPECT_EQ(r.path(), "/");
  EXPECT_EQ(r.authority(), "example.com:8443");
  r.target = "http://[::1]:80/x";
  EXPECT_EQ(r.authority(), "[::1]:80");
  EXPECT_EQ(r.path(), "/x");
  // An empty path before the query: the query is kept (RFC 9112 3.2.1 wants "/" before it in
  // origin-form; the view cannot add it, so callers forwarding the target must).
  r.target = "http://example.com?q";
  EXPECT_EQ(r.authority(), "example.com");
  EXPECT_EQ(r.path_and_query(), "?q");
  EXPECT_EQ(r.path(), "");
}

TEST(RequestHeadTest, AsteriskForm) {
  RequestHead r;
  r.method = "OPTIONS";
  r.target = "*";
  r.headers.add("Host", "h");
  EXPECT_EQ(r.path_and_query(), "*");
  EXPECT_EQ(r.path(), "*");
  EXPECT_EQ(r.authority(), "h");
}

TEST(RequestHeadTest, NoAuthority) {
  RequestHead r;
  r.target = "/";
  EXPECT_EQ(r.authority(), "");
  r.target = "";
  EXPECT_EQ(r.path_and_query(), "");
  EXPECT_EQ(r.authority(), "");
}

TEST(ResponseHeadTest, Defaults) {
  ResponseHead r;
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.reason.empty());
  EXPECT_EQ(r.version, Version::kHttp11);
  EXPECT_TRUE(r.headers.empty());
}

TEST(MessageTest, ReasonPhrases) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(100), "Continue");
  EXPECT_EQ(reason_phrase(204), "No Content");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(414), "URI Too Long");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(501), "Not Implemented");
  EXPECT_EQ(reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(reason_phrase(504), "Gateway Timeout");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "Unknown");
  EXPECT_EQ(reason_phrase(0), "Unknown");
  // Every code the codec answers with has its phrase.
  for (int status : {400, 408, 413, 414, 431, 500, 501, 502, 503, 504, 505}) {
    EXPECT_NE(reason_phrase(status), "Unknown") << status;
  }
}

TEST(MessageTest, IdempotentMethods) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    EXPECT_TRUE(is_idempotent(m)) << m;
  }
  for (const char* m : {"POST", "PATCH", "CONNECT", "get", ""}) {
    EXPECT_FALSE(is_idempotent(m)) << m;
  }
}

TEST(MessageTest, TokenCharacters) {
  const std::string tchar =
      "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int c = 0; c < 256; ++c) {
    const bool expected = tchar.find(static_cast<char>(c)) != std::string::npos && c != 0;
    EXPECT_EQ(is_tchar(static_cast<unsigned char>(c)), expected) << c;
  }
}

}  // namespace
}  // namespace monolake::http
