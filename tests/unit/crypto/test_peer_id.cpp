#include "punchgate/crypto/peer_id.hpp"

#include "punchgate/wire/multiaddr.hpp"

#include <gtest/gtest.h>

#include <unordered_set>

namespace punchgate {
namespace {

Bytes unhex(std::string_view h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

// peer-ids/peer-ids.md "Test vectors": public key protobufs. The expected ids were derived
// independently (Python hashlib + a separate base58) and agree with other libp2p test suites.
struct KeyVector {
  std::string_view name;
  std::string_view protobuf_hex;
  std::string_view peer_id;
  std::string_view cid;  // the same id as a base32 CIDv1
};

const std::vector<KeyVector>& key_vectors() {
  static const std::vector<KeyVector> v = {
      {"ed25519", "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e",
       "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
       "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6"},
      {"secp256k1", "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99",
       "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
       "bafzaajiiaijcca3xo7uzjzcsyilaj6i54cj44qk7kqzpoao5rti2pjx6udtdbp6kte"},
      // 95 bytes: above the 42-byte inline limit, so sha2-256.
      {"ecdsa",
       "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f1"
       "62a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62",
       "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk", "bafzbeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64"},
  };
  return v;
}

TEST(PeerId, FromPublicKeySpecVectors) {
  for (const auto& v : key_vectors()) {
    Bytes proto = unhex(v.protobuf_hex);
    PeerId id = PeerId::from_public_key(proto);
    EXPECT_EQ(id.to_base58(), v.peer_id) << v.name;
    EXPECT_FALSE(id.empty());
    if (proto.size() <= 42) {
      // Identity multihash: 0x00, length, then the protobuf itself.
      EXPECT_EQ(to_hex(id.bytes()), fmt::format("00{:02x}", proto.size()) + std::string(v.protobuf_hex)) << v.name;
      EXPECT_EQ(id.inline_public_key(), proto) << v.name;
    } else {
      EXPECT_EQ(id.bytes().size(), 34u);
      EXPECT_EQ(to_hex(id.bytes().substr(0, 2)), "1220");
      EXPECT_TRUE(id.inline_public_key().empty()) << v.name;
    }
  }
}

TEST(PeerId, ParsesBothTextFormsToTheSameId) {
  for (const auto& v : key_vectors()) {
    PeerId expected = PeerId::from_public_key(unhex(v.protobuf_hex));
    auto legacy = PeerId::parse(v.peer_id);
    ASSERT_TRUE(legacy.ok()) << v.name << ": " << legacy.error().message;
    EXPECT_EQ(*legacy, expected) << v.name;
    auto cid = PeerId::parse(v.cid);
    ASSERT_TRUE(cid.ok()) << v.name << ": " << cid.error().message;
    EXPECT_EQ(*cid, expected) << v.name;
    EXPECT_EQ(cid->to_base58(), v.peer_id) << "always printed in the legacy form";
  }
  // The spec's own example pair.
  auto a = PeerId::parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  auto b = PeerId::parse("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(PeerId, InlineBoundaryIs42Bytes) {
  Bytes at_limit(42, 'k');
  Bytes over_limit(43, 'k');
  PeerId inlined = PeerId::from_public_key(at_limit);
  EXPECT_EQ(to_hex(inlined.bytes().substr(0, 2)), "002a");
  EXPECT_EQ(inlined.inline_public_key(), at_limit);
  PeerId hashed = PeerId::from_public_key(over_limit);
  EXPECT_EQ(to_hex(hashed.bytes().substr(0, 2)), "1220");
  // sha256("k" * 43), computed independently.
  EXPECT_EQ(to_hex(hashed.bytes().substr(2)), "a0484a6185b324e2f355194f334482fc79194cd805185155ddcf6804fdb9090a");
}

TEST(PeerId, FromBytesRoundTrips) {
  for (const auto& v : key_vectors()) {
    PeerId id = PeerId::from_public_key(unhex(v.protobuf_hex));
    auto again = PeerId::from_bytes(id.bytes());
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, id);
  }
}

TEST(PeerId, FromBytesRejectsMalformedMultihashes) {
  struct Case {
    Bytes mh;
    std::string_view why;
  };
  const std::vector<Case> cases = {
      {"", "empty multihash"},
      {unhex("1220") + Bytes(31, 'x'), "32 digest bytes but 31"},
      {unhex("1220") + Bytes(33, 'x'), "32 digest bytes but 33"},
      {unhex("0024") + Bytes(35, 'x'), "36 digest bytes but 35"},
      {unhex("1314") + Bytes(20, 'x'), "code 0x13"},
      {unhex("0000"), "identity multihash length 0"},
      {unhex("008101") + Bytes(129, 'x'), "length 129"},
  };
  for (const auto& c : cases) {
    auto id = PeerId::from_bytes(c.mh);
    ASSERT_FALSE(id.ok()) << to_hex(c.mh);
    EXPECT_TRUE(contains(id.error().message, c.why)) << id.error().message;
    EXPECT_TRUE(contains(id.error().message, "invalid peer id multihash")) << id.error().message;
  }
}

TEST(PeerId, ParseRejectsGarbage) {
  for (std::string_view text : {
           "",
           "hello",
           "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p",    // one character short
           "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pqq",  // one character long
           "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0",   // '0' is not base58
           "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5NN",
           "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx",
           "BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE",
           "bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",  // dag-pb CID, not a key
           " 12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
       }) {
    auto id = PeerId::parse(text);
    EXPECT_FALSE(id.ok()) << "accepted " << text;
  }
  auto id = PeerId::parse("bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(contains(id.error().message, "libp2p-key")) << id.error().message;
  EXPECT_TRUE(contains(id.error().message, "bafybeie5745")) << id.error().message;
  EXPECT_FALSE(PeerId::parse(std::string(5000, '1')).ok());
}

TEST(PeerId, DefaultIsEmpty) {
  PeerId id;
  EXPECT_TRUE(id.empty());
  EXPECT_EQ(id.to_base58(), "");
  EXPECT_TRUE(id.inline_public_key().empty());
}

TEST(PeerId, HashAndOrdering) {
  std::unordered_set<PeerId> set;
  for (const auto& v : key_vectors()) set.insert(PeerId::from_public_key(unhex(v.protobuf_hex)));
  set.insert(PeerId::from_public_key(unhex(key_vectors()[0].protobuf_hex)));
  EXPECT_EQ(set.size(), key_vectors().size());
}

// Multiaddr::peer_id() lives in the wire header but needs crypto to link, so it is tested here.
TEST(MultiaddrPeerId, ReturnsTrailingPeerId) {
  auto m = Multiaddr::parse("/ip4/1.2.3.4/udp/4001/quic-v1/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto id = m->peer_id();
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, PeerId::from_public_key(unhex(key_vectors()[0].protobuf_hex)));

  auto plain = m->without_peer_id();
  EXPECT_FALSE(plain.peer_id().has_value());
  EXPECT_EQ(plain.with_peer_id(*id), *m);

  auto listen = Multiaddr::parse("/ip4/1.2.3.4/udp/4001/quic-v1/p2p/QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk/p2p-circuit");
  ASSERT_TRUE(listen.ok());
  EXPECT_FALSE(listen->peer_id().has_value());
}

}  // namespace
}  // namespace punchgate
