#include "punchgate/wire/length_prefix.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

// Drains every complete frame currently available.
std::vector<Bytes> drain(UvarintFrameReader& r) {
  std::vector<Bytes> out;
  while (true) {
    auto f = r.next();
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    if (!f.ok() || !f->has_value()) return out;
    out.push_back(**f);
  }
}

}  // namespace

TEST(LengthPrefix, FrameEncoding) {
  EXPECT_EQ(frame_uvarint(""), "\x00"s);
  EXPECT_EQ(frame_uvarint("abc"), "\x03" "abc"s);
  Bytes big(300, 'x');
  EXPECT_EQ(frame_uvarint(big), "\xac\x02"s + big);  // 300 = 0b10_0101100
  Bytes out = "pre";
  append_frame_uvarint(out, "hi");
  EXPECT_EQ(out, "pre\x02hi"s);
}

TEST(LengthPrefix, ReadsWholeFrames) {
  UvarintFrameReader r(16);
  ASSERT_TRUE(r.feed("\x03" "abc" "\x00" "\x02hi"s).ok());
  EXPECT_EQ(drain(r), (std::vector<Bytes>{"abc", "", "hi"}));
  EXPECT_TRUE(r.idle());
}

TEST(LengthPrefix, ByteAtATime) {
  UvarintFrameReader r(400);
  Bytes payload(300, 'y');
  Bytes wire = frame_uvarint(payload) + frame_uvarint("z");
  std::vector<Bytes> got;
  for (char c : wire) {
    ASSERT_TRUE(r.feed(BytesView(&c, 1)).ok());
    for (auto& f : drain(r)) got.push_back(f);
  }
  EXPECT_EQ(got, (std::vector<Bytes>{payload, "z"}));
  EXPECT_TRUE(r.idle());
}

TEST(LengthPrefix, PartialFrameIsNotIdle) {
  UvarintFrameReader r(16);
  ASSERT_TRUE(r.feed("\x05" "ab"s).ok());
  EXPECT_TRUE(drain(r).empty());
  EXPECT_FALSE(r.idle());
  EXPECT_EQ(r.buffered(), 3u);
  EXPECT_EQ(r.take_buffered(), "\x05" "ab"s);
  EXPECT_TRUE(r.idle());
}

TEST(LengthPrefix, OversizeLengthFailsOnPrefixAlone) {
  UvarintFrameReader r(10);
  ASSERT_TRUE(r.feed("\x0b"s).ok());  // 11 > 10, before any payload arrives
  auto f = r.next();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("exceeds"), std::string::npos);
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.feed("x").ok());  // sticky
  EXPECT_FALSE(r.next().ok());
}

TEST(LengthPrefix, MaxSizeFrameAccepted) {
  UvarintFrameReader r(10);
  ASSERT_TRUE(r.feed(frame_uvarint(Bytes(10, 'm'))).ok());
  auto f = r.next();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ(**f, Bytes(10, 'm'));
}

TEST(LengthPrefix, BufferBoundEnforced) {
  UvarintFrameReader r(4);
  EXPECT_EQ(r.capacity(), 14u);
  ASSERT_TRUE(r.feed(Bytes(14, '\x00')).ok());  // exactly the bound
  auto over = r.feed("x");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("limit"), std::string::npos);

  UvarintFrameReader r2(4);
  EXPECT_FALSE(r2.feed(Bytes(15, '\x00')).ok());
}

TEST(LengthPrefix, BadVarints) {
  {
    UvarintFrameReader r(16);
    ASSERT_TRUE(r.feed("\x80\x00"s).ok());  // non-minimal encoding of 0
    EXPECT_FALSE(r.next().ok());
  }
  {
    UvarintFrameReader r(1u << 20);
    ASSERT_TRUE(r.feed(Bytes(10, '\xff')).ok());  // longer than 9 bytes
    EXPECT_FALSE(r.next().ok());
  }
}

TEST(LengthPrefix, FeedAllSplitsLargeInput) {
  UvarintFrameReader r(8);
  Bytes wire;
  std::vector<Bytes> expected;
  for (int i = 0; i < 50; ++i) {
    Bytes p(static_cast<size_t>(i % 9), static_cast<char>('a' + i % 26));
    expected.push_back(p);
    wire += frame_uvarint(p);
  }
  wire += "\x05" "ab"s;  // trailing partial frame stays buffered
  std::vector<Bytes> got;
  ASSERT_TRUE(r.feed_all(wire, got).ok());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(r.buffered(), 3u);
  EXPECT_LE(r.buffered(), r.capacity());
}

TEST(LengthPrefix, FeedAllReportsOversize) {
  UvarintFrameReader r(8);
  std::vector<Bytes> got;
  auto s = r.feed_all("\x01" "a" "\x09"s, got);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(got, (std::vector<Bytes>{"a"}));
}
