#include "punchgate/host/ping.hpp"

#include "punchgate/host/protocol_ids.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <string>

using namespace punchgate;
using namespace std::chrono_literals;

namespace {

// Deterministic "randomness": successive byte values.
struct CountingRandom {
  uint8_t next = 0;
  void operator()(std::span<uint8_t> out) {
    for (auto& b : out) b = next++;
  }
};

Bytes payload_from(uint8_t start) {
  Bytes p(kPingPayloadSize, '\0');
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>(start + i);
  return p;
}

}  // namespace

TEST(PingResponder, EchoesWholePayloads) {
  PingResponder r;
  Bytes p = payload_from(0);
  EXPECT_EQ(r.feed(p), p);
  EXPECT_EQ(r.pending(), 0u);
  Bytes two = payload_from(1) + payload_from(2);
  EXPECT_EQ(r.feed(two), two);
}

TEST(PingResponder, HoldsPartialPayloadsUpTo31Bytes) {
  PingResponder r;
  Bytes p = payload_from(5) + payload_from(9);
  EXPECT_EQ(r.feed(BytesView(p).substr(0, 31)), "");
  EXPECT_EQ(r.pending(), 31u);
  EXPECT_EQ(r.feed(BytesView(p).substr(31, 2)), payload_from(5));  // completes one, starts the next
  EXPECT_EQ(r.pending(), 1u);
  EXPECT_EQ(r.feed(BytesView(p).substr(33)), payload_from(9));
  EXPECT_EQ(r.pending(), 0u);
}

TEST(PingResponder, ByteAtATime) {
  PingResponder r;
  Bytes in = payload_from(40) + payload_from(80);
  Bytes echoed;
  for (char c : in) {
    echoed += r.feed(BytesView(&c, 1));
    EXPECT_LT(r.pending(), kPingPayloadSize);
  }
  EXPECT_EQ(echoed, in);
}

TEST(PingInitiator, MeasuresRtt) {
  PingInitiator p;
  CountingRandom rnd;
  auto t0 = PingInitiator::Clock::time_point{} + 100s;
  Bytes sent = p.next_payload(std::ref(rnd), t0);
  EXPECT_EQ(sent, payload_from(0));
  EXPECT_EQ(p.outstanding(), 1u);
  auto r = p.feed(sent, t0 + 25ms);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], std::chrono::duration_cast<PingInitiator::Clock::duration>(25ms));
  EXPECT_EQ(p.outstanding(), 0u);
}

TEST(PingInitiator, SplitEchoAndPipelining) {
  PingInitiator p;
  CountingRandom rnd;
  auto t0 = PingInitiator::Clock::time_point{};
  Bytes a = p.next_payload(std::ref(rnd), t0);
  Bytes b = p.next_payload(std::ref(rnd), t0 + 1ms);
  EXPECT_NE(a, b);
  Bytes echo = a + b;
  auto r1 = p.feed(BytesView(echo).substr(0, 10), t0 + 5ms);
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->empty());
  auto r2 = p.feed(BytesView(echo).substr(10), t0 + 9ms);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->size(), 2u);
  EXPECT_EQ((*r2)[0], std::chrono::duration_cast<PingInitiator::Clock::duration>(9ms));
  EXPECT_EQ((*r2)[1], std::chrono::duration_cast<PingInitiator::Clock::duration>(8ms));
}

TEST(PingInitiator, MismatchIsAnError) {
  PingInitiator p;
  CountingRandom rnd;
  Bytes sent = p.next_payload(std::ref(rnd), {});
  sent[31] ^= 1;
  auto r = p.feed(sent, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not match"), std::string::npos);
  EXPECT_FALSE(p.feed("", {}).ok());  // stays failed
}

TEST(PingInitiator, UnsolicitedEchoIsAnError) {
  PingInitiator p;
  EXPECT_FALSE(p.feed("x", {}).ok());
  PingInitiator q;
  CountingRandom rnd;
  Bytes sent = q.next_payload(std::ref(rnd), {});
  EXPECT_FALSE(q.feed(sent + "y", {}).ok());  // one byte more than was sent
}

TEST(PingInitiator, AgainstResponder) {
  PingInitiator init;
  PingResponder resp;
  CountingRandom rnd;
  auto t = PingInitiator::Clock::time_point{};
  for (int i = 0; i < 5; ++i) {
    Bytes echo = resp.feed(init.next_payload(std::ref(rnd), t));
    auto r = init.feed(echo, t + 3ms);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->size(), 1u);
  }
}

TEST(ProtocolIds, Values) {
  EXPECT_EQ(kPingProtocol, "/ipfs/ping/1.0.0");
  EXPECT_EQ(kIdentifyProtocol, "/ipfs/id/1.0.0");
  EXPECT_EQ(kIdentifyPushProtocol, "/ipfs/id/push/1.0.0");
  EXPECT_EQ(kRelayHopProtocol, "/libp2p/circuit/relay/0.2.0/hop");
  EXPECT_EQ(agent_version(), std::string("punchgate/") + PUNCHGATE_VERSION);
  EXPECT_TRUE(agent_version().starts_with("punchgate/"));
}
