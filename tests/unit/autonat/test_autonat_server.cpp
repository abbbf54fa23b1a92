// AutoNAT server decisions: which requests are served, which addresses are dialed back (only
// on the requester's observed IP, QUIC, direct, public, not ours, a few), rate limits, the cap
// on dial-backs in flight, and the answer a set of dial-backs adds up to.
#include "autonat/autonat_server.hpp"

#include "punchgate/crypto/identity.hpp"

#include <gtest/gtest.h>

namespace punchgate {
namespace {

Multiaddr ma(const std::string& text) {
  auto m = Multiaddr::parse(text);
  EXPECT_TRUE(m) << text;
  return m ? *m : Multiaddr{};
}

Multiaddr quic(const std::string& ip, int port) {
  return ma("/ip4/" + ip + "/udp/" + std::to_string(port) + "/quic-v1");
}

class AutonatServerTest : public ::testing::Test {
 protected:
  PeerId alice = Identity::generate().peer_id();
  PeerId bob = Identity::generate().peer_id();

  AutonatRequestContext ctx(const PeerId& who, const std::string& ip = "203.0.113.7") {
    return AutonatRequestContext{who, quic(ip, 40000), false, {quic("198.51.100.1", 4001)}};
  }
  static Bytes request(const PeerId& who, const std::vector<Multiaddr>& addrs) {
    return AutonatMessage::dial_request(who, addrs).encode();
  }
  static AutonatStatus status_of(const AutonatAdmission& a) { return *a.answer->dial_response->status; }
  static bool skipped_with(const AutonatAdmission& a, const std::string& addr, const std::string& why) {
    for (const auto& [x, y] : a.skipped) {
      if (x == addr && y.find(why) != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(AutonatServerTest, DialsOnlyAddressesOnTheObservedIp) {
  AutonatServer s;
  Multiaddr mine = quic("203.0.113.7", 4001);
  Multiaddr mapped = quic("203.0.113.7", 51000);
  Multiaddr victim = quic("192.0.2.99", 4001);  // a third party: never ours to dial
  auto a = s.admit(ctx(alice), request(alice, {victim, mine, mapped.with_peer_id(alice)}), 0);
  ASSERT_FALSE(a.answer);
  EXPECT_EQ(a.dial, (std::vector<Multiaddr>{mine, mapped}));  // /p2p/ dropped; the caller adds it
  EXPECT_TRUE(skipped_with(a, victim.to_string(), "IP differs from the observed 203.0.113.7"));
  EXPECT_NE(a.job, 0u);
  EXPECT_EQ(s.in_flight(), 1u);
}

TEST_F(AutonatServerTest, SkipsWhatCannotOrMustNotBeDialed) {
  AutonatServer s;
  Multiaddr good = quic("203.0.113.7", 4001);
  std::vector<Multiaddr> addrs = {
      ma("/ip4/203.0.113.7/tcp/4001"),
      ma("/ip4/203.0.113.7/udp/4001/quic"),  // draft-29
      ma("/dns4/example.com/udp/4001/quic-v1"),
      ma("/ip4/203.0.113.9/udp/4001/quic-v1/p2p/" + bob.to_base58() + "/p2p-circuit"),
      quic("203.0.113.7", 4002).with_peer_id(bob),  // another peer's address
      quic("203.0.113.7", 0),
      good,
      good,
  };
  AutonatMessage m = AutonatMessage::dial_request(alice, addrs);
  m.dial->peer->addrs.push_back("\xff\xff garbage");
  auto a = s.admit(ctx(alice), m.encode(), 0);
  ASSERT_FALSE(a.answer) << a.reason;
  EXPECT_EQ(a.dial, std::vector<Multiaddr>{good});
  EXPECT_TRUE(skipped_with(a, "/ip4/203.0.113.7/tcp/4001", "quic-v1"));
  EXPECT_TRUE(skipped_with(a, "/ip4/203.0.113.7/udp/4001/quic", "quic-v1"));
  EXPECT_TRUE(skipped_with(a, "/dns4/example.com/udp/4001/quic-v1", "DNS"));
  EXPECT_TRUE(skipped_with(a, addrs[3].to_string(), "relayed"));
  EXPECT_TRUE(skipped_with(a, addrs[4].to_string(), "another peer"));
  EXPECT_TRUE(skipped_with(a, addrs[5].to_string(), "port 0"));
  EXPECT_TRUE(skipped_with(a, good.to_string(), "duplicate"));
  EXPECT_TRUE(skipped_with(a, "<invalid>", "not a multiaddr"));
}

TEST_F(AutonatServerTest, DialsAtMostAFewAddresses) {
  AutonatServer s;
  std::vector<Multiaddr> addrs;
  for (int p = 1; p <= 10; ++p) addrs.push_back(quic("203.0.113.7", 4000 + p));
  auto a = s.admit(ctx(alice), request(alice, addrs), 0);
  ASSERT_FALSE(a.answer);
  EXPECT_EQ(a.dial.size(), s.config().max_dial_addrs);
  EXPECT_EQ(a.dial.front(), addrs.front());
  EXPECT_TRUE(skipped_with(a, addrs.back().to_string(), "over the limit"));
}

TEST_F(AutonatServerTest, NothingLeftToDialIsARefusal) {
  AutonatServer s;
  auto a = s.admit(ctx(alice), request(alice, {quic("192.0.2.1", 4001), quic("192.0.2.2", 4001)}), 0);
  ASSERT_TRUE(a.answer);
  EXPECT_EQ(status_of(a), AutonatStatus::DialRefused);
  EXPECT_NE(a.reason.find("no dialable address on the observed IP 203.0.113.7"), std::string::npos);
  EXPECT_EQ(a.answer->dial_response->status_text, a.reason);
  EXPECT_EQ(a.skipped.size(), 2u);
  EXPECT_EQ(s.in_flight(), 0u);
  auto none = s.admit(ctx(alice), request(alice, {}), 0);
  ASSERT_TRUE(none.answer);
  EXPECT_EQ(status_of(none), AutonatStatus::DialRefused);
}

TEST_F(AutonatServerTest, BadRequests) {
  AutonatServer s;
  auto check_bad = [&](const Bytes& msg, const std::string& why) {
    auto a = s.admit(ctx(alice), msg, 0);
    ASSERT_TRUE(a.answer) << why;
    EXPECT_EQ(status_of(a), AutonatStatus::BadRequest) << why;
    EXPECT_NE(a.reason.find(why), std::string::npos) << a.reason;
    EXPECT_EQ(a.answer->type, AutonatType::DialResponse);
  };
  check_bad("\x08", "malformed");
  check_bad(AutonatMessage::response(AutonatStatus::Ok, "").encode(), "expected a DIAL");
  check_bad(Bytes("\x08\x00", 2), "without peer info");           // DIAL, no dial
  check_bad(Bytes("\x08\x00\x12\x00", 4), "without peer info");   // DIAL, dial without peer
  check_bad(request(bob, {quic("203.0.113.7", 4001)}), "peer id differs");
  AutonatMessage no_id = AutonatMessage::dial_request(alice, {quic("203.0.113.7", 4001)});
  no_id.dial->peer->id.reset();
  check_bad(no_id.encode(), "peer id differs");
  EXPECT_EQ(s.in_flight(), 0u);
}

TEST_F(AutonatServerTest, RefusesRelayedAndNonPublicRequesters) {
  AutonatServer s;
  auto relayed = ctx(alice);
  relayed.relayed = true;
  auto a = s.admit(relayed, request(alice, {quic("203.0.113.7", 4001)}), 0);
  ASSERT_TRUE(a.answer);
  EXPECT_EQ(status_of(a), AutonatStatus::DialRefused);
  EXPECT_NE(a.reason.find("relay"), std::string::npos);

  for (const char* ip : {"127.0.0.1", "10.1.2.3", "192.168.1.2", "172.16.0.9", "100.64.0.1", "169.254.1.1"}) {
    auto p = s.admit(ctx(alice, ip), request(alice, {quic(ip, 4001)}), 0);
    ASSERT_TRUE(p.answer) << ip;
    EXPECT_EQ(status_of(p), AutonatStatus::DialRefused) << ip;
    EXPECT_NE(p.reason.find("non-public IP"), std::string::npos) << p.reason;
  }
  // A private network may allow it.
  AutonatServer lan(AutonatServerConfig{.allow_private_ips = true});
  auto ok = lan.admit(ctx(alice, "192.168.1.2"), request(alice, {quic("192.168.1.2", 4001)}), 0);
  ASSERT_FALSE(ok.answer) << ok.reason;
  EXPECT_EQ(ok.dial, std::vector<Multiaddr>{quic("192.168.1.2", 4001)});
}

TEST_F(AutonatServerTest, NeverDialsOurOwnIp) {
  AutonatServer s;
  auto c = ctx(alice, "198.51.100.1");  // the requester shares our IP (same host, or behind us)
  auto a = s.admit(c, request(alice, {quic("198.51.100.1", 5000)}), 0);
  ASSERT_TRUE(a.answer);
  EXPECT_TRUE(skipped_with(a, quic("198.51.100.1", 5000).to_string(), "our own"));
}

TEST_F(AutonatServerTest, Ipv6Requesters) {
  AutonatServer s;
  AutonatRequestContext c{alice, ma("/ip6/2001:db8::7/udp/40000/quic-v1"), false, {}};
  Multiaddr same = ma("/ip6/2001:db8::7/udp/4001/quic-v1");
  Multiaddr other = ma("/ip6/2001:db8::8/udp/4001/quic-v1");
  auto a = s.admit(c, request(alice, {other, same, quic("203.0.113.7", 4001)}), 0);
  ASSERT_FALSE(a.answer) << a.reason;
  EXPECT_EQ(a.dial, std::vector<Multiaddr>{same});
}

TEST_F(AutonatServerTest, PerPeerRateLimit) {
  AutonatServer s;
  Bytes req = request(alice, {quic("203.0.113.7", 4001)});
  for (size_t i = 0; i < s.config().max_per_peer_window; ++i) {
    auto a = s.admit(ctx(alice), req, i * 1000);
    ASSERT_FALSE(a.answer) << i << ": " << a.reason;
    s.finish(a.job);
  }
  auto limited = s.admit(ctx(alice), req, 5000);
  ASSERT_TRUE(limited.answer);
  EXPECT_EQ(status_of(limited), AutonatStatus::DialRefused);
  EXPECT_NE(limited.reason.find("rate limit for this peer"), std::string::npos);
  // Another peer is not affected.
  auto other = s.admit(ctx(bob, "203.0.113.8"), request(bob, {quic("203.0.113.8", 4001)}), 5000);
  EXPECT_FALSE(other.answer) << other.reason;
  s.finish(other.job);
  // The first admission leaves the window after window_ms.
  EXPECT_TRUE(s.admit(ctx(alice), req, s.config().window_ms - 1).answer);
  auto again = s.admit(ctx(alice), req, s.config().window_ms);
  EXPECT_FALSE(again.answer) << again.reason;
}

TEST_F(AutonatServerTest, RefusalsDoNotSpendTheRateLimit) {
  AutonatServer s;
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(s.admit(ctx(alice), request(alice, {quic("192.0.2.1", 4001)}), 0).answer);
  }
  auto a = s.admit(ctx(alice), request(alice, {quic("203.0.113.7", 4001)}), 0);
  EXPECT_FALSE(a.answer) << a.reason;
}

TEST_F(AutonatServerTest, GlobalRateLimit) {
  AutonatServer s;
  for (size_t i = 0; i < s.config().max_per_window; ++i) {
    PeerId p = Identity::generate().peer_id();
    auto a = s.admit(ctx(p), request(p, {quic("203.0.113.7", 4001)}), 100);
    ASSERT_FALSE(a.answer) << i << ": " << a.reason;
    s.finish(a.job);
  }
  auto limited = s.admit(ctx(alice), request(alice, {quic("203.0.113.7", 4001)}), 200);
  ASSERT_TRUE(limited.answer);
  EXPECT_NE(limited.reason.find("rate limit reached"), std::string::npos) << limited.reason;
  auto later = s.admit(ctx(alice), request(alice, {quic("203.0.113.7", 4001)}), 100 + s.config().window_ms);
  EXPECT_FALSE(later.answer) << later.reason;
}

TEST_F(AutonatServerTest, BoundsDialBacksInFlight) {
  AutonatServer s;
  std::vector<uint64_t> jobs;
  for (size_t i = 0; i < s.config().max_in_flight; ++i) {
    PeerId p = Identity::generate().peer_id();
    auto a = s.admit(ctx(p), request(p, {quic("203.0.113.7", 4001)}), 0);
    ASSERT_FALSE(a.answer) << a.reason;
    jobs.push_back(a.job);
  }
  EXPECT_EQ(s.in_flight(), s.config().max_in_flight);
  auto busy = s.admit(ctx(alice), request(alice, {quic("203.0.113.7", 4001)}), 0);
  ASSERT_TRUE(busy.answer);
  EXPECT_NE(busy.reason.find("in progress"), std::string::npos);
  s.finish(jobs[0]);
  s.finish(jobs[0]);  // twice is harmless
  EXPECT_EQ(s.in_flight(), s.config().max_in_flight - 1);
  auto a = s.admit(ctx(alice), request(alice, {quic("203.0.113.7", 4001)}), 0);
  EXPECT_FALSE(a.answer) << a.reason;
}

// ---- DialBackTally ----

TEST(DialBackTally, FirstConnectionAnswersOk) {
  Multiaddr a = quic("203.0.113.7", 4001), b = quic("203.0.113.7", 51000);
  DialBackTally t({a, b});
  EXPECT_FALSE(t.on_failed(a, "timeout", false));
  auto ok = t.on_connected(b);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->dial_response->status, AutonatStatus::Ok);
  EXPECT_EQ(ok->dial_response->addr, b.to_bytes());
  EXPECT_TRUE(t.decided());
  EXPECT_FALSE(t.on_connected(a));  // decided: later reports change nothing
  EXPECT_FALSE(t.on_timeout());
}

TEST(DialBackTally, AllFailedIsADialError) {
  Multiaddr a = quic("203.0.113.7", 4001), b = quic("203.0.113.7", 51000);
  DialBackTally t({a, b});
  EXPECT_FALSE(t.on_failed(a, "handshake timeout", false));
  EXPECT_FALSE(t.on_failed(a, "reported twice", false));  // not pending any more: ignored
  EXPECT_EQ(t.pending(), std::vector<Multiaddr>{b});
  EXPECT_FALSE(t.on_connected(quic("203.0.113.7", 9)));  // never dialed: ignored
  auto err = t.on_failed(b, "peer closed", false);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->dial_response->status, AutonatStatus::DialError);
  EXPECT_FALSE(err->dial_response->addr);
  EXPECT_NE(err->dial_response->status_text->find("peer closed"), std::string::npos);
}

TEST(DialBackTally, OnlyLocalFailuresAreInternalErrors) {
  Multiaddr a = quic("203.0.113.7", 4001), b = quic("203.0.113.7", 51000);
  DialBackTally local({a, b});
  EXPECT_FALSE(local.on_failed(a, "no socket", true));
  auto r = local.on_failed(b, "no socket", true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dial_response->status, AutonatStatus::InternalError);
  DialBackTally mixed({a, b});
  EXPECT_FALSE(mixed.on_failed(a, "no socket", true));
  auto m = mixed.on_failed(b, "timeout", false);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->dial_response->status, AutonatStatus::DialError);
}

TEST(DialBackTally, TimeoutIsADialError) {
  DialBackTally t({quic("203.0.113.7", 4001)});
  auto r = t.on_timeout();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dial_response->status, AutonatStatus::DialError);
  EXPECT_TRUE(t.pending().empty());
  EXPECT_FALSE(t.on_connected(quic("203.0.113.7", 4001)));
}

}  // namespace
}  // namespace punchgate
