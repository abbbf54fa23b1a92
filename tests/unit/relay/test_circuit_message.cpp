#include "relay/circuit_message.hpp"
#include "relay/reservation_voucher.hpp"

#include "crypto/signed_envelope.hpp"
#include "punchgate/crypto/identity.hpp"
#include "punchgate/wire/length_prefix.hpp"
#include "punchgate/wire/multiaddr.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
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

// ---- Hand-built vectors (from the proto definitions in relay/circuit-v2.md) -------------------

// HopMessage{type = RESERVE}: field 1 varint -> key 0x08, value 0.
const Bytes kReserveVector = "\x08\x00"s;

// /ip4/1.2.3.4/udp/4001/quic-v1: 04 01020304 | 91 02 (udp 0x0111) 0f a1 (4001) | cd 03 (0x01cd).
const Bytes kAddr = "\x04\x01\x02\x03\x04\x91\x02\x0f\xa1\xcd\x03"s;

// HopMessage answering a RESERVE, with every field the spec lists:
const Bytes kReservedVector =
    "\x08\x02"s                         // 1 type = STATUS
    "\x1a\x16"                          // 3 reservation, 22 bytes:
    "\x08\x80\xe2\xcf\xaa\x06"          //   1 expire = 1700000000 (uvarint)
    "\x12\x0b" + kAddr +                //   2 addrs, 11 bytes
    "\x1a\x01" "V"                      //   3 voucher (opaque here)
    "\x22\x06"                          // 4 limit, 6 bytes:
    "\x08\x78"                          //   1 duration = 120
    "\x10\x80\x80\x08"                  //   2 data = 131072
    "\x28\x64"s;                        // 5 status = OK (100)

HopMessage reserved_message() {
  HopMessage m;
  m.type = HopMessageType::StatusReply;
  m.reservation = CircuitReservation{1700000000, {kAddr}, Bytes("V")};
  m.limit = CircuitLimit{120, 131072};
  m.status = CircuitStatus::Ok;
  return m;
}

// ---- A transcript written by js-libp2p (@libp2p/circuit-relay-v2 4.2.13, @libp2p/peer-record) --
// Relay key: Ed25519 seed 32 x 0x07; reserving peer: seed 32 x 0x09. Produced with the package's
// own protobuf codecs and RecordEnvelope.seal(ReservationVoucherRecord, relayKey), exactly as its
// relay server builds a reservation (server/index.js makeReservation).
constexpr std::string_view kRelayPub = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
constexpr std::string_view kPeerPub = "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618";
constexpr std::string_view kRelayPeerIdText = "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7";
constexpr std::string_view kPeerPeerIdText = "12D3KooWSrKnMZUcSxK8G7wmBbXdU8nFEfWGhLu6H8xjn8LmCSJb";
// /ip4/1.2.3.4/udp/4001/quic-v1/p2p/<relay>
constexpr std::string_view kJsAddr =
    "040102030491020fa1cd03a50326002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
// Voucher{relay, peer, expiration = 1700000000}
constexpr std::string_view kJsVoucherPayload =
    "0a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    "1226002408011220fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
    "1880e2cfaa06";
// Envelope{public_key, payload_type = 03 02, payload = voucher, signature (field 5)}
constexpr std::string_view kJsVoucherEnvelope =
    "0a2408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    "12020302"
    "1a56"
    "0a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    "1226002408011220fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
    "1880e2cfaa06"
    "2a40864f06c23829aa30fabafaef5c4d0a4ba0f58f87b20b58eb5520df43bbb442a55dec536da71d5db7cf0e7d7843"
    "4ef847b9d39d8cf50292c90a818295fb328b02";
// HopMessage{STATUS, reservation{expire, [kJsAddr], voucher = kJsVoucherEnvelope},
//            limit{120 s, 128 KiB}, status OK}
constexpr std::string_view kJsHopReserved =
    "0802"
    "1a8302"
    "0880e2cfaa06"
    "1234040102030491020fa1cd03a50326002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
    "1ac4010a2408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c120203021a560a26002408011220"
    "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c1226002408011220fd1724385aa0c75b64fb78cd602fa1"
    "d991fdebf76b13c58ed702eac835e9f6181880e2cfaa062a40864f06c23829aa30fabafaef5c4d0a4ba0f58f87b20b58eb5520df43bbb4"
    "42a55dec536da71d5db7cf0e7d78434ef847b9d39d8cf50292c90a818295fb328b02"
    "2206087810808008"
    "2864";
