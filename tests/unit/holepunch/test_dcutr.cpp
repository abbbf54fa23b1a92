// DCUtR: HolePunch message bytes, and the CONNECT / CONNECT / SYNC exchange with RTT timing,
// retries and the address filter.
#include "holepunch/dcutr_exchange.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr ma(const std::string& text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m) << text;
  return m ? *m : Multiaddr{};
}

TEST(DcutrMessage, BytesAsTheSpecSchemaGivesThem) {
  DcutrMessage connect{DcutrType::Connect, {ma("/ip4/1.2.3.4/udp/4001/quic-v1").to_bytes()}};
  Bytes addr = ma("/ip4/1.2.3.4/udp/4001/quic-v1").to_bytes();
  Bytes want = Bytes("\x08\x64\x12", 3) + static_cast<char>(addr.size()) + addr;  // type=100, ObsAddrs
  EXPECT_EQ(connect.encode(), want);
  DcutrMessage sync{DcutrType::Sync, {}};
  EXPECT_EQ(sync.encode(), Bytes("\x08\xac\x02", 3));  // 300 as a varint
  EXPECT_EQ(sync.encode_framed(), Bytes("\x03\x08\xac\x02", 4));
  auto back = DcutrMessage::decode(connect.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, connect);
}

TEST(DcutrMessage, RejectsWhatItCannotTrust) {
  EXPECT_FALSE(DcutrMessage::decode(Bytes("\x12\x00", 2)));  // no type
  EXPECT_FALSE(DcutrMessage::decode(Bytes("\x08\x01", 2)));  // unknown type
  EXPECT_FALSE(DcutrMessage::decode(Bytes("\x08\xac", 2)));  // truncated varint
  EXPECT_FALSE(DcutrMessage::decode(Bytes("\x08\x64\x12\x05\x01", 5)));  // addr runs past the end
  DcutrMessage many{DcutrType::Connect, std::vector<Bytes>(kMaxDcutrAddrs + 1, Bytes("\x04\x01\x02\x03\x04", 5))};
  auto r = DcutrMessage::decode(many.encode());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than"), std::string::npos);
  EXPECT_FALSE(DcutrMessage::decode(Bytes(kMaxDcutrMessageSize + 1, '\0')));
  // Unknown fields are skipped.
  auto extra = DcutrMessage::decode(Bytes("\x08\xac\x02\x18\x07", 5));
  ASSERT_TRUE(extra);
  EXPECT_EQ(extra->type, DcutrType::Sync);
}

TEST(Dcutr, DialableKeepsDirectQuicAddressesOnce) {
  PeerId r = Identity::generate().peer_id(), b = Identity::generate().peer_id();
  std::vector<Bytes> raw = {
      ma("/ip4/10.0.0.1/udp/4001/quic-v1").to_bytes(),
      ma("/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + b.to_base58()).to_bytes(),  // same, with its id
      ma("/ip4/10.0.0.1/tcp/4001").to_bytes(),                                 // not QUIC
      ma("/ip4/10.0.0.9/udp/4001/quic-v1/p2p/" + r.to_base58() + "/p2p-circuit").to_bytes(),
      Bytes("\xff\xff", 2),  // not a multiaddr
      ma("/ip6/2001:db8::1/udp/5/quic-v1").to_bytes(),
      // js-libp2p offers its loopback listen address: for us that is our own host
      ma("/ip4/127.0.0.1/udp/4001/quic-v1").to_bytes(),
      ma("/ip6/::1/udp/4001/quic-v1").to_bytes(),
      ma("/ip4/0.0.0.0/udp/4001/quic-v1").to_bytes(),
  };
  auto got = dcutr_dialable(raw);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], ma("/ip4/10.0.0.1/udp/4001/quic-v1"));
  EXPECT_EQ(got[1], ma("/ip6/2001:db8::1/udp/5/quic-v1"));
}

TEST(Dcutr, ExchangeTimesTheRoundTripAndPlansBothSides) {
  auto a_addr = ma("/ip4/203.0.113.7/udp/1111/quic-v1"), b_addr = ma("/ip4/198.51.100.9/udp/2222/quic-v1");
  DcutrInitiator b({b_addr});
  DcutrResponder a({a_addr});
  Bytes connect = b.connect(1000);
  ASSERT_FALSE(connect.empty());
  EXPECT_EQ(b.attempt(), 1u);
  auto reply = a.feed(connect);
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_FALSE(reply->punch);
  // The reply arrives in two pieces; the second completes it, 80 ms after the CONNECT.
  auto part = b.feed(BytesView(reply->to_send).substr(0, 3), 1050);
  ASSERT_TRUE(part);
  EXPECT_FALSE(part->punch);
  auto sync = b.feed(BytesView(reply->to_send).substr(3), 1080);
  ASSERT_TRUE(sync) << sync.error().message;
  ASSERT_TRUE(sync->punch);
  EXPECT_EQ(sync->punch->rtt_ms, 80u);
  EXPECT_EQ(sync->punch->delay_ms, 40u);
  EXPECT_EQ(sync->punch->remote_addrs, std::vector<Multiaddr>{a_addr});
  EXPECT_EQ(sync->to_send, DcutrMessage{DcutrType::Sync}.encode_framed());
  auto dial = a.feed(sync->to_send);
  ASSERT_TRUE(dial);
  ASSERT_TRUE(dial->punch);
  EXPECT_EQ(dial->punch->remote_addrs, std::vector<Multiaddr>{b_addr});
  EXPECT_EQ(dial->punch->delay_ms, 0u);
  EXPECT_TRUE(dial->to_send.empty());
}

