#include "proxy/connection/proxy_header.h"

#include <gtest/gtest.h>

namespace monolake::proxy::connection {
namespace {

using transport::SocketAddress;

TEST(ProxyHeader, SocketAddressesGoThereAndBack) {
  for (const char* text : {"192.0.2.1:51000", "[2001:db8::1]:443"}) {
    const SocketAddress address = SocketAddress::parse(text).value();
    std::optional<codec::ProxyAddress> announced = to_proxy_address(address);
    ASSERT_TRUE(announced.has_value()) << text;
    EXPECT_EQ(to_socket_address(*announced).to_string(), address.to_string());
  }
  EXPECT_FALSE(to_proxy_address(SocketAddress()).has_value());
}

TEST(ProxyHeader, AnnouncesTheClientAndTheAddressItConnectedTo) {
  const SocketAddress client = SocketAddress::parse("192.0.2.1:51000").value();
  const SocketAddress local = SocketAddress::parse("198.51.100.2:443").value();
  EXPECT_EQ(proxy_header_for(1, client, local), "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n");
  EXPECT_EQ(proxy_header_for(1, SocketAddress(), local), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxy_header_for(2, client, local).size(), 28u);
}

}  // namespace
}  // namespace monolake::proxy::connection
