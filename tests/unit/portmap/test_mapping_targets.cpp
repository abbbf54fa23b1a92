// Which listen sockets a gateway can forward to, and the addresses made from a mapping.
#include "portmap/mapping_targets.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

std::vector<Multiaddr> addrs(const std::vector<std::string>& texts) {
  std::vector<Multiaddr> out;
  for (const auto& t : texts) out.push_back(*Multiaddr::parse(t));
  return out;
}

TEST(MappingTargets, LanIpv4Ranges) {
  EXPECT_TRUE(is_lan_ipv4("10.0.0.1"));
  EXPECT_TRUE(is_lan_ipv4("192.168.77.2"));
  EXPECT_FALSE(is_lan_ipv4("172.15.255.255"));
  EXPECT_TRUE(is_lan_ipv4("172.16.0.0"));
  EXPECT_TRUE(is_lan_ipv4("172.31.255.255"));
  EXPECT_FALSE(is_lan_ipv4("172.32.0.0"));
  EXPECT_FALSE(is_lan_ipv4("100.63.255.255"));
  EXPECT_TRUE(is_lan_ipv4("100.64.0.1"));
  EXPECT_TRUE(is_lan_ipv4("100.127.255.255"));
  EXPECT_FALSE(is_lan_ipv4("100.128.0.0"));
  EXPECT_FALSE(is_lan_ipv4("127.0.0.1"));
  EXPECT_FALSE(is_lan_ipv4("169.254.3.4"));
  EXPECT_FALSE(is_lan_ipv4("8.8.8.8"));
  EXPECT_FALSE(is_lan_ipv4("fd00::1"));
  EXPECT_FALSE(is_lan_ipv4("not an ip"));
}

TEST(MappingTargets, WildcardBindOnALanHostIsOneTarget) {
  // 0.0.0.0:4001 as Host::listen_addrs expands it, plus an IPv6 socket.
  auto t = mapping_targets(addrs({"/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/192.168.77.2/udp/4001/quic-v1",
                                  "/ip4/10.8.0.5/udp/4001/quic-v1", "/ip6/::1/udp/4002/quic-v1"}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].port, 4001);
  EXPECT_EQ(t[0].lan_ips, (std::vector<std::string>{"192.168.77.2", "10.8.0.5"}));
}

TEST(MappingTargets, NothingToMap) {
  EXPECT_TRUE(mapping_targets(addrs({"/ip4/127.0.0.1/udp/4001/quic-v1"})).empty());
  EXPECT_TRUE(mapping_targets(addrs({"/ip6/fd00::5/udp/4001/quic-v1"})).empty());
  EXPECT_TRUE(mapping_targets(addrs({"/ip4/169.254.1.1/udp/4001/quic-v1"})).empty());
  // A socket on a public address is reachable already (a server with a docker bridge, say).
  EXPECT_TRUE(mapping_targets(addrs({"/ip4/172.17.0.1/udp/4001/quic-v1", "/ip4/8.8.4.4/udp/4001/quic-v1"})).empty());
  EXPECT_TRUE(mapping_targets({}).empty());
}

TEST(MappingTargets, OneTargetPerPort) {
  auto t = mapping_targets(addrs({"/ip4/192.168.1.5/udp/4001/quic-v1", "/ip4/192.168.1.5/udp/4002/quic-v1",
                                  "/ip4/8.8.4.4/udp/4003/quic-v1"}));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].port, 4001);
  EXPECT_EQ(t[1].port, 4002);
}

TEST(MappingTargets, InternalClientPrefersTheAddressTheGatewaySees) {
  MappingTarget t{4001, {"10.8.0.5", "192.168.77.2"}};
  EXPECT_EQ(internal_client_for(t, "192.168.77.2"), "192.168.77.2");
  EXPECT_EQ(internal_client_for(t, "192.168.99.9"), "10.8.0.5");  // bound to one address elsewhere
  EXPECT_EQ(internal_client_for(MappingTarget{4001, {}}, "192.168.99.9"), "192.168.99.9");
}

TEST(MappingTargets, MappedAddress) {
  EXPECT_EQ(mapped_quic_addr("11.0.0.1", 4001).to_string(), "/ip4/11.0.0.1/udp/4001/quic-v1");
  EXPECT_TRUE(mapped_quic_addr("::1", 4001).empty());
  EXPECT_TRUE(mapped_quic_addr("", 4001).empty());
  EXPECT_TRUE(mapped_quic_addr("1.2.3.4; rm", 4001).empty());
}

TEST(MappingTargets, OnlyPublicExternalAddressesAreAdvertised) {
  EXPECT_TRUE(worth_advertising("11.0.0.1"));
  EXPECT_TRUE(worth_advertising("203.0.113.7"));
  EXPECT_FALSE(worth_advertising("100.72.1.1"));  // CGNAT: another NAT upstream
  EXPECT_FALSE(worth_advertising("192.168.0.1"));
  EXPECT_FALSE(worth_advertising("0.0.0.0"));
  EXPECT_FALSE(worth_advertising("2001:db8::1"));
  EXPECT_FALSE(worth_advertising(""));
}

}  // namespace
}  // namespace punchgate
