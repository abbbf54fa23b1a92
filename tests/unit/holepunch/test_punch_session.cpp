#include "holepunch/punch_session.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace punchgate {
namespace {

using K = PunchCommand::Kind;

Multiaddr ma(const std::string& text) { return *Multiaddr::parse(text); }

Bytes framed(DcutrType type, const std::vector<std::string>& addrs) {
  DcutrMessage m{type, {}};
  for (const auto& a : addrs) m.obs_addrs.push_back(ma(a).to_bytes());
  return m.encode_framed();
}

const PunchCommand* find(const std::vector<PunchCommand>& cmds, K kind) {
  auto it = std::find_if(cmds.begin(), cmds.end(), [&](const PunchCommand& c) { return c.kind == kind; });
  return it == cmds.end() ? nullptr : &*it;
}

const PunchCommand* find_timer(const std::vector<PunchCommand>& cmds, PunchTimer t) {
  auto it = std::find_if(cmds.begin(), cmds.end(),
                         [&](const PunchCommand& c) { return c.kind == K::StartTimer && c.timer == t; });
  return it == cmds.end() ? nullptr : &*it;
}

PunchEvent data(const Bytes& b, uint64_t now) {
  return PunchEvent{.kind = PunchEvent::Kind::Data, .data = b, .now_ms = now};
}
PunchEvent fired(PunchTimer t, uint64_t now) {
  return PunchEvent{.kind = PunchEvent::Kind::TimerFired, .timer = t, .now_ms = now};
}
PunchEvent event(PunchEvent::Kind k, uint64_t now) { return PunchEvent{.kind = k, .now_ms = now}; }

const std::vector<std::string> kPeerEim = {"/ip4/203.0.113.11/udp/4001/quic-v1", "/ip4/10.1.0.2/udp/4001/quic-v1"};
const std::vector<std::string> kPeerEdm = {"/ip4/203.0.113.12/udp/40001/quic-v1",
                                           "/ip4/203.0.113.12/udp/51234/quic-v1", "/ip4/10.2.0.2/udp/4001/quic-v1"};

std::vector<Multiaddr> ours() { return {ma("/ip4/203.0.113.12/udp/4001/quic-v1")}; }

// Runs an initiator up to its first punch (after the half-RTT delay); returns that step's commands.
std::vector<PunchCommand> initiator_to_punch(PunchSession& s, const std::vector<std::string>& peer_addrs) {
  EXPECT_TRUE(s.start().empty());
  auto c1 = s.handle(event(PunchEvent::Kind::StreamReady, 1000));
  const PunchCommand* w = find(c1, K::Write);
  EXPECT_TRUE(w && !w->bytes.empty());
  EXPECT_TRUE(find_timer(c1, PunchTimer::Reply));
  auto c2 = s.handle(data(framed(DcutrType::Connect, peer_addrs), 1040));
  const PunchCommand* sync = find(c2, K::Write);
  EXPECT_TRUE(sync && sync->bytes == framed(DcutrType::Sync, {}));
  const PunchCommand* delay = find_timer(c2, PunchTimer::Delay);
  EXPECT_TRUE(delay && delay->ms == 20);  // half of the 40 ms round trip
  EXPECT_FALSE(find(c2, K::Dial));        // not before the delay
  return s.handle(fired(PunchTimer::Delay, 1060));
}

TEST(PunchSession, InitiatorPunchesAfterHalfTheRoundTripAndSucceeds) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::EndpointIndependent, 1000);
  auto punch = initiator_to_punch(s, kPeerEim);
  const PunchCommand* dial = find(punch, K::Dial);
  ASSERT_TRUE(dial);
  EXPECT_EQ(dial->addrs.size(), 2u);
  ASSERT_TRUE(find(punch, K::StartSpray));  // the initiator opens its NAT for the responder's dial
  EXPECT_TRUE(find_timer(punch, PunchTimer::Attempt));
  EXPECT_TRUE(find_timer(punch, PunchTimer::HardNat));
  EXPECT_EQ(s.phase(), PunchSession::Phase::Punching);
  auto done = s.handle(event(PunchEvent::Kind::DirectConnection, 1300));
  const PunchCommand* ok = find(done, K::Succeeded);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->attempt, 1u);
  EXPECT_EQ(ok->elapsed_ms, 300u);
  EXPECT_TRUE(find(done, K::StopSpray));
  EXPECT_EQ(s.outcome(), "hole punched (attempt 1, 300 ms)");
  EXPECT_TRUE(s.handle(fired(PunchTimer::Attempt, 9999)).empty());  // finished: stale timers do nothing
}

TEST(PunchSession, InitiatorGivesUpAfterThreeAttempts) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  initiator_to_punch(s, kPeerEim);
  uint64_t now = 2000;
  for (int attempt = 2; attempt <= 3; ++attempt) {
    auto next = s.handle(fired(PunchTimer::Attempt, now));
    ASSERT_TRUE(find(next, K::Write)) << "attempt " << attempt << " starts with a new CONNECT";
    EXPECT_TRUE(find(next, K::StopSpray));
    s.handle(data(framed(DcutrType::Connect, kPeerEim), now + 10));
    s.handle(fired(PunchTimer::Delay, now + 15));
    EXPECT_EQ(s.attempt(), static_cast<size_t>(attempt));
    now += 6000;
  }
  auto last = s.handle(fired(PunchTimer::Attempt, now));
  const PunchCommand* failed = find(last, K::Failed);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->text, "no direct connection after 3 attempts");
  EXPECT_EQ(s.phase(), PunchSession::Phase::Failed);
}

