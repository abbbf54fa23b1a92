// AutoNAT v1 messages: bytes as the spec's schema gives them, round trips, and every cap.
#include "autonat/autonat_message.hpp"

#include "punchgate/crypto/identity.hpp"
#include "punchgate/wire/length_prefix.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr ma(const std::string& text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m) << text;
  return m ? *m : Multiaddr{};
}

// One length-delimited field: key byte, varint length, payload.
Bytes field(uint8_t key, const Bytes& payload) {
  Bytes out(1, static_cast<char>(key));
  size_t n = payload.size();
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  return out + payload;
}

TEST(AutonatMessage, DialBytesAsTheSchemaGivesThem) {
  PeerId peer = Identity::generate().peer_id();
  Multiaddr a = ma("/ip4/203.0.113.5/udp/4001/quic-v1");
  AutonatMessage m = AutonatMessage::dial_request(peer, {a});
  Bytes peer_info = field(0x0a, peer.bytes()) + field(0x12, a.to_bytes());  // id = 1, addrs = 2
  Bytes dial = field(0x0a, peer_info);                                      // Dial.peer = 1
  Bytes want = Bytes("\x08\x00", 2) + field(0x12, dial);                   // type = DIAL, dial = 2
  EXPECT_EQ(m.encode(), want);
  EXPECT_EQ(m.encode_framed(), frame_uvarint(want));
  auto back = AutonatMessage::decode(want);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, m);
  ASSERT_TRUE(back->dial && back->dial->peer && back->dial->peer->id);
  EXPECT_EQ(*back->dial->peer->id, peer.bytes());
  ASSERT_EQ(back->dial->peer->addrs.size(), 1u);
  EXPECT_EQ(back->dial->peer->addrs[0], a.to_bytes());
}

TEST(AutonatMessage, ResponseBytesAsTheSchemaGivesThem) {
  Multiaddr a = ma("/ip4/203.0.113.5/udp/4001/quic-v1");
  AutonatMessage ok = AutonatMessage::response(AutonatStatus::Ok, "fine", a);
  Bytes resp = Bytes("\x08\x00", 2) + field(0x12, "fine") + field(0x1a, a.to_bytes());
  EXPECT_EQ(ok.encode(), Bytes("\x08\x01", 2) + field(0x1a, resp));  // type = DIAL_RESPONSE, dialResponse = 3
  AutonatMessage err = AutonatMessage::response(AutonatStatus::DialError, "");
  // 100 is one varint byte (0x64); 300 takes two (0xac 0x02).
  EXPECT_EQ(err.encode(), Bytes("\x08\x01", 2) + field(0x1a, Bytes("\x08\x64\x12\x00", 4)));
  AutonatMessage internal = AutonatMessage::response(AutonatStatus::InternalError, "x");
  EXPECT_EQ(internal.encode(), Bytes("\x08\x01", 2) + field(0x1a, Bytes("\x08\xac\x02\x12\x01x", 6)));
  for (const AutonatMessage& m : {ok, err, internal}) {
    auto back = AutonatMessage::decode(m.encode());
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, m);
  }
}

TEST(AutonatMessage, StatusNamesAsTheSpecSpellsThem) {
  EXPECT_STREQ(to_string(AutonatStatus::Ok), "OK");
  EXPECT_STREQ(to_string(AutonatStatus::DialError), "E_DIAL_ERROR");
  EXPECT_STREQ(to_string(AutonatStatus::DialRefused), "E_DIAL_REFUSED");
  EXPECT_STREQ(to_string(AutonatStatus::BadRequest), "E_BAD_REQUEST");
  EXPECT_STREQ(to_string(AutonatStatus::InternalError), "E_INTERNAL_ERROR");
  EXPECT_STREQ(to_string(AutonatType::Dial), "DIAL");
  EXPECT_STREQ(to_string(AutonatType::DialResponse), "DIAL_RESPONSE");
}

TEST(AutonatMessage, AbsentFieldsStayAbsent) {
  auto empty = AutonatMessage::decode("");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->type);
  EXPECT_FALSE(empty->dial);
  EXPECT_FALSE(empty->dial_response);
  auto bare_dial = AutonatMessage::decode(Bytes("\x08\x00\x12\x00", 4));
  ASSERT_TRUE(bare_dial);
  ASSERT_TRUE(bare_dial->dial);
  EXPECT_FALSE(bare_dial->dial->peer);
  auto bare_resp = AutonatMessage::decode(Bytes("\x1a\x00", 2));
  ASSERT_TRUE(bare_resp);
  ASSERT_TRUE(bare_resp->dial_response);
  EXPECT_FALSE(bare_resp->dial_response->status);
  EXPECT_FALSE(bare_resp->dial_response->addr);
  EXPECT_EQ(AutonatMessage::decode(bare_resp->encode()).value(), *bare_resp);
}