constexpr std::string_view kJsHopReserve = "0800";
constexpr std::string_view kJsHopConnect =
    "080112280a26002408011220fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618";
constexpr std::string_view kJsHopRefused = "080228c801";  // STATUS, RESERVATION_REFUSED (200)
constexpr std::string_view kJsStopConnect =
    "080012280a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c1a06087810808008";
constexpr std::string_view kJsStopFailed = "080120cb01";  // STATUS, CONNECTION_FAILED (203)

Identity identity_from_seed(char seed_byte, std::string_view pub_hex) {
  auto id = Identity::from_protobuf("\x08\x01\x12\x40"s + Bytes(32, seed_byte) + hex(pub_hex));
  EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.error().message);
  return std::move(id).value();
}

PeerId peer_id(std::string_view text) {
  auto p = PeerId::parse(text);
  EXPECT_TRUE(p.ok());
  return p.ok() ? *p : PeerId();
}

// ---- HopMessage / StopMessage ----------------------------------------------------------------

TEST(CircuitMessage, ReserveEncodesByteExact) {
  HopMessage m;
  m.type = HopMessageType::Reserve;
  EXPECT_EQ(m.encode(), kReserveVector);
  EXPECT_EQ(m.encode_framed(), "\x02"s + kReserveVector);
  auto d = HopMessage::decode(kReserveVector);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, m);
}

TEST(CircuitMessage, EmptyMessageIsReserveAsGoWritesIt) {
  // go-libp2p's proto3 HopMessage omits type = RESERVE (0): the frame is empty.
  auto d = HopMessage::decode("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type, HopMessageType::Reserve);
  EXPECT_FALSE(d->peer || d->reservation || d->limit || d->status);
  auto s = StopMessage::decode("");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->type, StopMessageType::Connect);
}

TEST(CircuitMessage, ReservationResponseByteExact) {
  EXPECT_EQ(reserved_message().encode(), kReservedVector);
  auto d = HopMessage::decode(kReservedVector);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, reserved_message());
  ASSERT_TRUE(d->reservation);
  EXPECT_EQ(d->reservation->expire, 1700000000u);
  auto addr = Multiaddr::from_bytes(d->reservation->addrs.at(0));
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->to_string(), "/ip4/1.2.3.4/udp/4001/quic-v1");
}

TEST(CircuitMessage, JsLibp2pReservationTranscript) {
  const Bytes wire = hex(kJsHopReserved);
  auto d = HopMessage::decode(wire);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->type, HopMessageType::StatusReply);
  EXPECT_EQ(d->status, CircuitStatus::Ok);
  EXPECT_FALSE(d->peer);
  ASSERT_TRUE(d->reservation);
  EXPECT_EQ(d->reservation->expire, 1700000000u);
  ASSERT_EQ(d->reservation->addrs.size(), 1u);
  EXPECT_EQ(d->reservation->addrs[0], hex(kJsAddr));
  auto addr = Multiaddr::from_bytes(d->reservation->addrs[0]);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr->to_string(), "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/"s + std::string(kRelayPeerIdText));
  ASSERT_TRUE(d->reservation->voucher);
  EXPECT_EQ(*d->reservation->voucher, hex(kJsVoucherEnvelope));
  ASSERT_TRUE(d->limit);
  EXPECT_EQ(d->limit->duration, 120u);
  EXPECT_EQ(d->limit->data, 131072u);
  // Our encoder writes the same bytes js-libp2p did.
  EXPECT_EQ(d->encode(), wire);

  auto v = verify_voucher(*d->reservation->voucher, peer_id(kRelayPeerIdText));
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->relay, peer_id(kRelayPeerIdText));
  EXPECT_EQ(v->peer, peer_id(kPeerPeerIdText));
  EXPECT_EQ(v->expiration, 1700000000u);
}