// go-libp2p and js-libp2p end the dcutr stream after each exchange (js: when its dial gives up):
// the next attempt goes on a new stream instead of a CONNECT nobody reads.
TEST(PunchSession, InitiatorOpensANewStreamWhenThePeerEndedTheLastOne) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  initiator_to_punch(s, kPeerEim);
  EXPECT_FALSE(find(s.handle(event(PunchEvent::Kind::StreamEnded, 3000)), K::Failed));  // the punch runs on
  auto over = s.handle(fired(PunchTimer::Attempt, 6100));
  EXPECT_TRUE(find(over, K::OpenStream));
  EXPECT_FALSE(find(over, K::Write));
  EXPECT_TRUE(find(over, K::StopSpray));
  EXPECT_TRUE(find_timer(over, PunchTimer::Reply));
  auto ready = s.handle(event(PunchEvent::Kind::StreamReady, 6150));
  ASSERT_TRUE(find(ready, K::Write));
  auto c2 = s.handle(data(framed(DcutrType::Connect, kPeerEim), 6170));
  ASSERT_TRUE(find(c2, K::Write));
  EXPECT_EQ(s.attempt(), 2u);
  const PunchCommand* log = find(c2, K::Log);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->text, "hole punch sync sent attempt=2 rtt_ms=20 peer_addrs=[/ip4/203.0.113.11/udp/4001/quic-v1,"
                       "/ip4/10.1.0.2/udp/4001/quic-v1]");
}

TEST(PunchSession, InitiatorRetryCrossingTheStreamEndMovesToANewStream) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  initiator_to_punch(s, kPeerEim);
  ASSERT_TRUE(find(s.handle(fired(PunchTimer::Attempt, 6100)), K::Write));  // CONNECT 2 on the old stream
  auto ended = s.handle(event(PunchEvent::Kind::StreamEnded, 6120));       // ... which the peer had ended
  EXPECT_FALSE(find(ended, K::Failed));
  ASSERT_TRUE(find(ended, K::OpenStream));
  ASSERT_TRUE(find(s.handle(event(PunchEvent::Kind::StreamReady, 6150)), K::Write));
  s.handle(data(framed(DcutrType::Connect, kPeerEim), 6160));
  EXPECT_EQ(s.attempt(), 2u);  // the lost CONNECT was no attempt
  // A peer that ends a fresh stream without answering is done with us: no endless reopening.
  s.handle(fired(PunchTimer::Delay, 6165));
  s.handle(event(PunchEvent::Kind::StreamEnded, 6200));
  ASSERT_TRUE(find(s.handle(fired(PunchTimer::Attempt, 11200)), K::OpenStream));
  ASSERT_TRUE(find(s.handle(event(PunchEvent::Kind::StreamReady, 11250)), K::Write));
  auto refused = s.handle(event(PunchEvent::Kind::StreamEnded, 11260));
  ASSERT_TRUE(find(refused, K::Failed));
  EXPECT_EQ(find(refused, K::Failed)->text, "no direct connection after 2 attempts");
}

TEST(PunchSession, ResponderLogsTheSyncItGot) {
  PunchSession s(PunchSession::Role::Responder, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  s.start();
  s.handle(data(framed(DcutrType::Connect, kPeerEim), 5));
  auto punch = s.handle(data(framed(DcutrType::Sync, {}), 30));
  const PunchCommand* log = find(punch, K::Log);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->text, "hole punch sync received attempt=1 peer_addrs=[/ip4/203.0.113.11/udp/4001/quic-v1,"
                       "/ip4/10.1.0.2/udp/4001/quic-v1]");
}

TEST(PunchSession, InitiatorFailsWithoutAReply) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::Unknown, 0);
  s.handle(event(PunchEvent::Kind::StreamReady, 0));
  auto out = s.handle(fired(PunchTimer::Reply, 10'000));
  ASSERT_TRUE(find(out, K::Failed));
  EXPECT_EQ(find(out, K::Failed)->text, "no CONNECT reply in time");
}

TEST(PunchSession, GarbageFromThePeerFails) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::Unknown, 0);
  s.handle(event(PunchEvent::Kind::StreamReady, 0));
  Bytes junk("\x05\x08\x07\x07\x07\x07", 6);
  auto out = s.handle(data(junk, 1));
  ASSERT_TRUE(find(out, K::Failed));
  EXPECT_NE(find(out, K::Failed)->text.find("bad dcutr message"), std::string::npos);
}

