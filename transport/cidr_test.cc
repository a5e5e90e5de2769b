#include "transport/cidr.h"

#include <gtest/gtest.h>

namespace monolake::transport {
namespace {

SocketAddress addr(std::string_view text) {
  Result<SocketAddress> r = SocketAddress::parse(text);
  EXPECT_TRUE(r.has_value()) << text;
  return r ? *r : SocketAddress();
}

TEST(Cidr, ParsesBlocksAndSingleAddresses) {
  EXPECT_EQ(Cidr::parse("10.0.0.0/8")->to_string(), "10.0.0.0/8");
  EXPECT_EQ(Cidr::parse("192.0.2.7")->prefix, 32);
  EXPECT_EQ(Cidr::parse("::1")->prefix, 128);
  EXPECT_EQ(Cidr::parse("2001:db8::/32")->to_string(), "2001:db8::/32");
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->prefix, 0);
  for (const char* bad : {"", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0/8",
                          "example.com", "10.0.0.0/8x", "unix:/tmp/s"}) {
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << bad;
  }
}

TEST(Cidr, ContainsByPrefixBits) {
  const Cidr ten = *Cidr::parse("10.0.0.0/8");
  EXPECT_TRUE(ten.contains(addr("10.200.3.4:1")));
  EXPECT_FALSE(ten.contains(addr("11.0.0.1:1")));
  EXPECT_FALSE(ten.contains(addr("[::1]:1")));
  const Cidr odd = *Cidr::parse("192.168.1.4/30");
  EXPECT_TRUE(odd.contains(addr("192.168.1.7:9")));
  EXPECT_FALSE(odd.contains(addr("192.168.1.8:9")));
  const Cidr six = *Cidr::parse("2001:db8::/32");
  EXPECT_TRUE(six.contains(addr("[2001:db8:1::5]:80")));
  EXPECT_FALSE(six.contains(addr("[2001:db9::5]:80")));
  EXPECT_FALSE(six.contains(addr("10.0.0.1:80")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(addr("203.0.113.9:1")));
}

TEST(Cidr, IPv4MappedAddressesMatchIPv4Blocks) {
  // What a dual-stack ([::]) listener reports for an IPv4 client.
  EXPECT_TRUE(Cidr::parse("10.0.0.0/8")->contains(addr("[::ffff:10.1.2.3]:5")));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/8")->contains(addr("[::ffff:11.1.2.3]:5")));
  EXPECT_TRUE(Cidr::parse("::ffff:10.0.0.0/104")->contains(addr("10.9.9.9:5")));
  EXPECT_FALSE(Cidr::parse("::1")->contains(addr("[::ffff:0.0.0.1]:5")));
}

TEST(Cidr, AnyContains) {
  std::vector<Cidr> list = {*Cidr::parse("10.0.0.0/8"), *Cidr::parse("::1")};
  EXPECT_TRUE(any_contains(list, addr("[::1]:9")));
  EXPECT_TRUE(any_contains(list, addr("10.0.0.1:9")));
  EXPECT_FALSE(any_contains(list, addr("127.0.0.1:9")));
  EXPECT_FALSE(any_contains({}, addr("127.0.0.1:9")));
}

}  // namespace
}  // namespace monolake::transport
