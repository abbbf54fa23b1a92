#include "punchgate/kad/kad_key.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace punchgate;

namespace {

KadKey random_key(std::mt19937_64& rng) {
  KadKey::Array a{};
  for (auto& b : a) b = static_cast<uint8_t>(rng());
  return KadKey(a);
}

// Reference: index of the highest set bit of the 256-bit big-endian XOR, one bit at a time.
std::optional<size_t> slow_bucket(const KadKey& a, const KadKey& b) {
  for (size_t bit = 256; bit-- > 0;) {
    const size_t byte = 31 - bit / 8;
    const unsigned mask = 1u << (bit % 8);
    if ((a.bytes()[byte] ^ b.bytes()[byte]) & mask) return bit;
  }
  return std::nullopt;
}

}  // namespace

TEST(KadKey, FromKeyIsSha256) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(to_hex(view_of(KadKey::from_key("").bytes().data(), 32)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(view_of(KadKey::from_key("abc").bytes().data(), 32)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(KadKey, OfPeerHashesThePeerIdBytes) {
  PublicKey pk{KeyType::Ed25519, Bytes(32, '\x42')};
  const PeerId id = pk.peer_id();
  EXPECT_EQ(KadKey::of_peer(id), KadKey::from_key(id.bytes()));
}

TEST(KadKey, DistanceIsXor) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    const KadKey a = random_key(rng), b = random_key(rng), c = random_key(rng);
    EXPECT_EQ(a.distance(b), b.distance(a));
    EXPECT_EQ(a.distance(a), KadKey());
    // XOR is its own inverse: (a ^ b) ^ b == a.
    EXPECT_EQ(a.distance(b).distance(b), a);
    // Triangle equality of XOR: d(a,b) ^ d(b,c) == d(a,c).
    EXPECT_EQ(a.distance(b).distance(b.distance(c)), a.distance(c));
  }
}

TEST(KadKey, BucketOfEdges) {
  KadKey::Array z{};
  const KadKey zero(z);
  EXPECT_EQ(zero.bucket_of(zero), std::nullopt);
  KadKey::Array low{};
  low[31] = 1;
  EXPECT_EQ(zero.bucket_of(KadKey(low)), 0u);
  KadKey::Array high{};
  high[0] = 0x80;
  EXPECT_EQ(zero.bucket_of(KadKey(high)), 255u);
  KadKey::Array mid{};
  mid[30] = 0x01;  // bit 8
  EXPECT_EQ(zero.bucket_of(KadKey(mid)), 8u);
  mid[30] = 0x80;  // bit 15
  EXPECT_EQ(zero.bucket_of(KadKey(mid)), 15u);
}

TEST(KadKey, BucketOfMatchesBitByBitReference) {
  std::mt19937_64 rng(2);
  for (int i = 0; i < 2000; ++i) {
    const KadKey a = random_key(rng);
    KadKey::Array other = a.bytes();
    // Flip one random bit, plus random bits below it, so every bucket gets exercised.
    const size_t bit = rng() % 256;
    other[31 - bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    for (size_t j = 0; j < bit; ++j) {
      if (rng() & 1) other[31 - j / 8] ^= static_cast<uint8_t>(1u << (j % 8));
    }
    const KadKey b(other);
    ASSERT_EQ(a.bucket_of(b), bit);
    ASSERT_EQ(a.bucket_of(b), slow_bucket(a, b));
    ASSERT_EQ(b.bucket_of(a), bit);
  }
}

TEST(KadKey, OrderIsBigEndianNumeric) {
  KadKey::Array small{}, big{};
  small[31] = 0xff;  // 255
  big[30] = 0x01;    // 256
  EXPECT_LT(KadKey(small), KadKey(big));
  KadKey::Array top{};
  top[0] = 0x01;
  EXPECT_LT(KadKey(big), KadKey(top));
}