TEST(CircuitMessage, JsLibp2pOtherMessagesByteExact) {
  for (auto h : {kJsHopReserve, kJsHopConnect, kJsHopRefused}) {
    auto d = HopMessage::decode(hex(h));
    ASSERT_TRUE(d.ok()) << h;
    EXPECT_EQ(d->encode(), hex(h));
  }
  for (auto h : {kJsStopConnect, kJsStopFailed}) {
    auto d = StopMessage::decode(hex(h));
    ASSERT_TRUE(d.ok()) << h;
    EXPECT_EQ(d->encode(), hex(h));
  }
  auto connect = HopMessage::decode(hex(kJsHopConnect));
  EXPECT_EQ(connect->type, HopMessageType::Connect);
  ASSERT_TRUE(connect->peer);
  EXPECT_EQ(connect->peer->id, peer_id(kPeerPeerIdText).bytes());
  EXPECT_TRUE(connect->peer->addrs.empty());
  EXPECT_EQ(HopMessage::decode(hex(kJsHopRefused))->status, CircuitStatus::ReservationRefused);

  StopMessage stop;
  stop.type = StopMessageType::Connect;
  stop.peer = CircuitPeer{peer_id(kRelayPeerIdText).bytes(), {}};
  stop.limit = CircuitLimit{120, 131072};
  EXPECT_EQ(stop.encode(), hex(kJsStopConnect));
  StopMessage failed{StopMessageType::StatusReply, std::nullopt, std::nullopt, CircuitStatus::ConnectionFailed};
  EXPECT_EQ(failed.encode(), hex(kJsStopFailed));
}

TEST(CircuitMessage, StatusValuesAreProtoEnumNumbers) {
  const std::pair<CircuitStatus, std::pair<Bytes, const char*>> table[] = {
      {CircuitStatus::Ok, {"\x28\x64"s, "OK"}},
      {CircuitStatus::ReservationRefused, {"\x28\xc8\x01"s, "RESERVATION_REFUSED"}},
      {CircuitStatus::ResourceLimitExceeded, {"\x28\xc9\x01"s, "RESOURCE_LIMIT_EXCEEDED"}},
      {CircuitStatus::PermissionDenied, {"\x28\xca\x01"s, "PERMISSION_DENIED"}},
      {CircuitStatus::ConnectionFailed, {"\x28\xcb\x01"s, "CONNECTION_FAILED"}},
      {CircuitStatus::NoReservation, {"\x28\xcc\x01"s, "NO_RESERVATION"}},
      {CircuitStatus::MalformedMessage, {"\x28\x90\x03"s, "MALFORMED_MESSAGE"}},
      {CircuitStatus::UnexpectedMessage, {"\x28\x91\x03"s, "UNEXPECTED_MESSAGE"}},
  };
  for (const auto& [status, expect] : table) {
    HopMessage m{HopMessageType::StatusReply, std::nullopt, std::nullopt, std::nullopt, status};
    EXPECT_EQ(m.encode(), "\x08\x02"s + expect.first) << expect.second;
    EXPECT_EQ(to_string(status), expect.second);
    auto d = HopMessage::decode(m.encode());
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->status, status);
    // StopMessage carries status in field 4 (key 0x20).
    StopMessage s{StopMessageType::StatusReply, std::nullopt, std::nullopt, status};
    EXPECT_EQ(s.encode(), "\x08\x01\x20"s + expect.first.substr(1)) << expect.second;
  }
  EXPECT_EQ(to_string(HopMessageType::StatusReply), std::string("STATUS"));
  EXPECT_EQ(to_string(StopMessageType::Connect), std::string("CONNECT"));
}

TEST(CircuitMessage, UnknownStatusIsKeptNotRejected) {
  auto d = HopMessage::decode("\x08\x02\x28\xcd\x01"s);  // 205
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->status);
  EXPECT_EQ(static_cast<int32_t>(*d->status), 205);
  EXPECT_EQ(to_string(*d->status), "UNKNOWN(205)");
  EXPECT_EQ(d->encode(), "\x08\x02\x28\xcd\x01"s);
  // Negative enums are sign-extended to ten bytes and survive a round trip.
  HopMessage neg{HopMessageType::StatusReply, std::nullopt, std::nullopt, std::nullopt, static_cast<CircuitStatus>(-1)};
  EXPECT_EQ(neg.encode(), "\x08\x02\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
  auto n = HopMessage::decode(neg.encode());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, neg);
}

