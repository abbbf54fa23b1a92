#include "punchgate/host/identify_message.hpp"

#include "punchgate/wire/length_prefix.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

// Hand-built protobuf, fields in field-number order (what encode() must produce byte for byte).
const Bytes kVector =
    "\x0a\x03" "key"        // 1 publicKey
    "\x12\x02\x01\x02"      // 2 listenAddrs
    "\x12\x01\x03"          // 2 listenAddrs
    "\x1a\x02/a"            // 3 protocols
    "\x1a\x02/b"            // 3 protocols
    "\x22\x01\x04"          // 4 observedAddr
    "\x2a\x03v/1"           // 5 protocolVersion
    "\x32\x02" "ag"         // 6 agentVersion
    "\x42\x01\x05"s;        // 8 signedPeerRecord

IdentifyMessage vector_message() {
  IdentifyMessage m;
  m.public_key = "key";
  m.listen_addrs = {"\x01\x02"s, "\x03"s};
  m.protocols = {"/a", "/b"};
  m.observed_addr = "\x04"s;
  m.protocol_version = "v/1";
  m.agent_version = "ag";
  m.signed_peer_record = "\x05"s;
  return m;
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST(IdentifyMessage, DecodesHandBuiltVector) {
  auto m = IdentifyMessage::decode(kVector);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, vector_message());
}

TEST(IdentifyMessage, EncodesByteExact) {
  EXPECT_EQ(vector_message().encode(), kVector);
  EXPECT_EQ(vector_message().encode_framed(), "\x23"s + kVector);  // 35 bytes
  EXPECT_EQ(kVector.size(), 0x23u);
}

TEST(IdentifyMessage, EmptyMessage) {
  IdentifyMessage empty;
  EXPECT_EQ(empty.encode(), "");
  auto m = IdentifyMessage::decode("");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, empty);
}

TEST(IdentifyMessage, PresentButEmptyFieldsRoundTrip) {
  IdentifyMessage m;
  m.public_key = "";
  m.agent_version = "";
  m.listen_addrs = {""};
  EXPECT_EQ(m.encode(), "\x0a\x00\x12\x00\x32\x00"s);
  auto back = IdentifyMessage::decode(m.encode());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
  EXPECT_TRUE(back->public_key.has_value());
  EXPECT_FALSE(back->observed_addr.has_value());
}

TEST(IdentifyMessage, RoundTripRealistic) {
  IdentifyMessage m;
  m.protocol_version = "/punchgate/id/1.0.0";
  m.agent_version = "punchgate/0.1.0";
  m.public_key = "\x08\x01\x12\x20"s + Bytes(32, '\x7f');
  m.observed_addr = "\x04\x7f\x00\x00\x01\x91\x02\x11\x5c\xcc\x03"s;  // /ip4/127.0.0.1/udp/4444/quic-v1
  for (size_t i = 0; i < kMaxIdentifyListenAddrs; ++i) m.listen_addrs.push_back(Bytes(40, static_cast<char>(i)));
  for (int i = 0; i < 50; ++i) m.protocols.push_back("/proto/" + std::to_string(i));
  m.signed_peer_record = Bytes(300, '\xee');
  auto back = IdentifyMessage::decode(m.encode());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, m);
}

TEST(IdentifyMessage, UnknownFieldsSkipped) {
  Bytes extra = "\x48\x96\x01"s                  // 9: varint 150
                "\x55\x01\x02\x03\x04"s          // 10: fixed32
                "\x59" + Bytes(8, '\x09') +      // 11: fixed64
                "\x7a\x02zz"s +                  // 15: length-delimited
                "\x82\x01\x01q"s;                // 16: length-delimited, two-byte tag
  auto m = IdentifyMessage::decode(extra + kVector + extra);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, vector_message());
}

TEST(IdentifyMessage, LastOptionalValueWins) {
  auto m = IdentifyMessage::decode("\x32\x01x\x32\x01y"s);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->agent_version, "y");
}

TEST(IdentifyMessage, WrongWireTypeRejected) {
  auto m = IdentifyMessage::decode("\x08\x01"s);  // publicKey as varint
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(contains(m.error().message, "wire type")) << m.error().message;
  EXPECT_FALSE(IdentifyMessage::decode("\x1d\x00\x00\x00\x00"s).ok());  // protocols as fixed32
}

TEST(IdentifyMessage, MalformedRejected) {
  EXPECT_FALSE(IdentifyMessage::decode("\x0b"s).ok());                  // group wire type
  EXPECT_FALSE(IdentifyMessage::decode("\x00\x00"s).ok());              // field 0
  EXPECT_FALSE(IdentifyMessage::decode("\x0a"s).ok());                  // missing length
  EXPECT_FALSE(IdentifyMessage::decode("\x0a\x05" "ab"s).ok());         // length past the end
  EXPECT_FALSE(IdentifyMessage::decode("\x48"s).ok());                  // unknown varint, no value
  EXPECT_FALSE(IdentifyMessage::decode("\x55\x01"s).ok());              // truncated fixed32
  EXPECT_FALSE(IdentifyMessage::decode(Bytes(12, '\xff')).ok());        // runaway varint
  // Length 2^32 + 1 must not wrap to 1 (protozero keeps only 32 bits of a length).
  EXPECT_FALSE(IdentifyMessage::decode("\x0a\x81\x80\x80\x80\x10x"s).ok());
  EXPECT_FALSE(IdentifyMessage::decode("\x7a\x81\x80\x80\x80\x10x"s).ok());  // same in an unknown field
  // A key of 2^32 + 0x0a must not wrap to publicKey.
  EXPECT_FALSE(IdentifyMessage::decode("\x8a\x80\x80\x80\x10\x01x"s).ok());
}

