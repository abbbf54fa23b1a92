#include "punchgate/wire/multibase.hpp"

#include <gtest/gtest.h>

#include <random>

namespace punchgate {
namespace {

Bytes unhex(std::string_view h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

bool contains(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

struct TextVector {
  Bytes data;
  std::string encoded;
};

TEST(Base58btc, KnownVectors) {
  const std::vector<TextVector> vectors = {
      {"", ""},
      {Bytes(1, '\0'), "1"},
      {unhex("0000ff"), "115Q"},
      {unhex("0000287fb4cd"), "11233QC4"},
      {"Hello World!", "2NEpo7TZRRrLZSi2U"},
      {"The quick brown fox jumps over the lazy dog.", "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"},
      {"yes mani !", "7paNL19xttacUY"},
  };
  for (const auto& v : vectors) {
    EXPECT_EQ(base58btc_encode(v.data), v.encoded);
    auto d = base58btc_decode(v.encoded);
    ASSERT_TRUE(d.ok()) << v.encoded << ": " << d.error().message;
    EXPECT_EQ(to_hex(*d), to_hex(v.data)) << v.encoded;
  }
}

TEST(Base58btc, RejectsCharactersOutsideTheAlphabet) {
  // 0, O, I and l are deliberately absent from the bitcoin alphabet.
  for (std::string_view bad : {"0", "O", "I", "l", "2NEp+7", "abc def", "Qm\xff"}) {
    auto d = base58btc_decode(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_TRUE(contains(d.error().message, "invalid base58btc character")) << d.error().message;
  }
  auto d = base58btc_decode("2NEpl7");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "'l' at offset 4")) << d.error().message;
  d = base58btc_decode(std::string_view("2N\0", 3));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "0x00 at offset 2")) << d.error().message;
}

TEST(Base58btc, RejectsOverlongText) {
  std::string text(kMaxEncodedTextLen + 1, '2');
  auto d = base58btc_decode(text);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "1025")) << d.error().message;
  EXPECT_TRUE(base58btc_decode(std::string(kMaxEncodedTextLen, '2')).ok());
}

TEST(Base32, Rfc4648VectorsLowerCaseUnpadded) {
  const std::vector<TextVector> vectors = {
      {"", ""},         {"f", "my"},           {"fo", "mzxq"},
      {"foo", "mzxw6"}, {"foob", "mzxw6yq"},   {"fooba", "mzxw6ytb"},
      {"foobar", "mzxw6ytboi"},
      {"yes mani !", "pfsxgidnmfxgsibb"},
  };
  for (const auto& v : vectors) {
    EXPECT_EQ(base32_encode(v.data), v.encoded);
    auto d = base32_decode(v.encoded);
    ASSERT_TRUE(d.ok()) << v.encoded << ": " << d.error().message;
    EXPECT_EQ(*d, v.data);
  }
}

TEST(Base32, RejectsUpperCasePaddingAndBadCharacters) {
  for (std::string_view bad : {"MZXW6", "mzxw6===", "mzxw1", "mzxw8", "mz w6"}) {
    auto d = base32_decode(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_TRUE(contains(d.error().message, "invalid base32 character")) << d.error().message;
  }
  auto d = base32_decode("mzXw6");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "'X' at offset 2")) << d.error().message;
}

TEST(Base32, RejectsImpossibleLengths) {
  for (std::string_view bad : {"m", "mzx", "mzxw6y", "mzxw6ytbm"}) {
    auto d = base32_decode(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_TRUE(contains(d.error().message, "length")) << d.error().message;
  }
}

TEST(Base32, RejectsNonZeroTrailingBits) {
  // "my" is "f"; "mz" carries the same byte plus a stray 1 bit in the padding.
  ASSERT_TRUE(base32_decode("my").ok());
  auto d = base32_decode("mz");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "trailing bits")) << d.error().message;
}

TEST(Base32, RejectsOverlongText) {
  EXPECT_FALSE(base32_decode(std::string(kMaxEncodedTextLen + 8, 'a')).ok());
}

TEST(BaseEncodings, RandomRoundTrips) {
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    Bytes data(rng() % 80, '\0');
    for (auto& c : data) c = static_cast<char>(rng() % 4 == 0 ? 0 : rng());  // plenty of zero bytes
    auto b58 = base58btc_decode(base58btc_encode(data));
    ASSERT_TRUE(b58.ok());
    EXPECT_EQ(*b58, data);
    auto b32 = base32_decode(base32_encode(data));
    ASSERT_TRUE(b32.ok());
    EXPECT_EQ(*b32, data);
  }
}

