#include "punchgate/kad/kad_store.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

using namespace punchgate;

namespace {

KadPeerInfo provider(int n) {
  PublicKey pk{KeyType::Ed25519, Bytes(32, static_cast<char>(n))};
  auto a = Multiaddr::parse("/ip4/10.0.0.2/udp/" + std::to_string(4000 + n) + "/quic-v1");
  EXPECT_TRUE(a.ok());
  return KadPeerInfo{pk.peer_id(), {*a}};
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST(KadStore, RecordTtl) {
  KadStore s(KadStoreLimits{});
  ASSERT_TRUE(s.put_record("k", "v1", 1000, 500).ok());
  auto r = s.get_record("k", 1499);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->value, "v1");
  EXPECT_EQ(r->received_ms, 1000u);
  EXPECT_EQ(r->expires_ms, 1500u);
  EXPECT_FALSE(s.get_record("k", 1500).has_value());
  EXPECT_FALSE(s.get_record("other", 1000).has_value());
  EXPECT_EQ(s.next_expiry_ms(), 1500u);
  // Still counted until expire() runs.
  EXPECT_EQ(s.record_count(), 1u);
  s.expire(1500);
  EXPECT_EQ(s.record_count(), 0u);
  EXPECT_EQ(s.next_expiry_ms(), UINT64_MAX);
}

TEST(KadStore, RecordOverwriteRefreshes) {
  KadStore s(KadStoreLimits{});
  ASSERT_TRUE(s.put_record("k", "v1", 0, 100).ok());
  ASSERT_TRUE(s.put_record("k", "v2", 50, 100).ok());
  EXPECT_EQ(s.record_count(), 1u);
  auto r = s.get_record("k", 120);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->value, "v2");
  s.remove_record("k");
  EXPECT_FALSE(s.get_record("k", 120).has_value());
  EXPECT_EQ(s.record_count(), 0u);
}

TEST(KadStore, HugeTtlSaturates) {
  KadStore s(KadStoreLimits{});
  ASSERT_TRUE(s.put_record("k", "v", 1000, UINT64_MAX).ok());
  EXPECT_TRUE(s.get_record("k", UINT64_MAX - 1).has_value());
  ASSERT_TRUE(s.add_provider("p", provider(1), 1000, UINT64_MAX).ok());
  EXPECT_EQ(s.providers("p", UINT64_MAX - 1).size(), 1u);
}

TEST(KadStore, ValueCap64KiB) {
  KadStore s(KadStoreLimits{});
  EXPECT_TRUE(s.put_record("k", Bytes(64 * 1024, 'v'), 0, 100).ok());
  auto st = s.put_record("k2", Bytes(64 * 1024 + 1, 'v'), 0, 100);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "max_record_value")) << st.error().message;
  EXPECT_EQ(s.record_count(), 1u);
  // A refused overwrite leaves the old value.
  EXPECT_FALSE(s.put_record("k", Bytes(64 * 1024 + 1, 'w'), 0, 100).ok());
  EXPECT_EQ(s.get_record("k", 1)->value, Bytes(64 * 1024, 'v'));
}

TEST(KadStore, MaxRecords) {
  KadStoreLimits limits;
  limits.max_records = 3;
  KadStore s(limits);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.put_record("k" + std::to_string(i), "v", 0, 100 + i).ok());
  auto st = s.put_record("k3", "v", 50, 100);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "max_records")) << st.error().message;
  // Overwriting an existing key needs no room.
  EXPECT_TRUE(s.put_record("k1", "w", 50, 100).ok());
  // Once one has expired, a new key fits again.
  EXPECT_TRUE(s.put_record("k3", "v", 100, 100).ok());
  EXPECT_EQ(s.record_count(), 3u);
  EXPECT_FALSE(s.get_record("k0", 100).has_value());
}

