#include "autonat/relay_roles.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr ma(const std::string& s) { return *Multiaddr::parse(s); }

RelayRoles roles(const RelayConfig& cfg, bool bootstrap, Reachability r, bool own) {
  return decide_relay_roles(cfg, RelayRoleFacts{bootstrap, r, own});
}

TEST(RelayRoles, UnknownFallsBackToTheBootstrapHeuristic) {
  RelayConfig cfg;
  EXPECT_EQ(roles(cfg, false, Reachability::Unknown, false), (RelayRoles{.serve = true, .reserve = false}));
  EXPECT_EQ(roles(cfg, true, Reachability::Unknown, false), (RelayRoles{.serve = false, .reserve = true}));
}

TEST(RelayRoles, PublicOnOwnAddressServesAndStopsReserving) {
  RelayConfig cfg;
  for (bool bootstrap : {false, true}) {
    EXPECT_EQ(roles(cfg, bootstrap, Reachability::Public, true), (RelayRoles{.serve = true, .reserve = false}));
  }
}

TEST(RelayRoles, PublicThroughANatKeepsReservationsAndDoesNotServe) {
  // v1 cannot tell a full cone from an address-restricted one: stay reachable via relays.
  RelayConfig cfg;
  for (bool bootstrap : {false, true}) {
    EXPECT_EQ(roles(cfg, bootstrap, Reachability::Public, false), (RelayRoles{.serve = false, .reserve = true}));
  }
}

TEST(RelayRoles, PrivateReservesAndNeverServes) {
  RelayConfig cfg;
  for (bool bootstrap : {false, true}) {
    for (bool own : {false, true}) {
      EXPECT_EQ(roles(cfg, bootstrap, Reachability::Private, own), (RelayRoles{.serve = false, .reserve = true}));
    }
  }
}

TEST(RelayRoles, ExplicitSettingsWin) {
  RelayConfig on;
  on.server = RelayServerMode::On;
  on.mode = RelayMode::Off;
  RelayConfig off;
  off.server = RelayServerMode::Off;
  off.mode = RelayMode::Fixed;
  for (Reachability r : {Reachability::Unknown, Reachability::Public, Reachability::Private}) {
    for (bool bootstrap : {false, true}) {
      for (bool own : {false, true}) {
        EXPECT_EQ(roles(on, bootstrap, r, own), (RelayRoles{.serve = true, .reserve = false}));
        EXPECT_EQ(roles(off, bootstrap, r, own), (RelayRoles{.serve = false, .reserve = true}));
      }
    }
  }
}

TEST(RelayRoles, OwnIpComparesOnlyTheIp) {
  std::vector<Multiaddr> own = {ma("/ip4/203.0.113.5/udp/4001/quic-v1"), ma("/ip6/2001:db8::1/udp/4001/quic-v1")};
  EXPECT_TRUE(ip_is_own(ma("/ip4/203.0.113.5/udp/9999/quic-v1"), own));
  EXPECT_TRUE(ip_is_own(ma("/ip6/2001:db8::1/udp/4001/quic-v1"), own));
  EXPECT_FALSE(ip_is_own(ma("/ip4/203.0.113.6/udp/4001/quic-v1"), own));
  EXPECT_FALSE(ip_is_own(std::nullopt, own));
  EXPECT_FALSE(ip_is_own(ma("/ip4/203.0.113.5/udp/4001/quic-v1"), {}));
  EXPECT_FALSE(ip_is_own(ma("/dns4/example.com/udp/4001/quic-v1"), {ma("/dns4/example.com/udp/1/quic-v1")}));
}

TEST(RelayRoles, Text) { EXPECT_EQ(to_string(RelayRoles{.serve = true, .reserve = false}), "serve=true reserve=false"); }

}  // namespace
}  // namespace punchgate