TEST(Dcutr, ThreeAttemptsOnTheSameStreamThenNoMore) {
  auto a_addr = ma("/ip4/203.0.113.7/udp/1111/quic-v1"), b_addr = ma("/ip4/198.51.100.9/udp/2222/quic-v1");
  DcutrInitiator b({b_addr});
  DcutrResponder a({a_addr});
  for (size_t i = 1; i <= DcutrInitiator::kMaxAttempts; ++i) {
    ASSERT_TRUE(b.can_retry() || i == 1);
    Bytes c = b.connect(i * 1000);
    ASSERT_FALSE(c.empty()) << "attempt " << i;
    auto r = a.feed(c);
    ASSERT_TRUE(r);
    auto s = b.feed(r->to_send, i * 1000 + 10 * i);
    ASSERT_TRUE(s && s->punch);
    EXPECT_EQ(s->punch->attempt, i);
    EXPECT_EQ(s->punch->rtt_ms, 10 * i);
    auto d = a.feed(s->to_send);
    ASSERT_TRUE(d && d->punch);
    EXPECT_EQ(d->punch->attempt, i);
  }
  EXPECT_FALSE(b.can_retry());
  EXPECT_TRUE(b.connect(9000).empty());
}

// go-libp2p and js-libp2p answer one exchange per stream: each attempt on a fresh responder,
// after new_stream(). A CONNECT lost with its stream is not an attempt; half a frame is dropped.
TEST(Dcutr, AttemptsOnNewStreamsCountOnlyAnsweredConnects) {
  auto a_addr = ma("/ip4/203.0.113.7/udp/1111/quic-v1"), b_addr = ma("/ip4/198.51.100.9/udp/2222/quic-v1");
  DcutrInitiator b({b_addr});
  {
    DcutrResponder a({a_addr});
    auto r = a.feed(b.connect(0));
    ASSERT_TRUE(r);
    auto s = b.feed(r->to_send, 10);
    ASSERT_TRUE(s && s->punch);
    EXPECT_EQ(s->punch->attempt, 1u);
  }
  // Attempt 2's CONNECT goes out as the peer ends the stream, and a partial frame was in.
  ASSERT_FALSE(b.connect(5000).empty());
  EXPECT_EQ(b.attempt(), 2u);
  ASSERT_TRUE(b.feed(BytesView("\x40\x08", 2), 5001));
  b.new_stream();
  EXPECT_EQ(b.attempt(), 1u);
  EXPECT_TRUE(b.can_retry());
  for (size_t i = 2; i <= DcutrInitiator::kMaxAttempts; ++i) {
    DcutrResponder a({a_addr});  // a new stream: the responder's first exchange
    auto r = a.feed(b.connect(i * 10000));
    ASSERT_TRUE(r);
    auto s = b.feed(r->to_send, i * 10000 + 7);
    ASSERT_TRUE(s && s->punch) << (s ? "no punch" : s.error().message);
    EXPECT_EQ(s->punch->attempt, i);
    EXPECT_EQ(s->punch->rtt_ms, 7u);
    b.new_stream();  // answered: still counts
    EXPECT_EQ(b.attempt(), i);
  }
  EXPECT_FALSE(b.can_retry());
  EXPECT_TRUE(b.connect(99000).empty());
}

TEST(Dcutr, ProtocolViolationsFail) {
  auto addr = ma("/ip4/203.0.113.7/udp/1111/quic-v1");
  DcutrResponder a({addr});
  EXPECT_FALSE(a.feed(DcutrMessage{DcutrType::Sync}.encode_framed()));  // SYNC before CONNECT
  EXPECT_FALSE(a.feed(DcutrMessage{DcutrType::Connect, {addr.to_bytes()}}.encode_framed()));  // failed for good

  DcutrResponder a2({addr});
  EXPECT_FALSE(a2.feed(DcutrMessage{DcutrType::Connect, {ma("/ip4/1.2.3.4/tcp/1").to_bytes()}}.encode_framed()));

  DcutrInitiator b({addr});
  EXPECT_FALSE(b.feed(DcutrMessage{DcutrType::Connect, {addr.to_bytes()}}.encode_framed(), 0));  // out of turn
  DcutrInitiator b2({addr});
  b2.connect(0);
  EXPECT_FALSE(b2.feed(DcutrMessage{DcutrType::Sync}.encode_framed(), 5));  // SYNC is not an answer
  EXPECT_TRUE(b2.connect(10).empty());

  DcutrResponder a3({addr});
  Bytes two = DcutrMessage{DcutrType::Connect, {addr.to_bytes()}}.encode_framed();
  two += two;
  EXPECT_FALSE(a3.feed(two));  // a second message without waiting for ours
}

}  // namespace
}  // namespace punchgate
