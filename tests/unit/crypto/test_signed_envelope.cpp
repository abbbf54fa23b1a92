#include "crypto/signed_envelope.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

Bytes hex(std::string_view h) {
  auto b = from_hex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b.value_or(Bytes());
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

// Written by js-libp2p (@libp2p/peer-record RecordEnvelope.seal) for a relay reservation voucher:
// Ed25519 key from seed 32 x 0x07, domain "libp2p-relay-rsvp", payload type 03 02.
constexpr std::string_view kPub = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
constexpr std::string_view kPeerIdText = "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7";
constexpr std::string_view kPayload =
    "0a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    "1226002408011220fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
    "1880e2cfaa06";
constexpr std::string_view kSignature =
    "864f06c23829aa30fabafaef5c4d0a4ba0f58f87b20b58eb5520df43bbb442a55dec536da71d5db7cf0e7d78434ef847b9d39d8cf50292c90a818295fb328b02";
constexpr std::string_view kDomain = "libp2p-relay-rsvp";
const Bytes kType = "\x03\x02"s;

// The envelope, field by field.
Bytes js_envelope() {
  return "\x0a\x24"s + "\x08\x01\x12\x20"s + hex(kPub)  // 1 public_key: PublicKey{Ed25519, 32 bytes}
         + "\x12\x02"s + kType                          // 2 payload_type
         + "\x1a\x56"s + hex(kPayload)                  // 3 payload (86 bytes)
         + "\x2a\x40"s + hex(kSignature);               // 5 signature (64 bytes)
}

Identity seed7() {
  auto id = Identity::from_protobuf("\x08\x01\x12\x40"s + Bytes(32, '\x07') + hex(kPub));
  EXPECT_TRUE(id.ok());
  return std::move(id).value();
}

TEST(SignedEnvelope, SigningBufferIsLengthPrefixedFields) {
  // uvarint(17) "libp2p-relay-rsvp" uvarint(2) 03 02 uvarint(3) "abc"
  EXPECT_EQ(envelope_signing_buffer(kDomain, kType, "abc"), "\x11libp2p-relay-rsvp\x02\x03\x02\x03" "abc"s);
  // Lengths of 128 and more take two varint bytes (200 = c8 01); empty fields are a lone 00.
  const Bytes long_payload(200, 'p');
  EXPECT_EQ(envelope_signing_buffer("d", "", long_payload), "\x01" "d" "\x00\xc8\x01"s + long_payload);
}

TEST(SignedEnvelope, SealMatchesJsLibp2pByteForByte) {
  // Ed25519 is deterministic: same key, domain, type and payload give js-libp2p's exact bytes.
  EXPECT_EQ(seal_signed_envelope(seed7(), kDomain, kType, hex(kPayload)), js_envelope());
}

TEST(SignedEnvelope, OpenJsLibp2pEnvelope) {
  auto opened = open_signed_envelope(js_envelope(), kDomain);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->signer.to_base58(), kPeerIdText);
  EXPECT_EQ(opened->public_key.type, KeyType::Ed25519);
  EXPECT_EQ(opened->public_key.data, hex(kPub));
  EXPECT_EQ(opened->payload_type, kType);
  EXPECT_EQ(opened->payload, hex(kPayload));
  // The signature is over the hand-built buffer, independently of envelope_signing_buffer().
  const Bytes buffer = "\x11"s + std::string(kDomain) + "\x02"s + kType + "\x56"s + hex(kPayload);
  EXPECT_TRUE(opened->public_key.verify(buffer, hex(kSignature)));
}

TEST(SignedEnvelope, DecodeEncodeFieldLayout) {
  auto env = SignedEnvelope::decode(js_envelope());
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_EQ(env->public_key, "\x08\x01\x12\x20"s + hex(kPub));
  EXPECT_EQ(env->payload_type, kType);
  EXPECT_EQ(env->payload, hex(kPayload));
  EXPECT_EQ(env->signature, hex(kSignature));
  EXPECT_EQ(env->encode(), js_envelope());
  // Empty payload_type and payload are omitted, as proto3 encoders (go/js/rust) do.
  SignedEnvelope bare{"K", "", "", "S"};
  EXPECT_EQ(bare.encode(), "\x0a\x01K\x2a\x01S"s);
  auto d = SignedEnvelope::decode(bare.encode());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, bare);
}

TEST(SignedEnvelope, RoundTripWithFreshKey) {
  const Identity id = Identity::generate();
  const Bytes env = seal_signed_envelope(id, "punchgate-test", "/test", "hello");
  auto opened = open_signed_envelope(env, "punchgate-test");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->signer, id.peer_id());
  EXPECT_EQ(opened->payload_type, "/test");
  EXPECT_EQ(opened->payload, "hello");
  // Empty type and payload are allowed and still signed.
  auto empty = open_signed_envelope(seal_signed_envelope(id, "d", "", ""), "d");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->payload.empty());
}