TEST(PunchSession, ResponderAnswersDialsOnSyncAndWaitsForTheNextAttempt) {
  PunchSession s(PunchSession::Role::Responder, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  EXPECT_TRUE(find_timer(s.start(), PunchTimer::Reply));
  auto reply = s.handle(data(framed(DcutrType::Connect, kPeerEim), 5));
  const PunchCommand* w = find(reply, K::Write);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->bytes, framed(DcutrType::Connect, {"/ip4/203.0.113.12/udp/4001/quic-v1"}));
  auto punch = s.handle(data(framed(DcutrType::Sync, {}), 30));
  ASSERT_TRUE(find(punch, K::Dial));
  EXPECT_FALSE(find(punch, K::StartSpray));  // the responder is the dialer only
  auto over = s.handle(fired(PunchTimer::Attempt, 5030));
  EXPECT_EQ(s.phase(), PunchSession::Phase::Waiting);
  EXPECT_TRUE(find_timer(over, PunchTimer::Reply));
  // The initiator gives up and closes the stream: that is the end.
  auto end = s.handle(event(PunchEvent::Kind::StreamEnded, 5040));
  ASSERT_TRUE(find(end, K::Failed));
  EXPECT_EQ(find(end, K::Failed)->text, "no direct connection after 1 attempts");
}

TEST(PunchSession, ResponderStreamEndDuringAPunchWaitsForItsDeadline) {
  PunchSession s(PunchSession::Role::Responder, PunchParams{}, ours(), NatMapping::EndpointIndependent, 0);
  s.start();
  s.handle(data(framed(DcutrType::Connect, kPeerEim), 5));
  s.handle(data(framed(DcutrType::Sync, {}), 30));
  EXPECT_TRUE(s.handle(event(PunchEvent::Kind::StreamEnded, 40)).empty() ||
              s.phase() == PunchSession::Phase::Punching);
  EXPECT_EQ(s.phase(), PunchSession::Phase::Punching);
  auto out = s.handle(fired(PunchTimer::Attempt, 5030));
  EXPECT_TRUE(find(out, K::Failed));  // no need to wait for a CONNECT that cannot come
}

TEST(PunchSession, EndpointDependentSideDialsFromFreshSockets) {
  PunchParams p;
  p.hard_nat_sockets = 64;
  PunchSession s(PunchSession::Role::Initiator, p, ours(), NatMapping::EndpointDependent, 0);
  initiator_to_punch(s, kPeerEim);
  auto hard = s.handle(fired(PunchTimer::HardNat, 2000));
  const PunchCommand* fresh = find(hard, K::DialFresh);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->count, 64u);
  ASSERT_EQ(fresh->addrs.size(), 1u);  // public addresses only
  EXPECT_EQ(fresh->addrs[0], ma("/ip4/203.0.113.11/udp/4001/quic-v1"));
  EXPECT_FALSE(find(hard, K::SendProbes));
  auto over = s.handle(fired(PunchTimer::Attempt, 6000));
  EXPECT_TRUE(find(over, K::AbortFresh));
}

TEST(PunchSession, SideFacingAnEndpointDependentPeerSendsProbes) {
  PunchParams p;
  p.hard_nat_probes = 4096;
  PunchSession s(PunchSession::Role::Responder, p, ours(), NatMapping::EndpointIndependent, 0);
  s.start();
  s.handle(data(framed(DcutrType::Connect, kPeerEdm), 5));
  s.handle(data(framed(DcutrType::Sync, {}), 30));
  auto hard = s.handle(fired(PunchTimer::HardNat, 1030));
  const PunchCommand* probes = find(hard, K::SendProbes);
  ASSERT_TRUE(probes);
  EXPECT_EQ(probes->ip, "203.0.113.12");
  EXPECT_EQ(probes->count, 4096u);
  EXPECT_FALSE(find(hard, K::DialFresh));
}

TEST(PunchSession, NoHardNatPunchWhenBothSidesAreDependentOrItIsOff) {
  PunchSession both(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::EndpointDependent, 0);
  initiator_to_punch(both, kPeerEdm);
  auto hard = both.handle(fired(PunchTimer::HardNat, 2000));
  EXPECT_FALSE(find(hard, K::DialFresh));
  EXPECT_FALSE(find(hard, K::SendProbes));
  ASSERT_TRUE(find(hard, K::Log));
  EXPECT_NE(find(hard, K::Log)->text.find("both sides"), std::string::npos);

  PunchParams off;
  off.hard_nat = false;
  PunchSession s(PunchSession::Role::Initiator, off, ours(), NatMapping::EndpointDependent, 0);
  auto punch = initiator_to_punch(s, kPeerEim);
  EXPECT_FALSE(find_timer(punch, PunchTimer::HardNat));
}

TEST(PunchSession, DirectConnectionBeforeAnyPunchCountsAsSuccess) {
  PunchSession s(PunchSession::Role::Initiator, PunchParams{}, ours(), NatMapping::Unknown, 100);
  s.handle(event(PunchEvent::Kind::StreamReady, 100));
  auto out = s.handle(event(PunchEvent::Kind::DirectConnection, 150));
  ASSERT_TRUE(find(out, K::Succeeded));
  EXPECT_EQ(find(out, K::Succeeded)->attempt, 1u);
}

}  // namespace
}  // namespace punchgate
