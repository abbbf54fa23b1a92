// Relayed addresses and the --relay-mode / --relay-server values.
#include "relay/circuit_addr.hpp"
#include "relay/relay_config.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr ma(const std::string& text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m) << text;
  return m ? *m : Multiaddr{};
}

TEST(CircuitAddr, SplitsRelayAndTarget) {
  PeerId r = Identity::generate().peer_id(), b = Identity::generate().peer_id();
  std::string relay = "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + r.to_base58();
  auto c = parse_circuit_addr(ma(relay + "/p2p-circuit/p2p/" + b.to_base58()));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->relay, ma(relay));
  EXPECT_EQ(c->relay_id, r);
  ASSERT_TRUE(c->target);
  EXPECT_EQ(*c->target, b);
  EXPECT_EQ(make_circuit_addr(c->relay, b), ma(relay + "/p2p-circuit/p2p/" + b.to_base58()));

  auto advertised = parse_circuit_addr(ma(relay + "/p2p-circuit"));
  ASSERT_TRUE(advertised);
  EXPECT_FALSE(advertised->target);
  EXPECT_EQ(make_circuit_addr(c->relay), ma(relay + "/p2p-circuit"));
}

TEST(CircuitAddr, RejectsMalformedShapes) {
  PeerId r = Identity::generate().peer_id(), b = Identity::generate().peer_id();
  std::string relay = "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + r.to_base58();
  EXPECT_FALSE(parse_circuit_addr(ma(relay)));  // no circuit at all
  EXPECT_FALSE(parse_circuit_addr(ma("/ip4/10.0.0.1/udp/4001/quic-v1/p2p-circuit/p2p/" + b.to_base58())));  // no relay id
  EXPECT_FALSE(parse_circuit_addr(ma(relay + "/p2p-circuit/p2p/" + b.to_base58() + "/p2p-circuit/p2p/" +
                                     r.to_base58())));  // chained circuits
  EXPECT_FALSE(parse_circuit_addr(ma(relay + "/p2p-circuit/ip4/1.2.3.4")));
}

TEST(RelayConfig, ModesAndServerValues) {
  RelayConfig cfg;
  EXPECT_EQ(cfg.mode, RelayMode::Auto);
  EXPECT_EQ(cfg.server, RelayServerMode::Auto);

  ASSERT_TRUE(parse_relay_mode("off", cfg));
  EXPECT_EQ(cfg.mode, RelayMode::Off);

  PeerId r = Identity::generate().peer_id();
  std::string relay = "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + r.to_base58();
  ASSERT_TRUE(parse_relay_mode(relay, cfg));
  EXPECT_EQ(cfg.mode, RelayMode::Fixed);
  EXPECT_EQ(*cfg.fixed_relay, ma(relay));

  ASSERT_TRUE(parse_relay_server("on", cfg));
  EXPECT_EQ(cfg.server, RelayServerMode::On);
  ASSERT_TRUE(parse_relay_server("off", cfg));
  EXPECT_EQ(cfg.server, RelayServerMode::Off);
}

TEST(RelayConfig, BadValuesNameThemselves) {
  RelayConfig cfg;
  auto bad_mode = parse_relay_mode("sometimes", cfg);
  ASSERT_FALSE(bad_mode);
  EXPECT_NE(bad_mode.error().message.find("\"sometimes\""), std::string::npos);
  auto no_id = parse_relay_mode("/ip4/10.0.0.1/udp/4001/quic-v1", cfg);
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.error().message.find("/p2p/<peer id>"), std::string::npos);
  auto server = parse_relay_server("maybe", cfg);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message.find("\"maybe\""), std::string::npos);
  EXPECT_EQ(cfg.mode, RelayMode::Auto);  // failures change nothing
}

}  // namespace
}  // namespace punchgate
