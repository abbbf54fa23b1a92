#include "punchgate/kad/kad_message.hpp"

#include "punchgate/wire/length_prefix.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace punchgate;
using namespace std::string_literals;

namespace {

// An Ed25519 peer id as an identity multihash: 0x00, len 36, PublicKey{1: Ed25519, 2: 32 bytes}.
const Bytes kPeerIdBytes = "\x00\x24\x08\x01\x12\x20"s + Bytes(32, '\x11');

// FIND_NODE for kPeerIdBytes, hand-built from the protobuf rules: field 1 (type) varint -> tag
// 0x08; field 2 (key) length-delimited -> tag 0x12, length 38 = 0x26.
const Bytes kFindNodeVector = "\x08\x04"s + "\x12\x26"s + kPeerIdBytes;

// A response with every field. Field order is field-number order, which encode() must produce.
const Bytes kFullVector =
    "\x08\x01"s                      // 1 type = GET_VALUE
    "\x12\x03" "key"                 // 2 key
    "\x1a\x10"                       // 3 record, 16 bytes:
    "\x0a\x01" "k"                   //   1 key
    "\x12\x02" "vv"                  //   2 value
    "\x2a\x07" "2024-01"             //   5 timeReceived
    "\x42\x0d"                       // 8 closerPeers, 13 bytes:
    "\x0a\x02" "P1"                  //   1 id
    "\x12\x02\x04\x01"               //   2 addrs
    "\x12\x01\x06"                   //   2 addrs
    "\x18\x01"                       //   3 connection = CONNECTED
    "\x42\x04"                       // 8 closerPeers, 4 bytes:
    "\x0a\x02" "P2"                  //   1 id (connection NOT_CONNECTED omitted)
    "\x4a\x06"                       // 9 providerPeers, 6 bytes:
    "\x0a\x02" "P3"                  //   1 id
    "\x18\x03"                       //   3 connection = CANNOT_CONNECT
    "\x50\x07"s;                     // 10 clusterLevelRaw = 7

KadMessage full_message() {
  KadMessage m;
  m.type = KadMessageType::GetValue;
  m.key = "key";
  m.record = KadRecord{"k", "vv", "2024-01"};
  m.closer_peers = {KadPeer{"P1", {"\x04\x01"s, "\x06"s}, KadConnectionType::Connected},
                    KadPeer{"P2", {}, KadConnectionType::NotConnected}};
  m.provider_peers = {KadPeer{"P3", {}, KadConnectionType::CannotConnect}};
  m.cluster_level_raw = 7;
  return m;
}

bool contains(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

Bytes length_delimited(uint8_t tag_byte, const Bytes& payload) { return Bytes(1, static_cast<char>(tag_byte)) + frame_uvarint(payload); }

KadMessage random_message(std::mt19937_64& rng) {
  auto coin = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto bytes = [&](size_t max) {
    Bytes b(rng() % (max + 1), '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    return b;
  };
  KadMessage m;
  m.type = static_cast<KadMessageType>(coin(6));
  m.key = bytes(64);
  if (coin(2)) m.record = KadRecord{bytes(40), bytes(300), coin(2) ? "2024-05-01T00:00:00Z" : ""};
  for (auto* list : {&m.closer_peers, &m.provider_peers}) {
    const int n = coin(22);
    for (int i = 0; i < n; ++i) {
      KadPeer p;
      p.id = bytes(40);
      const int addrs = coin(5);
      for (int a = 0; a < addrs; ++a) p.addrs.push_back(bytes(30));
      p.connection = static_cast<KadConnectionType>(coin(4));
      list->push_back(std::move(p));
    }
  }
  m.cluster_level_raw = coin(3) == 0 ? static_cast<int32_t>(rng()) : 0;
  return m;
}

}  // namespace

TEST(KadMessage, EncodesFindNodeByteExact) {
  KadMessage m;
  m.type = KadMessageType::FindNode;
  m.key = kPeerIdBytes;
  EXPECT_EQ(m.encode(), kFindNodeVector);
  EXPECT_EQ(m.encode_framed(), "\x2a"s + kFindNodeVector);  // 2 + 2 + 38 = 42 bytes
  auto back = KadMessage::decode(kFindNodeVector);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(back->record.has_value());
}

TEST(KadMessage, FullVectorBothWays) {
  EXPECT_EQ(full_message().encode(), kFullVector);
  auto m = KadMessage::decode(kFullVector);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, full_message());
}

TEST(KadMessage, TypeAlwaysWrittenEvenPutValue) {
  KadMessage m;
  m.type = KadMessageType::PutValue;
  EXPECT_EQ(m.encode(), "\x08\x00"s);
  KadMessage ping;
  EXPECT_EQ(ping.encode(), "\x08\x05"s);
}

TEST(KadMessage, MissingTypeIsPutValue) {
  // proto3 omits a zero enum, so a go peer's PUT_VALUE arrives without field 1.
  auto m = KadMessage::decode("\x12\x01k"s);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, KadMessageType::PutValue);
  EXPECT_EQ(m->key, "k");
  auto empty = KadMessage::decode("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->type, KadMessageType::PutValue);
}

TEST(KadMessage, UnknownTypeRejected) {
  for (const Bytes& in : {"\x08\x06"s, "\x08\x7f"s, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s}) {
    auto m = KadMessage::decode(in);
    ASSERT_FALSE(m.ok());
    EXPECT_TRUE(contains(m.error().message, "unknown type")) << m.error().message;
  }
}

TEST(KadMessage, UnknownConnectionIsNotConnected) {
  for (const Bytes& conn : {"\x18\x04"s, "\x18\x63"s, "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s}) {
    const Bytes peer = "\x0a\x01P"s + conn;
    auto m = KadMessage::decode("\x08\x04"s + length_delimited(0x42, peer));
    ASSERT_TRUE(m.ok()) << m.error().message;
    ASSERT_EQ(m->closer_peers.size(), 1u);
    EXPECT_EQ(m->closer_peers[0].connection, KadConnectionType::NotConnected);
    EXPECT_EQ(m->closer_peers[0].id, "P");
  }
}

TEST(KadMessage, NegativeClusterLevelRoundTrips) {
  KadMessage m;
  m.type = KadMessageType::Ping;
  m.cluster_level_raw = -1;
  // int32 -1 is sign-extended to a ten-byte varint.
  EXPECT_EQ(m.encode(), "\x08\x05\x50\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
  auto back = KadMessage::decode(m.encode());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->cluster_level_raw, -1);
}

TEST(KadMessage, EmptyRecordAndEmptyPeerArePresent) {
  KadMessage m;
  m.type = KadMessageType::PutValue;
  m.record = KadRecord{};
  m.closer_peers.push_back(KadPeer{});
  EXPECT_EQ(m.encode(), "\x08\x00\x1a\x00\x42\x00"s);
  auto back = KadMessage::decode(m.encode());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
}

TEST(KadMessage, UnknownFieldsSkipped) {
  const Bytes unknown = "\x78\x05"s                                  // 15 varint
                        "\xa5\x01\x01\x02\x03\x04"s                   // 20 fixed32
                        "\xa9\x01\x01\x02\x03\x04\x05\x06\x07\x08"s   // 21 fixed64
                        "\xa2\x06\x02xy"s;                            // 100 length-delimited
  const Bytes record = "\x0a\x01k"s + unknown + "\x12\x01v"s;
  const Bytes peer = unknown + "\x0a\x01P"s + unknown + "\x12\x01\x04"s;
  const Bytes msg = unknown + "\x08\x03"s + unknown + length_delimited(0x1a, record) + length_delimited(0x4a, peer);
  auto m = KadMessage::decode(msg);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, KadMessageType::GetProviders);
  ASSERT_TRUE(m->record.has_value());
  EXPECT_EQ(*m->record, (KadRecord{"k", "v", ""}));
  ASSERT_EQ(m->provider_peers.size(), 1u);
  EXPECT_EQ(m->provider_peers[0], (KadPeer{"P", {"\x04"s}, KadConnectionType::NotConnected}));
}

TEST(KadMessage, RepeatedRecordFieldsMerge) {
  // Protobuf merges repeated occurrences of a message field; later scalars win.
  auto m = KadMessage::decode("\x08\x00\x1a\x03\x0a\x01k\x1a\x03\x12\x01v\x1a\x03\x12\x01w"s);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE(m->record.has_value());
  EXPECT_EQ(*m->record, (KadRecord{"k", "w", ""}));
}

TEST(KadMessage, WrongWireTypesRejected) {
  const Bytes peer_ok = "\x0a\x01P"s;
  const std::vector<Bytes> bad = {
      "\x0a\x01\x04"s,                                   // type as length-delimited
      "\x0d\x04\x00\x00\x00"s,                           // type as fixed32
      "\x08\x04\x10\x01"s,                               // key as varint
      "\x08\x04\x19\x01\x02\x03\x04\x05\x06\x07\x08"s,   // record as fixed64
      "\x08\x04\x40\x01"s,                               // closerPeers as varint
      "\x08\x04\x4d\x01\x02\x03\x04"s,                   // providerPeers as fixed32
      "\x08\x04\x52\x01\x07"s,                           // clusterLevelRaw as length-delimited
      "\x08\x04"s + length_delimited(0x42, "\x08\x01"s),           // peer id as varint
      "\x08\x04"s + length_delimited(0x42, peer_ok + "\x10\x01"s), // peer addr as varint
      "\x08\x04"s + length_delimited(0x42, peer_ok + "\x1a\x01\x01"s),  // connection as bytes
      "\x08\x04"s + length_delimited(0x1a, "\x08\x01"s),           // record key as varint
      "\x08\x04"s + length_delimited(0x1a, "\x15\x01\x02\x03\x04"s),  // record value as fixed32
      "\x08\x04"s + length_delimited(0x1a, "\x28\x01"s),           // timeReceived as varint
  };
  for (const auto& in : bad) {
    auto m = KadMessage::decode(in);
    EXPECT_FALSE(m.ok()) << to_hex(in);
    if (!m.ok()) {
      EXPECT_TRUE(contains(m.error().message, "wire type")) << m.error().message;
    }
  }
}

TEST(KadMessage, MalformedProtobufRejected) {
  const std::vector<Bytes> bad = {
      "\x08"s,                                  // key without value
      "\x08\x80"s,                              // truncated varint
      "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s,  // varint longer than 10 bytes
      "\x00\x01"s,                              // field number 0
      "\x0b\x0c"s,                              // group wire types
      "\x0e\x00"s,                              // wire type 6
      "\x12\x05key"s,                           // length past the end
      "\x12\x81\x80\x80\x80\x10k"s,             // length 2^32 + 1: protozero would read 1
      "\x80\x80\x80\x80\x80\x02\x00"s,          // key varint above 2^32
      "\x08\x04"s + length_delimited(0x42, "\x0a\x05P"s),  // nested length past its end
  };
  for (const auto& in : bad) EXPECT_FALSE(KadMessage::decode(in).ok()) << to_hex(in);
}

TEST(KadMessage, EveryTruncationOfFullVectorFailsOrStopsAtAFieldBoundary) {
  // Top-level field boundaries of kFullVector: a prefix ending there is itself a valid message.
  const std::vector<size_t> boundaries = {0, 2, 7, 25, 40, 46, 54, 56};
  ASSERT_EQ(kFullVector.size(), 56u);
  for (size_t n = 0; n <= kFullVector.size(); ++n) {
    auto m = KadMessage::decode(BytesView(kFullVector).substr(0, n));
    const bool boundary = std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    EXPECT_EQ(m.ok(), boundary) << "prefix " << n;
  }
}

TEST(KadMessage, SizeCapsAreExact) {
  // Key.
  {
    KadMessage m;
    m.type = KadMessageType::GetValue;
    m.key = Bytes(kMaxKadKeySize, 'k');
    EXPECT_TRUE(KadMessage::decode(m.encode()).ok());
    m.key.push_back('k');
    auto r = KadMessage::decode(m.encode());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "key")) << r.error().message;
  }
  // Record key and value.
  {
    KadMessage m;
    m.type = KadMessageType::PutValue;
    m.record = KadRecord{Bytes(kMaxKadKeySize, 'k'), Bytes(kMaxKadRecordValueSize, 'v'), ""};
    EXPECT_TRUE(KadMessage::decode(m.encode()).ok());
    m.record->value.push_back('v');
    auto r = KadMessage::decode(m.encode());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "record value")) << r.error().message;
    m.record->value.pop_back();
    m.record->key.push_back('k');
    EXPECT_FALSE(KadMessage::decode(m.encode()).ok());
  }
  // Peer id, address size and count.
  {
    KadMessage m;
    m.type = KadMessageType::FindNode;
    m.closer_peers.push_back(KadPeer{Bytes(kMaxKadPeerIdSize, 'p'), {}, KadConnectionType::NotConnected});
    for (size_t i = 0; i < kMaxKadAddrsPerPeer; ++i) m.closer_peers[0].addrs.push_back(Bytes(kMaxKadAddrSize, 'a'));
    EXPECT_TRUE(KadMessage::decode(m.encode()).ok());

    KadMessage long_id = m;
    long_id.closer_peers[0].id.push_back('p');
    EXPECT_FALSE(KadMessage::decode(long_id.encode()).ok());
    KadMessage long_addr = m;
    long_addr.closer_peers[0].addrs[0].push_back('a');
    EXPECT_FALSE(KadMessage::decode(long_addr.encode()).ok());
    KadMessage many_addrs = m;
    many_addrs.closer_peers[0].addrs.push_back("a");
    auto r = KadMessage::decode(many_addrs.encode());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "addrs")) << r.error().message;
  }
  // Peers per list.
  for (bool closer : {true, false}) {
    KadMessage m;
    m.type = KadMessageType::GetProviders;
    auto& list = closer ? m.closer_peers : m.provider_peers;
    list.assign(kMaxKadPeersPerMessage, KadPeer{"P", {"\x04\x01\x02\x03\x04"s}, KadConnectionType::Connected});
    EXPECT_TRUE(KadMessage::decode(m.encode()).ok());
    list.push_back(list.front());
    auto r = KadMessage::decode(m.encode());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, closer ? "closerPeers" : "providerPeers")) << r.error().message;
  }
  // Whole message.
  {
    Bytes big = "\x08\x05"s + "\xa2\x06"s;  // field 100 (unknown, else skipped) filling the cap
    const size_t payload = kMaxKadMessageSize - big.size() - 3;
    big += frame_uvarint(Bytes(payload, 'x'));
    ASSERT_EQ(big.size(), kMaxKadMessageSize);
    EXPECT_TRUE(KadMessage::decode(big).ok());
    big.push_back('\x08');
    big.push_back('\x05');
    auto r = KadMessage::decode(big);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "message")) << r.error().message;
  }
}