TEST(CircuitMessage, AbsentIsNotZero) {
  // limit present with duration = 0 and no data field.
  HopMessage m{HopMessageType::StatusReply, std::nullopt, std::nullopt, CircuitLimit{0u, std::nullopt}, std::nullopt};
  EXPECT_EQ(m.encode(), "\x08\x02\x22\x02\x08\x00"s);
  auto d = HopMessage::decode(m.encode());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->limit);
  EXPECT_EQ(d->limit->duration, std::optional<uint32_t>(0));
  EXPECT_FALSE(d->limit->data);
  EXPECT_FALSE(d->status);

  // An empty limit message is "limit present, no fields".
  auto e = HopMessage::decode("\x08\x02\x22\x00"s);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->limit);
  EXPECT_FALSE(e->limit->duration || e->limit->data);
  // No limit field at all.
  auto none = HopMessage::decode("\x08\x02"s);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->limit);

  // An empty voucher is present; a missing one is not.
  CircuitReservation rsv{5, {}, Bytes()};
  HopMessage with_voucher{HopMessageType::StatusReply, std::nullopt, rsv, std::nullopt, CircuitStatus::Ok};
  EXPECT_EQ(with_voucher.encode(), "\x08\x02\x1a\x04\x08\x05\x1a\x00\x28\x64"s);
  auto v = HopMessage::decode(with_voucher.encode());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->reservation->voucher, std::optional<Bytes>(""));
  auto no_voucher = HopMessage::decode("\x08\x02\x1a\x02\x08\x05"s);
  ASSERT_TRUE(no_voucher.ok());
  EXPECT_FALSE(no_voucher->reservation->voucher);
  // go/js omit a zero expire; it reads as 0 (and we always write it, as rust-libp2p requires).
  auto zero_expire = HopMessage::decode("\x08\x02\x1a\x00"s);
  ASSERT_TRUE(zero_expire.ok());
  EXPECT_EQ(zero_expire->reservation->expire, 0u);
  EXPECT_EQ(zero_expire->encode(), "\x08\x02\x1a\x02\x08\x00"s);
}

TEST(CircuitMessage, UnknownFieldsSkippedAndSubMessagesMerge) {
  const Bytes in =
      "\x08\x01"s
      "\x12\x04\x0a\x02" "P1"             // peer {id P1}
      "\x60\x07"                          // field 12 varint: unknown
      "\x12\x05\x12\x03\x04\x01\x02"      // peer {addrs [04 01 02]}  -> merges
      "\x12\x04\x0a\x02" "P2"s;           // peer {id P2}  -> last id wins
  auto d = HopMessage::decode(in);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_TRUE(d->peer);
  EXPECT_EQ(d->peer->id, "P2");
  EXPECT_EQ(d->peer->addrs, std::vector<Bytes>{"\x04\x01\x02"s});
  // HopMessage field 3 (reservation) is unknown in StopMessage, where 3 is limit.
  auto s = StopMessage::decode("\x08\x00\x1a\x02\x08\x05"s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->limit, (CircuitLimit{5u, std::nullopt}));
}

TEST(CircuitMessage, ErrorsNameTheProblem) {
  struct Case {
    Bytes in;
    const char* expect;
  };
  const Case cases[] = {
      {"\x08\x03"s, "unknown type 3"},
      {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s, "unknown type -1"},
      {"\x0a\x00"s, "wire type length-delimited, expected varint"},
      {"\x10\x01"s, "wire type varint, expected length-delimited"},  // peer as varint
      {"\x08\x02\x22\x06\x08\x80\x80\x80\x80\x10"s, "duration 4294967296 does not fit"},
      {"\x08\x02\x28\x80\x80\x80\x80\x08"s, "out of the int32 enum range"},
      {"\x08\x02\x1a\x05\x08"s, "runs past the end"},
      {"\x08\x02\x1a\x01\x08"s, "malformed circuit hop message"},  // expire key, no value
      {"\x12\x03\x0a\x01"s, "runs past the end"},
      {"\x08"s, "malformed"},
  };
  for (const auto& c : cases) {
    auto d = HopMessage::decode(c.in);
    ASSERT_FALSE(d.ok()) << c.expect;
    EXPECT_TRUE(contains(d.error().message, c.expect)) << d.error().message << " / " << c.expect;
  }
  auto st = StopMessage::decode("\x08\x02"s);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(contains(st.error().message, "stop message has unknown type 2")) << st.error().message;
}