TEST(IdentifyMessage, EveryTruncationOfVectorRejected) {
  // Cutting inside a field must fail; cutting on a field boundary is a valid shorter message.
  const std::vector<size_t> boundaries = {0, 5, 9, 12, 16, 20, 23, 28, 32, 35};
  for (size_t n = 0; n < kVector.size(); ++n) {
    auto m = IdentifyMessage::decode(BytesView(kVector).substr(0, n));
    bool boundary = std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    EXPECT_EQ(m.ok(), boundary) << n;
  }
}

TEST(IdentifyMessage, CapsEnforced) {
  {
    IdentifyMessage m;
    m.listen_addrs.assign(kMaxIdentifyListenAddrs, "\x01"s);
    EXPECT_TRUE(IdentifyMessage::decode(m.encode()).ok());
    m.listen_addrs.push_back("\x01"s);
    auto r = IdentifyMessage::decode(m.encode());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "listenAddrs")) << r.error().message;
  }
  {
    IdentifyMessage m;
    m.listen_addrs = {Bytes(kMaxIdentifyAddrSize, 'a')};
    EXPECT_TRUE(IdentifyMessage::decode(m.encode()).ok());
    m.listen_addrs = {Bytes(kMaxIdentifyAddrSize + 1, 'a')};
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    IdentifyMessage m;
    m.protocols.assign(kMaxIdentifyProtocols, "/p");
    EXPECT_TRUE(IdentifyMessage::decode(m.encode()).ok());
    m.protocols.push_back("/p");
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    IdentifyMessage m;
    m.protocols = {std::string(kMaxIdentifyProtocolSize, 'p')};
    EXPECT_TRUE(IdentifyMessage::decode(m.encode()).ok());
    m.protocols = {std::string(kMaxIdentifyProtocolSize + 1, 'p')};
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    IdentifyMessage m;
    m.observed_addr = Bytes(kMaxIdentifyAddrSize + 1, 'o');
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    IdentifyMessage m;
    m.agent_version = std::string(kMaxIdentifyVersionSize + 1, 'v');
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    IdentifyMessage m;
    m.public_key = Bytes(kMaxIdentifyPublicKeySize + 1, 'k');
    EXPECT_FALSE(IdentifyMessage::decode(m.encode()).ok());
  }
  {
    // Whole message over 64 KiB, even if made only of an unknown field.
    Bytes big = "\x7a\x80\x80\x04"s + Bytes(65536, 'z');
    auto r = IdentifyMessage::decode(big);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "message")) << r.error().message;
  }
}

TEST(IdentifyStream, SingleFramedMessage) {
  auto m = IdentifyMessage::decode_stream(vector_message().encode_framed());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, vector_message());
}

TEST(IdentifyStream, SplitMessagesMerge) {
  // go-libp2p sends large messages as: everything but the signed record, then the record alone.
  IdentifyMessage first = vector_message();
  first.signed_peer_record.reset();
  first.listen_addrs = {"\x01"s};
  IdentifyMessage second;
  second.signed_peer_record = "rec";
  second.listen_addrs = {"\x02"s};
  second.agent_version = "newer";
  auto m = IdentifyMessage::decode_stream(first.encode_framed() + second.encode_framed());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->signed_peer_record, "rec");
  EXPECT_EQ(m->listen_addrs, (std::vector<Bytes>{"\x01"s, "\x02"s}));
  EXPECT_EQ(m->agent_version, "newer");
  EXPECT_EQ(m->protocol_version, "v/1");
}

TEST(IdentifyStream, Rejections) {
  EXPECT_FALSE(IdentifyMessage::decode_stream("").ok());
  Bytes framed = vector_message().encode_framed();
  EXPECT_FALSE(IdentifyMessage::decode_stream(BytesView(framed).substr(0, framed.size() - 1)).ok());
  EXPECT_FALSE(IdentifyMessage::decode_stream(Bytes(11, '\x00')).ok());  // 11 empty messages
  EXPECT_TRUE(IdentifyMessage::decode_stream(Bytes(10, '\x00')).ok());
  EXPECT_FALSE(IdentifyMessage::decode_stream("\x81\x80\x04"s).ok());  // frame over 64 KiB

  // Merged lists are capped too.
  IdentifyMessage half;
  half.protocols.assign(kMaxIdentifyProtocols / 2 + 1, "/p");
  EXPECT_FALSE(IdentifyMessage::decode_stream(half.encode_framed() + half.encode_framed()).ok());
}

TEST(IdentifyStream, MergeLeavesTargetUntouchedOnError) {
  IdentifyMessage a = vector_message();
  IdentifyMessage b;
  b.protocols.assign(kMaxIdentifyProtocols, "/q");
  EXPECT_FALSE(a.merge_from(b).ok());
  EXPECT_EQ(a, vector_message());
}
