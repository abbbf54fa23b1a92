// Kademlia core behaviours the simulation does not reach: requests still out when a query
// changes phase, and what a fake clock sees afterwards.
#include "punchgate/kad/kademlia.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace punchgate {
namespace {

PeerId random_peer(std::mt19937_64& rng) {
  Bytes pk("\x08\x01\x12\x20", 4);  // protobuf PublicKey{Type=Ed25519, Data=32 bytes}
  for (int i = 0; i < 32; ++i) pk.push_back(static_cast<char>(rng() & 0xff));
  return PeerId::from_public_key(pk);
}

TEST(KademliaTest, LookupRequestStillOutWhenStorePhaseStartsDoesNotSpinTheClock) {
  std::mt19937_64 rng(7);
  KadConfig cfg;
  cfg.k = 2;
  cfg.alpha = 3;
  Kademlia kad(random_peer(rng), cfg, 0);
  Bytes key = "/punchgate/svc/x";
  KadKey target = KadKey::from_key(key);
  std::vector<PeerId> peers;
  for (int i = 0; i < 4; ++i) peers.push_back(random_peer(rng));
  std::sort(peers.begin(), peers.end(), [&](const PeerId& a, const PeerId& b) {
    return target.distance(KadKey::of_peer(a)) < target.distance(KadKey::of_peer(b));
  });
  // We know the two far peers; the first to answer names the two near ones.
  kad.on_peer_seen(KadPeerInfo{.id = peers[2], .addrs = {}}, 0);
  kad.on_peer_seen(KadPeerInfo{.id = peers[3], .addrs = {}}, 0);
  KadQueryId q = kad.put_value(key, "v", 0);
  ASSERT_EQ(kad.poll().size(), 2u);
  KadMessage resp;
  resp.type = KadMessageType::FindNode;
  resp.key = key;
  for (int i = 0; i < 2; ++i) {
    resp.closer_peers.push_back(KadPeer{.id = peers[i].bytes(), .addrs = {}, .connection = KadConnectionType::NotConnected});
  }
  kad.on_response(q, peers[2], resp, 5);
  ASSERT_EQ(kad.poll().size(), 2u);  // the near ones; peers[3] is still out
  resp.closer_peers.clear();
  kad.on_response(q, peers[0], resp, 10);
  kad.on_response(q, peers[1], resp, 10);
  std::vector<OutboundRequest> puts = kad.poll();
  ASSERT_EQ(puts.size(), 2u);
  for (const auto& p : puts) EXPECT_EQ(p.message.type, KadMessageType::PutValue);
  // The third lookup request times out while the PUTs are still out.
  uint64_t now = cfg.request_timeout_ms + 5;  // past the lookup request (sent at 0), not the PUTs (at 10)
  kad.tick(now);
  EXPECT_GT(kad.next_tick_ms(now), 0u) << "an expired lookup request kept the query's deadline in the past";
  // The late answer of the farthest peer is ignored; the PUTs finish the query.
  for (const auto& p : puts) {
    KadMessage ack = p.message;
    kad.on_response(p.query, p.peer.id, ack, now);
  }
  std::vector<KadQueryResult> results = kad.take_results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].kind, KadQueryKind::PutValue);
  EXPECT_EQ(results[0].succeeded, 2u);
  EXPECT_EQ(kad.active_queries(), 0u);
}

TEST(KademliaTest, AddProviderNamingAnotherPeerIsRefused) {
  std::mt19937_64 rng(9);
  Kademlia kad(random_peer(rng), KadConfig{}, 0);
  KadPeerInfo sender{.id = random_peer(rng), .addrs = {}};
  PeerId other = random_peer(rng);
  KadMessage req;
  req.type = KadMessageType::AddProvider;
  req.key = "k";
  req.provider_peers.push_back(KadPeer{.id = other.bytes(), .addrs = {}, .connection = KadConnectionType::NotConnected});
  EXPECT_FALSE(kad.handle_request(sender, req, 0).ok());
  EXPECT_TRUE(kad.store().providers("k", 0).empty());
  req.provider_peers[0].id = sender.id.bytes();
  auto r = kad.handle_request(sender, req, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());  // ADD_PROVIDER has no response
  ASSERT_EQ(kad.store().providers("k", 0).size(), 1u);
}

TEST(KademliaTest, PutValueWithMismatchedRecordKeyIsRefused) {
  std::mt19937_64 rng(11);
  Kademlia kad(random_peer(rng), KadConfig{}, 0);
  KadPeerInfo sender{.id = random_peer(rng), .addrs = {}};
  KadMessage req;
  req.type = KadMessageType::PutValue;
  req.key = "a";
  req.record = KadRecord{.key = "b", .value = "v", .time_received = {}};
  EXPECT_FALSE(kad.handle_request(sender, req, 0).ok());
  req.record->key = "a";
  auto r = kad.handle_request(sender, req, 0);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->record->value, "v");
  EXPECT_EQ(kad.store().get_record("a", 0)->value, "v");
}

}  // namespace
}  // namespace punchgate
