#include "punchgate/wire/varint.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace punchgate {
namespace {

Bytes hex(std::initializer_list<uint8_t> b) { return Bytes(b.begin(), b.end()); }

struct Vector {
  uint64_t value;
  Bytes encoded;
};

// multiformats/unsigned-varint README examples.
const std::vector<Vector>& spec_vectors() {
  static const std::vector<Vector> v = {
      {0, hex({0x00})},
      {1, hex({0x01})},
      {127, hex({0x7f})},
      {128, hex({0x80, 0x01})},
      {255, hex({0xff, 0x01})},
      {300, hex({0xac, 0x02})},
      {16384, hex({0x80, 0x80, 0x01})},
  };
  return v;
}

TEST(Varint, EncodesSpecVectors) {
  for (const auto& [value, encoded] : spec_vectors()) {
    Bytes out;
    put_uvarint(out, value);
    EXPECT_EQ(to_hex(out), to_hex(encoded)) << value;
    EXPECT_EQ(uvarint_size(value), encoded.size()) << value;
  }
}

TEST(Varint, DecodesSpecVectors) {
  for (const auto& [value, encoded] : spec_vectors()) {
    uint64_t got = 12345;
    auto n = get_uvarint(encoded, got);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, encoded.size());
    EXPECT_EQ(got, value);
  }
}

TEST(Varint, DecodeLeavesTrailingBytes) {
  Bytes in = hex({0xac, 0x02, 0x55, 0x66});
  uint64_t v = 0;
  auto n = get_uvarint(in, v);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(v, 300u);
}

TEST(Varint, RoundTripsAcrossGroupBoundaries) {
  // Values around each 7-bit group boundary up to the 63-bit maximum of a 9-byte varint.
  for (int bits = 0; bits <= 63; ++bits) {
    uint64_t base = bits == 0 ? 0 : (uint64_t{1} << bits);
    for (uint64_t v : {base, base - 1, base + 1}) {
      if (v >= (uint64_t{1} << 63)) continue;
      Bytes out;
      put_uvarint(out, v);
      EXPECT_LE(out.size(), kMaxUvarintLen);
      EXPECT_EQ(out.size(), uvarint_size(v));
      BytesView view = out;
      auto got = take_uvarint(view);
      ASSERT_TRUE(got.ok()) << v << ": " << got.error().message;
      EXPECT_EQ(*got, v);
      EXPECT_TRUE(view.empty());
    }
  }
}

TEST(Varint, LargestNineByteValue) {
  uint64_t max = (uint64_t{1} << 63) - 1;
  Bytes out;
  put_uvarint(out, max);
  EXPECT_EQ(to_hex(out), "ffffffffffffffff7f");
  uint64_t v = 0;
  auto n = get_uvarint(out, v);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 9u);
  EXPECT_EQ(v, max);
}

TEST(Varint, IncompleteReturnsZero) {
  for (const Bytes& in : {Bytes{}, hex({0x80}), hex({0xff, 0xff}), hex({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})}) {
    uint64_t v = 0;
    auto n = get_uvarint(in, v);
    ASSERT_TRUE(n.ok()) << to_hex(in) << ": " << n.error().message;
    EXPECT_EQ(*n, 0u) << to_hex(in);
  }
}

TEST(Varint, RejectsNonMinimal) {
  for (const Bytes& in : {hex({0x81, 0x00}), hex({0x80, 0x00}), hex({0xff, 0x80, 0x00}), hex({0x80, 0x80, 0x80, 0x00})}) {
    uint64_t v = 0;
    auto n = get_uvarint(in, v);
    ASSERT_FALSE(n.ok()) << to_hex(in);
    EXPECT_NE(n.error().message.find("minimal"), std::string::npos) << n.error().message;
  }
}

TEST(Varint, RejectsLongerThanNineBytes) {
  // Nine continuation bytes: the value cannot end within the 9-byte limit.
  Bytes nine_continued(9, static_cast<char>(0x80));
  uint64_t v = 0;
  auto n = get_uvarint(nine_continued, v);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("9 bytes"), std::string::npos) << n.error().message;

  Bytes ten = nine_continued + hex({0x01});
  n = get_uvarint(ten, v);
  ASSERT_FALSE(n.ok());

  // The same prefix fed to take_uvarint must also fail rather than read past nine bytes.
  BytesView view = ten;
  EXPECT_FALSE(take_uvarint(view).ok());
  EXPECT_EQ(view.size(), ten.size()) << "failed take must not consume";
}

TEST(Varint, TakeRejectsTruncated) {
  Bytes in = hex({0x80, 0x80});
  BytesView view = in;
  auto got = take_uvarint(view);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("truncated"), std::string::npos) << got.error().message;
  BytesView empty;
  EXPECT_FALSE(take_uvarint(empty).ok());
}

TEST(Varint, TakeConsumesOnlyTheVarint) {
  Bytes in = hex({0x80, 0x80, 0x01, 0x07});
  BytesView view = in;
  auto got = take_uvarint(view);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, 16384u);
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view[0], 0x07);
}

}  // namespace
}  // namespace punchgate
