#include "holepunch/nat_mapping.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr quic(const std::string& ip, int port) {
  return *Multiaddr::parse("/ip4/" + ip + "/udp/" + std::to_string(port) + "/quic-v1");
}

class NatMappingTest : public ::testing::Test {
 protected:
  PeerId p1 = Identity::generate().peer_id();
  PeerId p2 = Identity::generate().peer_id();
  PeerId p3 = Identity::generate().peer_id();
};

TEST_F(NatMappingTest, NothingObservedIsUnknown) {
  EXPECT_EQ(classify_nat_mapping({}).mapping, NatMapping::Unknown);
}

TEST_F(NatMappingTest, OneReporterProvesNothing) {
  EXPECT_EQ(classify_nat_mapping({{quic("198.51.100.7", 4001), {p1}}}).mapping, NatMapping::Unknown);
}

TEST_F(NatMappingTest, SamePortFromTwoPeersIsIndependent) {
  auto v = classify_nat_mapping({{quic("198.51.100.7", 4001), {p1, p2}}});
  EXPECT_EQ(v.mapping, NatMapping::EndpointIndependent);
  EXPECT_EQ(v.public_ip, "198.51.100.7");
  EXPECT_EQ(v.ports, std::vector<uint16_t>{4001});
}

TEST_F(NatMappingTest, DifferentPortsFromDifferentPeersIsDependent) {
  auto v = classify_nat_mapping({{quic("198.51.100.7", 40123), {p1}}, {quic("198.51.100.7", 51234), {p2}}});
  EXPECT_EQ(v.mapping, NatMapping::EndpointDependent);
  EXPECT_EQ(v.public_ip, "198.51.100.7");
  EXPECT_EQ(v.ports, (std::vector<uint16_t>{40123, 51234}));
}

TEST_F(NatMappingTest, OnePeerReportingTwoPortsIsNotEvidence) {
  // The same peer over two connections (e.g. we restarted): not a per-destination mapping.
  auto v = classify_nat_mapping({{quic("198.51.100.7", 40123), {p1}}, {quic("198.51.100.7", 51234), {p1}}});
  EXPECT_EQ(v.mapping, NatMapping::Unknown);
}

TEST_F(NatMappingTest, DependentWinsOverAnIndependentLanAddress) {
  auto v = classify_nat_mapping({{quic("10.0.0.5", 4001), {p1, p2}},
                                 {quic("198.51.100.7", 1111), {p1}},
                                 {quic("198.51.100.7", 2222), {p3}}});
  EXPECT_EQ(v.mapping, NatMapping::EndpointDependent);
}

TEST_F(NatMappingTest, RelayedAndNonQuicAddressesAreIgnored) {
  Multiaddr tcp = *Multiaddr::parse("/ip4/198.51.100.7/tcp/4001");
  EXPECT_EQ(classify_nat_mapping({{tcp, {p1, p2}}}).mapping, NatMapping::Unknown);
}

TEST(NatMappingPeer, TwoPortsOnOnePublicIpLookDependent) {
  std::string ip;
  EXPECT_TRUE(looks_endpoint_dependent({quic("10.1.0.2", 4001), quic("203.0.113.12", 1234),
                                        quic("203.0.113.12", 5678)},
                                       &ip));
  EXPECT_EQ(ip, "203.0.113.12");
  EXPECT_FALSE(looks_endpoint_dependent({quic("203.0.113.12", 4001), quic("10.1.0.2", 4001)}));
  // Private addresses differ per LAN: no evidence.
  EXPECT_FALSE(looks_endpoint_dependent({quic("10.1.0.2", 4001), quic("10.1.0.2", 4002)}));
}

TEST(NatMappingPeer, PublicIpRanges) {
  EXPECT_TRUE(is_public_ip("203.0.113.12"));
  EXPECT_TRUE(is_public_ip("8.8.8.8"));
  EXPECT_FALSE(is_public_ip("10.1.0.2"));
  EXPECT_FALSE(is_public_ip("172.20.1.1"));
  EXPECT_FALSE(is_public_ip("192.168.1.1"));
  EXPECT_FALSE(is_public_ip("127.0.0.1"));
  EXPECT_FALSE(is_public_ip("100.64.0.1"));
  EXPECT_FALSE(is_public_ip("169.254.1.1"));
  EXPECT_FALSE(is_public_ip("::1"));
  EXPECT_FALSE(is_public_ip("fd00::1"));
  EXPECT_FALSE(is_public_ip("fe80::1"));
  EXPECT_TRUE(is_public_ip("2001:db8::1"));
  EXPECT_FALSE(is_public_ip("not an ip"));
}

}  // namespace
}  // namespace punchgate