TEST(CircuitMessage, Caps) {
  // Message size.
  // An unknown field 15 padding the message to exactly the cap, then one byte more.
  const Bytes at_cap = "\x08\x02\x7a"s + frame_uvarint(Bytes(kMaxCircuitMessageSize - 5, 'x'));
  ASSERT_EQ(at_cap.size(), kMaxCircuitMessageSize);
  EXPECT_TRUE(HopMessage::decode(at_cap).ok());
  const Bytes big = "\x08\x02\x7a"s + frame_uvarint(Bytes(kMaxCircuitMessageSize - 4, 'x'));
  ASSERT_EQ(big.size(), kMaxCircuitMessageSize + 1);
  auto d = HopMessage::decode(big);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "hop message of 4097 bytes exceeds limit of 4096")) << d.error().message;
  EXPECT_FALSE(StopMessage::decode(big).ok());

  // Address count: 32 accepted, 33 rejected.
  CircuitPeer peer{"id", std::vector<Bytes>(kMaxCircuitAddrs, kAddr)};
  HopMessage ok{HopMessageType::Connect, peer, std::nullopt, std::nullopt, std::nullopt};
  EXPECT_TRUE(HopMessage::decode(ok.encode()).ok());
  peer.addrs.push_back(kAddr);
  HopMessage over{HopMessageType::Connect, peer, std::nullopt, std::nullopt, std::nullopt};
  auto o = HopMessage::decode(over.encode());
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(contains(o.error().message, "peer lists more than 32 addrs")) << o.error().message;
  CircuitReservation rsv{1, std::vector<Bytes>(kMaxCircuitAddrs + 1, kAddr), std::nullopt};
  auto r = HopMessage::decode(HopMessage{HopMessageType::StatusReply, std::nullopt, rsv, std::nullopt, std::nullopt}.encode());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "reservation lists more than 32 addrs")) << r.error().message;

  // Address length and peer id length.
  HopMessage long_addr{HopMessageType::Connect, CircuitPeer{"id", {Bytes(kMaxCircuitAddrSize + 1, 'a')}},
                       std::nullopt, std::nullopt, std::nullopt};
  auto la = HopMessage::decode(long_addr.encode());
  ASSERT_FALSE(la.ok());
  EXPECT_TRUE(contains(la.error().message, "addr of 1025 bytes exceeds limit of 1024")) << la.error().message;
  HopMessage long_id{HopMessageType::Connect, CircuitPeer{Bytes(kMaxCircuitPeerIdSize + 1, 'i'), {}}, std::nullopt,
                     std::nullopt, std::nullopt};
  auto li = HopMessage::decode(long_id.encode());
  ASSERT_FALSE(li.ok());
  EXPECT_TRUE(contains(li.error().message, "peer id of 129 bytes")) << li.error().message;
}

// Every prefix of a valid message either fails or is itself a message that round-trips; for the
// js transcript exactly the top-level field boundaries parse.
TEST(CircuitMessage, TruncationsRejectedOrConsistent) {
  const Bytes wire = hex(kJsHopReserved);
  // Boundaries: type (2 bytes), reservation (3 + 259), limit (2 + 6), status (2).
  const std::set<size_t> boundaries = {0, 2, 264, 272};
  ASSERT_EQ(wire.size(), 274u);
  for (size_t n = 0; n < wire.size(); ++n) {
    auto d = HopMessage::decode(BytesView(wire).substr(0, n));
    EXPECT_EQ(d.ok(), boundaries.count(n) == 1) << "prefix " << n;
    if (d.ok()) {
      auto again = HopMessage::decode(d->encode());
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, *d);
    }
  }
  for (auto h : {kJsStopConnect, kJsHopConnect}) {
    const Bytes w = hex(h);
    for (size_t n = 0; n < w.size(); ++n) {
      auto s = StopMessage::decode(BytesView(w).substr(0, n));
      if (s.ok()) {
        EXPECT_EQ(*StopMessage::decode(s->encode()), *s);
      }
    }
  }
  // A full stop CONNECT parses only at its three field boundaries.
  const Bytes stop = hex(kJsStopConnect);
  for (size_t n = 0; n < stop.size(); ++n) {
    EXPECT_EQ(StopMessage::decode(BytesView(stop).substr(0, n)).ok(), n == 0 || n == 2 || n == 44) << n;
  }
}

