// The gateway mapping lifecycle without a gateway: outcomes and time are fed in by hand.
#include "portmap/mapping_lifecycle.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace punchgate {
namespace {

using K = MappingCommand::Kind;
using N = MappingCommand::NoticeKind;
using Phase = MappingLifecycle::Phase;

constexpr uint16_t kPort = 4001;

const MappingCommand* find(const std::vector<MappingCommand>& cmds, K kind) {
  auto it = std::find_if(cmds.begin(), cmds.end(), [&](const MappingCommand& c) { return c.kind == kind; });
  return it == cmds.end() ? nullptr : &*it;
}

const MappingCommand* find_notice(const std::vector<MappingCommand>& cmds, N n) {
  auto it = std::find_if(cmds.begin(), cmds.end(),
                         [&](const MappingCommand& c) { return c.kind == K::Notice && c.notice == n; });
  return it == cmds.end() ? nullptr : &*it;
}

size_t count(const std::vector<MappingCommand>& cmds, K kind) {
  return static_cast<size_t>(std::count_if(cmds.begin(), cmds.end(), [&](const MappingCommand& c) { return c.kind == kind; }));
}

MapOutcome ok(const std::string& ip, uint16_t port, uint32_t lifetime) {
  MapOutcome o;
  o.ok = true;
  o.external_ip = ip;
  o.external_port = port;
  o.lifetime_s = lifetime;
  return o;
}

MapOutcome fail(const std::string& why, bool port_taken = false) {
  MapOutcome o;
  o.error = why;
  o.port_taken = port_taken;
  return o;
}

// Started and mapped by NAT-PMP at t=0 for 3600 s on 198.51.7.9:4001.
MappingLifecycle mapped_natpmp(MappingParams p = {}) {
  MappingLifecycle m(kPort, p);
  (void)m.start(0);
  (void)m.on_outcome(ok("198.51.7.9", kPort, 3600), 0);
  return m;
}

TEST(MappingLifecycle, AsksNatPmpFirstForTheSamePortAndLifetime) {
  MappingParams p;
  p.lifetime_s = 1800;
  MappingLifecycle m(kPort, p);
  auto cmds = m.start(0);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, K::Map);
  EXPECT_EQ(cmds[0].protocol, MapProtocol::NatPmp);
  EXPECT_EQ(cmds[0].internal_port, kPort);
  EXPECT_EQ(cmds[0].external_port, kPort);
  EXPECT_EQ(cmds[0].lifetime_s, 1800u);
  EXPECT_FALSE(cmds[0].renewal);
  EXPECT_FALSE(cmds[0].reuse_gateway);  // a round starts with discovery
  EXPECT_EQ(m.phase(), Phase::Mapping);
  EXPECT_FALSE(m.wake_at());  // nothing to time while the request is in flight
  EXPECT_TRUE(m.start(5).empty());  // once
}

TEST(MappingLifecycle, SuccessAdvertisesAndRenewsAtHalfTheLease) {
  MappingLifecycle m(kPort);
  (void)m.start(1000);
  auto cmds = m.on_outcome(ok("198.51.7.9", kPort, 3600), 1000);
  const auto* added = find_notice(cmds, N::Added);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->protocol, MapProtocol::NatPmp);
  EXPECT_EQ(added->external_ip, "198.51.7.9");
  EXPECT_EQ(added->external_port, kPort);
  EXPECT_EQ(added->lifetime_s, 3600u);
  const auto* adv = find(cmds, K::Advertise);
  ASSERT_TRUE(adv);
  EXPECT_EQ(adv->external_ip, "198.51.7.9");
  EXPECT_EQ(adv->external_port, kPort);
  EXPECT_EQ(m.phase(), Phase::Mapped);
  ASSERT_TRUE(m.held());
  EXPECT_EQ(m.held()->expires_at_ms, 1000u + 3'600'000u);
  EXPECT_EQ(m.wake_at(), 1000u + 1'800'000u);

  EXPECT_TRUE(m.on_timer(1'800'999).empty());  // not yet
  cmds = m.on_timer(1'801'000);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, K::Map);
  EXPECT_TRUE(cmds[0].renewal);
  EXPECT_TRUE(cmds[0].reuse_gateway);
  EXPECT_EQ(cmds[0].protocol, MapProtocol::NatPmp);
  EXPECT_EQ(cmds[0].external_port, kPort);
  EXPECT_EQ(m.phase(), Phase::Renewing);

  cmds = m.on_outcome(ok("198.51.7.9", kPort, 3600), 1'801'050);
  EXPECT_TRUE(find_notice(cmds, N::Renewed));
  EXPECT_FALSE(find(cmds, K::Advertise));  // same address: nothing new to tell peers
  EXPECT_EQ(m.held()->expires_at_ms, 1'801'050u + 3'600'000u);
  EXPECT_EQ(m.wake_at(), 1'801'050u + 1'800'000u);
}

