// AutoNAT client decisions: what an answer says, how answers from several servers add up to a
// reachability (quorum of distinct servers, confidence), and whom to ask when.
#include "autonat/autonat_client.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace punchgate {
namespace {

Multiaddr quic(const std::string& ip, int port) {
  return *Multiaddr::parse("/ip4/" + ip + "/udp/" + std::to_string(port) + "/quic-v1");
}

const Multiaddr kListen = quic("203.0.113.7", 4001);
const Multiaddr kMapped = quic("203.0.113.7", 51000);

AutonatEvidence says(AutonatStatus status, std::optional<Multiaddr> addr = {}) {
  return interpret_response(AutonatMessage::response(status, "text", std::move(addr)).encode(), {kListen, kMapped});
}
AutonatEvidence ok(const Multiaddr& a = kListen) { return says(AutonatStatus::Ok, a); }
AutonatEvidence dial_error() { return says(AutonatStatus::DialError); }

// ---- interpret_response ----

TEST(AutonatInterpret, OkIsPublicWithTheAddress) {
  auto e = ok(kMapped);
  EXPECT_EQ(e.kind, AutonatEvidence::Kind::Public);
  EXPECT_EQ(e.addr, kMapped);
  EXPECT_EQ(e.status, AutonatStatus::Ok);
  EXPECT_EQ(e.detail, "text");
  // The server may name it with our /p2p/ id.
  PeerId me = Identity::generate().peer_id();
  auto with_id = interpret_response(AutonatMessage::response(AutonatStatus::Ok, "", kListen.with_peer_id(me)).encode(),
                                    {kListen});
  EXPECT_EQ(with_id.kind, AutonatEvidence::Kind::Public);
  EXPECT_EQ(with_id.addr, kListen);
  // An OK without an address still says public.
  auto bare = says(AutonatStatus::Ok);
  EXPECT_EQ(bare.kind, AutonatEvidence::Kind::Public);
  EXPECT_FALSE(bare.addr);
}

TEST(AutonatInterpret, OkForAnAddressWeDidNotAskAboutIsNotBelieved) {
  auto e = ok(quic("192.0.2.1", 4001));
  EXPECT_EQ(e.kind, AutonatEvidence::Kind::None);
  EXPECT_NE(e.detail.find("did not ask"), std::string::npos);
  AutonatMessage garbage = AutonatMessage::response(AutonatStatus::Ok, "");
  garbage.dial_response->addr = "\xff\xff";
  EXPECT_EQ(interpret_response(garbage.encode(), {kListen}).kind, AutonatEvidence::Kind::None);
}

TEST(AutonatInterpret, DialErrorIsPrivate) {
  auto e = dial_error();
  EXPECT_EQ(e.kind, AutonatEvidence::Kind::Private);
  EXPECT_EQ(e.status, AutonatStatus::DialError);
  EXPECT_FALSE(e.addr);
}

TEST(AutonatInterpret, OtherAnswersSayNothing) {
  for (auto st : {AutonatStatus::DialRefused, AutonatStatus::BadRequest, AutonatStatus::InternalError}) {
    auto e = says(st);
    EXPECT_EQ(e.kind, AutonatEvidence::Kind::None) << to_string(st);
    EXPECT_EQ(e.status, st);
  }
  EXPECT_EQ(interpret_response("\x08", {kListen}).kind, AutonatEvidence::Kind::None);
  auto dial = interpret_response(AutonatMessage::dial_request(Identity::generate().peer_id(), {kListen}).encode(),
                                 {kListen});
  EXPECT_EQ(dial.kind, AutonatEvidence::Kind::None);
  EXPECT_NE(dial.detail.find("not a DIAL_RESPONSE"), std::string::npos);
  auto no_status = interpret_response(Bytes("\x08\x01\x1a\x00", 4), {kListen});
  EXPECT_EQ(no_status.kind, AutonatEvidence::Kind::None);
  EXPECT_FALSE(no_status.status);
}

// ---- ReachabilityTracker ----

class ReachabilityTest : public ::testing::Test {
 protected:
  PeerId s1 = Identity::generate().peer_id();
  PeerId s2 = Identity::generate().peer_id();
  PeerId s3 = Identity::generate().peer_id();
  ReachabilityTracker t;
};

TEST_F(ReachabilityTest, StartsUnknown) {
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_FALSE(t.public_addr());
  EXPECT_EQ(t.confidence(), 0);
  EXPECT_STREQ(to_string(Reachability::Unknown), "unknown");
  EXPECT_STREQ(to_string(Reachability::Public), "public");
  EXPECT_STREQ(to_string(Reachability::Private), "private");
}

TEST_F(ReachabilityTest, TwoServersAgreeingMakePublic) {
  EXPECT_FALSE(t.record(s1, ok()));
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_FALSE(t.record(s1, ok()));  // the same server again is not a second opinion
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_TRUE(t.record(s2, ok(kMapped)));
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_EQ(t.public_addr(), kMapped);  // the latest confirmed address
  EXPECT_EQ(t.confidence(), 0);
}

TEST_F(ReachabilityTest, TwoServersFailingMakePrivate) {
  EXPECT_FALSE(t.record(s1, dial_error()));
  EXPECT_TRUE(t.record(s2, dial_error()));
  EXPECT_EQ(t.reachability(), Reachability::Private);
  EXPECT_FALSE(t.public_addr());
}

TEST_F(ReachabilityTest, AnswersThatSayNothingChangeNothing) {
  EXPECT_FALSE(t.record(s1, ok()));
  for (auto st : {AutonatStatus::DialRefused, AutonatStatus::BadRequest, AutonatStatus::InternalError}) {
    EXPECT_FALSE(t.record(s2, says(st)));
    EXPECT_FALSE(t.record(s3, says(st)));
  }
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_TRUE(t.record(s2, ok()));  // s1's earlier OK still counts
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_EQ(t.confidence(), 0);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(t.record(s3, says(AutonatStatus::DialRefused)));
  EXPECT_EQ(t.confidence(), 0);  // refusals do not wear confidence down either
}

TEST_F(ReachabilityTest, DisagreeingServersFromUnknownStartOver) {
  EXPECT_FALSE(t.record(s1, ok()));
  EXPECT_FALSE(t.record(s2, dial_error()));  // disagrees: the tally restarts with s2
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_FALSE(t.record(s1, ok()));  // restarts again with s1
  EXPECT_EQ(t.reachability(), Reachability::Unknown);
  EXPECT_TRUE(t.record(s3, ok()));
  EXPECT_EQ(t.reachability(), Reachability::Public);
}

TEST_F(ReachabilityTest, ConfidenceRisesToItsCap) {
  t.record(s1, ok());
  t.record(s2, ok());
  for (int want = 1; want <= 3; ++want) {
    EXPECT_FALSE(t.record(want % 2 ? s1 : s2, ok()));
    EXPECT_EQ(t.confidence(), want);
  }
  EXPECT_FALSE(t.record(s3, ok()));
  EXPECT_EQ(t.confidence(), 3);
  EXPECT_EQ(t.reachability(), Reachability::Public);
}

TEST_F(ReachabilityTest, AConfidentStateFlipsAfterSeveralDisagreeingAnswers) {
  t.record(s1, ok());
  t.record(s2, ok());
  for (int i = 0; i < 3; ++i) t.record(s1, ok());
  ASSERT_EQ(t.confidence(), 3);
  // Three disagreeing answers spend the confidence; the fourth flips (two servers among them).
  EXPECT_FALSE(t.record(s1, dial_error()));
  EXPECT_FALSE(t.record(s2, dial_error()));
  EXPECT_FALSE(t.record(s1, dial_error()));
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_EQ(t.confidence(), 0);
  EXPECT_TRUE(t.record(s2, dial_error()));
  EXPECT_EQ(t.reachability(), Reachability::Private);
  EXPECT_FALSE(t.public_addr());
  EXPECT_EQ(t.confidence(), 0);
}

TEST_F(ReachabilityTest, OneServerAloneNeverFlipsUs) {
  t.record(s1, ok());
  t.record(s2, ok());
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(t.record(s3, dial_error()));
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_TRUE(t.record(s1, dial_error()));  // a second server agreeing with s3 does
  EXPECT_EQ(t.reachability(), Reachability::Private);
}

TEST_F(ReachabilityTest, AnAgreeingAnswerForgetsTheDisagreement) {
  t.record(s1, dial_error());
  t.record(s2, dial_error());
  ASSERT_EQ(t.reachability(), Reachability::Private);
  EXPECT_FALSE(t.record(s1, ok()));   // pending public: {s1}
  EXPECT_FALSE(t.record(s3, dial_error()));  // agrees with private: the tally is forgotten
  EXPECT_EQ(t.confidence(), 1);
  EXPECT_FALSE(t.record(s2, ok()));   // spends the confidence; pending public: {s2} only
  EXPECT_EQ(t.reachability(), Reachability::Private);
  EXPECT_EQ(t.confidence(), 0);
  EXPECT_TRUE(t.record(s3, ok(kMapped)));  // {s2, s3}: flips
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_EQ(t.public_addr(), kMapped);
}

TEST_F(ReachabilityTest, APublicAddressChangeIsAChange) {
  t.record(s1, ok(kListen));
  t.record(s2, ok(kListen));
  EXPECT_EQ(t.public_addr(), kListen);
  EXPECT_FALSE(t.record(s3, ok(kListen)));
  EXPECT_TRUE(t.record(s3, ok(kMapped)));
  EXPECT_EQ(t.public_addr(), kMapped);
  EXPECT_FALSE(t.record(s1, says(AutonatStatus::Ok)));  // OK without address keeps the known one
  EXPECT_EQ(t.public_addr(), kMapped);
}

TEST_F(ReachabilityTest, FlipToPublicKeepsTheLatestAddressOfTheQuorum) {
  t.record(s1, dial_error());
  t.record(s2, dial_error());
  EXPECT_FALSE(t.record(s1, ok(kMapped)));
  EXPECT_TRUE(t.record(s2, says(AutonatStatus::Ok)));  // no address: the quorum's earlier one stays
  EXPECT_EQ(t.reachability(), Reachability::Public);
  EXPECT_EQ(t.public_addr(), kMapped);
}

TEST_F(ReachabilityTest, ConfiguredQuorumAndConfidence) {
  ReachabilityTracker strict(ReachabilityConfig{.max_confidence = 1, .quorum = 3});
  EXPECT_FALSE(strict.record(s1, ok()));
  EXPECT_FALSE(strict.record(s2, ok()));
  EXPECT_TRUE(strict.record(s3, ok()));
  EXPECT_FALSE(strict.record(s1, ok()));
  EXPECT_FALSE(strict.record(s1, ok()));
  EXPECT_EQ(strict.confidence(), 1);
  ReachabilityTracker eager(ReachabilityConfig{.max_confidence = 0, .quorum = 1});
  EXPECT_TRUE(eager.record(s1, ok()));
  EXPECT_TRUE(eager.record(s1, dial_error()));
  EXPECT_EQ(eager.reachability(), Reachability::Private);
}

// ---- ProbeScheduler ----

class ProbeSchedulerTest : public ::testing::Test {
 protected:
  std::vector<PeerId> servers(size_t n) {
    std::vector<PeerId> out;
    for (size_t i = 0; i < n; ++i) out.push_back(Identity::generate().peer_id());
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(ProbeSchedulerTest, AsksAFewServersAndThrottlesEach) {
  ProbeScheduler s;
  auto all = servers(2);
  auto first = s.pick(all, 1000);
  EXPECT_EQ(first, all);
  EXPECT_FALSE(s.may_ask(all[0], 1000 + s.config().server_throttle_ms - 1));
  EXPECT_TRUE(s.pick(all, 1000 + s.config().server_throttle_ms - 1).empty());
  EXPECT_TRUE(s.may_ask(all[0], 1000 + s.config().server_throttle_ms));
  EXPECT_EQ(s.pick(all, 1000 + s.config().server_throttle_ms), all);
}

TEST_F(ProbeSchedulerTest, RotatesThroughManyServers) {
  ProbeScheduler s;
  auto all = servers(7);
  const uint64_t step = s.config().server_throttle_ms;
  std::set<PeerId> seen;
  for (int round = 0; round < 3; ++round) {
    auto picked = s.pick(all, 10 + round * step);
    EXPECT_EQ(picked.size(), s.config().servers_per_round);
    for (const PeerId& p : picked) seen.insert(p);
  }
  EXPECT_EQ(seen.size(), all.size());  // 3 + 3 + the last one (least recently asked first)
  auto dup = s.pick({all[0], all[0]}, 10 + 10 * step);
  EXPECT_EQ(dup.size(), 1u);
}

TEST_F(ProbeSchedulerTest, AServerThatSaidNothingWaitsARefreshInterval) {
  ProbeScheduler s;
  auto all = servers(2);
  EXPECT_EQ(s.pick(all, 0).size(), 2u);
  s.hold(all[0], 100);  // e.g. it refused
  const uint64_t later = s.config().server_throttle_ms;
  EXPECT_EQ(s.pick(all, later), std::vector<PeerId>{all[1]});
  EXPECT_FALSE(s.may_ask(all[0], 100 + s.config().refresh_interval_ms - 1));
  EXPECT_TRUE(s.may_ask(all[0], 100 + s.config().refresh_interval_ms));
  EXPECT_EQ(s.pick(all, 100 + s.config().refresh_interval_ms).front(), all[0]);
}

TEST_F(ProbeSchedulerTest, IntervalFollowsHowSureWeAre) {
  ProbeScheduler s;
  EXPECT_EQ(s.interval(Reachability::Unknown, 0, 3), s.config().retry_interval_ms);
  EXPECT_EQ(s.interval(Reachability::Public, 2, 3), s.config().retry_interval_ms);
  EXPECT_EQ(s.interval(Reachability::Public, 3, 3), s.config().refresh_interval_ms);
  EXPECT_EQ(s.interval(Reachability::Private, 3, 3), s.config().refresh_interval_ms);
  EXPECT_LT(s.config().retry_interval_ms, s.config().refresh_interval_ms);
}

}  // namespace
}  // namespace punchgate