TEST(CircuitMessage, FramedThroughLengthPrefixReader) {
  UvarintFrameReader reader(kMaxCircuitMessageSize);
  const Bytes framed = HopMessage::decode(hex(kJsHopReserved))->encode_framed();
  EXPECT_EQ(framed.substr(0, 2), "\x92\x02"s);  // 274 as a uvarint
  std::vector<Bytes> frames;
  ASSERT_TRUE(reader.feed_all(framed + reserved_message().encode_framed(), frames).ok());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], hex(kJsHopReserved));
  EXPECT_EQ(*HopMessage::decode(frames[1]), reserved_message());
}

TEST(CircuitMessage, RandomRoundTrips) {
  std::mt19937_64 rng(42);
  auto coin = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto bytes = [&](size_t max) {
    Bytes b(rng() % (max + 1), '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    return b;
  };
  auto limit = [&]() -> std::optional<CircuitLimit> {
    if (coin(2)) return std::nullopt;
    CircuitLimit l;
    if (coin(2)) l.duration = static_cast<uint32_t>(rng());
    if (coin(2)) l.data = rng();
    return l;
  };
  auto peer = [&]() -> std::optional<CircuitPeer> {
    if (coin(2)) return std::nullopt;
    CircuitPeer p{bytes(40), {}};
    for (int i = coin(4); i > 0; --i) p.addrs.push_back(bytes(30));
    return p;
  };
  auto status = [&]() -> std::optional<CircuitStatus> {
    if (coin(2)) return std::nullopt;
    return static_cast<CircuitStatus>(coin(3) ? 100 + coin(302) : static_cast<int32_t>(rng()));
  };
  for (int i = 0; i < 500; ++i) {
    HopMessage h{static_cast<HopMessageType>(coin(3)), peer(), std::nullopt, limit(), status()};
    if (coin(2)) {
      CircuitReservation r{rng(), {}, std::nullopt};
      for (int a = coin(4); a > 0; --a) r.addrs.push_back(bytes(30));
      if (coin(2)) r.voucher = bytes(200);
      h.reservation = r;
    }
    auto hd = HopMessage::decode(h.encode());
    ASSERT_TRUE(hd.ok()) << hd.error().message;
    EXPECT_EQ(*hd, h);
    StopMessage s{static_cast<StopMessageType>(coin(2)), peer(), limit(), status()};
    auto sd = StopMessage::decode(s.encode());
    ASSERT_TRUE(sd.ok()) << sd.error().message;
    EXPECT_EQ(*sd, s);
  }
}

// ---- Reservation vouchers ----------------------------------------------------------------------

TEST(ReservationVoucher, EncodingMatchesJsLibp2p) {
  ReservationVoucher v{peer_id(kRelayPeerIdText), peer_id(kPeerPeerIdText), 1700000000};
  EXPECT_EQ(v.encode(), hex(kJsVoucherPayload));
  auto d = ReservationVoucher::decode(hex(kJsVoucherPayload));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, v);
}

TEST(ReservationVoucher, SignedVoucherMatchesJsLibp2pByteForByte) {
  // Ed25519 signatures are deterministic, so the same key and payload give js-libp2p's envelope.
  const Identity relay = identity_from_seed('\x07', kRelayPub);
  ASSERT_EQ(relay.peer_id(), peer_id(kRelayPeerIdText));
  EXPECT_EQ(make_signed_voucher(relay, peer_id(kPeerPeerIdText), 1700000000), hex(kJsVoucherEnvelope));
}