TEST(MappingLifecycle, ShorterGrantedLeaseIsRenewedSooner) {
  MappingLifecycle m(kPort);
  (void)m.start(0);
  (void)m.on_outcome(ok("198.51.7.9", kPort, 120), 0);
  EXPECT_EQ(m.wake_at(), 60'000u);
}

TEST(MappingLifecycle, FallsBackToUpnpWhenNatPmpFails) {
  MappingLifecycle m(kPort);
  (void)m.start(0);
  auto cmds = m.on_outcome(fail("gateway 192.168.1.1: the gateway does not support nat-pmp"), 40);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, K::Map);
  EXPECT_EQ(cmds[0].protocol, MapProtocol::Upnp);
  EXPECT_EQ(cmds[0].external_port, kPort);
  EXPECT_FALSE(find_notice(cmds, N::Unavailable));  // not before UPnP had its say
  cmds = m.on_outcome(ok("198.51.7.9", kPort, 3600), 2500);
  ASSERT_TRUE(find_notice(cmds, N::Added));
  EXPECT_EQ(find_notice(cmds, N::Added)->protocol, MapProtocol::Upnp);
  EXPECT_EQ(m.held()->protocol, MapProtocol::Upnp);
  // Renewals stay with the protocol that mapped.
  cmds = m.on_timer(*m.wake_at());
  ASSERT_TRUE(find(cmds, K::Map));
  EXPECT_EQ(find(cmds, K::Map)->protocol, MapProtocol::Upnp);
}

TEST(MappingLifecycle, TakenPortFallsBackToAnyPortOnTheSameProtocol) {
  MappingLifecycle m(kPort);
  (void)m.start(0);
  (void)m.on_outcome(fail("no nat-pmp"), 10);
  auto cmds = m.on_outcome(fail("AddPortMapping 4001 failed: ConflictInMappingEntry (718)", true), 2000);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, K::Map);
  EXPECT_EQ(cmds[0].protocol, MapProtocol::Upnp);
  EXPECT_EQ(cmds[0].external_port, 0);  // any
  EXPECT_TRUE(cmds[0].reuse_gateway);    // the gateway that said "taken" is asked again
  cmds = m.on_outcome(ok("198.51.7.9", 51234, 3600), 2100);
  ASSERT_TRUE(find(cmds, K::Advertise));
  EXPECT_EQ(find(cmds, K::Advertise)->external_port, 51234);
  // The renewal asks for the port we got, not the internal one.
  cmds = m.on_timer(*m.wake_at());
  EXPECT_EQ(find(cmds, K::Map)->external_port, 51234);
}