TEST(SignedEnvelope, TamperingAndWrongDomainRejected) {
  const SignedEnvelope good = *SignedEnvelope::decode(js_envelope());
  auto expect_bad_signature = [](const SignedEnvelope& e, std::string_view domain, const char* what) {
    auto r = open_signed_envelope(e.encode(), domain);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_TRUE(contains(r.error().message, "signature does not verify")) << what << ": " << r.error().message;
  };
  expect_bad_signature(good, "libp2p-routing-state", "wrong domain");
  expect_bad_signature(good, "libp2p-relay-rsv", "domain prefix");
  expect_bad_signature(good, "", "empty domain");

  SignedEnvelope e = good;
  e.payload.back() ^= 1;
  expect_bad_signature(e, kDomain, "payload bit flip");
  e = good;
  e.payload += "x";
  expect_bad_signature(e, kDomain, "payload extended");
  e = good;
  e.payload_type = "\x03\x01"s;
  expect_bad_signature(e, kDomain, "payload type changed");
  e = good;
  e.payload_type.clear();
  expect_bad_signature(e, kDomain, "payload type dropped");
  e = good;
  e.signature[10] ^= 0x40;
  expect_bad_signature(e, kDomain, "signature bit flip");
  // Another key with the original signature.
  e = good;
  e.public_key = Identity::generate().public_key().to_protobuf();
  expect_bad_signature(e, kDomain, "key swapped");
  // Moving bytes between type and payload keeps the concatenation but not the length prefixes.
  e = good;
  e.payload_type = kType + e.payload.substr(0, 1);
  e.payload = e.payload.substr(1);
  expect_bad_signature(e, kDomain, "field boundary shifted");

  EXPECT_TRUE(open_signed_envelope(good.encode(), kDomain).ok());
}

TEST(SignedEnvelope, StructuralErrorsNameTheProblem) {
  struct Case {
    Bytes in;
    const char* expect;
  };
  const Bytes key = "\x0a\x24\x08\x01\x12\x20"s + hex(kPub);
  const Case cases[] = {
      {"\x2a\x01S"s, "has no public_key"},
      {key, "has no signature"},
      {key + "\x2a\x00"s, "has no signature"},
      {"\x08\x01"s + key, "field 1 is not length-delimited"},
      {key + "\x28\x01"s, "field 5 is not length-delimited"},
      {key + "\x2a\x05" "ab"s, "runs past the end"},
      {key + "\x2a"s, "malformed signed envelope"},
      {"\x0a\x24"s, "runs past the end"},
      {key + "\x12\x81\x02"s + Bytes(257, 't') + "\x2a\x01S"s, "payload_type of 257 bytes exceeds limit of 256"},
      {key + "\x2a\x81\x08"s + Bytes(1025, 's'), "signature of 1025 bytes exceeds limit of 1024"},
      {Bytes(kMaxSignedEnvelopeSize + 1, '\0'), "message of 16385 bytes exceeds limit of 16384"},
  };
  for (const auto& c : cases) {
    auto d = SignedEnvelope::decode(c.in);
    ASSERT_FALSE(d.ok()) << c.expect;
    EXPECT_TRUE(contains(d.error().message, c.expect)) << d.error().message << " / " << c.expect;
  }
  // Unknown fields (here field 4, the RFC's old signature number) are skipped, not taken as the signature.
  auto old = SignedEnvelope::decode(key + "\x22\x01X"s + "\x2a\x01S"s);
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->signature, "S");
  EXPECT_FALSE(SignedEnvelope::decode(key + "\x22\x01X"s).ok());
}

TEST(SignedEnvelope, KeyProblemsReported) {
  // An RSA key parses but cannot be verified here.
  SignedEnvelope rsa{"\x08\x00\x12\x03" "abc"s, kType, "p", "sig"};
  auto r = open_signed_envelope(rsa.encode(), kDomain);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "key type RSA is not supported")) << r.error().message;
  // A malformed key.
  SignedEnvelope bad{"\x08\x01\x12\x05" "short"s, kType, "p", "sig"};
  auto b = open_signed_envelope(bad.encode(), kDomain);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(contains(b.error().message, "signed envelope public_key:")) << b.error().message;
}

TEST(SignedEnvelope, EveryTruncationRejected) {
  const Bytes env = js_envelope();
  for (size_t n = 0; n < env.size(); ++n) {
    EXPECT_FALSE(open_signed_envelope(env.substr(0, n), kDomain).ok()) << n;
    // Structurally, only cuts inside a field or before the signature fail; none of them decode.
    EXPECT_FALSE(SignedEnvelope::decode(env.substr(0, n)).ok()) << n;
  }
}

}  // namespace