TEST(AutonatMessage, UnknownFieldsAreSkipped) {
  // field 9 varint, field 10 bytes, field 11 fixed32, field 12 fixed64 around a DIAL_RESPONSE type
  Bytes in = Bytes("\x48\x07", 2) + field(0x52, "zz") + Bytes("\x5d\x01\x02\x03\x04", 5) +
             Bytes("\x61\x01\x02\x03\x04\x05\x06\x07\x08", 9) + Bytes("\x08\x01", 2);
  auto m = AutonatMessage::decode(in);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->type, AutonatType::DialResponse);
  // Unknown fields inside the sub-messages too.
  Bytes resp = Bytes("\x20\x05", 2) + Bytes("\x08\x65", 2);  // field 4 varint, status 101
  auto r = AutonatMessage::decode(field(0x1a, resp));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->dial_response->status, AutonatStatus::DialRefused);
}

TEST(AutonatMessage, RepeatedSubMessagesMerge) {
  Multiaddr a = ma("/ip4/203.0.113.5/udp/4001/quic-v1");
  Multiaddr b = ma("/ip4/203.0.113.5/udp/4002/quic-v1");
  Bytes dial_a = field(0x0a, field(0x12, a.to_bytes()));
  Bytes dial_b = field(0x0a, field(0x0a, "id") + field(0x12, b.to_bytes()));
  auto m = AutonatMessage::decode(field(0x12, dial_a) + field(0x12, dial_b));
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_TRUE(m->dial && m->dial->peer);
  EXPECT_EQ(m->dial->peer->id, Bytes("id"));
  ASSERT_EQ(m->dial->peer->addrs.size(), 2u);
  EXPECT_EQ(m->dial->peer->addrs[1], b.to_bytes());
  // The address cap holds across the merged pieces.
  Bytes half;
  for (size_t i = 0; i < kMaxAutonatAddrs / 2 + 1; ++i) half += field(0x12, a.to_bytes());
  ASSERT_GT(half.size(), 127u);  // two-byte lengths
  Bytes dial17 = field(0x12, field(0x0a, half));
  auto over = AutonatMessage::decode(dial17 + dial17);
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("more than"), std::string::npos) << over.error().message;
  EXPECT_TRUE(AutonatMessage::decode(dial17));
}

TEST(AutonatMessage, RejectsWhatItCannotTrust) {
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x08\x02", 2)));                      // unknown type
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x08\xff\xff\xff\xff\x0f", 6)));      // type 2^32-1
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)));  // type -1
  EXPECT_FALSE(AutonatMessage::decode(field(0x1a, Bytes("\x08\x66", 2))));        // unknown status 102
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x08\x80", 2)));                      // truncated varint
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x12\x05\x0a", 3)));                  // dial runs past the end
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x0a\x01\x00", 3)));                  // type with the bytes wire type
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x10\x01", 2)));                      // dial as a varint
  EXPECT_FALSE(AutonatMessage::decode(field(0x12, Bytes("\x08\x01", 2))));        // dial.peer as a varint
  EXPECT_FALSE(AutonatMessage::decode(Bytes(kMaxAutonatMessageSize + 1, '\0')));  // over the size cap
  // Key of 2^32 + (2 << 3 | 2): protozero would read field 2.
  EXPECT_FALSE(AutonatMessage::decode(Bytes("\x92\x80\x80\x80\x10\x00", 6)));
}

TEST(AutonatMessage, CapsEveryLength) {
  PeerId peer = Identity::generate().peer_id();
  std::vector<Multiaddr> many(kMaxAutonatAddrs + 5, ma("/ip4/203.0.113.5/udp/4001/quic-v1"));
  AutonatMessage m = AutonatMessage::dial_request(peer, many);
  EXPECT_EQ(m.dial->peer->addrs.size(), kMaxAutonatAddrs);  // we never send more than we accept
  ASSERT_TRUE(AutonatMessage::decode(m.encode()));
  m.dial->peer->addrs.push_back(m.dial->peer->addrs[0]);
  auto over = AutonatMessage::decode(m.encode());
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("more than 32 addrs"), std::string::npos) << over.error().message;

  AutonatMessage long_addr = AutonatMessage::dial_request(peer, {});
  long_addr.dial->peer->addrs.push_back(Bytes(kMaxMultiaddrBytes + 1, 'a'));
  EXPECT_FALSE(AutonatMessage::decode(long_addr.encode()));
  AutonatMessage long_id = AutonatMessage::dial_request(peer, {});
  long_id.dial->peer->id = Bytes(kMaxAutonatPeerIdSize + 1, 'i');
  EXPECT_FALSE(AutonatMessage::decode(long_id.encode()));
  long_id.dial->peer->id = Bytes(kMaxAutonatPeerIdSize, 'i');
  EXPECT_TRUE(AutonatMessage::decode(long_id.encode()));

  AutonatMessage text = AutonatMessage::response(AutonatStatus::DialError, std::string(2000, 't'));
  EXPECT_EQ(text.dial_response->status_text->size(), kMaxAutonatStatusTextSize);  // cut when built
  EXPECT_TRUE(AutonatMessage::decode(text.encode()));
  text.dial_response->status_text->push_back('t');
  EXPECT_FALSE(AutonatMessage::decode(text.encode()));
  AutonatMessage addr = AutonatMessage::response(AutonatStatus::Ok, "");
  addr.dial_response->addr = Bytes(kMaxMultiaddrBytes + 1, 'a');
  EXPECT_FALSE(AutonatMessage::decode(addr.encode()));
}

}  // namespace
}  // namespace punchgate