TEST(MappingLifecycle, UnavailableIsSaidOnceThenRetriedWithBackoff) {
  MappingParams p;
  p.retry_first_ms = 60'000;
  p.retry_max_ms = 200'000;
  MappingLifecycle m(kPort, p);
  (void)m.start(0);
  (void)m.on_outcome(fail("refused"), 5);
  auto cmds = m.on_outcome(fail("no UPnP device answered"), 2005);
  const auto* n = find_notice(cmds, N::Unavailable);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->reason, "natpmp: refused; upnp: no UPnP device answered");
  EXPECT_EQ(n->retry_in_ms, 60'000u);
  EXPECT_EQ(count(cmds, K::Map), 0u);
  EXPECT_EQ(m.phase(), Phase::Waiting);
  EXPECT_EQ(m.wake_at(), 62'005u);
  EXPECT_EQ(m.last_error(), "natpmp: refused; upnp: no UPnP device answered");

  uint64_t now = 62'005;
  std::vector<uint64_t> waits;
  for (int round = 0; round < 4; ++round) {
    cmds = m.on_timer(now);
    ASSERT_TRUE(find(cmds, K::Map));
    EXPECT_EQ(find(cmds, K::Map)->protocol, MapProtocol::NatPmp);  // each round starts over
    (void)m.on_outcome(fail("refused"), now);
    cmds = m.on_outcome(fail("none"), now);
    EXPECT_FALSE(find_notice(cmds, N::Unavailable)) << "round " << round;
    ASSERT_TRUE(find_notice(cmds, N::StillUnavailable));
    waits.push_back(*m.wake_at() - now);
    now = *m.wake_at();
  }
  EXPECT_EQ(waits, (std::vector<uint64_t>{120'000, 200'000, 200'000, 200'000}));

  // A success resets both the backoff and the "said once".
  cmds = m.on_timer(now);
  cmds = m.on_outcome(ok("198.51.7.9", kPort, 3600), now);
  EXPECT_TRUE(find_notice(cmds, N::Added));
  EXPECT_TRUE(m.last_error().empty());
}

TEST(MappingLifecycle, ChangedExternalAddressIsAdvertisedAgain) {
  auto m = mapped_natpmp();
  (void)m.on_timer(1'800'000);
  auto cmds = m.on_outcome(ok("198.51.7.77", kPort, 3600), 1'800'010);
  EXPECT_TRUE(find_notice(cmds, N::Changed));
  ASSERT_TRUE(find(cmds, K::Advertise));
  EXPECT_EQ(find(cmds, K::Advertise)->external_ip, "198.51.7.77");
}

TEST(MappingLifecycle, RenewalFailuresRetryBeforeTheLeaseEndsThenTheMappingIsLost) {
  auto m = mapped_natpmp();  // expires at 3'600'000
  uint64_t now = 1'800'000;
  std::vector<uint64_t> retries;
  for (;;) {
    auto cmds = m.on_timer(now);
    if (find_notice(cmds, N::Lost)) {
      // Withdrawn, and a fresh round from the first protocol.
      EXPECT_TRUE(find(cmds, K::Withdraw));
      ASSERT_TRUE(find(cmds, K::Map));
      EXPECT_FALSE(find(cmds, K::Map)->renewal);
      EXPECT_FALSE(find(cmds, K::Map)->reuse_gateway);
      EXPECT_EQ(find(cmds, K::Map)->protocol, MapProtocol::NatPmp);
      EXPECT_EQ(find(cmds, K::Map)->external_port, kPort);
      EXPECT_FALSE(m.held());
      break;
    }
    ASSERT_TRUE(find(cmds, K::Map)) << "at " << now;
    EXPECT_TRUE(find(cmds, K::Map)->renewal);
    cmds = m.on_outcome(fail("timeout"), now);
    if (find_notice(cmds, N::Lost)) break;
    const auto* rf = find_notice(cmds, N::RenewFailed);
    ASSERT_TRUE(rf);
    EXPECT_EQ(rf->reason, "timeout");
    EXPECT_EQ(rf->retry_in_ms, *m.wake_at() - now);
    EXPECT_TRUE(m.held());  // still ours until the lease ends
    ASSERT_LT(*m.wake_at(), 3'600'000u + 1000) << "never waits past the lease";
    retries.push_back(*m.wake_at() - now);
    now = *m.wake_at();
    ASSERT_LT(retries.size(), 60u);
  }
  ASSERT_GE(retries.size(), 4u);
  EXPECT_EQ(retries[0], 5'000u);
  EXPECT_EQ(retries[1], 10'000u);
  EXPECT_EQ(retries[2], 20'000u);
  EXPECT_GE(now, 3'600'000u - 1000);
}

TEST(MappingLifecycle, RenewalFailingAfterExpiryLosesAtOnce) {
  auto m = mapped_natpmp();
  (void)m.on_timer(1'800'000);
  auto cmds = m.on_outcome(fail("slow gateway"), 3'600'000);
  const auto* lost = find_notice(cmds, N::Lost);
  ASSERT_TRUE(lost);
  EXPECT_NE(lost->reason.find("lease expired"), std::string::npos);
  EXPECT_TRUE(find(cmds, K::Withdraw));
  EXPECT_TRUE(find(cmds, K::Map));
}

TEST(MappingLifecycle, PortTakenOnRenewalStartsOverWithoutTheOldAddress) {
  auto m = mapped_natpmp();
  (void)m.on_timer(1'800'000);
  auto cmds = m.on_outcome(fail("conflict", true), 1'800'100);
  EXPECT_TRUE(find_notice(cmds, N::Lost));
  EXPECT_TRUE(find(cmds, K::Withdraw));
  EXPECT_EQ(m.phase(), Phase::Mapping);
}

TEST(MappingLifecycle, LostMappingThatCannotBeRemadeIsReportedUnavailableAgain) {
  auto m = mapped_natpmp();
  (void)m.on_timer(1'800'000);
  (void)m.on_outcome(fail("x"), 3'600'000);  // lost, fresh round
  (void)m.on_outcome(fail("natpmp down"), 3'600'010);
  auto cmds = m.on_outcome(fail("upnp down"), 3'602'010);
  EXPECT_TRUE(find_notice(cmds, N::Unavailable));
}

TEST(MappingLifecycle, PermanentMappingIsRecheckedAndLostAfterRepeatedFailures) {
  MappingParams p;
  p.permanent_recheck_ms = 1'000'000;
  p.permanent_failures_lost = 3;
  MappingLifecycle m(kPort, p);
  (void)m.start(0);
  (void)m.on_outcome(fail("no nat-pmp"), 0);
  (void)m.on_outcome(ok("198.51.7.9", kPort, 0), 0);  // UPnP, permanent only
  ASSERT_TRUE(m.held());
  EXPECT_FALSE(m.held()->expires_at_ms);
  EXPECT_EQ(m.wake_at(), 1'000'000u);
  uint64_t now = 1'000'000;
  for (int i = 0; i < 2; ++i) {
    auto cmds = m.on_timer(now);
    ASSERT_TRUE(find(cmds, K::Map));
    cmds = m.on_outcome(fail("http error"), now);
    ASSERT_TRUE(find_notice(cmds, N::RenewFailed)) << i;
    EXPECT_LE(*m.wake_at() - now, 1'000'000u);
    now = *m.wake_at();
  }
  (void)m.on_timer(now);
  auto cmds = m.on_outcome(fail("http error"), now);
  EXPECT_TRUE(find_notice(cmds, N::Lost));
  EXPECT_TRUE(find(cmds, K::Withdraw));
}

TEST(MappingLifecycle, StopWhileMappedDeletesThenIsDone) {
  auto m = mapped_natpmp();
  auto cmds = m.stop(10);
  EXPECT_TRUE(find(cmds, K::Withdraw));
  const auto* un = find(cmds, K::Unmap);
  ASSERT_TRUE(un);
  EXPECT_EQ(un->protocol, MapProtocol::NatPmp);
  EXPECT_EQ(un->external_port, kPort);
  EXPECT_EQ(un->internal_port, kPort);
  EXPECT_EQ(m.phase(), Phase::Unmapping);
  EXPECT_FALSE(m.wake_at());  // no renewal any more
  EXPECT_TRUE(m.stop(11).empty());
  cmds = m.on_outcome(MapOutcome{.ok = true}, 20);
  const auto* removed = find_notice(cmds, N::Removed);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->external_ip, "198.51.7.9");
  EXPECT_EQ(removed->external_port, kPort);
  EXPECT_TRUE(find(cmds, K::Done));
  EXPECT_EQ(m.phase(), Phase::Stopped);
  EXPECT_FALSE(m.held());
}

TEST(MappingLifecycle, FailedDeleteIsReportedAndStillDone) {
  auto m = mapped_natpmp();
  (void)m.stop(10);
  auto cmds = m.on_outcome(fail("gateway gone"), 2000);
  ASSERT_TRUE(find_notice(cmds, N::RemoveFailed));
  EXPECT_EQ(find_notice(cmds, N::RemoveFailed)->reason, "gateway gone");
  EXPECT_TRUE(find(cmds, K::Done));
}

TEST(MappingLifecycle, StopWithoutAMappingIsDoneAtOnce) {
  MappingLifecycle idle(kPort);
  EXPECT_TRUE(find(idle.stop(0), K::Done));

  MappingLifecycle waiting(kPort);
  (void)waiting.start(0);
  (void)waiting.on_outcome(fail("a"), 0);
  (void)waiting.on_outcome(fail("b"), 0);
  ASSERT_EQ(waiting.phase(), Phase::Waiting);
  auto cmds = waiting.stop(5);
  EXPECT_TRUE(find(cmds, K::Done));
  EXPECT_FALSE(find(cmds, K::Unmap));
  EXPECT_FALSE(waiting.wake_at());
  EXPECT_TRUE(waiting.on_timer(1'000'000).empty());
}

TEST(MappingLifecycle, StopWhileMappingWaitsForTheAnswerAndDeletesWhatWasMade) {
  MappingLifecycle m(kPort);
  (void)m.start(0);
  EXPECT_TRUE(m.stop(1).empty());  // the request is in flight
  auto cmds = m.on_outcome(ok("198.51.7.9", kPort, 3600), 50);
  EXPECT_TRUE(find_notice(cmds, N::Added));
  ASSERT_TRUE(find(cmds, K::Unmap));
  EXPECT_FALSE(find(cmds, K::Done));
  // Withdrawn after it was advertised.
  auto adv = std::find_if(cmds.begin(), cmds.end(), [](const MappingCommand& c) { return c.kind == K::Advertise; });
  auto wd = std::find_if(cmds.begin(), cmds.end(), [](const MappingCommand& c) { return c.kind == K::Withdraw; });
  ASSERT_NE(wd, cmds.end());
  EXPECT_LT(adv - cmds.begin(), wd - cmds.begin());
  cmds = m.on_outcome(MapOutcome{.ok = true}, 60);
  EXPECT_TRUE(find(cmds, K::Done));

  MappingLifecycle f(kPort);
  (void)f.start(0);
  (void)f.stop(1);
  cmds = f.on_outcome(fail("no"), 50);  // nothing made: no UPnP attempt either
  EXPECT_TRUE(find(cmds, K::Done));
  EXPECT_FALSE(find(cmds, K::Map));
  EXPECT_FALSE(find_notice(cmds, N::Unavailable));
}

TEST(MappingLifecycle, StopWhileRenewingDeletesEvenWhenTheRenewalFailed) {
  auto m = mapped_natpmp();
  (void)m.on_timer(1'800'000);
  EXPECT_TRUE(m.stop(1'800'001).empty());
  auto cmds = m.on_outcome(fail("timeout"), 1'802'000);
  EXPECT_FALSE(find_notice(cmds, N::RenewFailed));
  ASSERT_TRUE(find(cmds, K::Unmap));
  EXPECT_EQ(find(cmds, K::Unmap)->external_port, kPort);
  EXPECT_TRUE(find(cmds, K::Withdraw));
}

TEST(MappingLifecycle, OutcomesWithNothingInFlightAreIgnored) {
  auto m = mapped_natpmp();
  EXPECT_TRUE(m.on_outcome(ok("1.1.1.1", 1, 1), 5).empty());
  EXPECT_EQ(m.held()->external_ip, "198.51.7.9");
}

}  // namespace
}  // namespace punchgate