TEST(Multibase, DecodesByPrefix) {
  // multiformats/multibase test vector "yes mani !".
  auto b = multibase_decode("bpfsxgidnmfxgsibb");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, "yes mani !");
  auto z = multibase_decode("z7paNL19xttacUY");
  ASSERT_TRUE(z.ok()) << z.error().message;
  EXPECT_EQ(*z, "yes mani !");
  EXPECT_EQ(multibase_encode_base32("yes mani !"), "bpfsxgidnmfxgsibb");
}

TEST(Multibase, RejectsUnknownPrefixAndEmpty) {
  auto d = multibase_decode("");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "empty")) << d.error().message;
  d = multibase_decode("BPFSXGIDNMFXGSIBB");  // base32upper: not supported
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "prefix 'B'")) << d.error().message;
  d = multibase_decode("mZXMgbWFuaSAh");  // base64
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "prefix 'm'")) << d.error().message;
}

TEST(PeerIdMultihash, AcceptsIdentityAndSha256) {
  Bytes identity = unhex("0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
  EXPECT_TRUE(validate_peer_id_multihash(identity).ok());
  Bytes sha = unhex("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9");
  EXPECT_TRUE(validate_peer_id_multihash(sha).ok());
  // Identity digests above 127 bytes need a two-byte length varint.
  Bytes big = unhex("008001") + Bytes(128, 'k');
  EXPECT_TRUE(validate_peer_id_multihash(big).ok());
}

TEST(PeerIdMultihash, RejectsMalformed) {
  struct Case {
    Bytes mh;
    std::string_view why;
  };
  const std::vector<Case> cases = {
      {"", "empty multihash"},
      {unhex("00"), "length"},
      {unhex("0000"), "identity multihash length 0"},
      {unhex("008101") + Bytes(129, 'k'), "identity multihash length 129"},
      {unhex("1220") + Bytes(31, 'x'), "declares 32 digest bytes but 31 follow"},
      {unhex("1220") + Bytes(33, 'x'), "declares 32 digest bytes but 33 follow"},
      {unhex("1214") + Bytes(20, 'x'), "sha2-256 multihash length 20 is not 32"},
      {unhex("1114") + Bytes(20, 'x'), "code 0x11"},
      {unhex("8000") + Bytes(4, 'x'), "minimal"},
      {unhex("0003") + Bytes(2, 'x'), "declares 3 digest bytes but 2 follow"},
  };
  for (const auto& c : cases) {
    auto st = validate_peer_id_multihash(c.mh);
    ASSERT_FALSE(st.ok()) << to_hex(c.mh);
    EXPECT_TRUE(contains(st.error().message, c.why)) << to_hex(c.mh) << ": " << st.error().message;
  }
}

TEST(PeerIdText, LegacyAndCidFormsDecodeToTheSameMultihash) {
  // peer-ids/peer-ids.md examples: the same sha2-256 peer id in both text forms.
  auto legacy = decode_peer_id_text("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  auto cid = decode_peer_id_text("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  ASSERT_TRUE(cid.ok()) << cid.error().message;
  EXPECT_EQ(*legacy, *cid);
  EXPECT_EQ(to_hex(*legacy), "12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9");
}

TEST(PeerIdText, RejectsWithReasons) {
  struct Case {
    std::string_view text;
    std::string_view why;
  };
  const std::vector<Case> cases = {
      {"", "empty peer id"},
      // Identity multihash of the spec's Ed25519 key with its last byte cut off.
      {"1GsNUph9MmeHfqZnz5gLeBfCATATinkn5Bn2p6xeXwnshWUjc5", "declares 36 digest bytes but 35 follow"},
      {"6PL2TA1uhZJAYT2FVQ1SCJ55p5J3pcez8EiQjeQcTg8Ty", "unsupported multibase prefix '6'"},
      {"Qm0yQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "invalid base58btc character '0'"},
      {"xyz", "unsupported multibase prefix 'x'"},
      // CIDv1 with the dag-pb codec (0x70) instead of libp2p-key.
      {"bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe", "codec 0x70"},
      {"bajzaa", "CID version 2 is not 1"},
  };
  for (const auto& c : cases) {
    auto d = decode_peer_id_text(c.text);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_TRUE(contains(d.error().message, c.why)) << c.text << ": " << d.error().message;
    if (!c.text.empty()) {
      EXPECT_TRUE(contains(d.error().message, c.text.substr(0, 20))) << "error should quote the input: "
                                                                     << d.error().message;
    }
  }
}

TEST(QuoteForError, EscapesAndTruncates) {
  EXPECT_EQ(quote_for_error("ab"), "\"ab\"");
  EXPECT_EQ(quote_for_error(std::string_view("a\n\"\0", 4)), "\"a\\x0a\\x22\\x00\"");
  auto long_text = quote_for_error(std::string(200, 'x'));
  EXPECT_TRUE(contains(long_text, "(200 bytes)")) << long_text;
  EXPECT_LT(long_text.size(), 130u);
}

}  // namespace
}  // namespace punchgate