TEST(ReservationVoucher, RoundTripAndWrongRelay) {
  const Identity relay = Identity::generate();
  const Identity other = Identity::generate();
  const PeerId peer = identity_from_seed('\x09', kPeerPub).peer_id();
  const Bytes env = make_signed_voucher(relay, peer, 1234567890);
  auto v = verify_voucher(env, relay.peer_id());
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->relay, relay.peer_id());
  EXPECT_EQ(v->peer, peer);
  EXPECT_EQ(v->expiration, 1234567890u);

  auto wrong = verify_voucher(env, other.peer_id());
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(contains(wrong.error().message, "expected relay " + other.peer_id().to_base58())) << wrong.error().message;

  // Signed by `other` but naming `relay` as the relay: the signer check fires first; expecting
  // `other` instead, the relay-field check does.
  const ReservationVoucher forged{relay.peer_id(), peer, 1};
  const Bytes forged_env =
      seal_signed_envelope(other, kReservationVoucherDomain, kReservationVoucherPayloadType, forged.encode());
  EXPECT_FALSE(verify_voucher(forged_env, relay.peer_id()).ok());
  auto named = verify_voucher(forged_env, other.peer_id());
  ASSERT_FALSE(named.ok());
  EXPECT_TRUE(contains(named.error().message, "names relay")) << named.error().message;
}

TEST(ReservationVoucher, WrongDomainOrPayloadTypeRejected) {
  const Identity relay = Identity::generate();
  const ReservationVoucher v{relay.peer_id(), relay.peer_id(), 9};
  const Bytes wrong_domain =
      seal_signed_envelope(relay, "libp2p-routing-state", kReservationVoucherPayloadType, v.encode());
  auto d = verify_voucher(wrong_domain, relay.peer_id());
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "does not verify")) << d.error().message;
  // 0x0302 as a uvarint (82 06) is not what go/js write.
  const Bytes uvarint_type = seal_signed_envelope(relay, kReservationVoucherDomain, "\x82\x06"s, v.encode());
  auto t = verify_voucher(uvarint_type, relay.peer_id());
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(contains(t.error().message, "payload type 8206, expected 0302")) << t.error().message;
}

TEST(ReservationVoucher, DecodeErrors) {
  const Bytes relay = peer_id(kRelayPeerIdText).bytes();
  const Bytes both = "\x0a\x26"s + relay + "\x12\x26"s + relay;
  EXPECT_TRUE(ReservationVoucher::decode(both + "\x18\x01"s).ok());
  struct Case {
    Bytes in;
    const char* expect;
  };
  const Case cases[] = {
      {both, "has no expiration"},
      {"\x12\x26"s + relay + "\x18\x01"s, "has no relay"},
      {"\x0a\x26"s + relay + "\x18\x01"s, "has no peer"},
      {"\x0a\x02" "ab"s + "\x12\x26"s + relay + "\x18\x01"s, "reservation voucher relay: invalid peer id"},
      {both + "\x1a\x01\x01"s, "expiration is not a varint"},
      {"\x08\x01"s, "field 1 is not length-delimited"},
      {Bytes(kMaxReservationVoucherSize + 1, '\0'), "exceeds limit of 512"},
  };
  for (const auto& c : cases) {
    auto d = ReservationVoucher::decode(c.in);
    ASSERT_FALSE(d.ok()) << c.expect;
    EXPECT_TRUE(contains(d.error().message, c.expect)) << d.error().message << " / " << c.expect;
  }
  // Every strict prefix of the js voucher payload lacks a field or is cut inside one.
  const Bytes payload = hex(kJsVoucherPayload);
  for (size_t n = 0; n < payload.size(); ++n) EXPECT_FALSE(ReservationVoucher::decode(payload.substr(0, n)).ok()) << n;
  // And every strict prefix of the envelope fails verification.
  const Bytes env = hex(kJsVoucherEnvelope);
  for (size_t n = 0; n < env.size(); ++n) EXPECT_FALSE(verify_voucher(env.substr(0, n), peer_id(kRelayPeerIdText)).ok()) << n;
}

}  // namespace
