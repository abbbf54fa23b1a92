#include "punchgate/kad/routing_table.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>

using namespace punchgate;

namespace {

PeerId random_peer(std::mt19937_64& rng) {
  PublicKey pk{KeyType::Ed25519, Bytes(32, '\0')};
  for (auto& c : pk.data) c = static_cast<char>(rng());
  return pk.peer_id();
}

Multiaddr addr(int port) {
  auto a = Multiaddr::parse("/ip4/10.0.0.1/udp/" + std::to_string(port) + "/quic-v1");
  EXPECT_TRUE(a.ok());
  return *a;
}

KadPeerInfo info(const PeerId& id, std::vector<Multiaddr> addrs = {}) { return KadPeerInfo{id, std::move(addrs)}; }

// `n` random peers that all land in bucket `index` of `self`.
std::vector<PeerId> peers_in_bucket(std::mt19937_64& rng, const PeerId& self, size_t index, size_t n) {
  const KadKey self_key = KadKey::of_peer(self);
  std::vector<PeerId> out;
  while (out.size() < n) {
    PeerId p = random_peer(rng);
    if (self_key.bucket_of(KadKey::of_peer(p)) == index) out.push_back(p);
  }
  return out;
}

class RoutingTableTest : public ::testing::Test {
 protected:
  std::mt19937_64 rng{42};
  PeerId self = random_peer(rng);
};

}  // namespace