TEST(KadMessage, OverlongTimeReceivedRejected) {
  KadMessage m;
  m.type = KadMessageType::PutValue;
  m.record = KadRecord{"k", "v", std::string(129, 't')};
  EXPECT_FALSE(KadMessage::decode(m.encode()).ok());
  m.record->time_received.resize(128);
  EXPECT_TRUE(KadMessage::decode(m.encode()).ok());
}

TEST(KadMessage, RandomRoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    const KadMessage m = random_message(rng);
    const Bytes wire = m.encode();
    auto back = KadMessage::decode(wire);
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(*back, m);
    ASSERT_EQ(back->encode(), wire);  // canonical
  }
}

TEST(KadMessage, FramedIsLengthPrefixed) {
  const KadMessage m = full_message();
  UvarintFrameReader reader(kMaxKadMessageSize);
  std::vector<Bytes> frames;
  ASSERT_TRUE(reader.feed_all(m.encode_framed(), frames).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], m.encode());
}

TEST(KadMessage, TypeNames) {
  EXPECT_STREQ(to_string(KadMessageType::PutValue), "PUT_VALUE");
  EXPECT_STREQ(to_string(KadMessageType::FindNode), "FIND_NODE");
  EXPECT_STREQ(to_string(KadMessageType::Ping), "PING");
}