TEST(KadStore, ProvidersAddRefreshExpire) {
  KadStore s(KadStoreLimits{});
  ASSERT_TRUE(s.add_provider("key", provider(1), 0, 100).ok());
  ASSERT_TRUE(s.add_provider("key", provider(2), 10, 100).ok());
  EXPECT_EQ(s.provider_record_count(), 2u);
  EXPECT_EQ(s.providers("key", 50), (std::vector<KadPeerInfo>{provider(1), provider(2)}));
  EXPECT_TRUE(s.providers("nope", 50).empty());

  // Re-announcing refreshes instead of duplicating; empty addresses keep the known ones.
  ASSERT_TRUE(s.add_provider("key", KadPeerInfo{provider(1).id, {}}, 80, 100).ok());
  EXPECT_EQ(s.provider_record_count(), 2u);
  EXPECT_EQ(s.next_expiry_ms(), 110u);
  EXPECT_EQ(s.providers("key", 150), (std::vector<KadPeerInfo>{provider(1)}));
  EXPECT_TRUE(s.providers("key", 180).empty());
  s.expire(120);
  EXPECT_EQ(s.provider_record_count(), 1u);
  s.expire(180);
  EXPECT_EQ(s.provider_record_count(), 0u);
  EXPECT_EQ(s.next_expiry_ms(), UINT64_MAX);
}

TEST(KadStore, ProvidersPerKeyCapReplacesSoonestExpiring) {
  KadStoreLimits limits;
  limits.max_providers_per_key = 3;
  KadStore s(limits);
  ASSERT_TRUE(s.add_provider("key", provider(1), 0, 300).ok());
  ASSERT_TRUE(s.add_provider("key", provider(2), 0, 100).ok());  // expires first
  ASSERT_TRUE(s.add_provider("key", provider(3), 0, 200).ok());
  ASSERT_TRUE(s.add_provider("key", provider(4), 10, 300).ok());
  auto ps = s.providers("key", 20);
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(s.provider_record_count(), 3u);
  EXPECT_EQ(std::count(ps.begin(), ps.end(), provider(2)), 0);
  EXPECT_EQ(std::count(ps.begin(), ps.end(), provider(4)), 1);
}

TEST(KadStore, ProviderTotalCap) {
  KadStoreLimits limits;
  limits.max_provider_records = 4;
  KadStore s(limits);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.add_provider("k" + std::to_string(i % 2), provider(i), 0, 100).ok());
  auto st = s.add_provider("k9", provider(9), 10, 100);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "max_provider_records")) << st.error().message;
  st = s.add_provider("k0", provider(9), 10, 100);
  ASSERT_FALSE(st.ok());
  // A refresh of a known provider needs no room.
  EXPECT_TRUE(s.add_provider("k0", provider(0), 10, 100).ok());
  EXPECT_EQ(s.provider_record_count(), 4u);
  // Expired records make room.
  EXPECT_TRUE(s.add_provider("k9", provider(9), 100, 100).ok());
  EXPECT_EQ(s.provider_record_count(), 2u);  // provider(0) refreshed at 10, plus the new one
}

TEST(KadStore, ProviderKeysCap) {
  KadStoreLimits limits;
  limits.max_provider_keys = 2;
  KadStore s(limits);
  ASSERT_TRUE(s.add_provider("a", provider(1), 0, 100).ok());
  ASSERT_TRUE(s.add_provider("b", provider(1), 0, 200).ok());
  auto st = s.add_provider("c", provider(1), 0, 100);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "max_provider_keys")) << st.error().message;
  // More providers on a known key are fine.
  EXPECT_TRUE(s.add_provider("a", provider(2), 0, 100).ok());
  // Key "a" expires at 100, making room.
  EXPECT_TRUE(s.add_provider("c", provider(1), 100, 100).ok());
  EXPECT_TRUE(s.providers("a", 100).empty());
  EXPECT_EQ(s.provider_record_count(), 2u);
}

TEST(KadStore, ZeroProvidersPerKeyRefuses) {
  KadStoreLimits limits;
  limits.max_providers_per_key = 0;
  KadStore s(limits);
  auto st = s.add_provider("a", provider(1), 0, 100);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "max_providers_per_key")) << st.error().message;
}