TEST_F(RoutingTableTest, SelfAndEmptyRejected) {
  RoutingTable t(self, 20);
  EXPECT_EQ(t.update(info(self), 1).outcome, RoutingTable::Outcome::Rejected);
  EXPECT_EQ(t.update(info(PeerId()), 1).outcome, RoutingTable::Outcome::Rejected);
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(RoutingTableTest, InsertThenUpdate) {
  RoutingTable t(self, 20);
  const PeerId p = random_peer(rng);
  auto r = t.update(info(p, {addr(1)}), 10);
  EXPECT_EQ(r.outcome, RoutingTable::Outcome::Inserted);
  EXPECT_FALSE(r.ping.has_value());
  EXPECT_TRUE(t.contains(p));
  EXPECT_EQ(t.size(), 1u);
  r = t.update(info(p, {addr(2)}), 20);
  EXPECT_EQ(r.outcome, RoutingTable::Outcome::Updated);
  const auto* e = t.find(p);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->last_seen_ms, 20u);
  EXPECT_EQ(e->key, KadKey::of_peer(p));
  // Fresh addresses first, older ones kept.
  EXPECT_EQ(e->peer.addrs, (std::vector<Multiaddr>{addr(2), addr(1)}));
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(RoutingTableTest, AddressesMergedDedupedAndCapped) {
  RoutingTable t(self, 20);
  const PeerId p = random_peer(rng);
  std::vector<Multiaddr> first;
  for (int i = 0; i < 40; ++i) first.push_back(addr(1000 + i));
  first.push_back(addr(1000));  // duplicate
  ASSERT_EQ(t.update(info(p, first), 1).outcome, RoutingTable::Outcome::Inserted);
  ASSERT_EQ(t.find(p)->peer.addrs.size(), 32u);
  EXPECT_EQ(t.find(p)->peer.addrs.front(), addr(1000));
  t.update(info(p, {addr(5), addr(1001)}), 2);
  const auto& addrs = t.find(p)->peer.addrs;
  ASSERT_EQ(addrs.size(), 32u);
  EXPECT_EQ(addrs[0], addr(5));
  EXPECT_EQ(addrs[1], addr(1001));
  EXPECT_EQ(addrs[2], addr(1000));
  EXPECT_EQ(std::set<Multiaddr>(addrs.begin(), addrs.end()).size(), 32u);
}

TEST_F(RoutingTableTest, FullBucketAsksToPingLeastRecentlySeen) {
  const size_t k = 4;
  RoutingTable t(self, k);
  auto peers = peers_in_bucket(rng, self, 255, k + 2);
  for (size_t i = 0; i < k; ++i) {
    ASSERT_EQ(t.update(info(peers[i]), 100 + i).outcome, RoutingTable::Outcome::Inserted);
  }
  EXPECT_EQ(t.bucket_size(255), k);
  // Seeing peers[0] again makes peers[1] the least recently seen.
  EXPECT_EQ(t.update(info(peers[0]), 200).outcome, RoutingTable::Outcome::Updated);

  auto r = t.update(info(peers[k], {addr(7)}), 300);
  EXPECT_EQ(r.outcome, RoutingTable::Outcome::Pending);
  ASSERT_TRUE(r.ping.has_value());
  EXPECT_EQ(r.ping->id, peers[1]);
  EXPECT_FALSE(t.contains(peers[k]));
  EXPECT_EQ(t.bucket_size(255), k);

  // Dead: the LRS entry goes, the newcomer takes its place.
  t.ping_result(peers[1], false, 400);
  EXPECT_FALSE(t.contains(peers[1]));
  ASSERT_TRUE(t.contains(peers[k]));
  EXPECT_EQ(t.find(peers[k])->peer.addrs, (std::vector<Multiaddr>{addr(7)}));
  EXPECT_EQ(t.find(peers[k])->last_seen_ms, 400u);
  EXPECT_EQ(t.bucket_size(255), k);
}

TEST_F(RoutingTableTest, AlivePingKeepsOldEntryAndDropsCandidate) {
  const size_t k = 4;
  RoutingTable t(self, k);
  auto peers = peers_in_bucket(rng, self, 255, k + 2);
  for (size_t i = 0; i < k; ++i) t.update(info(peers[i]), 100 + i);
  auto r = t.update(info(peers[k]), 300);
  ASSERT_EQ(r.outcome, RoutingTable::Outcome::Pending);
  ASSERT_EQ(r.ping->id, peers[0]);
  t.ping_result(peers[0], true, 400);
  EXPECT_TRUE(t.contains(peers[0]));
  EXPECT_FALSE(t.contains(peers[k]));
  EXPECT_EQ(t.find(peers[0])->last_seen_ms, 400u);
  // peers[0] is now the most recently seen: the next newcomer pings peers[1].
  r = t.update(info(peers[k + 1]), 500);
  ASSERT_EQ(r.outcome, RoutingTable::Outcome::Pending);
  ASSERT_TRUE(r.ping.has_value());
  EXPECT_EQ(r.ping->id, peers[1]);
  // A dead result for that ping seats the new candidate.
  t.ping_result(peers[1], false, 600);
  EXPECT_TRUE(t.contains(peers[k + 1]));
}

TEST_F(RoutingTableTest, OnePingAtATimeNewestCandidateWins) {
  const size_t k = 3;
  RoutingTable t(self, k);
  auto peers = peers_in_bucket(rng, self, 255, k + 2);
  for (size_t i = 0; i < k; ++i) t.update(info(peers[i]), 100 + i);
  auto r1 = t.update(info(peers[k]), 300);
  ASSERT_TRUE(r1.ping.has_value());
  auto r2 = t.update(info(peers[k + 1]), 310);
  EXPECT_EQ(r2.outcome, RoutingTable::Outcome::Pending);
  EXPECT_FALSE(r2.ping.has_value());  // a ping is already under way
  t.ping_result(peers[0], false, 320);
  EXPECT_TRUE(t.contains(peers[k + 1]));
  EXPECT_FALSE(t.contains(peers[k]));
}

TEST_F(RoutingTableTest, LostPingIsAskedAgainAfterAMinute) {
  const size_t k = 2;
  RoutingTable t(self, k);
  auto peers = peers_in_bucket(rng, self, 255, k + 1);
  for (size_t i = 0; i < k; ++i) t.update(info(peers[i]), 0);
  ASSERT_TRUE(t.update(info(peers[k]), 1'000).ping.has_value());
  EXPECT_FALSE(t.update(info(peers[k]), 30'000).ping.has_value());
  auto again = t.update(info(peers[k]), 61'000);
  EXPECT_EQ(again.outcome, RoutingTable::Outcome::Pending);
  ASSERT_TRUE(again.ping.has_value());
  EXPECT_EQ(again.ping->id, peers[0]);
}

TEST_F(RoutingTableTest, RemovePromotesCandidate) {
  const size_t k = 2;
  RoutingTable t(self, k);
  auto peers = peers_in_bucket(rng, self, 255, k + 1);
  for (size_t i = 0; i < k; ++i) t.update(info(peers[i]), 0);
  t.update(info(peers[k]), 10);
  EXPECT_TRUE(t.remove(peers[1]));
  EXPECT_TRUE(t.contains(peers[k]));
  EXPECT_FALSE(t.remove(peers[1]));
  EXPECT_EQ(t.size(), k);
  // A ping outcome for a peer that is already gone changes nothing.
  t.ping_result(peers[1], false, 20);
  EXPECT_EQ(t.size(), k);
}

TEST_F(RoutingTableTest, ClosestMatchesBruteForceOver500Peers) {
  const size_t k = 20;
  RoutingTable t(self, k);
  std::vector<PeerId> in_table;
  for (int i = 0; i < 500; ++i) {
    PeerId p = random_peer(rng);
    auto r = t.update(info(p, {addr(i)}), static_cast<uint64_t>(i));
    if (r.outcome == RoutingTable::Outcome::Inserted) in_table.push_back(p);
  }
  ASSERT_EQ(t.size(), in_table.size());
  ASSERT_GT(in_table.size(), 100u);  // far buckets fill up, near ones keep everything

  for (int trial = 0; trial < 200; ++trial) {
    KadKey::Array a{};
    for (auto& b : a) b = static_cast<uint8_t>(rng());
    const KadKey target(a);
    std::vector<PeerId> expected = in_table;
    std::sort(expected.begin(), expected.end(), [&](const PeerId& x, const PeerId& y) {
      return KadKey::of_peer(x).distance(target) < KadKey::of_peer(y).distance(target);
    });
    expected.resize(k);
    auto got = t.closest(target, k);
    ASSERT_EQ(got.size(), k);
    for (size_t i = 0; i < k; ++i) ASSERT_EQ(got[i].id, expected[i]) << "trial " << trial << " rank " << i;
  }
  // Asking for more than there is returns everyone, sorted.
  auto all = t.closest(t.self_key(), 100'000);
  EXPECT_EQ(all.size(), in_table.size());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(KadKey::of_peer(all[i - 1].id).distance(t.self_key()),
              KadKey::of_peer(all[i].id).distance(t.self_key()));
  }
  EXPECT_TRUE(t.closest(t.self_key(), 0).empty());
}

TEST_F(RoutingTableTest, ClosestOrdersAll500PeersWhenBucketsHoldThem) {
  // With k = 500 nothing is left out, so the ordering is checked against every peer.
  RoutingTable t(self, 500);
  std::vector<std::pair<PeerId, KadKey>> peers;
  for (int i = 0; i < 500; ++i) {
    PeerId p = random_peer(rng);
    ASSERT_EQ(t.update(info(p), 1).outcome, RoutingTable::Outcome::Inserted);
    peers.emplace_back(p, KadKey::of_peer(p));
  }
  for (int trial = 0; trial < 50; ++trial) {
    const KadKey target = KadKey::from_key(std::to_string(trial));
    std::sort(peers.begin(), peers.end(), [&](const auto& x, const auto& y) {
      return x.second.distance(target) < y.second.distance(target);
    });
    const size_t n = 1 + static_cast<size_t>(trial) * 10;
    auto got = t.closest(target, n);
    ASSERT_EQ(got.size(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i].id, peers[i].first) << "trial " << trial << " rank " << i;
  }
}

TEST_F(RoutingTableTest, StaleBuckets) {
  RoutingTable t(self, 20);
  EXPECT_TRUE(t.stale_buckets(1'000'000, 1000).empty());  // empty buckets never count
  auto far = peers_in_bucket(rng, self, 255, 1);
  auto near = peers_in_bucket(rng, self, 254, 1);
  t.update(info(far[0]), 1000);
  t.update(info(near[0]), 5000);
  EXPECT_TRUE(t.stale_buckets(5000, 10'000).empty());
  EXPECT_EQ(t.stale_buckets(11'000, 10'000), (std::vector<size_t>{255}));
  EXPECT_EQ(t.stale_buckets(15'000, 10'000), (std::vector<size_t>{254, 255}));
  t.mark_bucket_refreshed(255, 14'000);
  EXPECT_EQ(t.stale_buckets(15'000, 10'000), (std::vector<size_t>{254}));
  // Seeing a peer again touches its bucket.
  t.update(info(near[0]), 15'000);
  EXPECT_TRUE(t.stale_buckets(15'000, 10'000).empty());
}

TEST_F(RoutingTableTest, RandomKeyLandsInRequestedBucket) {
  RoutingTable t(self, 20);
  for (size_t index = 0; index < RoutingTable::kBuckets; ++index) {
    for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{0xdeadbeef}, rng()}) {
      const KadKey key = t.random_key_in_bucket(index, r);
      ASSERT_EQ(t.self_key().bucket_of(key), index) << "index " << index;
    }
  }
  // Different random inputs give different keys (in buckets with room for randomness).
  EXPECT_NE(t.random_key_in_bucket(200, 1), t.random_key_in_bucket(200, 2));
}
